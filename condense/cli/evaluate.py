"""``condense eval ARTIFACT``: judge a distilled set; JSON next to it, a table on the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import api, distributed
from ..errors import ArtifactError
from ..hub import pull
from ..process import tune_allocator
from ..store import load, save
from ._console import err_console, out_json, progress_bars
from ._options import data_options, device_option, resolve_device, set_option, settings_dict
from .group import cli


def render_result(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['evaluator']} — protocol: {result['protocol']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


@cli.command("eval")
@click.argument("artifact")
@click.option("--evaluator", "-e", default="accuracy", show_default=True,
              help="Evaluator name (`condense list evaluators`).")
@click.option("--preset", default=None, help="Named protocol preset of the evaluator.")
@set_option
@data_options
@device_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-save", is_flag=True, help="Do not write <artifact>.eval-<evaluator>.json.")
@click.option("--model", default=None,
              help="Evaluation architecture (cross-architecture), same as --set model=NAME.")
@click.option("--into-metadata", is_flag=True,
              help="Also record the result in the artifact's metadata (key `evaluations`).")
@click.option("--no-progress", is_flag=True)
def evaluate(artifact: str, evaluator: str, preset: str | None, settings: tuple[str, ...],
             data_dir: str | None, download: bool, dataset_config: dict[str, object],
             device: str, seed: int, as_json: bool,
             no_save: bool, model: str | None, into_metadata: bool, no_progress: bool) -> None:
    """Evaluate ARTIFACT (a .safetensors file or hf://ORG/REPO/FILE) with an evaluator."""
    # under torchrun the evaluation networks are spread over the ranks; rank 0 writes and prints
    tune_allocator()  # process-wide malloc settings: the CLI owns the process
    dev = str(distributed.init(resolve_device(device)))
    main = distributed.is_main()
    local = artifact
    if artifact.startswith("hf://"):
        with distributed.rank0_first():
            local = str(pull(artifact))
    if into_metadata and artifact.startswith("hf://"):
        raise ArtifactError("--into-metadata needs a local artifact; `condense pull` it first")
    synset = load(local)
    overrides = settings_dict(settings)
    if model:
        overrides["model"] = model
    with progress_bars(not no_progress and main) as report:
        result = api.evaluate(synset, evaluator=evaluator, settings=overrides,
                              preset=preset, data_dir=data_dir, download=download,
                              dataset_config=dataset_config, seed=seed,
                              device=dev, progress=report)
    payload = {"artifact": artifact, **result.to_dict()}
    if not main:
        distributed.shutdown()
        return
    if not no_save:
        path = api.results_path(artifact, result.evaluator)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        err_console.print(f"results written to {path}")
    if into_metadata:
        synset.meta.setdefault("evaluations", {})[result.protocol] = payload
        save(synset, local)
        err_console.print(f"result recorded in {local} (metadata key `evaluations`)")
    if as_json:
        out_json(payload)
    else:
        console = Console()
        console.print(render_result(payload))
        settings_line = ", ".join(f"{k}={v}" for k, v in payload["settings"].items())
        console.print(f"protocol {payload['protocol']}: {settings_line}", soft_wrap=True,
                      highlight=False, markup=False)
    distributed.shutdown()


__all__ = ["Path", "evaluate"]
