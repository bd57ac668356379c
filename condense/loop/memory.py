"""``class_chunk`` 0 = auto: how many classes go through one forward pass (docs/distributed.md).

All classes in one pass unless their activations would not fit in memory; then the largest
chunk that does. The estimate comes from the encoder's output sizes on two blank images.
"""

from __future__ import annotations

import os

import torch

from ..realdata import RealData
from ..rng import keyed_generator
from .plan import Plan

#: fraction of the free device memory (CUDA) or available RAM (CPU) the activations may use
AUTO_CHUNK_FRACTION = 0.7
#: bytes of activation memory per float of one image's encoder features (all block outputs and
#: the embedding): the real pass keeps the fp32 block outputs (no grad); the synthetic pass also
#: keeps what backward needs (norm inputs and outputs, the loss's intermediates) and gradients.
#: Checked against benchmarks/distill.py --what memory (TinyImageNet IPC50, ConvNet-4 BN,
#: DataDAM, CPU): ~450 MB measured per class, 597 MB estimated.
REAL_BYTES_PER_FEATURE = 4.0
SYN_BYTES_PER_FEATURE = 12.0


def auto_class_chunk(n_classes: int, class_bytes: float, free_bytes: float,
                     fraction: float = AUTO_CHUNK_FRACTION) -> int:
    """The auto rule: 0 (all ``n_classes`` in one pass) if they fit in ``fraction·free_bytes``,
    else the largest chunk that fits (at least 1). Unknown sizes (≤ 0) mean all classes."""
    if n_classes <= 1 or class_bytes <= 0 or free_bytes <= 0:
        return 0
    budget = fraction * free_bytes
    if n_classes * class_bytes <= budget:
        return 0
    return max(1, int(budget // class_bytes))


def estimate_class_bytes(plan: Plan, data: RealData, device: torch.device | str) -> int:
    """Activation bytes one class adds to a forward/backward pass of ``plan``'s encoder.

    Measured from the encoder's output sizes on two blank images (no data, no gradients):
    ``features_per_image · (4·batch_real + 12·ipc)`` bytes.
    """
    spec = data.spec
    encoder = plan.sampler.sample(spec, generator=keyed_generator(plan.seed, "probe"),
                                  device=device)
    with torch.no_grad():
        feats = encoder(torch.zeros(2, spec.channels, *spec.image_size, device=device))
    per_image = (feats.embedding.numel() + sum(m.numel() for m in feats.maps)) / 2
    batch_real = min(plan.loop.batch_real, min(len(ix) for ix in data.class_index()))
    return int(per_image * (REAL_BYTES_PER_FEATURE * batch_real + SYN_BYTES_PER_FEATURE * plan.ipc))


def available_bytes(device: torch.device | str) -> int:
    """Memory this process may fill: free CUDA memory (plus what torch's cache holds unused),
    or on the CPU ``MemAvailable`` shared by the ``LOCAL_WORLD_SIZE`` processes of this machine;
    0 when unknown."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev))
    if dev.type != "cpu":
        return 0
    try:
        with open("/proc/meminfo") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 0
    return kib * 1024 // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or "1"))


def resolve_class_chunk(plan: Plan, data: RealData, device: torch.device | str,
                        n_classes: int) -> int:
    """The class chunk to run ``n_classes`` with: ``loop.class_chunk`` when set, else the auto
    rule (:func:`auto_class_chunk`); 0 means all classes in one pass."""
    chunk = plan.loop.class_chunk
    if chunk or n_classes <= 1 or not plan.method.needs_encoder:
        return chunk
    return auto_class_chunk(n_classes, estimate_class_bytes(plan, data, device),
                            available_bytes(device))
