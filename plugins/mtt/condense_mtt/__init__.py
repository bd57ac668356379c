"""condense-mtt: Matching Training Trajectories (Cazenavette et al., CVPR 2022) for condense.

* ``condense experts --dataset D --experts N --epochs E --out DIR`` trains expert networks on the
  real data (the official ``buffer.py`` protocol) and writes each trajectory as safetensors
  (:mod:`condense_mtt.experts`, docs/experts.md).
* Method ``mtt`` (:mod:`condense_mtt.method`): ``condense run mtt --dataset D --ipc K --set
  experts=DIR`` matches student trajectories on the synthetic set to the experts' and learns the
  student's learning rate ``syn_lr``, which the artifact carries and the evaluators train with.

Written against condense's public API only; registered through the ``condense`` entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import condense

from .cli import experts as experts_command
from .experts import ExpertConfig, Trajectories, read_meta, train_experts, write_expert
from .method import MTT, FlatStudent, syn_batches, trajectory_loss, unroll

__version__ = "0.1.0"


@condense.hookimpl
def register_methods(register: Callable[[type[condense.Method]], None]) -> None:
    register(MTT)


@condense.hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(experts_command)


__all__ = ["MTT", "ExpertConfig", "FlatStudent", "Trajectories", "experts_command", "read_meta",
           "register_commands", "register_methods", "syn_batches", "train_experts",
           "trajectory_loss", "unroll", "write_expert"]
