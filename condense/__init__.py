"""condense: a plugin-based toolbox for dataset condensation (dataset distillation).

Public API (everything a plugin or notebook needs); names not listed in ``__all__`` are internal.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import augment, distributed, networks
from .api import distil, evaluate, plan_run, results_path
from .config import Config
from .data import RealData, load_dataset
from .distill import DistillContext, FeatureMatching, StepEvent, distill
from .distributed import DistributedError
from .errors import (
    ArtifactError,
    CheckpointError,
    CondenseError,
    ConfigError,
    DatasetError,
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
    Features,
    Method,
    ProgressEvent,
    ProgressFn,
    RawSplit,
)
from .plan import LoopConfig, Plan, resolve_plan
from .registry import describe, get_dataset, get_evaluator, get_method, get_sampler
from .rng import derive_seed, keyed_generator
from .store import load, read_metadata, save
from .synset import SynSet
from .zca import ZCA

__all__ = [
    "ArtifactError", "CheckpointError", "CondenseError", "Config", "ConfigError", "DataSpec",
    "DatasetError", "DatasetSource", "DistillContext", "DistributedError",
    "DuplicateComponentError", "Encoder", "EncoderSampler", "EvalResult", "Evaluator",
    "FeatureMatching", "Features", "HubError", "LoopConfig", "Method", "Plan", "PluginError",
    "ProgressEvent", "ProgressFn", "RawSplit", "RealData", "StepEvent", "SynSet",
    "UnknownComponentError", "ZCA", "__version__", "augment", "derive_seed", "describe",
    "distil", "distill", "distributed", "evaluate", "get_dataset", "get_evaluator",
    "get_method", "get_sampler", "hookimpl", "keyed_generator", "load", "load_dataset",
    "networks", "plan_run", "read_metadata", "resolve_plan", "results_path", "save",
]
