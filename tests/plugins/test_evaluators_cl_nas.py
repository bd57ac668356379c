"""condense-evaluators: the continual-learning and NAS evaluators on tiny fixture data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import condense
from condense_evaluators.continual import Continual, class_order, step_classes
from condense_evaluators.nas import NAS


@pytest.fixture(scope="module")
def rgb_set() -> condense.SynSet:
    return condense.distill("random", dataset="tiny-rgb", ipc=3, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- continual


def test_class_order_is_the_official_numpy_order() -> None:
    np.random.seed(3)
    assert class_order(100, 3) == np.random.permutation(100).tolist()
    assert step_classes([4, 1, 0, 3, 2], 2) == [[4, 1, 0], [3, 2]]
    with pytest.raises(condense.ConfigError):
        step_classes([0, 1], 3)


@pytest.mark.slow
def test_continual_curves_and_baselines(rgb_set: condense.SynSet,
                                        tiny_rgb: condense.RealData) -> None:
    events: list[condense.ProgressEvent] = []
    ev = Continual({"steps": (2, 4), "seeds": 2, "num_eval": 1, "epochs": 30, "batch_size": 8,
                    "model": "mlp", "dsa": "none", "engine": "sequential"})
    result = ev.evaluate(rgb_set, tiny_rgb, seed=0, progress=events.append)
    curves = result.details["curves"]
    assert set(curves) == {"distilled", "random", "herding"}
    for method in curves:
        assert curves[method]["2"]["classes"] == [2, 4]
        assert curves[method]["4"]["classes"] == [1, 2, 3, 4]
        for steps in ("2", "4"):
            assert all(0 <= a <= 100 for step in curves[method][steps]["runs"] for a in step)
            assert all(len(step) == 2 for step in curves[method][steps]["runs"])  # seeds × nets
        # hand-checkable: at the first of 4 steps only one class has been seen, so a network
        # trained on that class alone is right on every test image of it
        assert curves[method]["4"]["mean"][0] == 100.0
        m = result.metrics[f"{method} 4-step mean"]
        assert m == pytest.approx(sum(curves[method]["4"]["mean"]) / 4)
        assert result.metrics[f"{method} 4-step last"] == curves[method]["4"]["mean"][-1]
        assert result.metrics[f"{method} 2-step @2 classes"] == curves[method]["2"]["mean"][0]
        assert result.metrics[f"{method} 4-step @1 classes"] == 100.0
    assert len(result.per_run) == 2
    assert result.protocol == "cl-custom"
    assert result.settings["memory_per_class"] == 3
    assert events[-1].completed == events[-1].total
    assert events[-1].total == 3 * (2 * 2 + 2 * 4) * 31


@pytest.mark.slow
def test_continual_units_on_cores_match_one_by_one(rgb_set: condense.SynSet,
                                                   tiny_rgb: condense.RealData) -> None:
    settings = {"steps": (2,), "seeds": 2, "num_eval": 1, "epochs": 3, "batch_size": 8,
                "model": "mlp", "baselines": ("random",)}
    torch.set_num_threads(2)  # the CPU default spreads (memory, steps, seed, step) over 2 cores
    spread = Continual(settings).evaluate(rgb_set, tiny_rgb)
    torch.set_num_threads(1)
    serial = Continual({**settings, "engine": "sequential"}).evaluate(rgb_set, tiny_rgb)
    assert spread.details["curves"] == serial.details["curves"]


def test_continual_presets_and_validation() -> None:
    assert Continual().protocol() == "cl-dm"
    assert Continual(Continual.presets["quick"]).protocol() == "cl-quick"
    assert Continual({"engine": "stacked"}).protocol() == "cl-dm"
    with pytest.raises(condense.ConfigError, match="baseline"):
        Continual({"baselines": ("random", "forgetting")})
    with pytest.raises(condense.ConfigError):
        condense.evaluate(condense.distill("random", dataset="tiny-rgb", ipc=1),
                          evaluator="continual",
                          settings={"steps": "9", "epochs": 0, "seeds": 1, "num_eval": 1})


# --------------------------------------------------------------------------- NAS


@pytest.mark.slow
def test_nas_reports_correlation_regret_and_time(rgb_set: condense.SynSet,
                                                 tiny_rgb: condense.RealData) -> None:
    events: list[condense.ProgressEvent] = []
    result = condense.evaluate(
        rgb_set, evaluator="nas", data=tiny_rgb, progress=events.append,
        settings={"depths": "1,2", "widths": "8", "norms": "none,batchnorm", "proxy_epochs": 3,
                  "reference_images": 20, "reference_epochs": 2, "test_limit": 0})
    m = result.metrics
    assert m["candidates"] == 4 and len(result.per_run) == 4
    assert -1 <= m["spearman"] <= 1 or math.isnan(m["spearman"])
    assert m["best reference accuracy"] >= m["chosen reference accuracy"]
    assert m["regret"] == pytest.approx(m["best reference accuracy"]
                                        - m["chosen reference accuracy"])
    assert m["proxy minutes"] > 0 and m["reference minutes"] > 0
    assert result.settings["reference_images_used"] == 20
    names = [c["name"] for c in result.details["candidates"]]
    assert names == ["d1-w8-none-relu-avgpool", "d1-w8-batchnorm-relu-avgpool",
                     "d2-w8-none-relu-avgpool", "d2-w8-batchnorm-relu-avgpool"]
    assert [e.completed for e in events] == list(range(1, 9))  # candidates × (proxy, reference)
    assert result.protocol == "nas-custom"


@pytest.mark.slow
def test_nas_proxy_equal_to_reference_ranks_identically(tiny_rgb: condense.RealData) -> None:
    """Hand-checkable: when the proxy *is* the reference (all 40 real images, same budget, one
    batch, no DSA), each candidate gets the same accuracy on both sides: ρ = 1, regret 0."""
    whole = condense.distill("random", dataset="tiny-rgb", ipc=10, seed=0)
    ev = NAS({"depths": (1, 2), "widths": (4, 16), "norms": ("none",), "proxy_epochs": 4,
              "reference_epochs": 4, "reference_images": 0, "proxy_batch": 64,
              "reference_batch": 64, "dsa": "none", "reference_dsa": "none", "test_limit": 0})
    torch.set_num_threads(2)  # candidate sides run one per core
    result = ev.evaluate(whole, tiny_rgb, seed=1)
    for c in result.details["candidates"]:
        assert c["proxy_accuracy"] == pytest.approx(c["reference_accuracy"])
    assert result.metrics["regret"] == 0.0
    rho = result.metrics["spearman"]
    assert rho == pytest.approx(1.0) or math.isnan(rho)  # NaN only if all candidates tie


def test_nas_spaces() -> None:
    assert len(NAS().candidates()) == 18
    paper = NAS(NAS.presets["paper"])
    assert len(paper.candidates()) == 720
    assert paper.protocol() == "nas-paper" and NAS().protocol() == "nas-small"
    with pytest.raises(condense.ConfigError, match="norm"):
        NAS({"norms": ("bogus",)})
