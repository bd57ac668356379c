"""Gradient matching: DC (Zhao, Mopuri & Bilen, ICLR 2021) and DSA (Zhao & Bilen, ICML 2021).

One condense iteration is one iteration of the official ``main.py`` (VICO-UoE/DatasetCondensation):
a freshly initialised network (``ctx.trainable_encoder()``), then ``outer_loop`` times

1. (BatchNorm networks only) ``bn_images`` real images per class through the network in train
   mode, then every BatchNorm layer frozen to eval mode (running statistics);
2. for every class ``c``: the gradients, w.r.t. the network's parameters, of the cross-entropy of
   the network's classifier on ``batch_real`` real images of ``c`` and on the ``ipc`` synthetic
   images of ``c`` (with DSA: one parameter set per class shared by both batches); the loss is
   the layer-wise gradient distance (``dis_metric``) summed over classes; one SGD step on the
   images (``ctx.step_images()``);
3. unless it was the last outer step, ``inner_loop`` epochs of SGD on the network over the whole
   current synthetic set (mini-batches of ``batch_train``; with DSA, per-image augmentation).

So ``--iterations N`` draws N networks and makes ``N · outer_loop`` image updates. ``dc`` runs
without augmentation from noise, ``dsa`` with the dataset's DSA strategy from real images (the
README's command). Written against condense's public API only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

import condense

__version__ = "0.1.0"

#: The official ``get_loops(ipc)`` (utils.py): IPC -> (outer_loop, inner_loop).
OFFICIAL_LOOPS: Mapping[int, tuple[int, int]] = {
    1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10),
}

#: ``+ 0.000001`` in the denominators of the official cosine distances
EPS = 1e-6

Metric = Literal["ours", "mse", "cos"]


def get_loops(ipc: int) -> tuple[int, int]:
    """``(outer_loop, inner_loop)`` of the official table; ConfigError for another IPC."""
    if ipc not in OFFICIAL_LOOPS:
        raise condense.ConfigError(
            f"gradient matching: the official get_loops table defines outer_loop/inner_loop only "
            f"for IPC {', '.join(map(str, OFFICIAL_LOOPS))}, not {ipc}; set both, e.g. "
            f"--set outer_loop=10 --set inner_loop=50"
        )
    return OFFICIAL_LOOPS[ipc]


# -- the gradient distance ------------------------------------------------------------------------


def layer_distance(g_syn: Tensor, g_real: Tensor, *, batch_dims: int = 0) -> Tensor:
    """``dis_metric='ours'`` for one parameter tensor: Σ over output channels of 1 − cosine.

    The gradient is viewed as ``(out, -1)`` (conv ``out×in·h·w``, LayerNorm ``C×h·w``, linear
    ``out×in`` as is); a 1-D (bias, norm) or 0-D parameter contributes 0. The first
    ``batch_dims`` axes are batch axes (e.g. one row per class); the result has their shape.
    """
    lead = g_real.shape[:batch_dims]
    shape = g_real.shape[batch_dims:]
    if len(shape) <= 1:
        return g_real.new_zeros(lead)
    gr = g_real.reshape(*lead, shape[0], -1)
    gs = g_syn.reshape(*lead, shape[0], -1)
    norms = torch.linalg.vector_norm(gr, dim=-1) * torch.linalg.vector_norm(gs, dim=-1)
    return (1 - (gr * gs).sum(-1) / (norms + EPS)).sum(-1)


def gradient_distance(gw_syn: Sequence[Tensor], gw_real: Sequence[Tensor], metric: Metric = "ours",
                      *, batch_dims: int = 0) -> Tensor:
    """The official ``match_loss``: the distance between two lists of parameter gradients.

    ``ours``: Σ over parameters of :func:`layer_distance`; ``mse``: squared Euclidean distance of
    all gradients flattened and concatenated; ``cos``: 1 − cosine of those vectors. With
    ``batch_dims`` leading batch axes, one distance per batch entry.
    """
    if len(gw_syn) != len(gw_real):
        raise ValueError(f"{len(gw_syn)} synthetic gradients for {len(gw_real)} real ones")
    lead = gw_real[0].shape[:batch_dims]
    if metric == "ours":
        total = gw_real[0].new_zeros(lead)
        for gs, gr in zip(gw_syn, gw_real, strict=True):
            if gr.dim() - batch_dims > 1:
                total = total + layer_distance(gs, gr, batch_dims=batch_dims)
        return total
    vr = torch.cat([g.reshape(*lead, -1) for g in gw_real], dim=-1)
    vs = torch.cat([g.reshape(*lead, -1) for g in gw_syn], dim=-1)
    if metric == "mse":
        return ((vs - vr) ** 2).sum(-1)
    if metric == "cos":
        norms = torch.linalg.vector_norm(vr, dim=-1) * torch.linalg.vector_norm(vs, dim=-1)
        return 1 - (vr * vs).sum(-1) / (norms + EPS)
    raise condense.ConfigError(f"unknown dis_metric {metric!r}; valid: ours, mse, cos")


# -- the method -----------------------------------------------------------------------------------


def _logits(feats: condense.Features) -> Tensor:
    if feats.logits is None:
        raise condense.ConfigError(
            "gradient matching differentiates the network's classifier: the sampler's encoder "
            "returned no logits (Features.logits); use an encoder with a classifier head")
    return feats.logits


def _is_batchnorm(module: nn.Module) -> bool:
    # the official test (``'BatchNorm' in module._get_name()``): BatchNorm1d/2d/3d, SyncBatchNorm
    return "BatchNorm" in type(module).__name__


class DC(condense.Method):
    """Gradient matching with per-iteration networks trained on the synthetic set (ICLR 2021)."""

    name = "dc"
    # Loop settings of the official argparse (main.py): Iteration 1000, lr_img 0.1 with SGD
    # momentum 0.5, batch_real 256, init noise; DC learns without augmentation.
    loop_defaults = {"iterations": 1000, "lr_img": 0.1, "momentum": 0.5, "batch_real": 256,
                     "init": "noise", "dsa_strategy": "none"}
    # get_network('ConvNet'): width 128, depth 3, ReLU, average pooling, instancenorm
    sampler_defaults = {"norm": "instancenorm"}
    # the method trains its own network per iteration (ctx.trainable_encoder())
    needs_encoder = False
    class_shardable = False  # each network is trained on the whole set between image updates

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        outer_loop: int | None = None  # image updates per network (None: get_loops(ipc))
        inner_loop: int | None = None  # network epochs after each update but the last (likewise)
        lr_net: float = 0.01  # SGD learning rate of the network (official lr_net)
        momentum_net: float = 0.0  # SGD momentum of the network (main.py: plain SGD)
        batch_train: int = 256  # synthetic images per network training step (batch_train)
        dis_metric: Literal["ours", "mse", "cos"] = "ours"  # gradient distance
        bn_images: int = 16  # real images per class that set BatchNorm statistics (BNSizePC)
        # per-class gradients: reference = the official per-class loop; batched = torch.func
        # vmap over classes (each class its own batch: the same loss, equal up to rounding);
        # auto = reference (the faster one on the CPU, benchmarks/dc.py)
        engine: Literal["auto", "batched", "reference"] = condense.setting("auto", resumable=True)

        def __post_init__(self) -> None:
            if self.outer_loop is not None and self.outer_loop < 1:
                raise ValueError(f"outer_loop must be >= 1, got {self.outer_loop}")
            if self.inner_loop is not None and self.inner_loop < 0:
                raise ValueError(f"inner_loop must be >= 0, got {self.inner_loop}")
            if self.batch_train < 1:
                raise ValueError(f"batch_train must be >= 1, got {self.batch_train}")
            if self.bn_images < 1:
                raise ValueError(f"bn_images must be >= 1, got {self.bn_images}")
            if self.lr_net < 0 or self.momentum_net < 0:
                raise ValueError("lr_net and momentum_net must be >= 0")

    # -- setup ----------------------------------------------------------------------------------

    def auto_overrides(self, spec: condense.DataSpec, ipc: int) -> dict[str, Any]:
        # the official get_loops(ipc), recorded in the artifact; other IPCs need both settings
        if ipc in OFFICIAL_LOOPS:
            outer, inner = OFFICIAL_LOOPS[ipc]
            return {"outer_loop": outer, "inner_loop": inner}
        return {}

    def check(self, spec: condense.DataSpec, ipc: int) -> None:
        self.loops(ipc)  # an IPC outside the official table fails when the plan is resolved

    def loops(self, ipc: int) -> tuple[int, int]:
        """``(outer_loop, inner_loop)``: the settings, else the official table for ``ipc``."""
        c = self.config
        if c.outer_loop is not None and c.inner_loop is not None:
            return c.outer_loop, c.inner_loop
        outer, inner = get_loops(ipc)
        return (outer if c.outer_loop is None else c.outer_loop,
                inner if c.inner_loop is None else c.inner_loop)

    def initialize(self, data: condense.RealData, *, ipc: int, seed: int,
                   sampler: condense.EncoderSampler) -> Tensor | None:
        return None  # the loop's init (noise for dc, real for dsa)

    # -- one iteration = one network ------------------------------------------------------------

    def iteration(self, ctx: condense.StepContext) -> Tensor:
        cfg = self.config
        num_classes = ctx.spec.num_classes
        outer, inner = self.loops(ctx.ipc)
        net = ctx.trainable_encoder()
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr_net, momentum=cfg.momentum_net)
        has_bn = any(_is_batchnorm(m) for m in net.modules())
        engine = "reference" if cfg.engine == "auto" else cfg.engine
        n_real = ctx.batch_real()
        total = torch.zeros((), device=ctx.device)
        for ol in range(outer):
            if has_bn:
                self._freeze_batchnorm(ctx, net, ol)
            for chunk in ctx.chunks():
                # a new real batch and new Siamese DSA draws (one per class, shared by its real
                # and synthetic images) every outer step: keyed by the outer step
                real = ctx.real_images(chunk, n_real, ol)
                real, syn = ctx.augment_pair(real, ctx.syn_images(chunk), chunk, ol)
                if engine == "batched":
                    loss = self._match_batched(ctx, net, real, syn, chunk)
                else:
                    loss = self._match_reference(ctx, net, real, syn, chunk)
                loss.backward(inputs=[ctx.syn])
                total += loss.detach()
            ctx.step_images()
            if ol == outer - 1:
                break
            self._train_network(ctx, net, opt, inner, ol)
        return total / (num_classes * outer)  # the official loss_avg

    # -- pieces ---------------------------------------------------------------------------------

    def _freeze_batchnorm(self, ctx: condense.StepContext, net: nn.Module, ol: int) -> None:
        """The official BatchNorm branch: ``bn_images`` real images per class (all classes in one
        pass, train mode) update the running statistics, then every BatchNorm layer is frozen."""
        real = ctx.real_images(range(ctx.spec.num_classes), self.config.bn_images, "bn", ol)
        net.train()
        with torch.no_grad():
            ctx.encode(real, net)  # type: ignore[arg-type]
        for m in net.modules():
            if _is_batchnorm(m):
                m.eval()

    def _matched(self, net: nn.Module) -> list[tuple[str, nn.Parameter]]:
        """The parameters whose gradients are matched: all of them, except that with
        ``dis_metric='ours'`` the 1-D ones (biases, norms), which contribute exactly 0, are not
        differentiated at all (exact; 13% less time per iteration at IPC 1 on the CPU)."""
        named = list(net.named_parameters())
        if self.config.dis_metric == "ours":
            named = [(name, p) for name, p in named if p.dim() > 1]
        return named

    def _match_reference(self, ctx: condense.StepContext, net: nn.Module, real: Tensor,
                         syn: Tensor, chunk: Sequence[int]) -> Tensor:
        """The official per-class loop: ``autograd.grad`` of each class's loss, real then
        synthetic (with ``create_graph``), distances summed over classes."""
        k = len(chunk)
        n, m = real.shape[0] // k, syn.shape[0] // k
        params = [p for _, p in self._matched(net)]
        loss = torch.zeros((), device=ctx.device)
        for i, c in enumerate(chunk):
            out_real = _logits(ctx.encode(real[i * n:(i + 1) * n], net))  # type: ignore[arg-type]
            loss_real = F.cross_entropy(out_real, ctx.labels([c], n))
            gw_real = [g.detach() for g in torch.autograd.grad(loss_real, params)]
            out_syn = _logits(ctx.encode(syn[i * m:(i + 1) * m], net))  # type: ignore[arg-type]
            loss_syn = F.cross_entropy(out_syn, ctx.labels([c], m))
            gw_syn = torch.autograd.grad(loss_syn, params, create_graph=True)
            loss = loss + gradient_distance(gw_syn, gw_real, self.config.dis_metric)
        return loss

    def _match_batched(self, ctx: condense.StepContext, net: nn.Module, real: Tensor,
                       syn: Tensor, chunk: Sequence[int]) -> Tensor:
        """The same loss with every class's gradients computed at once: ``vmap`` over classes of
        ``torch.func.grad`` of the class's cross-entropy (each class is its own batch, exactly as
        the official loop; the convolutions run once over all classes' images)."""
        k = len(chunk)
        n, m = real.shape[0] // k, syn.shape[0] // k
        matched = self._matched(net)
        names = [name for name, _ in matched]
        params = {name: p.detach() for name, p in matched}
        buffers = {name: p.detach() for name, p in net.named_parameters() if name not in params}
        buffers.update(net.named_buffers())

        def class_loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            # the network itself, not ctx.encode: its channels_last conversion is not
            # supported inside vmap (the network's weights already have the run's layout)
            feats = functional_call(net, (p, buffers), (x,))
            return F.cross_entropy(_logits(feats), y)

        per_class = vmap(grad(class_loss), in_dims=(None, 0, 0))
        with torch.no_grad():  # the real gradients are constants of the loss
            gw_real = per_class(params, real.reshape(k, n, *real.shape[1:]),
                                ctx.labels(chunk, n).reshape(k, n))
        gw_syn = per_class(params, syn.reshape(k, m, *syn.shape[1:]),
                           ctx.labels(chunk, m).reshape(k, m))
        dist = gradient_distance([gw_syn[key] for key in names], [gw_real[key] for key in names],
                                 self.config.dis_metric, batch_dims=1)
        return dist.sum()

    def _train_network(self, ctx: condense.StepContext, net: nn.Module,
                       opt: torch.optim.Optimizer, epochs: int, ol: int) -> None:
        """The official ``epoch('train', ...)`` ``inner_loop`` times on the current synthetic set
        (reshuffled every epoch, last partial batch kept; per-image DSA when augmenting)."""
        x_all = ctx.syn.detach()
        y_all = ctx.labels(range(ctx.spec.num_classes), ctx.ipc)
        net.train()
        for il in range(epochs):
            order = torch.randperm(x_all.shape[0], generator=ctx.generator("shuffle", ol, il))
            order = order.to(ctx.device, non_blocking=True)
            for b, idx in enumerate(order.split(self.config.batch_train)):
                x = ctx.augment(x_all.index_select(0, idx), "train", ol, il, b)
                logits = _logits(ctx.encode(x, net))  # type: ignore[arg-type]
                loss = F.cross_entropy(logits, y_all.index_select(0, idx))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()


class DSA(DC):
    """DC with Differentiable Siamese Augmentation (ICML 2021)."""

    name = "dsa"
    # README: `--init real --method DSA --dsa_strategy color_crop_cutout_flip_scale_rotate`
    # (no flip for MNIST/SVHN: the dataset's default strategy, dsa_strategy=auto)
    loop_defaults = {**DC.loop_defaults, "init": "real", "dsa_strategy": "auto"}
    presets = {
        # README cross-architecture experiments: DSA through a BatchNorm ConvNet (ConvNetBN)
        "dsa-bn": {"sampler.norm": "batchnorm"},
    }


@condense.hookimpl
def register_methods(register: Any) -> None:
    register(DC)
    register(DSA)


__all__ = ["DC", "DSA", "EPS", "OFFICIAL_LOOPS", "get_loops", "gradient_distance",
           "layer_distance"]
