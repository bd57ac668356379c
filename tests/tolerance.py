"""Float comparisons that hold on every CPU our machines have (see docs/testing.md).

float32 rounding grows with the magnitude of a quantity and with the number of terms summed
into it, and different CPUs (AVX-512 Xeon, AMD EPYC) pick different kernels and summation
orders. So a tolerance is a fraction of the quantity's scale, never a bare absolute number.
Bitwise equality (``torch.equal``) is only for the same computation on the same machine:
the same seed twice, or a resumed run against an uninterrupted one.
"""

from __future__ import annotations

import torch

#: float32 machine epsilon (2**-23 ≈ 1.2e-7)
EPS32 = torch.finfo(torch.float32).eps
#: default relative tolerance: ~80 ulps of the largest value, far below any real bug's effect
REL = 1e-5


def max_rel_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``max |actual - expected| / max |expected|`` (0 when both are all zero)."""
    assert actual.shape == expected.shape, (tuple(actual.shape), tuple(expected.shape))
    a, e = actual.detach().double(), expected.detach().double()
    diff = float((a - e).abs().max()) if e.numel() else 0.0
    scale = float(e.abs().max()) if e.numel() else 0.0
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 else float("inf")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rel: float = REL,
                 what: str = "values") -> None:
    """Every element within ``rel × max|expected|`` of ``expected`` (the quantity's scale)."""
    err = max_rel_diff(actual, expected)
    assert err <= rel, f"{what}: max |diff| is {err:.3g} × max|expected|, above {rel:g}"
