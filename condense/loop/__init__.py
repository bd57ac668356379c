"""The shared distillation loop: resolve a plan, then run it.

>>> plan = condense.loop.resolve_plan("dm", dataset=data.name, spec=data.spec, ipc=10)
>>> synset = condense.loop.run(plan, data)

Modules: :mod:`.settings` (``LoopConfig``), :mod:`.plan` (``Plan``, ``resolve_plan``: defaults,
presets and ``--set`` keys), :mod:`.memory` (the automatic class chunk), :mod:`.context` (the
``StepContext`` methods see), :mod:`.sharding` (one process or a ``torchrun`` group),
:mod:`.checkpoint`, :mod:`.provenance` (artifact metadata) and :mod:`.run` (the loop).
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .context import LoopContext
from .plan import Plan, resolve_plan
from .run import StepEvent, initial_images, make_synset, run
from .settings import LoopConfig

__all__ = ["Checkpoint", "LoopConfig", "LoopContext", "Plan", "StepEvent", "initial_images",
           "load_checkpoint", "make_synset", "resolve_plan", "run", "save_checkpoint"]
