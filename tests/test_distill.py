"""The shared loop: determinism, chunk invariance, resume, checkpoint atomicity, baselines."""

from __future__ import annotations

import dataclasses
import importlib
import warnings

import pytest
import torch

import condense
from condense.loop import LoopContext, load_checkpoint

from tolerance import assert_close

SMALL = {"batch_real": 4, "sampler.width": 8, "iterations": 4}


def plan_for(method, data, ipc=2, **over):
    settings = {**SMALL, **over}
    preset = settings.pop("preset", None)
    return condense.resolve_plan(method, dataset=data.name, spec=data.spec, ipc=ipc, seed=3,
                                 preset=preset, overrides=settings)


@pytest.mark.parametrize("method", ["datadam", "dm"])
def test_same_seed_gives_bitwise_identical_images(method, tiny_rgb):
    a = condense.loop.run(plan_for(method, tiny_rgb), tiny_rgb).images
    b = condense.loop.run(plan_for(method, tiny_rgb), tiny_rgb).images
    assert torch.equal(a, b)
    init = condense.loop.run(plan_for(method, tiny_rgb, iterations=0), tiny_rgb).images
    assert not torch.equal(a, init)  # the images did move


def test_different_seed_differs(tiny_rgb):
    p = plan_for("dm", tiny_rgb)
    other = condense.resolve_plan("dm", dataset="tiny-rgb", spec=tiny_rgb.spec, ipc=2, seed=4,
                                  overrides=SMALL)
    assert not torch.equal(condense.loop.run(p, tiny_rgb).images,
                           condense.loop.run(other, tiny_rgb).images)


def _one_step_grad(plan, data):
    syn = condense.loop.run(plan, data, stop_after=0).images
    syn = syn.clone().requires_grad_(True)
    ctx = LoopContext.for_plan(plan, data, syn, iteration=0,
                               dsa_strategy="color_crop_cutout_flip_scale_rotate")
    loss = plan.method.iteration(ctx)
    return loss, syn.grad


@pytest.mark.parametrize("setting,whole,split", [("class_chunk", 0, 1), ("microbatch", 1000, 3)])
@pytest.mark.parametrize("method,preset", [("dm", None), ("datadam", "datadam-paper")])
def test_chunks_and_real_microbatches_do_not_change_loss_or_gradients(setting, whole, split, method,
                                                                      preset, tiny_rgb):
    kw = {"preset": preset} if preset else {}
    loss_all, grad_all = _one_step_grad(plan_for(method, tiny_rgb, **{setting: whole}, **kw),
                                        tiny_rgb)
    loss_one, grad_one = _one_step_grad(plan_for(method, tiny_rgb, **{setting: split}, **kw),
                                        tiny_rgb)
    # float32 sums in another order: tolerances scale with the quantity (docs/testing.md)
    assert_close(loss_one, loss_all, what="loss")
    # per-image norms are sums of squares (no cancellation): relative per image
    norms_all = grad_all.flatten(1).norm(dim=1)
    norms_one = grad_one.flatten(1).norm(dim=1)
    assert torch.allclose(norms_one, norms_all, rtol=1e-5, atol=1e-6 * float(norms_all.max()))
    assert_close(grad_one, grad_all, what="image gradients")


class _Recorder(condense.FeatureMatching):
    name = "recorder"

    def __init__(self, config=None):
        super().__init__(config)
        self.sizes = []

    def summarize(self, feats):
        self.sizes.append(feats.embedding.shape[0])
        return condense.Features(feats.embedding)

    def loss(self, real, syn):
        return ((real.embedding.mean(1) - syn.embedding.mean(1)) ** 2).sum()


@pytest.mark.parametrize("norm,microbatch,expected", [
    ("instancenorm", 3, [3, 3, 2, 4]),  # 2 classes × 4 real images in 3s, then 2 × 2 syn
    ("batchnorm", 3, [8, 4]),  # BatchNorm couples the batch: never split
])
def test_encode_real_splits_only_batch_independent_encoders(norm, microbatch, expected, tiny_rgb):
    plan = plan_for("dm", tiny_rgb, microbatch=microbatch, **{"sampler.norm": norm})
    plan = dataclasses.replace(plan, method=_Recorder())
    syn = condense.loop.run(plan, tiny_rgb, stop_after=0).images.requires_grad_(True)
    ctx = LoopContext.for_plan(plan, tiny_rgb, syn, classes=[0, 1])
    plan.method.iteration(ctx)
    assert plan.method.sizes == expected


def test_auto_microbatch_keeps_activations_small(tiny_rgb, monkeypatch):
    context_module = importlib.import_module("condense.loop.context")
    plan = plan_for("dm", tiny_rgb)
    ctx = LoopContext.for_plan(plan, tiny_rgb, torch.zeros(1), classes=[0, 1])
    per_image = 8 * tiny_rgb.spec.image_size[0] * tiny_rgb.spec.image_size[1] * 4  # width 8, float
    monkeypatch.setattr(context_module, "MICROBATCH_BYTES", 5 * per_image)
    x = torch.randn(12, tiny_rgb.spec.channels, *tiny_rgb.spec.image_size)
    whole = ctx.encode(x).embedding
    split = ctx.encode_real(x).embedding
    assert ctx._auto_microbatch == 5
    assert_close(split, whole, what="embedding")


def test_batchnorm_chunking_warns(tiny_rgb):
    with pytest.warns(UserWarning, match="BatchNorm couples the classes"):
        condense.loop.run(plan_for("datadam", tiny_rgb, class_chunk=1, iterations=1), tiny_rgb)


def test_resume_equals_uninterrupted(tmp_path, tiny_rgb):
    full = condense.loop.run(plan_for("datadam", tiny_rgb, iterations=6), tiny_rgb)
    ckpt = tmp_path / "run.ckpt.safetensors"
    plan = plan_for("datadam", tiny_rgb, iterations=6, checkpoint_every=1)
    condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, stop_after=3)  # "killed" after 3
    resumed = condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, resume=True)
    assert torch.equal(full.images, resumed.images)
    assert resumed.meta["iterations"] == 6
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_accepts_a_checkpoint_from_before_a_new_loop_setting(tmp_path, tiny_rgb):
    import json

    from safetensors.torch import load_file, save_file

    ckpt = tmp_path / "run.ckpt.safetensors"
    plan = plan_for("dm", tiny_rgb, iterations=4, checkpoint_every=1)
    condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, stop_after=2)
    from safetensors import safe_open

    with safe_open(str(ckpt), "pt") as f:
        meta = f.metadata()
    old = json.loads(meta["plan"])
    del old["loop"]["microbatch"]  # written by a condense that did not know the setting yet
    save_file(load_file(str(ckpt)), str(ckpt), metadata={**meta, "plan": json.dumps(old)})
    resumed = condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, resume=True)
    assert resumed.meta["iterations"] == 4


def test_resume_refuses_different_settings(tmp_path, tiny_rgb):
    ckpt = tmp_path / "run.ckpt.safetensors"
    condense.loop.run(plan_for("dm", tiny_rgb, iterations=2), tiny_rgb, checkpoint=ckpt)
    other = plan_for("dm", tiny_rgb, iterations=4, lr_img=5.0)
    with pytest.raises(condense.CheckpointError, match="lr_img"):
        load_checkpoint(ckpt, other.to_dict())
    with pytest.raises(condense.CheckpointError, match="no checkpoint"):
        condense.loop.run(other, tiny_rgb, checkpoint=tmp_path / "missing.safetensors", resume=True)


def test_interrupted_checkpoint_write_leaves_previous_intact(tmp_path, tiny_rgb, monkeypatch):
    ckpt = tmp_path / "run.ckpt.safetensors"
    plan = plan_for("dm", tiny_rgb, iterations=4, checkpoint_every=2)
    condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, stop_after=2)
    before = ckpt.read_bytes()
    import condense.loop.checkpoint as cp

    def boom(tensors, path, metadata=None):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cp, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, resume=True)
    assert ckpt.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_noise_init_and_ipc_too_large(tiny_data):
    s = condense.loop.run(plan_for("dm", tiny_data, init="noise", iterations=0), tiny_data)
    assert s.images.shape == (6, 1, 8, 8) and abs(float(s.images.mean())) < 1.0
    with pytest.raises(condense.ConfigError, match="larger than class"):
        condense.loop.run(plan_for("dm", tiny_data, ipc=50, iterations=0), tiny_data)


def test_random_baseline_is_real_images(tiny_data):
    s = condense.loop.run(plan_for("random", tiny_data, iterations=0), tiny_data)
    real = tiny_data.normalize(tiny_data.train.images)
    for img, label in zip(s.images, s.labels, strict=True):
        matches = (real == img).flatten(1).all(1)
        assert matches.any() and int(tiny_data.train.labels[matches.nonzero()[0]]) == int(label)


def test_herding_picks_the_image_closest_to_the_mean_first():
    from condense.baselines import herding_select

    feats = torch.tensor([[0.0, 0.0], [10.0, 10.0], [4.0, 6.0], [6.0, 4.0]])
    picks = herding_select(feats, 2).tolist()
    assert picks[0] in (2, 3)  # mean is (5, 5)
    assert sorted(picks) == [2, 3]  # the pair whose mean is exactly (5, 5)


def test_herding_baseline(tiny_data):
    s = condense.loop.run(plan_for("herding", tiny_data, iterations=0), tiny_data)
    assert s.images.shape == (6, 1, 8, 8) and s.meta["method"] == "herding"


def test_metadata_describes_the_run(tiny_rgb):
    s = condense.loop.run(plan_for("datadam", tiny_rgb, iterations=1), tiny_rgb)
    m = s.meta
    assert m["method"] == "datadam" and m["dataset"] == "tiny-rgb" and m["ipc"] == 2
    assert m["class_names"] == ["r", "g", "b", "y"] and m["mean"] == [0.5, 0.5, 0.5]
    assert m["method_config"]["attention_power"] == 1.0 and m["seed"] == 3
    assert "torch" in m["versions"] and m["reproduce"].startswith("condense run datadam")


def test_zca_run_records_state_and_leaves_the_data_unchanged(tiny_rgb):
    images, stats = tiny_rgb.train.images, dict(tiny_rgb._stats)
    s = condense.loop.run(plan_for("dm", tiny_rgb, iterations=1, zca=True), tiny_rgb)
    assert s.zca_transform is not None and s.meta["zca"]["eps"] == 0.1
    # the caller's RealData is untouched: no ZCA fitted into it, same train tensor, same caches
    assert tiny_rgb.zca is None and tiny_rgb.train.images is images
    assert tiny_rgb._stats.keys() == stats.keys()


def test_no_warnings_in_default_run(tiny_rgb):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        condense.loop.run(plan_for("dm", tiny_rgb, iterations=1), tiny_rgb)


class _MeanEvaluator(condense.Evaluator):
    """Fake evaluator: reports the mean pixel value (deterministic, instant)."""

    name = "mean-pixel"

    def evaluate(self, synset, data, *, seed=0, device="cpu", progress=None):
        value = float(synset.images.mean())
        return condense.EvalResult("mean-pixel", "fake", {}, {"mean": value}, (value,))


class _EvalPlugin:
    __name__ = "eval-plugin"

    @staticmethod
    @condense.hookimpl
    def register_evaluators(register):
        register(_MeanEvaluator)


def test_periodic_evaluation_is_logged_as_json_lines(tmp_path, tiny_rgb):
    import json

    from condense.plugins import pm

    pm.register(_EvalPlugin, name="eval-plugin")
    try:
        log = tmp_path / "run.eval.jsonl"
        syn = condense.distill("dm", dataset=tiny_rgb, ipc=2, iterations=4, seed=3,
                               settings={**{k: v for k, v in SMALL.items() if k != "iterations"},
                                         "eval_every": 2},
                               evaluator="mean-pixel", eval_log=log)
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert [line["iteration"] for line in lines] == [2, 4]
        assert lines[0]["protocol"] == "fake" and "mean" in lines[0]["metrics"]
        # the artifact keeps the evaluations too (without the log's bulk)
        assert [e["iteration"] for e in syn.meta["eval_history"]] == [2, 4]
        assert syn.meta["eval_history"][0] == {k: lines[0][k] for k in
                                               ("iteration", "evaluator", "protocol", "metrics",
                                                "role")}
        # monitoring only: the run's result is the final set, never the best evaluated one
        assert {e["role"] for e in syn.meta["eval_history"]} == {"monitoring"}
        assert {line["role"] for line in lines} == {"monitoring"}
    finally:
        pm.unregister(name="eval-plugin")


def test_device_auto_and_the_loss_history(tiny_rgb, tmp_path):
    from condense.devices import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == resolve_device("AUTO") == expected
    assert resolve_device("cpu") == "cpu" and resolve_device(torch.device("cpu")).type == "cpu"
    seen = []
    small = {**{k: v for k, v in SMALL.items() if k != "iterations"}, "log_every": 2}
    syn = condense.distill("dm", dataset=tiny_rgb, ipc=2, iterations=5, device="auto",
                          settings=small, callback=seen.append)
    history = syn.meta["loss_history"]
    assert [i for i, _ in history] == [1, 2, 4, 5] == [e.iteration for e in seen]
    assert [v for _, v in history] == [float(f"{e.loss:.6g}") for e in seen]
    assert "eval_history" not in syn.meta
    back = condense.load(condense.save(syn, tmp_path / "s.safetensors"), device="auto")
    assert back.meta["loss_history"] == history and back.images.device.type == expected
    from condense.plugins import pm

    pm.register(_EvalPlugin, name="eval-plugin")
    try:
        result = condense.evaluate(syn, evaluator="mean-pixel", device="auto", data=tiny_rgb)
    finally:
        pm.unregister(name="eval-plugin")
    assert result.metrics["mean"] == pytest.approx(float(syn.images.mean()))
