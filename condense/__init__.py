"""condense: a plugin-based toolbox for dataset condensation (dataset distillation).

Public API (everything a plugin or notebook needs); names not listed in ``__all__`` are internal.
Distil by name with :func:`distill`; the loop it runs is :func:`condense.loop.run`. The plugin
contract is :mod:`condense.interfaces` (see docs/plugins.md and docs/architecture.md).
"""

from __future__ import annotations

from . import augment, distributed, loop, networks
from .api import distill, evaluate, load, plan_run, read_metadata, results_path, save
from .config import Config, setting
from .datasets import load_dataset
from .errors import (
    ArtifactError,
    CheckpointError,
    CondenseError,
    ConfigError,
    DatasetError,
    DistributedError,
    DuplicateComponentError,
    HubError,
    PluginError,
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
from .version import __version__
from .zca import ZCA

__all__ = [
    "ArtifactError", "CheckpointError", "CondenseError", "Config", "ConfigError", "DataSpec",
    "DatasetError", "DatasetSource", "DistributedError", "DuplicateComponentError", "Encoder",
    "EncoderSampler", "EvalResult", "Evaluator", "FeatureMatching", "Features", "HubError",
    "LoopConfig", "Method", "Plan", "PluginError", "ProgressEvent", "ProgressFn", "RawSplit",
    "RealData", "StepContext", "StepEvent", "SynSet", "UnknownComponentError", "ZCA",
    "__version__", "augment", "derive_seed", "describe", "distill", "distributed", "evaluate",
    "get_dataset", "get_evaluator", "get_method", "get_sampler", "hookimpl", "keyed_generator",
    "load", "load_dataset", "loop", "networks", "plan_run", "read_metadata", "resolve_plan",
    "results_path", "save", "setting", "tune_allocator",
]
