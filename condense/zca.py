"""ZCA whitening in plain torch (the kornia transform the field uses, without kornia).

Fit on the whole normalised training set: mean μ, unbiased covariance Σ = XᵀX/(N−1),
eigendecomposition Σ = U S Uᵀ, T = U (S+eps)^(−1/2) Uᵀ; whiten x ↦ (x−μ)T, inverse
x ↦ x U (S+eps)^(1/2) Uᵀ + μ. eps defaults to 0.1 as in DataDAM and MTT.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class ZCA:
    mean: Tensor  # (D,)
    transform: Tensor  # (D, D), symmetric
    eps: float = 0.1

    @staticmethod
    def fit(x: Tensor, eps: float = 0.1) -> ZCA:
        """Fit on ``x`` ``(N, C, H, W)`` or ``(N, D)`` (float64 internally for stability)."""
        flat = x.reshape(x.shape[0], -1).double()
        mean = flat.mean(0)
        centred = flat - mean
        cov = centred.T @ centred / (flat.shape[0] - 1)  # (D, D)
        s, u = torch.linalg.eigh(cov)
        s = s.clamp_min(0)
        transform = (u * (s + eps).rsqrt()) @ u.T
        return ZCA(mean.float(), transform.float(), eps)

    def __call__(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)  # (N, C, H, W) -> (N, D)
        out = (flat - self.mean.to(flat)) @ self.transform.to(flat)
        return out.reshape(x.shape)

    def inverse(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1).double()
        t = self.transform.double()
        out = torch.linalg.solve(t, flat.T).T + self.mean.double()  # T is symmetric
        return out.to(x.dtype).reshape(x.shape)
