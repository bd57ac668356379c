"""``nas``: does training on the distilled set rank architectures as real data does?

The protocol of the DC (Zhao et al., ICLR 2021), DM and DataDAM papers; see docs/evaluators.md.

Every candidate of a ConvNet search space (depth × width × norm × activation × pooling) is trained
from scratch twice: briefly on the distilled set (the **proxy**) and on real training data (the
**reference**: a class-balanced random subset, or the whole set, with its own budget). Both are
tested on the real test split. Reported:

* Spearman's ρ between proxy and reference accuracies, over the whole space and over the top
  fraction of the space by reference accuracy (DataDAM Table 6 uses the top 20 %);
* the reference accuracy of the proxy's best architecture against the true (reference) best;
* the training time of proxy and reference, and the time saved.

The default space is small (18 candidates, CPU minutes on Fashion-MNIST); ``--preset paper`` is
the 720-candidate space of the DC paper with DM's budgets (200 epochs on the proxy, 100 on the
whole training set).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

import condense

from .accuracy import real_test_split, train_and_score
from .protocol import data_spec, resolve_dsa, synset_transform, training_targets
from .stats import spearman
from .training import TrainProtocol, run_on_cores


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One ConvNet of the space."""

    depth: int
    width: int
    norm: str
    act: str
    pool: str

    @property
    def name(self) -> str:
        return f"d{self.depth}-w{self.width}-{self.norm}-{self.act}-{self.pool}"

    def builder(self, spec: condense.DataSpec) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            return condense.networks.ConvNet(spec.channels, spec.num_classes, spec.image_size,
                                             width=self.width, depth=self.depth, norm=self.norm,
                                             act=self.act, pool=self.pool)

        return build


class NAS(condense.Evaluator):
    """Spearman ρ of proxy (distilled-set) vs reference (real-data) accuracy over a ConvNet space.
    """

    name = "nas"

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        depths: tuple[int, ...] = (1, 2, 3)
        widths: tuple[int, ...] = (32, 64)
        norms: tuple[str, ...] = ("none", "instancenorm", "batchnorm")
        acts: tuple[str, ...] = ("relu",)
        pools: tuple[str, ...] = ("avgpool",)
        proxy_epochs: int = 100  # epochs on the distilled set
        proxy_batch: int = 256
        reference_images: int = 2000  # class-balanced real subset; 0 = the whole training set
        reference_epochs: int = 10
        reference_batch: int = 256
        reference_dsa: str = "none"  # DSA on the real reference ('auto' = the dataset's)
        dsa: str = "auto"  # DSA on the proxy
        lr: float = 0.01
        momentum: float = 0.9
        weight_decay: float = 0.0005
        num_eval: int = 1  # networks per candidate and side (accuracies averaged)
        top_fraction: float = 0.2  # also report ρ over this top fraction (by reference)
        test_limit: int = 2000  # first N test images (0 = the full split)
        engine: Literal["auto", "stacked", "parallel", "sequential"] = "auto"
        compile: Literal["on", "off"] = "off"

        def __post_init__(self) -> None:
            nets = condense.networks
            for values, valid, what in ((self.norms, nets.NORMS, "norm"),
                                        (self.acts, nets.ACTS, "act"),
                                        (self.pools, nets.POOLS, "pool")):
                bad = [v for v in values if v not in valid]
                if bad:
                    raise condense.ConfigError(
                        f"unknown {what} {', '.join(bad)}; valid: {', '.join(valid)}")
            if not (self.depths and self.widths and self.norms and self.acts and self.pools):
                raise condense.ConfigError("every search-space axis needs at least one value")
            if min(self.depths) < 1 or min(self.widths) < 1:
                raise condense.ConfigError("depths and widths must be ≥ 1")
            if not 0 < self.top_fraction <= 1:
                raise condense.ConfigError(
                    f"top_fraction must be in (0, 1], got {self.top_fraction}")
            if self.num_eval < 1:
                raise condense.ConfigError(f"num_eval must be ≥ 1, got {self.num_eval}")

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "small": {},
        # DC paper's 720 ConvNets; DM's budgets: 200 epochs on proxies, ~100 on the whole set
        "paper": {"depths": (1, 2, 3, 4), "widths": (32, 64, 128, 256),
                  "acts": ("sigmoid", "relu", "leakyrelu"),
                  "norms": ("none", "batchnorm", "layernorm", "instancenorm", "groupnorm"),
                  "pools": ("none", "maxpool", "avgpool"), "proxy_epochs": 200,
                  "reference_images": 0, "reference_epochs": 100, "test_limit": 0},
    }

    def candidates(self) -> list[Candidate]:
        c = self.config
        return [Candidate(d, w, n, a, p)
                for d, w, n, a, p in itertools.product(c.depths, c.widths, c.norms, c.acts,
                                                       c.pools)]

    def protocol(self) -> str:
        run_only = ("engine", "compile")
        mine = {k: v for k, v in self.config.to_dict().items() if k not in run_only}
        for name, preset in self.presets.items():
            ref = type(self).Config.from_dict(dict(preset)).to_dict()
            if mine == {k: v for k, v in ref.items() if k not in run_only}:
                return f"nas-{name}"
        return "nas-custom"

    @staticmethod
    def reference_set(data: condense.RealData, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """A class-balanced random subset of ``n`` real training images (``n`` = 0: all)."""
        if n <= 0:
            return data.train.images, data.train.labels
        g = condense.keyed_generator(seed, "nas", "reference")
        per = [rows[torch.randperm(len(rows), generator=g)] for rows in data.class_index()]
        k = len(per)
        take = [n // k + (1 if c < n % k else 0) for c in range(k)]
        idx = torch.cat([rows[:t] for rows, t in zip(per, take, strict=True)])
        return data.train.images[idx], data.train.labels[idx]

    def evaluate(
        self,
        synset: condense.SynSet,
        data: condense.RealData,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        progress: condense.ProgressFn | None = None,
    ) -> condense.EvalResult:
        cfg = self.config
        device = torch.device(device)
        spec = data_spec(synset, data)
        transform = synset_transform(synset, data)
        proxy = TrainProtocol(cfg.proxy_epochs, cfg.proxy_batch, cfg.lr, cfg.momentum,
                              cfg.weight_decay, 0.1, resolve_dsa(cfg.dsa, data))
        reference = TrainProtocol(cfg.reference_epochs, cfg.reference_batch, cfg.lr, cfg.momentum,
                                  cfg.weight_decay, 0.1, resolve_dsa(cfg.reference_dsa, data))
        ref_u8, ref_y = self.reference_set(data, cfg.reference_images, seed)
        # the reference images live in the artifact's space too (same test transform for both)
        ref_x = torch.cat([transform(ref_u8[i : i + 4096]) for i in range(0, len(ref_u8), 4096)])
        test_x, test_y = real_test_split(data, cfg.test_limit)
        syn_x, syn_y = synset.images, training_targets(synset)
        cands = self.candidates()
        t_start = time.perf_counter()
        spread = device.type == "cpu" and cfg.engine in ("auto", "parallel")
        engine = "sequential" if spread else cfg.engine
        found: dict[tuple[int, str], tuple[float, float]] = {}
        lock = threading.Lock()
        finished = [0]

        def job(i: int, side: str) -> Callable[[], None]:
            cand = cands[i]
            x, y, protocol = (syn_x, syn_y, proxy) if side == "proxy" else (ref_x, ref_y, reference)

            def run() -> None:
                # same initialisations on both sides: only the training data differ
                gens = [condense.keyed_generator(seed, "nas", cand.name, j)
                        for j in range(cfg.num_eval)]
                sc = train_and_score(images=x, targets=y, protocol=protocol, generators=gens,
                                     spec=spec, model=cand.builder(spec), test_images=test_x,
                                     test_labels=test_y, transform=transform, device=device,
                                     engine=engine,  # type: ignore[arg-type]
                                     compile=cfg.compile)
                with lock:
                    found[(i, side)] = (100.0 * sum(sc.accuracies) / len(sc.accuracies),
                                        sc.train_seconds)
                    finished[0] += 1
                    if progress is not None:
                        progress(condense.ProgressEvent("nas", finished[0], 2 * len(cands),
                                                        {"candidate": cand.name, "side": side}))

            return run

        jobs = [job(i, side) for i in range(len(cands)) for side in ("proxy", "reference")]
        if spread:  # one candidate-side per core
            run_on_cores(jobs)
        else:
            for j in jobs:
                j()
        rows: list[dict[str, Any]] = [
            {**dataclasses.asdict(cand), "name": cand.name,
             "proxy_accuracy": found[(i, "proxy")][0],
             "reference_accuracy": found[(i, "reference")][0],
             "proxy_seconds": found[(i, "proxy")][1],
             "reference_seconds": found[(i, "reference")][1]}
            for i, cand in enumerate(cands)]
        proxy_acc = [r["proxy_accuracy"] for r in rows]
        ref_acc = [r["reference_accuracy"] for r in rows]
        chosen = max(range(len(rows)), key=lambda j: proxy_acc[j])
        best = max(range(len(rows)), key=lambda j: ref_acc[j])
        top = sorted(range(len(rows)), key=lambda j: -ref_acc[j])
        top = top[: max(2, round(cfg.top_fraction * len(rows)))]
        proxy_s = sum(r["proxy_seconds"] for r in rows)
        ref_s = sum(r["reference_seconds"] for r in rows)
        metrics = {
            "spearman": spearman(proxy_acc, ref_acc),
            f"spearman top {cfg.top_fraction:.0%}": spearman([proxy_acc[j] for j in top],
                                                             [ref_acc[j] for j in top]),
            "chosen reference accuracy": ref_acc[chosen],
            "best reference accuracy": ref_acc[best],
            "regret": ref_acc[best] - ref_acc[chosen],
            "proxy minutes": proxy_s / 60,
            "reference minutes": ref_s / 60,
            "time saved": 1.0 - proxy_s / ref_s if ref_s > 0 else float("nan"),
            "candidates": float(len(rows)),
        }
        settings: dict[str, Any] = {**cfg.to_dict(), "dsa": proxy.dsa,
                                    "reference_dsa": reference.dsa, "seed": seed,
                                    "device": str(device), "proxy_images": len(synset),
                                    "reference_images_used": len(ref_y)}
        return condense.EvalResult(
            evaluator=self.name,
            protocol=self.protocol(),
            settings=settings,
            metrics=metrics,
            per_run=tuple(proxy_acc),
            details={
                "unit": "accuracies in percent on the (limited) test split; 'time saved' is the "
                        "fraction of reference training time the proxy avoids; per_run = proxy "
                        "accuracy per candidate, in 'candidates' order",
                "chosen": rows[chosen]["name"],
                "best": rows[best]["name"],
                "candidates": rows,
                "wall_seconds": time.perf_counter() - t_start,
            },
        )


__all__ = ["NAS", "Candidate"]
