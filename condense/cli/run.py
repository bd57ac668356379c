"""``condense run METHOD``: distil a dataset and write the artifact (options: ``commands.py``)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from .. import api, distributed
from ..devices import resolve_device
from ..errors import CheckpointError, UnknownComponentError
from ..process import tune_allocator
from ..registry import components, get_method
from ._console import err_console, progress_bars
from ._console import out as print_result
from ._interrupt import stop_on_signals
from ._options import settings_dict
from ._run_outputs import claim, write_artifact
from .dryrun import show as show_dry_run


def _method_and_preset(name: str, preset: str | None) -> tuple[str, str | None]:
    """``datadam-paper`` is accepted as METHOD: a preset name unique among methods."""
    try:
        return get_method(name).name, preset
    except UnknownComponentError:
        owners = [m for m, (cls, _) in components("methods").items() if name in cls.presets]
        if len(owners) == 1 and preset is None:
            return owners[0], name
        raise


def default_out(method: str, dataset: str, ipc: int, seed: int, preset: str | None) -> Path:
    tag = preset if preset and preset != method else method
    return Path("runs") / f"{tag}-{dataset}-ipc{ipc}-seed{seed}.safetensors"


def run(class_chunk: int | None, method: str, dataset: str, ipc: int, iterations: int | None,
        seed: int, preset: str | None, settings: tuple[str, ...], data_dir: str | None,
        download: bool, dataset_config: dict[str, object],
        device: str, out: str | None, resume: bool, keep_checkpoint: bool,
        evaluator: str | None, eval_settings: tuple[str, ...], no_progress: bool,
        force: bool = False, wait: bool = False, dry_run: str | None = None) -> None:
    """Distil DATASET into IPC images per class with METHOD; print the artifact path.

    Once the artifact is written, the checkpoint beside it is removed unless
    ``keep_checkpoint`` (an interrupted run leaves it for ``--resume``)."""
    method, preset = _method_and_preset(method, preset)
    overrides = settings_dict(settings)
    if class_chunk is not None:
        overrides["class_chunk"] = class_chunk
    tune_allocator()  # process-wide malloc settings: the CLI owns the process
    if dry_run:  # resolve and print; a probe runs as the real run would
        show_dry_run(dry_run, lambda name: Path(out) if out else default_out(
                         method, name, ipc, seed, preset),
                     method=method, dataset=dataset, ipc=ipc, iterations=iterations, seed=seed,
                     preset=preset, settings=overrides, data_dir=data_dir,
                     dataset_config=dataset_config, device=device)
        return
    # under torchrun: join the job (one GPU per process); only rank 0 prints and writes
    dev = str(distributed.init(resolve_device(device)))
    main = distributed.is_main()
    status = err_console.status(f"loading {dataset}") if main else contextlib.nullcontext()
    with status, distributed.rank0_first():
        plan, data = api.plan_run(method, dataset=dataset, ipc=ipc, iterations=iterations,
                                  seed=seed, preset=preset, settings=overrides,
                                  data_dir=data_dir, download=download,
                                  dataset_config=dataset_config)
    path = Path(out) if out else default_out(method, data.name, ipc, seed, preset)
    ckpt = path.with_name(path.stem + ".ckpt.safetensors")
    if resume and not ckpt.exists() and path.exists():
        raise CheckpointError(f"--resume: no checkpoint at {ckpt}: the run that wrote {path} "
                              f"finished and removed it; rerun with --keep-checkpoint to be able "
                              f"to extend a finished run")
    if ckpt.exists() and not resume and main:
        err_console.print(f"[yellow]note:[/] {ckpt} exists; pass --resume to continue it "
                          f"(starting afresh overwrites it)")
    if main:
        procs = f", {distributed.world_size()} processes" if distributed.is_distributed() else ""
        err_console.print(f"[bold]{method}[/] on {data.name}, IPC {ipc}, {plan.loop.iterations} "
                          f"iterations, device {dev}{procs}, seed {seed}")
    eval_log = path.with_name(path.stem + ".eval.jsonl") if main else None
    with contextlib.ExitStack() as held:  # rank 0 checks and locks the outputs first
        # under torchrun every rank learns rank 0's outcome: a refusal stops all of them at once
        replaces = distributed.on_rank0(lambda: bool(held.enter_context(
            claim(path, ckpt, plan, resume=resume, force=force, wait=wait))))
        stop = held.enter_context(stop_on_signals(not distributed.is_distributed()))
        with progress_bars(not no_progress and main,
                           every={"distill": plan.loop.log_every}) as report:
            synset = api.distill(method, dataset=data, ipc=ipc, iterations=iterations, seed=seed,
                                 preset=preset, settings=overrides, device=dev, checkpoint=ckpt,
                                 resume=resume, evaluator=evaluator,
                                 eval_settings=settings_dict(eval_settings), eval_log=eval_log,
                                 progress=report, stop=stop)
        if main:
            write_artifact(synset, path, ckpt, replaces=replaces)
            if not keep_checkpoint:
                ckpt.unlink(missing_ok=True)  # the artifact is on disk: nothing left to resume
            print_result(str(path))
    distributed.shutdown()
