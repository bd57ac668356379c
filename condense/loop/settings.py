"""The shared distillation loop's settings (``loop.*`` keys of ``--set``)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..config import Config, setting


@dataclasses.dataclass(frozen=True)
class LoopConfig(Config):
    """Settings of the shared distillation loop (docs/design.md; defaults follow the official
    DM/DataDAM scripts). ``resumable`` settings may change when a run is resumed."""

    iterations: int = setting(20000, resumable=True)  # image updates (official: iterations + 1)
    lr_img: float = 1.0  # SGD learning rate of the synthetic images
    momentum: float = 0.5  # SGD momentum of the synthetic images
    batch_real: int = 64  # real images per class per iteration
    init: Literal["real", "noise"] = "real"  # synthetic initialisation
    dsa_strategy: str = "auto"  # DSA ops joined by '_', 'none', or 'auto' (the dataset's default)
    class_chunk: int = setting(0, resumable=True)  # classes per forward pass; 0 = auto (memory)
    microbatch: int = setting(0, resumable=True)  # real images per no-grad encoder call; 0 = auto
    checkpoint_every: int = setting(500, resumable=True)  # iterations between checkpoints (0: end)
    eval_every: int = setting(0, resumable=True)  # iterations between evaluations (0 = never)
    log_every: int = setting(10, resumable=True)  # iterations between loss read-outs (device sync)
    zca: bool = False  # ZCA-whiten real data (fitted on the whole training set)
    zca_eps: float = 0.1  # ZCA regulariser, as kornia/MTT/DataDAM
    channels_last: bool = True  # channels_last (NHWC) memory format for the encoder pass
    autocast: Literal["none", "bf16"] = "none"  # bf16 autocast of the encoder pass (GPU)

    def __post_init__(self) -> None:
        for name in ("iterations", "class_chunk", "microbatch", "checkpoint_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_real", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
