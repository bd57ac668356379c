"""The fast evaluation trainer: K fresh networks trained on one small set (docs/evaluators.md).

The protocol is the field's ``evaluate_synset``: SGD (lr, momentum 0.9, weight decay 5e-4), the
loop runs ``epochs + 1`` epochs (``ep = 0 .. E``), and after epoch ``E // 2 + 1`` the learning rate
is multiplied by 0.1 and a **new** optimiser is made (momentum buffers reset). Every mini-batch
is augmented with non-Siamese DSA (one op per batch, per-image parameters). Test: ``eval()`` mode
on the test split.

Each network ``k`` owns a ``torch.Generator``: its initialisation, its per-epoch shuffle and its
DSA parameters are all drawn from it, in the same order whichever engine trains it, so

* ``engine="stacked"`` trains the K networks at once: their parameters are stacked
  (``torch.func.stack_module_state``) and one ``vmap``-ed forward/backward runs all K (convolutions
  become grouped convolutions, BatchNorm keeps per-network running statistics). SGD is
  elementwise, so one optimiser over the stacked tensors is K independent optimisers. This is the
  fast path on a GPU, where a single small network cannot fill the device.
* ``engine="parallel"`` (CPU): one network per core, each with a single intra-op thread, in a
  pool of Python threads (torch releases the GIL inside its kernels). One small network cannot
  use two cores well: every op of a step would be split across threads and joined at an OpenMP
  barrier, and on a shared machine those barriers spin while the other core is busy elsewhere.
  Measured on the project's 2-core box: 4-7x less time per network than the same loop with two
  intra-op threads under load. ``torch.set_num_threads`` is process-wide, so it is lowered for
  the duration of training and restored afterwards.
* ``engine="sequential"`` trains them one after the other with plain modules (optionally through
  ``torch.compile``, which fuses the norm/activation/pool chains).

Both give the same networks up to float rounding (tested). No DataLoader, no per-step host sync:
indices and DSA parameters are drawn on the CPU and moved with the batch.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import condense
from condense import augment

Engine = Literal["auto", "stacked", "parallel", "sequential"]
CompileMode = Literal["on", "off"]


@dataclasses.dataclass(frozen=True)
class TrainProtocol:
    """What one evaluation network is trained with (the ``evaluate_synset`` protocol's knobs)."""

    epochs: int
    batch_size: int
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay: float = 0.1  # LR factor after epoch ``epochs // 2 + 1`` (new optimiser)
    dsa: str = "none"  # resolved DSA strategy ('none' = no augmentation)

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise condense.ConfigError(
                f"epochs must be ≥ 0, batch_size ≥ 1 and lr > 0; got {self.epochs}, "
                f"{self.batch_size}, {self.lr}")
        augment.parse_strategy(self.dsa)

    @property
    def decay_epoch(self) -> int:
        """The epoch index after which the LR drops (the official ``lr_schedule``)."""
        return self.epochs // 2 + 1

    def steps(self, n: int) -> int:
        """SGD steps per network on a set of ``n`` images (last partial batch kept)."""
        return (self.epochs + 1) * math.ceil(n / self.batch_size)


def init_models(build: Callable[[], nn.Module], generators: Sequence[torch.Generator],
                device: torch.device | str) -> list[nn.Module]:
    """One freshly initialised network per generator (PyTorch default init, drawn from it)."""
    models = []
    for g in generators:
        net = condense.networks.reinit_(build(), g)
        models.append(net.to(device).train())
    return models


@dataclasses.dataclass(frozen=True)
class SoftLoss:
    """How a network learns from soft targets (probabilities ``p_T``, already at temperature T).

    ``sce``: soft cross-entropy ``-sum p_T log softmax(z / T)``; ``kl``: ``T^2 KL(p_T ||
    softmax(z / T))`` (DD-Ranking's two criteria; arXiv 2505.13300). With fixed targets the two
    differ by the constant entropy of ``p_T`` and the ``T^2`` factor only, so at ``T = 1`` they
    train the same network up to float rounding. Hard (integer) targets always use plain
    cross-entropy.
    """

    criterion: Literal["sce", "kl"] = "sce"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.criterion not in ("sce", "kl"):
            raise condense.ConfigError(
                f"unknown soft-label criterion {self.criterion!r}; valid: sce, kl")
        if not self.temperature > 0:
            raise condense.ConfigError(f"temperature must be > 0, got {self.temperature}")


def _loss(logits: Tensor, target: Tensor, soft: SoftLoss = SoftLoss()) -> Tensor:  # noqa: B008
    """Mean loss over the last-but-one axis, summed over any leading (model) axis."""
    b = logits.shape[-2]
    if target.is_floating_point():  # soft labels: probabilities
        t = soft.temperature
        log_q = F.log_softmax(logits / t if t != 1.0 else logits, -1)
        if soft.criterion == "kl":
            kl = target * (target.clamp_min(1e-12).log() - log_q)
            return t * t * kl.sum() / b
        return -(target * log_q).sum() / b
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                           reduction="sum") / b


def _batch_plan(n: int, protocol: TrainProtocol, generator: torch.Generator) -> list[Tensor]:
    perm = torch.randperm(n, generator=generator)
    return list(perm.split(protocol.batch_size))


def _sgd(params: list[Tensor], protocol: TrainProtocol, lr: float) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, momentum=protocol.momentum,
                           weight_decay=protocol.weight_decay)


def resolve_engine(engine: Engine, device: torch.device, k: int,
                   ) -> Literal["stacked", "parallel", "sequential"]:
    """``auto``: stacked on accelerators (launch-bound), parallel on a multi-core CPU."""
    if engine != "auto":
        if engine == "parallel" and device.type != "cpu":
            raise condense.ConfigError("engine=parallel is for the CPU; use stacked on a GPU")
        return engine
    if device.type != "cpu":
        return "stacked" if k > 1 else "sequential"
    return "parallel" if k > 1 and torch.get_num_threads() > 1 else "sequential"


def train_models(
    models: Sequence[nn.Module],
    images: Tensor,
    targets: Tensor,
    protocol: TrainProtocol,
    generators: Sequence[torch.Generator],
    *,
    engine: Engine = "auto",
    compile: CompileMode = "off",
    chunk: int = 0,
    lr: float | None = None,
    on_epoch: Callable[[int], None] | None = None,
    soft: SoftLoss = SoftLoss(),  # noqa: B008 - frozen dataclass
) -> None:
    """Train ``models`` in place on ``images``/``targets`` (on the models' device).

    ``targets``: int64 class indices ``(N,)`` or float probabilities ``(N, classes)``.
    ``generators[k]`` drives model k's shuffles and DSA draws (continue the stream used for its
    initialisation). ``chunk`` caps how many models are stacked at once (0 = all). ``lr``
    overrides ``protocol.lr`` (e.g. a learned ``syn_lr``). ``on_epoch(k_done_epochs)`` is called
    with the running total of finished model-epochs. ``soft`` sets the criterion and
    temperature used with float (soft) targets.
    """
    if len(models) != len(generators):
        raise ValueError(f"{len(models)} models but {len(generators)} generators")
    if not models:
        return
    device = next(models[0].parameters()).device
    n = images.shape[0]
    if n == 0:
        raise condense.ConfigError("cannot train on an empty set")
    kind = resolve_engine(engine, device, len(models))
    use_compile = compile == "on"
    base_lr = protocol.lr if lr is None else lr
    done = [0]
    lock = threading.Lock()

    def tick(count: int) -> None:
        with lock:
            done[0] += count
            if on_epoch is not None:
                on_epoch(done[0])

    if kind == "parallel" and not use_compile:
        _train_parallel(models, images, targets, protocol, generators, base_lr, tick, soft)
    elif kind == "stacked":
        size = chunk if chunk > 0 else len(models)
        for s in range(0, len(models), size):
            _train_stacked(models[s : s + size], images, targets, protocol,
                           generators[s : s + size], base_lr, use_compile, tick, soft)
    else:
        _train_sequential(models, images, targets, protocol, generators, base_lr, use_compile, tick,
                          soft)


def run_on_cores(jobs: Sequence[Callable[[], None]]) -> None:
    """Run ``jobs`` on a pool of ``min(len(jobs), torch threads)`` Python threads, each with one
    intra-op thread (the process-wide setting is restored afterwards); re-raise the first error."""
    threads = torch.get_num_threads()
    workers = min(len(jobs), threads)
    if workers <= 1:
        for job in jobs:
            job()
        return
    queue = list(jobs)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                job = queue.pop(0)
            try:
                job()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                with lock:
                    errors.append(exc)
                return

    torch.set_num_threads(1)
    try:
        pool = [threading.Thread(target=work, name=f"condense-eval-{i}") for i in range(workers)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        torch.set_num_threads(threads)
    if errors:
        raise errors[0]


def _train_parallel(models: Sequence[nn.Module], images: Tensor, targets: Tensor,
                    protocol: TrainProtocol, generators: Sequence[torch.Generator], base_lr: float,
                    tick: Callable[[int], None], soft: SoftLoss) -> None:
    def job(net: nn.Module, g: torch.Generator) -> Callable[[], None]:
        return lambda: _train_sequential([net], images, targets, protocol, [g], base_lr, False,
                                         tick, soft)

    run_on_cores([job(net, g) for net, g in zip(models, generators, strict=True)])


def channels_last_pays(net: nn.Module, device: torch.device) -> bool:
    """BatchNorm convnets train ~1.5x faster in channels_last on one CPU thread (oneDNN, measured
    on the 2-core box: 0.37 vs 0.55-0.63 CPU-s per epoch for ConvNet-BN, batch 64, as the
    parallel engine runs them); with two intra-op threads it measured slower, and GroupNorm (the
    field's instancenorm) and LayerNorm get slower, so those stay NCHW."""
    if device.type != "cpu" or torch.get_num_threads() != 1:
        return False
    mods = list(net.modules())
    return (any(isinstance(m, nn.BatchNorm2d) for m in mods)
            and not any(isinstance(m, (nn.GroupNorm, nn.LayerNorm)) for m in mods))


def _train_sequential(models: Sequence[nn.Module], images: Tensor, targets: Tensor,
                      protocol: TrainProtocol, generators: Sequence[torch.Generator],
                      base_lr: float, use_compile: bool, tick: Callable[[int], None],
                      soft: SoftLoss = SoftLoss()) -> None:  # noqa: B008
    size = tuple(images.shape[-2:])
    nhwc = images.dim() == 4 and channels_last_pays(models[0], images.device)
    if use_compile:
        # One working module compiled once; each model's state is loaded into it and copied back,
        # so the compiled graph is reused for all K networks (no recompilation per instance).
        work = copy.deepcopy(models[0]).train()
        forward: Callable[[Tensor], Tensor] = torch.compile(work, dynamic=False)
    for net, g in zip(models, generators, strict=True):
        if use_compile:
            work.load_state_dict(net.state_dict())
            target_net = work
        else:
            forward = net
            target_net = net
        if nhwc:
            target_net.to(memory_format=torch.channels_last)
        params = [p for p in target_net.parameters() if p.requires_grad]
        opt = _sgd(params, protocol, base_lr)
        for ep in range(protocol.epochs + 1):
            for idx in _batch_plan(images.shape[0], protocol, g):
                x = images[idx.to(images.device)]
                if protocol.dsa != "none":
                    p = augment.sample_params(len(idx), protocol.dsa, size, g)
                    x = augment.apply(x, p)
                if nhwc:
                    x = x.contiguous(memory_format=torch.channels_last)
                loss = _loss(forward(x), targets[idx.to(targets.device)], soft)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if ep == protocol.decay_epoch:
                opt = _sgd(params, protocol, base_lr * protocol.decay)
            tick(1)
        if nhwc:
            target_net.to(memory_format=torch.contiguous_format)
        if use_compile:
            net.load_state_dict(work.state_dict())


def _train_stacked(models: Sequence[nn.Module], images: Tensor, targets: Tensor,
                   protocol: TrainProtocol, generators: Sequence[torch.Generator], base_lr: float,
                   use_compile: bool, tick: Callable[[int], None],
                   soft: SoftLoss = SoftLoss()) -> None:  # noqa: B008
    from torch.func import functional_call, stack_module_state, vmap

    k = len(models)
    size = tuple(images.shape[-2:])
    params, buffers = stack_module_state(list(models))  # leaves (K, ...) requiring grad
    base = copy.deepcopy(models[0]).to("meta").train()

    def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,))

    forward = vmap(one, randomness="error")
    if use_compile:
        forward = torch.compile(forward, dynamic=False)
    leaves = list(params.values())
    opt = _sgd(leaves, protocol, base_lr)
    n = images.shape[0]
    for ep in range(protocol.epochs + 1):
        plans = [_batch_plan(n, protocol, g) for g in generators]
        for step in range(len(plans[0])):
            idx = torch.stack([plan[step] for plan in plans])  # (K, B)
            flat = idx.reshape(-1).to(images.device)
            x = images[flat]
            if protocol.dsa != "none":
                p = augment.DSAParams.cat([
                    augment.sample_params(idx.shape[1], protocol.dsa, size, g)
                    for g in generators])
                x = augment.apply(x, p)
            x = x.reshape(k, idx.shape[1], *x.shape[1:])
            y = targets[flat.to(targets.device)].reshape(k, idx.shape[1], *targets.shape[1:])
            loss = _loss(forward(params, buffers, x), y, soft)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if ep == protocol.decay_epoch:
            opt = _sgd(leaves, protocol, base_lr * protocol.decay)
        tick(k)
    with torch.no_grad():
        for i, net in enumerate(models):
            for name, t in net.named_parameters():
                t.copy_(params[name][i])
            for name, t in net.named_buffers():
                if name in buffers:
                    t.copy_(buffers[name][i])


def evaluate_models(models: Sequence[nn.Module], images: Tensor, labels: Tensor,
                    transform: Callable[[Tensor], Tensor], *, batch_size: int = 256,
                    classes: Tensor | None = None) -> list[float]:
    """Top-1 accuracy (fraction) of each model on ``images`` (uint8, on any device).

    ``transform`` maps a uint8 batch to the models' input space (normalise, ZCA). ``classes``
    restricts the argmax to those output units (``None``: all outputs, the official rule).
    ``eval()`` mode (BatchNorm running statistics); one host sync per model at the end. On a CPU
    the models are tested one per core, as they are trained.
    """
    if not models:
        return []
    device = next(models[0].parameters()).device
    correct = [0] * len(models)

    @torch.no_grad()
    def score(j: int) -> None:
        m = models[j]
        was_training = m.training
        m.eval()
        hits = torch.zeros((), dtype=torch.long, device=device)
        keep = None if classes is None else classes.to(device)
        for i in range(0, images.shape[0], batch_size):
            x = transform(images[i : i + batch_size].to(device))
            y = labels[i : i + batch_size].to(device)
            logits = m(x)
            pred = logits.argmax(1) if keep is None else keep[logits[:, keep].argmax(1)]
            hits += (pred == y).sum()
        m.train(was_training)
        correct[j] = int(hits)

    jobs = [lambda j=j: score(j) for j in range(len(models))]
    if device.type == "cpu":
        run_on_cores(jobs)
    else:
        for job in jobs:
            job()
    total = max(int(images.shape[0]), 1)
    return [c / total for c in correct]


__all__ = ["SoftLoss", "TrainProtocol", "evaluate_models", "init_models", "resolve_engine",
           "run_on_cores", "train_models"]
