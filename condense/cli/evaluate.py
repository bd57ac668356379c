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
from .evaltable import baseline_note, evaluate_models, result_tables
from .hub import hub_warnings


def render_result(result: dict[str, Any]) -> Table:
    """The first table ``condense eval`` prints for ``result`` (:mod:`.evaltable`)."""
    return result_tables(result)[0]


def evaluate(artifact: str, evaluator: str, preset: str | None, settings: tuple[str, ...],
             data_dir: str | None, download: bool, dataset_config: dict[str, object],
             device: str, seed: int, as_json: bool,
             no_save: bool, model: str | None, into_metadata: bool, no_progress: bool,
             no_baseline: bool = False, teacher: str | None = None) -> None:
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
    models = [m.strip() for m in (model or "").split(",") if m.strip()]
    record = api.results_path(artifact, evaluator if len(models) < 2 else f"{evaluator}-models")
    if main and not no_save:
        check_writable(record, "pass --no-save to skip the record (--json prints it)")
    if main and into_metadata:
        check_writable(local, "leave out --into-metadata, or copy the artifact somewhere writable")
    overrides: dict[str, Any] = dict(settings_dict(settings))
    if no_baseline:
        overrides["baseline"] = False
    if teacher:
        overrides["teacher"] = teacher
    if len(models) > 1:
        evaluate_models(artifact, local, synset, models, evaluator=evaluator, preset=preset,
                        overrides=overrides, data_dir=data_dir, download=download,
                        dataset_config=dataset_config, device=dev, seed=seed, as_json=as_json,
                        no_save=no_save, into_metadata=into_metadata, no_progress=no_progress)
        distributed.shutdown()
        return
    if models:
        overrides["model"] = models[0]
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
        for table in result_tables(payload):
            console.print(table)
        note = baseline_note(payload)
        if note:
            err_console.print(note, highlight=False, markup=False)
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
