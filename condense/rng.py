"""Keyed random streams: every draw is a pure function of (seed, keys...).

The distillation loop keys each draw by ``(seed, iteration, class, stream)``, so neither the class
chunk size, a resume, nor sharding classes over processes can change what is drawn.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed derived from ``seed`` and ``keys`` (stable across runs and platforms)."""
    text = ":".join([str(int(seed)), *(str(k) for k in keys)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def keyed_generator(seed: int, *keys: int | str) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` for the stream ``(seed, *keys)``.

    Draws are made on the CPU and moved to the device, so results do not depend on the device.
    """
    return torch.Generator(device="cpu").manual_seed(derive_seed(seed, *keys))
