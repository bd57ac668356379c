"""condense-evaluators: the fast trainer, the accuracy evaluator and the statistics helpers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import condense
from condense_evaluators import protocol, stats
from condense_evaluators.accuracy import Accuracy
from condense_evaluators.training import (
    TrainProtocol,
    evaluate_models,
    init_models,
    train_models,
)

from tolerance import assert_close

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins" / "evaluators"
# 3-channel: the core ConvNet sizes its head for 1-channel inputs only at 28 px (see report)
TINY = condense.DataSpec(channels=3, image_size=(8, 8), num_classes=3)


def _tiny_synset(ipc: int = 4, seed: int = 0, dataset: str = "tiny-rgb") -> condense.SynSet:
    return condense.distill("random", dataset=dataset, ipc=ipc, seed=seed)


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- trainer


def _train(model: str, engine: str, dsa: str, k: int = 3, epochs: int = 3) -> list[torch.nn.Module]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, 8, 8, generator=g)
    y = torch.arange(10) % 3
    gens = [torch.Generator().manual_seed(10 + i) for i in range(k)]
    models = init_models(lambda: condense.networks.build_model(model, TINY), gens, "cpu")
    protocol = TrainProtocol(epochs=epochs, batch_size=4, lr=0.05, dsa=dsa)
    train_models(models, x, y, protocol, gens, engine=engine, compile="off")  # type: ignore[arg-type]
    return models


@pytest.mark.slow
@pytest.mark.parametrize("model", ["convnet-d1", "convnet-bn", "mlp"])
def test_engines_equal_independent_runs(model: str) -> None:
    """K networks trained stacked (vmap) or in parallel threads == K independent runs."""
    dsa = "color_crop_cutout_flip_scale_rotate"
    stacked = _train(model, "stacked", dsa)
    single = _train(model, "sequential", dsa)
    for a, b in zip(stacked, single, strict=True):
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.allclose(pa.float(), pb.float(), atol=2e-4, rtol=1e-3), name
    # one network per thread: bitwise the sequential result (one intra-op thread in both)
    torch.set_num_threads(2)  # the parallel engine uses min(K, threads) workers of 1 thread
    parallel = _train(model, "parallel", dsa)
    assert torch.get_num_threads() == 2  # restored
    for a, b in zip(parallel, single, strict=True):
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(pa, pb), name
    # and the K networks really differ from each other (own init, own shuffles)
    w0 = next(stacked[0].parameters())
    w1 = next(stacked[1].parameters())
    assert not torch.allclose(w0, w1)


@pytest.mark.slow
def test_training_is_reproducible_and_changes_weights() -> None:
    a = _train("convnet-d1", "sequential", "crop", k=1, epochs=2)[0]
    b = _train("convnet-d1", "sequential", "crop", k=1, epochs=2)[0]
    fresh = init_models(lambda: condense.networks.build_model("convnet-d1", TINY),
                        [torch.Generator().manual_seed(10)], "cpu")[0]
    for pa, pb, _pf in zip(a.parameters(), b.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(fresh.parameters()))


@pytest.mark.slow
def test_schedule_follows_the_official_rule() -> None:
    """E+1 epochs; LR x0.1 after epoch E//2+1 with a fresh optimiser (momentum reset)."""
    p = TrainProtocol(epochs=1000, batch_size=256)
    assert p.decay_epoch == 501
    assert p.steps(100) == 1001
    assert TrainProtocol(epochs=1800, batch_size=64).steps(100) == 1801 * 2
    seen: list[float] = []

    class Spy(torch.optim.SGD):
        def __init__(self, params, lr, **kw):  # type: ignore[no-untyped-def]
            seen.append(lr)
            super().__init__(params, lr=lr, **kw)

    import condense_evaluators.training as tr

    orig = tr.torch.optim.SGD
    tr.torch.optim.SGD = Spy  # type: ignore[misc]
    try:
        _train("mlp", "sequential", "none", k=1, epochs=4)
    finally:
        tr.torch.optim.SGD = orig  # type: ignore[misc]
    assert seen == pytest.approx([0.05, 0.005])


def test_soft_cross_entropy_matches_hard_for_one_hot() -> None:
    from condense_evaluators.training import _loss

    logits = torch.randn(2, 5, 3)
    y = torch.randint(0, 3, (2, 5))
    soft = torch.nn.functional.one_hot(y, 3).float()
    assert_close(_loss(logits, soft), _loss(logits, y), what="loss")


# --------------------------------------------------------------------------- accuracy


@pytest.mark.slow
def test_separable_toy_set_reaches_100_percent(tiny_data: condense.RealData) -> None:
    """Hand-checkable: the class templates themselves as the set; the noisy test images are
    nearest to their own template, so an MLP trained on the templates gets every one right."""
    base = torch.linspace(0, 255, 64).view(1, 8, 8)
    templates = torch.stack([base, base.flip(-1), base.transpose(-1, -2)]).to(torch.uint8)
    synset = condense.SynSet(
        images=tiny_data.normalize(templates).repeat(2, 1, 1, 1),
        labels=torch.arange(3).repeat(2),
        meta={"dataset": "tiny", "mean": [0.5], "std": [0.25], "ipc": 2,
              "class_names": ["a", "b", "c"]},
    )
    ev = Accuracy({"model": "mlp", "num_eval": 2, "epochs": 60, "batch_size": 6, "dsa": "none"})
    result = ev.evaluate(synset, tiny_data, seed=0)
    assert result.per_run == (100.0, 100.0)
    assert result.metrics["accuracy"] == 100.0 and result.metrics["std"] == 0.0


@pytest.mark.slow
def test_accuracy_result_shape_and_range(tiny_rgb: condense.RealData) -> None:
    events: list[condense.ProgressEvent] = []
    result = condense.evaluate(_tiny_synset(), evaluator="accuracy", data=tiny_rgb,
                               settings={"num_eval": 3, "epochs": 4, "batch_size": 8,
                                         "model": "convnet-bn"},
                               progress=events.append)
    assert result.evaluator == "accuracy"
    assert len(result.per_run) == 3
    assert all(0.0 <= a <= 100.0 for a in result.per_run)
    mean, std = stats.mean_std(list(result.per_run))
    assert result.metrics["accuracy"] == pytest.approx(mean)
    assert result.metrics["std"] == pytest.approx(std)
    # the protocol and its settings come with every number
    assert result.protocol == "custom"
    for key in ("model", "epochs", "batch_size", "lr", "dsa", "num_eval", "seed"):
        assert key in result.settings
    assert result.settings["dsa"] == "color_crop_cutout_flip_scale_rotate"
    assert result.details["test_images"] == 20
    own = [e for e in events if e.task == "accuracy"]
    assert [e.completed for e in own] == list(range(1, 16))  # per model-epoch
    assert own[-1].total == 15
    # the random baseline is trained by the same networks, reported beside the set
    assert [e.completed for e in events if e.task == "baseline"] == list(range(1, 16))
    assert result.metrics["difference"] == pytest.approx(
        result.metrics["accuracy"] - result.metrics["baseline"])


def test_protocol_names_and_presets() -> None:
    assert Accuracy().protocol() == "dm"
    datadam = Accuracy(Accuracy.presets["datadam"])
    assert datadam.protocol() == "datadam"
    assert datadam.config.model == "convnet-bn" and datadam.config.epochs == 1800
    assert datadam.config.batch_size == 64 and datadam.config.num_eval == 10
    assert Accuracy({"model": "resnet18-bn"}).protocol() == "dm+model=resnet18-bn"
    assert Accuracy({"epochs": 7}).protocol() == "custom"
    # engine/compile do not change what is measured
    assert Accuracy({"engine": "stacked", "compile": "off"}).protocol() == "dm"


def test_bad_settings_raise_config_errors() -> None:
    with pytest.raises(condense.ConfigError, match="unknown model"):
        Accuracy({"model": "nope"})
    with pytest.raises(condense.ConfigError, match="num_eval"):
        Accuracy({"num_eval": 0})
    with pytest.raises(condense.ConfigError):
        Accuracy({"dsa": "bogus"}).evaluate(_tiny_synset(), condense.load_dataset("tiny-rgb"))
    with pytest.raises(condense.ConfigError, match="unknown config key"):
        condense.evaluate(_tiny_synset(), evaluator="accuracy", settings={"nets": 2})


def test_uses_the_artifacts_own_normalisation_and_zca() -> None:
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    syn = condense.SynSet(images=torch.zeros(1, 1, 1, 1), labels=torch.zeros(1, dtype=torch.long),
                          meta={"mean": [0.2], "std": [0.4]})
    out = protocol.synset_transform(syn)(images)
    assert torch.allclose(out.flatten(), torch.tensor([-0.5, 0.0, 2.0]), atol=1e-6)
    # with ZCA tensors in the artifact, the test images are whitened with them
    x = torch.randn(50, 1, 2, 2)
    zca = condense.ZCA.fit(x)
    syn.zca_mean, syn.zca_transform = zca.mean, zca.transform
    syn.meta["zca"] = {"eps": zca.eps}
    u8 = torch.randint(0, 256, (4, 1, 2, 2), dtype=torch.uint8)
    expected = zca((u8.float() / 255 - 0.2) / 0.4)
    assert torch.allclose(protocol.synset_transform(syn)(u8), expected, atol=1e-5)


@pytest.mark.slow
def test_soft_labels_and_learned_lr(tiny_data: condense.RealData) -> None:
    syn = _tiny_synset(ipc=2, dataset="tiny")
    assert protocol.training_targets(syn).dtype == torch.long
    syn.soft_labels = torch.randn(len(syn), 3) * 3  # logits -> softmax-ed
    t = protocol.training_targets(syn)
    assert t.is_floating_point() and torch.allclose(t.sum(1), torch.ones(len(syn)))
    syn.syn_lr = torch.tensor(0.03)
    result = Accuracy({"num_eval": 1, "epochs": 1, "batch_size": 8, "model": "mlp"}).evaluate(
        syn, tiny_data)
    assert result.settings["lr"] == pytest.approx(0.03)
    assert result.settings["labels"] == "soft"
    off = Accuracy({"num_eval": 1, "epochs": 1, "use_syn_lr": False, "model": "mlp"}).evaluate(
        syn, tiny_data)
    assert off.settings["lr"] == pytest.approx(0.01)


def test_evaluate_models_restricted_classes() -> None:
    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.0, 5.0, 1.0]]).expand(x.shape[0], 3)

    imgs = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    labels = torch.tensor([1, 1, 2, 0])
    acc = evaluate_models([Fixed()], imgs, labels, lambda u: u.float())
    assert acc == [0.5]
    acc = evaluate_models([Fixed()], imgs, labels, lambda u: u.float(),
                          classes=torch.tensor([0, 2]))
    assert acc == [0.25]


# --------------------------------------------------------------------------- stats


def test_spearman() -> None:
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert stats.rankdata([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]
    assert math.isnan(stats.spearman([1, 1, 1], [1, 2, 3]))
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 6, (30,), generator=g).tolist()
    y = torch.randint(0, 6, (30,), generator=g).tolist()
    assert stats.spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)


# --------------------------------------------------------------------------- packaging


def test_plugin_uses_only_public_api() -> None:
    allowed = re.compile(r"^(import condense$|from condense import (augment|networks)$|"
                         r"import condense\.(augment|networks)$)")
    for path in (PLUGIN_DIR / "condense_evaluators").glob("*.py"):
        for line in path.read_text().splitlines():
            line = line.strip()
            if re.match(r"^(from|import) condense\b(?!_evaluators)", line):
                assert allowed.match(line), f"{path.name}: {line}"
        # no private module or name (``condense.__version__`` is public)
        assert not re.search(r"condense\._(?!_version__\b)", path.read_text()), path.name


def test_registered_as_evaluators() -> None:
    assert condense.get_evaluator("accuracy") is Accuracy
    text = (PLUGIN_DIR / "pyproject.toml").read_text()
    assert 'evaluators = "condense_evaluators"' in text


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18-bn", "vgg11", "alexnet-bn", "lenet"])
def test_cross_architecture_models_train_stacked(model: str) -> None:
    """The zoo trains under every engine (vmap over BN/IN ResNets and VGGs) with equal results."""
    spec = condense.DataSpec(channels=1, image_size=(28, 28), num_classes=3)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0])
    out = []
    for engine in ("stacked", "sequential"):
        gens = [torch.Generator().manual_seed(i) for i in range(2)]
        models = init_models(lambda: condense.networks.build_model(model, spec), gens, "cpu")
        train_models(models, x, y, TrainProtocol(epochs=0, batch_size=4, lr=0.01, dsa="crop"),
                     gens, engine=engine)  # type: ignore[arg-type]
        out.append(models)
    for a, b in zip(*out, strict=True):
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.allclose(pa.float(), pb.float(), atol=1e-4, rtol=1e-3), name
