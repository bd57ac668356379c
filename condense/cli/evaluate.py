"""``condense eval ARTIFACT``: judge a distilled set; JSON next to it, a table on the terminal.

The options are declared in :mod:`condense.cli.commands`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import api, distributed
from ..devices import resolve_device
from ..errors import ArtifactError
from ..hub import pull
from ..process import tune_allocator
from ..records import DIGEST_KEY, content_digest
from ..store import load, save
from ._console import err_console, out_json, progress_bars
from ._options import settings_dict
from ._outputs import after_result, check_writable, write_record
from .hub import hub_warnings


def render_result(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['evaluator']} — protocol: {result['protocol']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


def evaluate(artifact: str, evaluator: str, preset: str | None, settings: tuple[str, ...],
             data_dir: str | None, download: bool, dataset_config: dict[str, object],
             device: str, seed: int, as_json: bool,
             no_save: bool, model: str | None, into_metadata: bool, no_progress: bool) -> None:
    """Evaluate ARTIFACT (a .safetensors file or hf://datasets/ORG/REPO/FILE) with an evaluator."""
    # under torchrun the evaluation networks are spread over the ranks; rank 0 writes and prints
    tune_allocator()  # process-wide malloc settings: the CLI owns the process
    dev = str(distributed.init(resolve_device(device)))
    main = distributed.is_main()
    local = artifact
    if artifact.startswith("hf://"):
        with distributed.rank0_first(), hub_warnings():
            local = str(pull(artifact))
    if into_metadata and artifact.startswith("hf://"):
        raise ArtifactError("--into-metadata needs a local artifact; `condense pull` it first")
    synset = load(local)
    if main and not no_save:
        check_writable(api.results_path(artifact, evaluator),
                       "pass --no-save to skip the record (--json prints it)")
    if main and into_metadata:
        check_writable(local, "leave out --into-metadata, or copy the artifact somewhere writable")
    overrides = settings_dict(settings)
    if model:
        overrides["model"] = model
    with progress_bars(not no_progress and main) as report:
        result = api.evaluate(synset, evaluator=evaluator, settings=overrides,
                              preset=preset, data_dir=data_dir, download=download,
                              dataset_config=dataset_config, seed=seed,
                              device=dev, progress=report)
    payload = {"artifact": artifact, DIGEST_KEY: content_digest(local), **result.to_dict()}
    if not main:
        distributed.shutdown()
        return
    # the result first: a failed write below must not lose hours of evaluation
    if as_json:
        out_json(payload)
    else:
        console = Console()
        console.print(render_result(payload))
        settings_line = ", ".join(f"{k}={v}" for k, v in payload["settings"].items())
        console.print(f"protocol {payload['protocol']}: {settings_line}", soft_wrap=True,
                      highlight=False, markup=False)
    if not no_save:
        path = api.results_path(artifact, result.evaluator)
        write_record(path, payload)
        err_console.print(f"results written to {path}")
    if into_metadata:
        synset.meta.setdefault("evaluations", {})[result.protocol] = payload
        after_result(local, lambda: save(synset, local))
        err_console.print(f"result recorded in {local} (metadata key `evaluations`)")
    distributed.shutdown()


__all__ = ["Path", "evaluate"]
