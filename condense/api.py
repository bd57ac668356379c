"""The notebook API: everything the CLI does is one call here.

>>> import condense
>>> syn = condense.distill("datadam", dataset="fashion-mnist", ipc=10, iterations=200)
>>> condense.save(syn, "fmnist-ipc10.safetensors")
>>> result = condense.evaluate(syn, evaluator="accuracy", settings={"num_eval": 3})

:func:`distill` distils by name; the loop it runs is :func:`condense.loop.run` (a resolved
``Plan`` and loaded data in, a ``SynSet`` out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from . import distributed, hub, store
from .datasets import load_dataset
from .devices import resolve_device
from .errors import ConfigError, DatasetError
from .interfaces import EvalResult, ProgressFn
from .loop import Plan, StepEvent, resolve_plan, run
from .realdata import RealData
from .registry import get_evaluator
from .store import read_metadata, save
from .synset import SynSet
from .validation import check_against_data, validate_synset

__all__ = ["cross_architecture", "distill", "evaluate", "load", "plan_run", "read_metadata",
           "save"]


def load(path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
         validate: bool = True) -> SynSet:
    """Read and validate an artifact: a local file, or ``hf://datasets/ORG/REPO/FILE`` (pulled
    through the Hugging Face cache first); raise ArtifactError for a truncated, foreign or newer
    file, or an invalid set (NaN images, unusable mean/std, labels outside ``class_names``;
    ``validate=False`` reads it anyway, to inspect or repair it).
    ``device="auto"`` means cuda where available, else cpu."""
    text = os.fspath(path)
    if text.startswith(hub.SCHEME):
        text = os.fspath(hub.pull(text))
    return store.load(text, device=resolve_device(device), validate=validate)


def plan_run(
    method: str,
    *,
    dataset: str | RealData,
    ipc: int,
    iterations: int | None = None,
    seed: int = 0,
    preset: str | None = None,
    settings: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    dataset_config: Mapping[str, Any] | None = None,
) -> tuple[Plan, RealData]:
    """Load the dataset and resolve the run's configuration without running it.

    ``dataset_config`` holds the dataset's own settings (``image_size``, imagefolder paths ...).
    """
    data = dataset if isinstance(dataset, RealData) else load_dataset(
        dataset, data_dir, download=download, config=dict(dataset_config or {}))
    overrides = dict(settings or {})
    if iterations is not None:
        overrides["iterations"] = iterations
    plan = resolve_plan(method, dataset=data.name, spec=data.spec, ipc=ipc, seed=seed,
                        preset=preset, overrides=overrides)
    return plan, data


def distill(
    method: str,
    *,
    dataset: str | RealData,
    ipc: int,
    iterations: int | None = None,
    seed: int = 0,
    preset: str | None = None,
    settings: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    dataset_config: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    evaluator: str | None = None,
    eval_settings: Mapping[str, Any] | None = None,
    eval_log: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    callback: Callable[[StepEvent], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SynSet:
    """Distil ``dataset`` with ``method`` at ``ipc`` images per class; return the SynSet.

    ``settings`` are ``--set`` style overrides (method, loop or ``sampler.*`` keys). With
    ``evaluator`` and ``loop.eval_every`` > 0, intermediate sets are evaluated and each result is
    appended as a JSON line to ``eval_log``. ``device="auto"`` means cuda where available.

    The result's metadata keeps the loss read every ``loop.log_every`` iterations
    (``meta["loss_history"]``: ``[iteration, loss]`` pairs) and, with periodic evaluation, each
    result (``meta["eval_history"]``, marked ``"role": "monitoring"``: the set returned is the
    final one, never the best evaluated); after ``resume`` both start at the resumed iteration.

    ``stop()`` is asked after each iteration; when it answers true the run writes its
    ``checkpoint`` there and raises :class:`condense.RunInterrupted` (resume continues it).
    """
    device = resolve_device(device)
    plan, data = plan_run(method, dataset=dataset, ipc=ipc, iterations=iterations, seed=seed,
                          preset=preset, settings=settings, data_dir=data_dir, download=download,
                          dataset_config=dataset_config)
    losses: list[list[float]] = []
    evaluations: list[dict[str, Any]] = []

    def record(event: StepEvent) -> None:
        losses.append([event.iteration, float(f"{event.loss:.6g}")])
        if callback is not None:
            callback(event)

    eval_fn = None
    if evaluator and plan.loop.eval_every:
        def eval_fn(synset: SynSet, iteration: int) -> None:
            result = evaluate(synset, evaluator=evaluator, settings=eval_settings, data=data,
                              seed=seed, device=device)
            # monitoring only: the run's result is the final set, never the best of these
            evaluations.append({"iteration": iteration, "role": "monitoring",
                                "evaluator": result.evaluator, "protocol": result.protocol,
                                "metrics": result.metrics})
            if eval_log and distributed.is_main():
                with open(eval_log, "a") as fh:
                    fh.write(json.dumps({"iteration": iteration, "role": "monitoring",
                                         **result.to_dict()}) + "\n")
    synset = run(plan, data, device=device, checkpoint=checkpoint, resume=resume,
                 progress=progress, callback=record, evaluate=eval_fn, stop=stop)
    synset.meta["loss_history"] = losses
    if evaluations:
        synset.meta["eval_history"] = evaluations
    return synset


def evaluate(
    synset: SynSet | str | os.PathLike[str],
    *,
    evaluator: str = "accuracy",
    settings: Mapping[str, Any] | None = None,
    preset: str | None = None,
    data: RealData | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    dataset_config: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
) -> EvalResult:
    """Judge a distilled set (a SynSet, a file, or ``hf://`` path) with an evaluator.
    ``device="auto"`` means cuda where available, else cpu.

    Before any network is trained, the set is validated (:func:`condense.validation.
    validate_synset`) and checked against the data (same image shape and classes). Without
    ``data`` and ``data_dir``, the data folder recorded in the set (``meta["data_root"]``) is used
    while it exists."""
    device = resolve_device(device)
    if not isinstance(synset, SynSet):
        synset = load(synset)
    else:
        validate_synset(synset)
    cls = get_evaluator(evaluator)
    values: dict[str, Any] = {}
    if preset:
        if preset not in cls.presets:
            raise ConfigError(f"unknown preset {preset!r} for evaluator {cls.name}; available: "
                              f"{', '.join(sorted(cls.presets)) or '(none)'}")
        values.update(cls.presets[preset])
    values.update(settings or {})
    instance = cls(cls.Config.from_dict(values, owner=f"evaluator {cls.name}"))
    if data is None:
        data = data_of(synset, data_dir, download=download, dataset_config=dataset_config)
    check_against_data(synset, data)
    return instance.evaluate(synset, data, seed=seed, device=device, progress=progress)


def data_of(synset: SynSet, data_dir: str | os.PathLike[str] | None = None, *,
            download: bool = False,
            dataset_config: Mapping[str, Any] | None = None) -> RealData:
    """The real data ``synset`` was distilled from: its recorded dataset and settings
    (``dataset_config``: imagefolder paths, image size; the caller's override them key by key),
    read from ``data_dir``, else from the recorded ``data_root`` while that folder exists, else
    from the default locations. A set whose recorded folder is gone and whose data is not found
    elsewhere gets a DatasetError naming that folder."""
    meta = synset.meta
    config = {**dict(meta.get("dataset_config") or {}), **dict(dataset_config or {})}
    name = str(meta.get("dataset"))
    recorded = meta.get("data_root") if isinstance(meta.get("data_root"), str) else None
    if data_dir is None and recorded and Path(recorded).is_dir():
        return load_dataset(name, recorded, download=download, config=config)
    try:
        return load_dataset(name, data_dir, download=download, config=config)
    except DatasetError as exc:
        if not recorded:
            raise
        if data_dir is not None:
            if not Path(recorded).is_dir():
                raise
            raise DatasetError(f"{exc}\nThe set was distilled from the data in {recorded}: "
                               f"pass --data-dir {recorded} (or leave --data-dir and "
                               f"$CONDENSE_DATA_DIR unset)") from None
        raise DatasetError(
            f"{name}: the set was distilled from the data in {recorded}, which no longer exists, "
            f"and the data is not in the default locations either; pass --data-dir FOLDER "
            f"(data_dir=) pointing at a copy of it") from None


def cross_architecture(
    synset: SynSet | str | os.PathLike[str],
    models: Sequence[str],
    *,
    evaluator: str = "accuracy",
    settings: Mapping[str, Any] | None = None,
    preset: str | None = None,
    data: RealData | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    dataset_config: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
) -> dict[str, EvalResult]:
    """Evaluate one set with each architecture of ``models`` (names of
    ``condense.networks.model_names()``), the protocol otherwise unchanged; results by model, in
    the order given. The dataset is loaded once. With the accuracy evaluator each result carries
    its own random baseline (trained with that model, cached)."""
    if not models:
        raise ConfigError("give at least one model, e.g. convnet,convnet-bn,alexnet")
    if not isinstance(synset, SynSet):
        synset = load(synset)
    if data is None:
        data = data_of(synset, data_dir, download=download,
                       dataset_config=dataset_config)
    return {name: evaluate(synset, evaluator=evaluator, settings={**dict(settings or {}),
                                                                   "model": name},
                           preset=preset, data=data, seed=seed, device=device,
                           progress=progress)
            for name in models}


def results_path(artifact: str | os.PathLike[str], evaluator: str) -> Path:
    """Where ``condense eval`` writes its JSON: next to a local artifact; for ``hf://`` paths
    in the current directory (never inside the Hugging Face cache), named after the repository
    and the path in it (``ORG--REPO--PART--…--NAME``) so two sets never share a file."""
    return output_next_to(artifact, f".eval-{evaluator}.json")


def output_next_to(artifact: str | os.PathLike[str], suffix: str) -> Path:
    """``<stem><suffix>`` beside a local artifact; for ``hf://`` paths in the current folder,
    with :func:`condense.hub.local_stem` as the stem."""
    text = os.fspath(artifact)
    if text.startswith(hub.SCHEME):
        return Path(hub.local_stem(text) + suffix)
    p = Path(text)
    return p.with_name(p.stem + suffix)
