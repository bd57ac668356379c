"""condense: a plugin-based toolbox for dataset condensation (dataset distillation).

Public API (everything a plugin or notebook needs); names not listed in ``__all__`` are internal.
Distil by name with :func:`distill`; the loop it runs is :func:`condense.loop.run`. The plugin
contract is :mod:`condense.interfaces` (see docs/plugins.md and docs/architecture.md).

The names are loaded on first use (PEP 562): ``import condense`` itself imports neither torch
nor a plugin, so ``condense --help`` and shell completion stay fast. ``condense.distill`` (or any
other public name) imports the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these
    from . import augment, devices, distributed, hub, loop, networks
    from .api import (
        cross_architecture,
        distill,
        evaluate,
        load,
        plan_run,
        read_metadata,
        results_path,
        save,
    )
    from .config import Config, setting
    from .datasets import load_dataset
    from .dryrun import dry_run
    from .errors import (
        ArtifactError,
        CheckpointError,
        CondenseError,
        ConfigError,
        DatasetError,
        DistributedError,
        DuplicateComponentError,
        HubError,
        OutputError,
        PluginError,
        RunInterrupted,
        UnknownComponentError,
    )
    from .hookspecs import hookimpl
    from .interfaces import (
        DatasetSource,
        DataSpec,
        Encoder,
        EncoderSampler,
        EvalResult,
        Evaluator,
        FeatureMatching,
        Features,
        Method,
        ProgressEvent,
        ProgressFn,
        RawSplit,
        StepContext,
    )
    from .loop import LoopConfig, Plan, StepEvent, resolve_plan
    from .process import tune_allocator
    from .realdata import RealData
    from .registry import describe, get_dataset, get_evaluator, get_method, get_sampler
    from .rng import derive_seed, keyed_generator
    from .synset import SynSet
    from .zca import ZCA

#: public name -> the module that defines it (a submodule maps to itself)
_SOURCES: dict[str, str] = {
    **{name: f"condense.{name}" for name in ("augment", "devices", "distributed", "hub", "loop",
                                             "networks")},
    **dict.fromkeys(("cross_architecture", "distill", "evaluate", "load", "plan_run",
                     "read_metadata", "results_path", "save"), "condense.api"),
    **dict.fromkeys(("Config", "setting"), "condense.config"),
    "dry_run": "condense.dryrun",
    "load_dataset": "condense.datasets",
    **dict.fromkeys(("ArtifactError", "CheckpointError", "CondenseError", "ConfigError",
                     "DatasetError", "DistributedError", "DuplicateComponentError", "HubError",
                     "OutputError", "PluginError", "RunInterrupted", "UnknownComponentError"),
                    "condense.errors"),
    "hookimpl": "condense.hookspecs",
    **dict.fromkeys(("DatasetSource", "DataSpec", "Encoder", "EncoderSampler", "EvalResult",
                     "Evaluator", "FeatureMatching", "Features", "Method", "ProgressEvent",
                     "ProgressFn", "RawSplit", "StepContext"), "condense.interfaces"),
    **dict.fromkeys(("LoopConfig", "Plan", "StepEvent", "resolve_plan"), "condense.loop"),
    "tune_allocator": "condense.process",
    "RealData": "condense.realdata",
    **dict.fromkeys(("describe", "get_dataset", "get_evaluator", "get_method", "get_sampler"),
                    "condense.registry"),
    **dict.fromkeys(("derive_seed", "keyed_generator"), "condense.rng"),
    "SynSet": "condense.synset",
    "ZCA": "condense.zca",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'condense' has no attribute {name!r}")
    module = importlib.import_module(source)
    value = module if source == f"condense.{name}" else getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ArtifactError", "CheckpointError", "CondenseError", "Config", "ConfigError", "DataSpec",
    "DatasetError", "DatasetSource", "DistributedError", "DuplicateComponentError", "Encoder",
    "EncoderSampler", "EvalResult", "Evaluator", "FeatureMatching", "Features", "HubError",
    "LoopConfig", "Method", "OutputError", "Plan", "PluginError", "ProgressEvent", "ProgressFn",
    "RawSplit", "RealData", "RunInterrupted", "StepContext", "StepEvent", "SynSet",
    "UnknownComponentError", "ZCA",
    "__version__", "augment", "cross_architecture", "derive_seed", "describe", "devices",
    "distill", "distributed", "dry_run", "evaluate",
    "get_dataset", "get_evaluator", "get_method", "get_sampler", "hookimpl", "hub",
    "keyed_generator",
    "load", "load_dataset", "loop", "networks", "plan_run", "read_metadata", "resolve_plan",
    "results_path", "save", "setting", "tune_allocator",
]
