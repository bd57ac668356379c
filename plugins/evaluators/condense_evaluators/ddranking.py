"""DD-Ranking's label-robust scores (Li et al., "DD-Ranking: Rethinking the Evaluation of Dataset
Distillation", arXiv 2505.13300; NUS-HPC-AI-Lab/DD-Ranking ``ddranking/metrics``).

* hard-label recovery  ``HLR = acc(real, hard) - acc(set, hard)`` (lower is better);
* improvement over random ``IOR = acc(set, any) - acc(random, same labels and augmentation)``;
* ``alpha = w IOR - (1 - w) HLR`` and the label-robust score
  ``LRS = (e^alpha - e^-1) / (e - e^-1)``, in [0, 1] for accuracies given as fractions
  (reported here x 100).

Each is computed per evaluation run (the set's run i is paired with the random baseline's run i,
trained from the same initialisation) and then averaged, as DD-Ranking's ``compute_metrics`` does.
Inputs and outputs in percent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .stats import mean_std


def hard_label_recovery(real: float, set_hard: float) -> float:
    """``HLR`` in percentage points: the real data's accuracy the set fails to recover."""
    return real - set_hard


def improvement_over_random(set_any: float, random_any: float) -> float:
    """``IOR`` in percentage points: the set's accuracy over a random real subset's (same labels,
    same augmentation, same networks)."""
    return set_any - random_any


def label_robust_score(hlr: float, ior: float, weight: float = 0.5) -> float:
    """``LRS`` in percent from HLR and IOR in percentage points (converted to fractions first, so
    that ``alpha`` lies in [-1, 1] and the score in [0, 100])."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    alpha = weight * ior / 100.0 - (1.0 - weight) * hlr / 100.0
    return 100.0 * (math.exp(alpha) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


def paired_scores(real: float, set_hard: Sequence[float], set_any: Sequence[float],
                  random_any: Sequence[float], weight: float = 0.5) -> dict[str, float]:
    """Per-run HLR, IOR and LRS, averaged: ``{"hlr", "hlr_std", "ior", "ior_std", "lrs",
    "lrs_std"}`` (population std over runs, as the scripts print)."""
    n = len(set_hard)
    if not n or len(set_any) != n or len(random_any) != n:
        raise ValueError(f"need the same number of runs, got {len(set_hard)}, {len(set_any)} "
                         f"and {len(random_any)}")
    hlr = [hard_label_recovery(real, h) for h in set_hard]
    ior = [improvement_over_random(s, r) for s, r in zip(set_any, random_any, strict=True)]
    lrs = [label_robust_score(h, i, weight) for h, i in zip(hlr, ior, strict=True)]
    out: dict[str, float] = {}
    for name, values in (("hlr", hlr), ("ior", ior), ("lrs", lrs)):
        out[name], out[f"{name}_std"] = mean_std(values)
    return out


__all__ = ["hard_label_recovery", "improvement_over_random", "label_robust_score",
           "paired_scores"]
