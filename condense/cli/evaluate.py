"""``condense eval ARTIFACT``: judge a distilled set; JSON next to it, a table on the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import api
from ..store import load
from . import cli
from ._console import err_console, out_json, progress_bars
from ._options import data_options, device_option, resolve_device, set_option, settings_dict


def render_result(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['evaluator']} — protocol: {result['protocol']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    settings = ", ".join(f"{k}={v}" for k, v in result["settings"].items())
    table.caption = f"settings: {settings}"
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
@click.option("--no-progress", is_flag=True)
def evaluate(artifact: str, evaluator: str, preset: str | None, settings: tuple[str, ...],
             data_dir: str | None, download: bool, dataset_config: dict[str, object],
             device: str, seed: int, as_json: bool,
             no_save: bool, no_progress: bool) -> None:
    """Evaluate ARTIFACT (a .safetensors file or hf://ORG/REPO/FILE) with an evaluator."""
    local = artifact
    if artifact.startswith("hf://"):
        from ..hub import pull

        local = str(pull(artifact))
    synset = load(local)
    with progress_bars(not no_progress) as report:
        result = api.evaluate(synset, evaluator=evaluator, settings=settings_dict(settings),
                              preset=preset, data_dir=data_dir, download=download,
                              dataset_config=dataset_config, seed=seed,
                              device=resolve_device(device), progress=report)
    payload = {"artifact": artifact, **result.to_dict()}
    if not no_save:
        path = api.results_path(artifact, result.evaluator)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        err_console.print(f"results written to {path}")
    if as_json:
        out_json(payload)
    else:
        Console().print(render_result(payload))


__all__ = ["Path", "evaluate"]
