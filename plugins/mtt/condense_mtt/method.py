"""MTT: Dataset Distillation by Matching Training Trajectories (Cazenavette et al., CVPR 2022).

Each iteration draws an expert and a start epoch ``t < max_start_epoch``; a student network
starts from the expert's parameters θ*_t and takes ``syn_steps`` SGD steps on mini-batches of
the (augmented) synthetic set with the learnable step size ``syn_lr``; the loss is the
normalised parameter distance

    ‖θ̂_N − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖²        (M = expert_epochs)

back-propagated through all N unrolled steps into the images and ``syn_lr``. Images are stepped
by the loop's SGD (``lr_img``, momentum 0.5), ``syn_lr`` by the method's own SGD (``lr_lr``,
momentum 0.5), both as the official ``distill.py``. The student is functional
(``torch.func.functional_call`` on one module, parameters as one flat vector) rather than the
official ``ReparamModule``. Written against condense's public API only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import condense

from .experts import Trajectories, build_net

#: the official distill.py: SGD momentum of syn_lr's optimiser
LR_MOMENTUM = 0.5


class FlatStudent:
    """A module evaluated at a flat parameter vector (the ReparamModule idea, functionally)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module.requires_grad_(False)
        named = list(module.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]

    @property
    def numel(self) -> int:
        return sum(self.sizes)

    def flat(self) -> Tensor:
        """The module's own parameters as one vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.module.parameters()])

    def __call__(self, theta: Tensor, x: Tensor) -> Tensor:
        params = {n: t.view(s) for n, t, s in
                  zip(self.names, theta.split(self.sizes), self.shapes, strict=True)}
        return torch.func.functional_call(self.module, params, (x,))


def trajectory_loss(end: Tensor, start: Tensor, target: Tensor) -> Tensor:
    """‖end − target‖² / ‖start − target‖² (flat parameter vectors); zero when the student lands
    on the target. The official code divides both sums by the parameter count, which cancels."""
    return (end - target).pow(2).sum() / (start - target).pow(2).sum()


def unroll(student: Callable[[Tensor, Tensor], Tensor], start: Tensor, images: Tensor,
           labels: Tensor, syn_lr: Tensor, batches: Sequence[Tensor],
           augment: Callable[[Tensor, int], Tensor] | None = None) -> Tensor:
    """``len(batches)`` differentiable SGD steps of ``student`` from ``start`` on
    ``images[batch]`` (cross-entropy on ``labels[batch]``) with step size ``syn_lr``; returns the
    final parameters, a function of ``images`` and ``syn_lr`` (``create_graph=True``)."""
    theta = start.detach().clone().requires_grad_(True)
    for step, idx in enumerate(batches):
        x = images.index_select(0, idx)
        if augment is not None:
            x = augment(x, step)
        ce = F.cross_entropy(student(theta, x), labels.index_select(0, idx))
        (grad,) = torch.autograd.grad(ce, theta, create_graph=True)
        theta = theta - syn_lr * grad
    return theta


def syn_batches(n: int, batch: int, steps: int, generator: torch.Generator) -> list[Tensor]:
    """Indices of each unrolled step's mini-batch, as distill.py: a random permutation of the
    ``n`` synthetic images cut into chunks of ``batch`` (the last, shorter chunk first), a new
    permutation whenever the chunks run out."""
    out: list[Tensor] = []
    chunks: list[Tensor] = []
    for _ in range(steps):
        if not chunks:
            chunks = list(torch.randperm(n, generator=generator).split(batch))
        out.append(chunks.pop())
    return out


def _preset(syn_steps: int, expert_epochs: int, max_start_epoch: int, lr_img: float,
            lr_lr: float, lr_teacher: float, *, batch_syn: int = 0, zca: bool = False,
            model: str | None = None) -> dict[str, Any]:
    """A row of the per-setting table, keeping only what differs from the defaults."""
    row: dict[str, Any] = {"syn_steps": syn_steps, "expert_epochs": expert_epochs,
                           "max_start_epoch": max_start_epoch, "lr_img": lr_img, "lr_lr": lr_lr,
                           "lr_teacher": lr_teacher, "batch_syn": batch_syn, "zca": zca}
    if model is not None:
        row["model"] = model
    defaults = {**MTT.Config().to_dict(), **MTT.loop_defaults, "zca": False}
    return {k: v for k, v in row.items() if defaults.get(k) != v}


class MTT(condense.Method):
    """Matching Training Trajectories with a learned synthetic learning rate (CVPR 2022)."""

    name = "mtt"
    needs_encoder = False
    class_shardable = False  # one student is trained on the whole synthetic set
    # distill.py: --Iteration 5000, --lr_img 1000, SGD momentum 0.5 on the images
    loop_defaults = {"iterations": 5000, "lr_img": 1000.0, "momentum": 0.5, "init": "real"}

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        experts: str = ""  # folder of expert trajectories (condense experts --out DIR)
        num_experts: int = 0  # use the first N expert files of the folder (0 = all)
        model: str = "convnet"  # student network; must be the experts' --model
        syn_steps: int = 20  # N: unrolled student steps on the synthetic set per iteration
        expert_epochs: int = 3  # M: the target is the expert M epochs after the start
        max_start_epoch: int = 25  # start epoch drawn uniformly from 0 .. max_start_epoch - 1
        batch_syn: int = 0  # synthetic images per student step (0 = the whole set)
        lr_teacher: float = 0.01  # initial syn_lr (distill.py --lr_teacher)
        lr_lr: float = 1e-5  # SGD learning rate of syn_lr (momentum 0.5)

        def __post_init__(self) -> None:
            for key in ("syn_steps", "expert_epochs", "max_start_epoch"):
                if getattr(self, key) < 1:
                    raise ValueError(f"{key} must be >= 1")
            if self.batch_syn < 0 or self.num_experts < 0:
                raise ValueError("batch_syn and num_experts must be >= 0")
            if self.lr_teacher <= 0:
                raise ValueError("lr_teacher (the initial syn_lr) must be > 0")

    presets: dict[str, dict[str, Any]] = {}  # filled below (needs Config's defaults)

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._trajectories: Trajectories | None = None
        self._student: FlatStudent | None = None
        self._syn_lr: Tensor | None = None
        self._lr_opt: torch.optim.Optimizer | None = None
        self._pending: Mapping[str, Any] | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def check(self, spec: condense.DataSpec, ipc: int) -> None:
        n = spec.num_classes * ipc
        if self.config.batch_syn > n:
            raise condense.ConfigError(
                f"batch_syn {self.config.batch_syn} is larger than the synthetic set ({n} "
                f"images); pass --set batch_syn={n} or less (0 = the whole set)")

    def initialize(self, data: condense.RealData, *, ipc: int, seed: int,
                   sampler: condense.EncoderSampler) -> Tensor | None:
        """Open and check the expert trajectories against this run; the images start as the
        loop's ``init`` (random real images by default)."""
        cfg = self.config
        trajectories = Trajectories(cfg.experts, cfg.num_experts)
        trajectories.check_run(data, cfg.model)
        trajectories.check_schedule(cfg.max_start_epoch, cfg.expert_epochs)
        self._trajectories = trajectories
        return None

    def _setup(self, ctx: condense.StepContext) -> None:
        if self._trajectories is None:
            raise RuntimeError("mtt: initialize(data, ...) must run before iteration (the loop "
                               "calls it); it opens the expert trajectories")
        if self._student is None:
            self._student = FlatStudent(build_net(self.config.model, ctx.spec,
                                                  device=ctx.device).train())
        if self._syn_lr is None:
            state = self._pending or {}
            value = state.get("syn_lr")
            init = value if value is not None else torch.tensor(self.config.lr_teacher)
            self._syn_lr = init.detach().to(ctx.device, torch.float32).clone().requires_grad_(True)
            self._lr_opt = torch.optim.SGD([self._syn_lr], lr=self.config.lr_lr,
                                           momentum=LR_MOMENTUM)
            if state.get("lr_optimizer") is not None:
                self._lr_opt.load_state_dict(state["lr_optimizer"])
            self._pending = None

    # -- one iteration ----------------------------------------------------------------------------

    def draw(self, ctx: condense.StepContext) -> tuple[int, int]:
        """This iteration's expert and start epoch (keyed by seed and iteration)."""
        assert self._trajectories is not None
        g = ctx.generator("expert")
        expert = int(torch.randint(len(self._trajectories), (1,), generator=g))
        start = int(torch.randint(self.config.max_start_epoch, (1,), generator=g))
        return expert, start

    def iteration(self, ctx: condense.StepContext) -> Tensor:
        self._setup(ctx)
        assert self._trajectories is not None and self._student is not None
        assert self._syn_lr is not None and self._lr_opt is not None
        cfg = self.config
        expert, start = self.draw(ctx)
        theta_start, theta_target = self._trajectories.load(
            expert, (start, start + cfg.expert_epochs), ctx.device, self._student.names)
        syn = ctx.syn
        n = syn.shape[0]
        labels = ctx.labels(range(ctx.spec.num_classes), ctx.ipc)
        batches = [b.to(ctx.device) for b in
                   syn_batches(n, cfg.batch_syn or n, cfg.syn_steps, ctx.generator("batch"))]
        theta_end = unroll(self._student, theta_start, syn, labels, self._syn_lr, batches,
                           lambda x, step: ctx.augment(x, "syn", step))
        loss = trajectory_loss(theta_end, theta_start, theta_target)
        # one host sync per iteration (negligible next to syn_steps unrolled steps): a diverged
        # run stops with the reason instead of writing NaN images
        if not bool(torch.isfinite(loss)):
            raise condense.ConfigError(
                f"mtt diverged at iteration {ctx.iteration + 1}: the trajectory loss is "
                f"{loss.item()} (syn_lr {self.syn_lr.item():.4g}); lower lr_img (images) or "
                f"lr_lr (syn_lr), or use fewer syn_steps")
        self._lr_opt.zero_grad(set_to_none=True)
        loss.backward()
        self._lr_opt.step()
        return loss.detach()

    # -- state ------------------------------------------------------------------------------------

    @property
    def syn_lr(self) -> Tensor:
        """The current learned learning rate (a detached scalar)."""
        if self._syn_lr is not None:
            return self._syn_lr.detach()
        if self._pending is not None and self._pending.get("syn_lr") is not None:
            return self._pending["syn_lr"].detach().float()
        return torch.tensor(self.config.lr_teacher)

    def state_dict(self) -> dict[str, Any]:
        if self._syn_lr is None:
            return dict(self._pending or {})
        assert self._lr_opt is not None
        return {"syn_lr": self._syn_lr.detach(), "lr_optimizer": self._lr_opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # tensors arrive on the CPU; they move to the run's device in the first iteration
        self._pending = dict(state)
        self._syn_lr = None
        self._lr_opt = None

    def artifact_tensors(self) -> dict[str, Tensor]:
        return {"syn_lr": self.syn_lr.reshape(())}


# Per-setting hyper-parameters (docs/methods.md, "MTT"): syn_steps, expert_epochs,
# max_start_epoch, lr_img, lr_lr, lr_teacher (initial syn_lr), batch_syn, zca.
MTT.presets = {
    "cifar10-ipc1": _preset(50, 2, 2, 100.0, 1e-7, 0.01, zca=True),
    "cifar10-ipc10": _preset(30, 2, 20, 100.0, 1e-5, 0.001, zca=True),
    "cifar10-ipc50": _preset(30, 2, 40, 1000.0, 1e-5, 0.001),
    "cifar100-ipc1": _preset(20, 3, 20, 1000.0, 1e-5, 0.01, zca=True),
    "cifar100-ipc10": _preset(20, 2, 20, 1000.0, 1e-5, 0.01),
    "cifar100-ipc50": _preset(80, 2, 40, 1000.0, 1e-5, 0.01, batch_syn=125, zca=True),
    "tinyimagenet-ipc1": _preset(10, 2, 10, 10000.0, 1e-4, 0.01),
    "tinyimagenet-ipc10": _preset(20, 2, 40, 10000.0, 1e-4, 0.01, batch_syn=200),
    "tinyimagenet-ipc50": _preset(20, 2, 40, 10000.0, 1e-4, 0.01, batch_syn=300),
    **{f"{subset}-ipc1": _preset(20, 2, 10, 1000.0, 1e-6, 0.01, model="convnet-d5")
       for subset in ("imagenette", "imagewoof", "imagefruit", "imagemeow", "imagesquawk",
                      "imageyellow")},
}

__all__ = ["MTT", "FlatStudent", "syn_batches", "trajectory_loss", "unroll"]
