"""condense-evaluators: how a distilled set is judged.

* ``accuracy`` (default): N networks trained from scratch on the set, tested on the real test
  split; any architecture of ``condense list models``; each paper's protocol is a preset.
* ``continual``: class-incremental learning with the set as memory, against random and herding
  memories of the same size.
* ``nas``: does the set rank architectures like real data does (Spearman's ρ, time saved)?

Written against condense's public API only; registered through the ``condense`` entry point.
"""

from __future__ import annotations

from collections.abc import Callable

import condense

from .accuracy import Accuracy
from .continual import Continual
from .nas import NAS

__version__ = "0.1.0"


@condense.hookimpl
def register_evaluators(register: Callable[[type[condense.Evaluator]], None]) -> None:
    register(Accuracy)
    register(Continual)
    register(NAS)


__all__ = ["NAS", "Accuracy", "Continual", "register_evaluators"]
