"""The random baseline, soft labels and DD-Ranking's scores, the cross-architecture table and the
report plots (issue: evaluation the field can trust)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import condense
from condense.cli import cli
from condense.cli.evaltable import model_rows, models_table, result_tables
from condense_evaluators import cache as eval_cache
from condense_evaluators.accuracy import Accuracy
from condense_evaluators.ddranking import label_robust_score, paired_scores
from condense_evaluators.teacher import tempered
from condense_evaluators.training import SoftLoss, _loss

from tolerance import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = {"model": "mlp", "num_eval": 2, "epochs": 3, "batch_size": 8, "dsa": "none"}


def _set(data: condense.RealData, ipc: int = 2, seed: int = 1) -> condense.SynSet:
    return condense.distill("random", dataset=data, ipc=ipc, seed=seed)


# --------------------------------------------------------------------------- scores


def test_difference_and_ddranking_scores_on_hand_made_results() -> None:
    # HLR = real - set(hard); IOR = set(soft) - random(soft); alpha = w IOR - (1 - w) HLR in
    # fractions; LRS = (e^alpha - e^-1) / (e - e^-1), x 100
    out = paired_scores(90.0, [70.0, 72.0], [80.0, 84.0], [75.0, 75.0], weight=0.5)
    assert out["hlr"] == pytest.approx(19.0) and out["hlr_std"] == pytest.approx(1.0)
    assert out["ior"] == pytest.approx(7.0) and out["ior_std"] == pytest.approx(2.0)
    e = math.e
    per_run = [100 * (math.exp(0.5 * i - 0.5 * h) - 1 / e) / (e - 1 / e)
               for h, i in ((0.20, 0.05), (0.18, 0.09))]
    assert out["lrs"] == pytest.approx(sum(per_run) / 2)
    # the end points: alpha = -1 -> 0 %, alpha = 0 -> 26.9 %, alpha = 1 -> 100 %
    assert label_robust_score(hlr=100.0, ior=0.0, weight=0.0) == pytest.approx(0.0)
    assert label_robust_score(0.0, 0.0) == pytest.approx(100 * (1 - 1 / e) / (e - 1 / e))
    assert label_robust_score(hlr=0.0, ior=100.0, weight=1.0) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        paired_scores(90.0, [70.0], [80.0, 81.0], [75.0])


def test_soft_criteria_and_temperature() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g, requires_grad=True)
    p = torch.softmax(torch.randn(6, 4, generator=g), 1)
    # hard targets: plain cross-entropy whatever the soft settings
    hard = torch.tensor([0, 1, 2, 3, 0, 1])
    assert_close(_loss(logits, hard, SoftLoss("kl", 4.0)),
                 torch.nn.functional.cross_entropy(logits, hard))
    # KL = T^2 (SCE - H(p)): same gradient up to T^2; equal networks at T = 1
    for t in (1.0, 3.0):
        sce = _loss(logits, p, SoftLoss("sce", t))
        kl = _loss(logits, p, SoftLoss("kl", t))
        entropy = -(p * p.log()).sum() / 6
        assert_close(kl, t * t * (sce - entropy))
        (g_sce,) = torch.autograd.grad(sce, logits)
        (g_kl,) = torch.autograd.grad(kl, logits)
        assert_close(g_kl, t * t * g_sce)
    # stored soft labels are used as they are at T = 1; T > 1 flattens them
    assert torch.equal(tempered(p, 1.0), p)
    flat = tempered(p, 4.0)
    assert_close(flat.sum(1), torch.ones(6))
    assert (flat.max(1).values < p.max(1).values).all()
    with pytest.raises(condense.ConfigError):
        Accuracy({"soft_criterion": "mse"})
    with pytest.raises(condense.ConfigError):
        Accuracy({"temperature": 0})


# --------------------------------------------------------------------------- baseline cache


def test_baseline_cache_hit_miss_and_key(tiny_data: condense.RealData, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    syn = _set(tiny_data)
    settings = {**QUICK, "cache_dir": str(tmp_path)}
    first = Accuracy(settings).evaluate(syn, tiny_data, seed=0)
    info = first.details["baseline"]
    assert info["hard"]["cache"] == "miss" and info["labels"] == "hard"
    assert (tmp_path / f"baseline-{info['hard']['key']}.json").is_file()
    m = first.metrics
    assert m["difference"] == pytest.approx(m["accuracy"] - m["baseline"])
    assert (m["baseline"], m["baseline_std"]) == pytest.approx(
        condense_mean_std(info["hard"]["per_run"]))
    # the same evaluation again: read back, not trained
    again = Accuracy(settings).evaluate(syn, tiny_data, seed=0)
    assert again.details["baseline"]["hard"]["cache"] == "hit"
    assert again.details["baseline"]["hard"]["per_run"] == info["hard"]["per_run"]
    # the baseline does not depend on the set: another set of the same IPC hits
    other = Accuracy(settings).evaluate(_set(tiny_data, seed=5), tiny_data, seed=0)
    assert other.details["baseline"]["hard"]["cache"] == "hit"
    # anything the numbers depend on is in the key: protocol, seed, model, version
    keys = {info["hard"]["key"]}
    for change, seed in (({"epochs": 2}, 0), ({}, 1), ({"model": "convnet-nn"}, 0)):
        r = Accuracy({**settings, **change}).evaluate(syn, tiny_data, seed=seed)
        assert r.details["baseline"]["hard"]["cache"] == "miss", change
        keys.add(r.details["baseline"]["hard"]["key"])
    monkeypatch.setattr(condense, "__version__", "9.9.9")
    r = Accuracy(settings).evaluate(syn, tiny_data, seed=0)
    assert r.details["baseline"]["hard"]["cache"] == "miss"
    keys.add(r.details["baseline"]["hard"]["key"])
    assert len(keys) == 5
    # how the networks are run is not: the engine changes nothing measured
    monkeypatch.undo()
    r = Accuracy({**settings, "engine": "sequential"}).evaluate(syn, tiny_data, seed=0)
    assert r.details["baseline"]["hard"]["cache"] == "hit"
    # opting out
    off = Accuracy({**settings, "baseline": False}).evaluate(syn, tiny_data, seed=0)
    assert "baseline" not in off.metrics and "baseline" not in off.details


def condense_mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def test_cache_root_follows_the_environment(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDENSE_CACHE_DIR", str(tmp_path / "c"))
    assert eval_cache.cache_root() == tmp_path / "c" / "eval"
    monkeypatch.delenv("CONDENSE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert eval_cache.cache_root() == tmp_path / "x" / "condense" / "eval"
    assert eval_cache.cache_root(str(tmp_path / "s")) == tmp_path / "s"


# --------------------------------------------------------------------------- teacher


def test_separable_toy_set_recovers_the_real_data(tiny_data: condense.RealData,
                                                  tmp_path: Path) -> None:
    """The class templates as the set: networks trained on them are as good as the teacher
    trained on all real images (100 %), so HLR = 0."""
    base = torch.linspace(0, 255, 64).view(1, 8, 8)
    templates = torch.stack([base, base.flip(-1), base.transpose(-1, -2)]).to(torch.uint8)
    synset = condense.SynSet(
        images=tiny_data.normalize(templates).repeat(2, 1, 1, 1),
        labels=torch.arange(3).repeat(2),
        meta={"dataset": "tiny", "mean": [0.5], "std": [0.25], "ipc": 2,
              "class_names": ["a", "b", "c"]})
    ev = Accuracy({"model": "mlp", "num_eval": 2, "epochs": 60, "batch_size": 6, "dsa": "none",
                   "teacher": "train", "teacher_epochs": 30, "teacher_batch": 12,
                   "teacher_lr": 0.05, "cache_dir": str(tmp_path)})
    result = ev.evaluate(synset, tiny_data, seed=0)
    m = result.metrics
    assert m["real_accuracy"] == 100.0 and m["hard_accuracy"] == 100.0
    assert m["hlr"] == pytest.approx(0.0, abs=1e-9)
    for key in ("ior", "lrs", "soft_accuracy", "soft_baseline", "hard_baseline"):
        assert key in m, key
    assert 0.0 <= m["lrs"] <= 100.0
    # the teacher is trained once: the second evaluation reads it from the cache
    assert result.details["teacher"]["cache"] == "miss"
    again = ev.evaluate(synset, tiny_data, seed=0)
    assert again.details["teacher"]["cache"] == "hit"
    assert again.details["baseline"]["soft"]["cache"] == "hit"
    assert again.metrics == pytest.approx(m)


def test_soft_label_training_on_a_toy_teacher(tiny_data: condense.RealData,
                                              tmp_path: Path) -> None:
    syn = _set(tiny_data, ipc=2)
    settings = {**QUICK, "teacher": "train", "teacher_epochs": 2, "cache_dir": str(tmp_path),
                "soft_criterion": "kl", "temperature": 2.0}
    result = Accuracy(settings).evaluate(syn, tiny_data, seed=0)
    m = result.metrics
    # hard and soft side by side, each with its own baseline trained on the same labels
    for regime in ("hard", "soft"):
        assert m[f"{regime}_difference"] == pytest.approx(
            m[f"{regime}_accuracy"] - m[f"{regime}_baseline"])
    assert m["hard_accuracy"] == m["accuracy"]  # the set's own labels are hard
    assert m["ior"] == pytest.approx(m["soft_accuracy"] - m["soft_baseline"])
    assert m["hlr"] == pytest.approx(m["real_accuracy"] - m["hard_accuracy"])
    assert len(result.details["soft_per_run"]) == 2
    # the teacher saved by a user loads from a path
    path = tmp_path / "teacher.pt"
    net = condense.networks.build_model("mlp", condense.DataSpec(1, (8, 8), 3))
    torch.save(net.state_dict(), path)
    loaded = Accuracy({**settings, "teacher": str(path)}).evaluate(syn, tiny_data, seed=0)
    assert loaded.details["teacher"]["source"] == str(path)
    with pytest.raises(condense.ConfigError, match="teacher"):
        Accuracy({**settings, "teacher": str(tmp_path / "missing.pt")}).evaluate(syn, tiny_data)


def test_stored_soft_labels_are_used_as_they_are(tiny_data: condense.RealData,
                                                 tmp_path: Path) -> None:
    syn = _set(tiny_data, ipc=2)
    syn.soft_labels = torch.nn.functional.one_hot(syn.labels.long(), 3).float()
    r = Accuracy({**QUICK, "cache_dir": str(tmp_path)}).evaluate(syn, tiny_data, seed=0)
    hard = Accuracy({**QUICK, "cache_dir": str(tmp_path)}).evaluate(_set(tiny_data, ipc=2),
                                                                    tiny_data, seed=0)
    # one-hot soft labels train the networks hard labels train (soft CE = CE)
    assert_close(torch.tensor(r.per_run), torch.tensor(hard.per_run))
    assert r.settings["labels"] == "soft"
    assert "labels_differ" in r.details["baseline"]  # no teacher to label random images


# --------------------------------------------------------------------------- cross-architecture


def test_cross_architecture_table_has_one_row_per_model(tiny_data: condense.RealData) -> None:
    syn = _set(tiny_data)
    models = ["mlp", "convnet-nn"]
    results = condense.cross_architecture(syn, models, data=tiny_data, settings=QUICK)
    assert list(results) == models
    rows = model_rows([r.to_dict() for r in results.values()])
    assert [r["model"] for r in rows] == models
    for row in rows:
        assert row["difference"] == pytest.approx(row["accuracy"] - row["baseline"])
    assert models_table(rows, "t").row_count == 2
    with pytest.raises(condense.ConfigError):
        condense.cross_architecture(syn, [], data=tiny_data)


def test_cli_eval_cross_architecture_json(tiny_rgb: condense.RealData, tmp_path: Path) -> None:
    path = tmp_path / "set.safetensors"
    condense.save(condense.distill("random", dataset=tiny_rgb, ipc=2, seed=1), path)
    res = CliRunner().invoke(cli, ["eval", str(path), "--model", "mlp,convnet-nn", "--json",
                                   "--no-progress", "--set", "num_eval=1", "--set", "epochs=1",
                                   "--set", "dsa=none", "--set", "batch_size=8",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [r["model"] for r in payload["cross_architecture"]] == ["mlp", "convnet-nn"]
    assert set(payload["cross_architecture"][0]) >= {"accuracy", "std", "baseline",
                                                      "baseline_std", "difference"}
    saved = json.loads((tmp_path / "set.eval-accuracy-models.json").read_text())
    assert saved["cross_architecture"] == payload["cross_architecture"]
    # one model: the three figures under stable keys, side by side in the table
    res = CliRunner().invoke(cli, ["eval", str(path), "--json", "--no-progress", "--set",
                                   "num_eval=1", "--set", "epochs=1", "--set", "model=mlp",
                                   "--device", "cpu"])
    one = json.loads(res.stdout)
    assert {"accuracy", "std", "baseline", "baseline_std", "difference"} <= set(one["metrics"])
    header = [c.header for c in result_tables(one)[0].columns]
    assert header == ["labels", "set", "random baseline", "difference"]
    res = CliRunner().invoke(cli, ["eval", str(path), "--json", "--no-progress", "--no-save",
                                   "--no-baseline", "--set", "num_eval=1", "--set", "epochs=1",
                                   "--set", "model=mlp", "--device", "cpu"])
    assert "baseline" not in json.loads(res.stdout)["metrics"]


# --------------------------------------------------------------------------- report


def _decode(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image.convert("RGB")


def test_report_writes_decodable_plots(tmp_path: Path) -> None:
    syn = condense.SynSet(images=torch.zeros(2, 1, 8, 8), labels=torch.tensor([0, 1]), meta={
        "dataset": "tiny", "method": "dm", "ipc": 1, "mean": [0.5], "std": [0.25],
        "class_names": ["a", "b"], "image_size": [8, 8],
        "eval_history": [{"iteration": i, "role": "monitoring", "metrics": {
            "accuracy": 40.0 + i / 10, "std": 1.0, "baseline": 38.0, "baseline_std": 0.5}}
            for i in (100, 200, 300)],
        "evaluations": {"dm": {"evaluator": "accuracy", "protocol": "dm",
                               "settings": {"model": "convnet", "seed": 0},
                               "metrics": {"accuracy": 60.0, "std": 1.5, "baseline": 55.0,
                                           "baseline_std": 0.7, "difference": 5.0}}}})
    path = tmp_path / "set.safetensors"
    condense.save(syn, path)
    models = {"results": [{"evaluator": "accuracy", "protocol": f"dm+model={m}",
                           "settings": {"model": m, "seed": 0},
                           "metrics": {"accuracy": a, "std": 1.0, "baseline": a - 3,
                                       "baseline_std": 0.5, "difference": 3.0}}
                          for m, a in (("alexnet", 50.0), ("vgg11", 52.0))]}
    (tmp_path / "set.eval-accuracy-models.json").write_text(json.dumps(models))
    res = CliRunner().invoke(cli, ["report", str(path), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)[str(path)]
    assert [r["model"] for r in summary["accuracy"]] == ["convnet", "alexnet", "vgg11"]
    bars = _decode(Path(summary["accuracy_png"]))
    assert bars.size[0] >= 480 and bars.getbbox() is not None
    colours = {c for _, c in bars.getcolors(1 << 20)}
    assert (31, 119, 180) in colours and (160, 160, 160) in colours  # set and baseline bars
    curve = _decode(tmp_path / "set.iterations.png")
    assert curve.size == (640, 400)
    assert (31, 119, 180) in {c for _, c in curve.getcolors(1 << 20)}
    # nothing to plot: one clear line
    empty = tmp_path / "empty.safetensors"
    condense.save(condense.SynSet(images=torch.zeros(2, 1, 8, 8), labels=torch.tensor([0, 1]),
                                  meta={**syn.meta, "eval_history": [], "evaluations": {}}),
                  empty)
    res = CliRunner().invoke(cli, ["report", str(empty)])
    assert res.exit_code != 0 and "condense eval" in res.output
