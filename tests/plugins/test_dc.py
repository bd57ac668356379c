"""DC and DSA (gradient matching): distance, loops, engines, BatchNorm branch, DSA, resume, CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import condense
import condense_dc
from condense.plugins import pm
from condense_dc import DC, DSA, OFFICIAL_LOOPS, get_loops, gradient_distance, layer_distance

from tolerance import assert_close

if not pm.has_plugin("condense_dc"):  # autoload is off in tests; conftest may not list it yet
    pm.register(condense_dc, name="condense_dc")

#: small, fast settings for tiny-rgb (4 classes × 10 images of 3×16×16)
SMALL = {"sampler.width": 8, "batch_real": 5, "batch_train": 6, "checkpoint_every": 1,
         "log_every": 1}


def plan_for(method: str, data: condense.RealData, ipc: int = 2, **over: object) -> condense.Plan:
    settings = {**SMALL, "iterations": 3, "outer_loop": 2, "inner_loop": 2, **over}
    preset = settings.pop("preset", None)
    return condense.resolve_plan(method, dataset=data.name, spec=data.spec, ipc=ipc, seed=5,
                                 preset=preset, overrides=settings)  # type: ignore[arg-type]


def context(plan: condense.Plan, data: condense.RealData, *, iteration: int = 0,
            dsa: str = "none") -> tuple[condense.loop.LoopContext, DC]:
    """A loop context with an image optimiser (the method steps the images itself)."""
    data = data.prepared("cpu")
    method = type(plan.method)(plan.method.config)
    syn = torch.randn(data.spec.num_classes * plan.ipc, data.spec.channels, *data.spec.image_size,
                      generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=plan.loop.lr_img, momentum=plan.loop.momentum)
    ctx = condense.loop.LoopContext(data=data, syn=syn, optimizer=opt, loop=plan.loop,
                                    sampler=plan.sampler, ipc=plan.ipc, seed=plan.seed,
                                    device=torch.device("cpu"),
                                    classes=range(data.spec.num_classes), dsa_strategy=dsa)
    method.initialize(data, ipc=plan.ipc, seed=plan.seed, sampler=plan.sampler)
    ctx.begin(iteration, draw_encoder=False)
    return ctx, method  # type: ignore[return-value]


# -- the distance ---------------------------------------------------------------------------------


def test_distance_is_zero_for_equal_gradients():
    g = [torch.randn(4, 3, 3, 3), torch.randn(4), torch.randn(5, 7), torch.randn(2, 3, 3)]
    assert gradient_distance(g, [t.clone() for t in g], "ours").abs().item() < 1e-5
    assert gradient_distance(g, [t.clone() for t in g], "mse").item() == 0.0
    assert abs(gradient_distance(g, [t.clone() for t in g], "cos").item()) < 1e-5


def test_distance_hand_computed_two_output_channels():
    # a conv gradient, 2 output channels of (1, 1, 2): rows [1, 0], [0, 1] vs [1, 0], [1, 0]
    real = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])  # (2, 1, 1, 2)
    syn = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    # channel 0: cos 1 -> 0; channel 1: cos 0 -> 1 (up to the 1e-6 in the denominator)
    assert math.isclose(layer_distance(syn, real).item(), 1.0, rel_tol=1e-5)
    # rows [3, 4] vs [4, 3]: cos = 24/25 -> 1/25; rows [1, 0] vs [-1, 0]: cos -1 -> 2
    real = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # linear (out=2, in=2) stays as is
    syn = torch.tensor([[4.0, 3.0], [-1.0, 0.0]])
    assert math.isclose(layer_distance(syn, real).item(), 1 / 25 + 2, rel_tol=1e-5)
    assert math.isclose(gradient_distance([syn], [real], "ours").item(), 2.04, rel_tol=1e-5)
    # mse: (1² + 1²) + 2² = 6; cos of [3, 4, 1, 0] and [4, 3, -1, 0]: 23/26
    assert gradient_distance([syn], [real], "mse").item() == 6.0
    assert math.isclose(gradient_distance([syn], [real], "cos").item(), 1 - 23 / 26, rel_tol=1e-5)


def test_bias_and_norm_terms_contribute_zero_to_ours_but_not_to_mse():
    w = torch.randn(3, 2, 3, 3)
    bias_r, bias_s = torch.randn(3), torch.randn(3)
    base = gradient_distance([w], [w.clone()], "ours")
    with_bias = gradient_distance([w, bias_s], [w.clone(), bias_r], "ours")
    assert with_bias.item() == base.item()
    assert layer_distance(bias_s, bias_r).item() == 0.0
    assert gradient_distance([bias_s], [bias_r], "mse").item() > 0
    # a 3-D (LayerNorm C×h×w) gradient is viewed as (C, h·w): one cosine per channel
    ln_r, ln_s = torch.randn(4, 2, 2), torch.randn(4, 2, 2)
    expect = sum(1 - torch.dot(ln_r[c].flatten(), ln_s[c].flatten())
                 / (ln_r[c].norm() * ln_s[c].norm() + 1e-6) for c in range(4))
    assert math.isclose(layer_distance(ln_s, ln_r).item(), float(expect), rel_tol=1e-5)


def test_batched_distance_equals_one_by_one():
    k = 3
    real = [torch.randn(k, 4, 2, 3, 3), torch.randn(k, 4), torch.randn(k, 5, 8)]
    syn = [torch.randn(k, 4, 2, 3, 3), torch.randn(k, 4), torch.randn(k, 5, 8)]
    for metric in ("ours", "mse", "cos"):
        batched = gradient_distance(syn, real, metric, batch_dims=1)
        each = torch.stack([gradient_distance([s[i] for s in syn], [r[i] for r in real], metric)
                            for i in range(k)])
        assert batched.shape == (k,)
        assert_close(batched, each, what=f"{metric} distance per class")


# -- loops, defaults, presets ---------------------------------------------------------------------


def test_get_loops_table_and_error():
    assert get_loops(1) == (1, 1) and get_loops(10) == (10, 50) and get_loops(50) == (50, 10)
    assert dict(OFFICIAL_LOOPS) == {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20),
                                    40: (40, 15), 50: (50, 10)}
    with pytest.raises(condense.ConfigError, match="outer_loop.*inner_loop"):
        get_loops(5)


def test_loops_are_recorded_in_the_plan_and_other_ipcs_need_both(tiny_rgb):
    spec = condense.DataSpec(3, (32, 32), 10)
    plan = condense.resolve_plan("dc", dataset="x", spec=spec, ipc=10)
    assert (plan.method.config.outer_loop, plan.method.config.inner_loop) == (10, 50)
    assert plan.to_dict()["method_config"]["inner_loop"] == 50  # stored in the artifact
    # refused when the plan is resolved, before any data is loaded
    with pytest.raises(condense.ConfigError, match="IPC 1, 10, 20, 30, 40, 50, not 5"):
        condense.resolve_plan("dc", dataset="x", spec=spec, ipc=5)
    with pytest.raises(condense.ConfigError):
        condense.resolve_plan("dc", dataset="x", spec=spec, ipc=5, overrides={"outer_loop": 3})
    both = condense.resolve_plan("dc", dataset="x", spec=spec, ipc=5,
                                 overrides={"outer_loop": 3, "inner_loop": 0})
    assert both.method.loops(5) == (3, 0)
    with pytest.raises(condense.ConfigError, match="outer_loop"):
        condense.resolve_plan("dc", dataset="x", spec=spec, ipc=1, overrides={"outer_loop": 0})


def test_defaults_follow_the_official_code():
    spec = condense.DataSpec(1, (28, 28), 10)
    dc = condense.resolve_plan("dc", dataset="x", spec=spec, ipc=1)
    assert dc.loop.iterations == 1000 and dc.loop.lr_img == 0.1 and dc.loop.momentum == 0.5
    assert dc.loop.batch_real == 256 and dc.loop.init == "noise" and dc.loop.dsa_strategy == "none"
    assert dc.sampler.config.norm == "instancenorm" and dc.sampler.config.width == 128
    c = dc.method.config
    assert (c.lr_net, c.momentum_net, c.batch_train, c.dis_metric, c.bn_images) == (
        0.01, 0.0, 256, "ours", 16)
    dsa = condense.resolve_plan("dsa", dataset="x", spec=spec, ipc=10)
    assert dsa.loop.dsa_strategy == "auto" and dsa.loop.init == "real"
    assert dsa.method.config.outer_loop == 10
    bn = condense.resolve_plan("dsa", dataset="x", spec=spec, ipc=50, preset="dsa-bn")
    assert bn.sampler.config.norm == "batchnorm" and bn.loop.lr_img == 0.1


# -- one iteration --------------------------------------------------------------------------------


def test_gradient_reaches_every_class_of_the_synthetic_images(tiny_rgb, one_thread):
    plan = plan_for("dc", tiny_rgb)
    ctx, method = context(plan, tiny_rgb)
    net = ctx.trainable_encoder()
    chunk = list(range(4))
    loss = method._match_reference(ctx, net, ctx.real_images(chunk, 5, 0),
                                   ctx.syn_images(chunk), chunk)
    loss.backward(inputs=[ctx.syn])
    per_class = ctx.syn.grad.reshape(4, -1).abs().sum(1)
    assert loss.item() > 0 and bool((per_class > 0).all())
    assert all(p.grad is None for p in net.parameters())  # the network gets no gradient


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm"])
@pytest.mark.parametrize("metric", ["ours", "mse", "cos"])
def test_batched_engine_equals_the_reference_loop(tiny_rgb, one_thread, norm, metric):
    plan = plan_for("dsa", tiny_rgb, **{"sampler.norm": norm, "dis_metric": metric})
    out = {}
    for engine in ("reference", "batched"):
        ctx, method = context(plan, tiny_rgb, dsa="color_crop_cutout_flip_scale_rotate")
        net = ctx.trainable_encoder()
        if norm == "batchnorm":
            method._freeze_batchnorm(ctx, net, 0)
        chunk = [0, 1, 2, 3]
        real, syn = ctx.augment_pair(ctx.real_images(chunk, 5, 0), ctx.syn_images(chunk), chunk,
                                     0)
        match = method._match_batched if engine == "batched" else method._match_reference
        loss = match(ctx, net, real, syn, chunk)
        loss.backward(inputs=[ctx.syn])
        out[engine] = (loss.detach(), ctx.syn.grad.clone())
    assert_close(out["batched"][0], out["reference"][0], what=f"{metric} loss")
    assert_close(out["batched"][1], out["reference"][1], what=f"{metric} image gradients")
    assert out["reference"][1].abs().sum() > 0


def test_batched_engine_runs_equal_the_reference_runs(tiny_rgb, one_thread):
    ref = condense.loop.run(plan_for("dsa", tiny_rgb, engine="reference"), tiny_rgb).images
    bat = condense.loop.run(plan_for("dsa", tiny_rgb, engine="batched"), tiny_rgb).images
    assert_close(bat, ref, rel=1e-4, what="images after 3 iterations")  # 6 steps of rounding


def test_inner_loop_trains_the_network_and_the_next_outer_step_sees_it(tiny_rgb, one_thread):
    seen: list[list[torch.Tensor]] = []
    trained: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    class Spy(DC):
        def _match_reference(self, ctx, net, real, syn, chunk):
            seen.append([p.detach().clone() for p in net.parameters()])
            return super()._match_reference(ctx, net, real, syn, chunk)

        def _train_network(self, ctx, net, opt, epochs, ol):
            before = [p.detach().clone() for p in net.parameters()]
            super()._train_network(ctx, net, opt, epochs, ol)
            trained.append((before, [p.detach().clone() for p in net.parameters()]))

    plan = plan_for("dc", tiny_rgb, outer_loop=3, inner_loop=2)
    ctx, _ = context(plan, tiny_rgb)
    spy = Spy(plan.method.config)
    spy.initialize(ctx.data, ipc=plan.ipc, seed=plan.seed, sampler=plan.sampler)
    spy.iteration(ctx)
    assert len(seen) == 3 and len(trained) == 2  # no training after the last outer step
    for ol, (before, after) in enumerate(trained):
        assert all(torch.equal(a, b) for a, b in zip(before, seen[ol], strict=True))
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        assert all(torch.equal(a, b) for a, b in zip(after, seen[ol + 1], strict=True))


def test_inner_loop_changes_the_result(tiny_rgb, one_thread):
    a = condense.loop.run(plan_for("dc", tiny_rgb, inner_loop=0), tiny_rgb).images
    b = condense.loop.run(plan_for("dc", tiny_rgb, inner_loop=2), tiny_rgb).images
    assert not torch.equal(a, b)


def test_outer_loop_steps_the_images_each_time(tiny_rgb, one_thread):
    steps = []
    plan = plan_for("dc", tiny_rgb, outer_loop=3, inner_loop=1)
    ctx, method = context(plan, tiny_rgb)
    original = ctx.step_images
    ctx.step_images = lambda: (steps.append(ctx.syn.detach().clone()), original())  # type: ignore
    loss = method.iteration(ctx)
    assert len(steps) == 3 and loss.shape == () and not loss.requires_grad
    assert all(not torch.equal(a, b) for a, b in zip(steps, steps[1:], strict=False))
    after = ctx.syn.detach().clone()
    ctx.finish()  # the loop does not step again
    assert torch.equal(ctx.syn.detach(), after) and ctx.syn.grad is None


def test_batchnorm_statistics_are_set_from_real_images_then_frozen(tiny_rgb, one_thread):
    plan = plan_for("dc", tiny_rgb, **{"sampler.norm": "batchnorm", "bn_images": 3})
    ctx, method = context(plan, tiny_rgb)
    net = ctx.trainable_encoder()
    method._freeze_batchnorm(ctx, net, 0)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns) and net.training
    real = ctx.real_images(range(4), 3, "bn", 0)
    assert real.shape[0] == 12  # 3 per class, all classes in one pass
    first = bns[0]
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        batch_mean = conv(real).mean(dim=(0, 2, 3))
    # one train-mode pass from the initial statistics (0) with PyTorch's momentum 0.1
    assert_close(first.running_mean, 0.1 * batch_mean, what="running mean")
    # frozen: matching no longer changes the statistics
    frozen = first.running_mean.clone()
    chunk = [0, 1, 2, 3]
    method._match_reference(ctx, net, ctx.real_images(chunk, 5, 0),
                            ctx.syn_images(chunk), chunk)
    assert torch.equal(first.running_mean, frozen)


def test_real_batches_are_new_every_outer_step(tiny_rgb):
    plan = plan_for("dc", tiny_rgb)
    ctx, _ = context(plan, tiny_rgb)
    a = ctx.real_images([0, 1], 5, 0)  # the batch of outer step 0
    assert torch.equal(a, ctx.real_images([0, 1], 5, 0))  # keyed: reproducible
    assert not torch.equal(a, ctx.real_images([0, 1], 5, 1))  # outer step 1 draws anew


def test_dsa_is_siamese_per_class_and_new_every_outer_step(tiny_rgb):
    plan = plan_for("dsa", tiny_rgb)
    strategy = "crop"
    ctx, _ = context(plan, tiny_rgb, dsa=strategy)
    chunk = [0, 1]
    real, syn = ctx.real_images(chunk, 5, 0), ctx.syn_images(chunk).detach()
    real_aug, syn_aug = ctx.augment_pair(real, syn, chunk, 0)
    for i, c in enumerate(chunk):
        params = condense.augment.sample_params(1, strategy, (16, 16), ctx.generator(c, "dsa", 0))
        same = torch.zeros(5, dtype=torch.long)  # the one parameter set on every row
        expect_r = condense.augment.apply(real[i * 5:(i + 1) * 5], params.take(same))
        expect_s = condense.augment.apply(syn[i * 2:(i + 1) * 2], params.take(same[:2]))
        assert torch.equal(real_aug[i * 5:(i + 1) * 5], expect_r)
        assert torch.equal(syn_aug[i * 2:(i + 1) * 2], expect_s)
    other, _ = ctx.augment_pair(real, syn, chunk, 1)
    assert not torch.equal(other, real_aug)
    # gradients flow through the augmentation to the synthetic images
    syn_leaf = ctx.syn_images(chunk)
    _, out = ctx.augment_pair(real, syn_leaf, chunk, 0)
    out.sum().backward()
    assert ctx.syn.grad is not None and ctx.syn.grad[:4].abs().sum() > 0


def test_inner_loop_augments_only_with_dsa(tiny_rgb, one_thread):
    calls = []

    class Spy(condense.loop.LoopContext):
        def augment(self, x, *keys):
            out = super().augment(x, *keys)
            calls.append((keys[:1], out is x))
            return out

    for strategy, changed in (("none", False), ("flip", True)):
        calls.clear()
        plan = plan_for("dc", tiny_rgb)
        ctx, method = context(plan, tiny_rgb, dsa=strategy)
        ctx.__class__ = Spy
        method.iteration(ctx)
        train = [same for keys, same in calls if keys == ("train",)]
        assert train and all(same is not changed for same in train)


def test_sharded_classes_are_refused(tiny_rgb):
    with pytest.raises(condense.ConfigError, match="dc cannot run on a subset of the classes"):
        condense.loop.run(plan_for("dc", tiny_rgb), tiny_rgb, classes=[0, 1])
    assert not DC.class_shardable and not DSA.class_shardable


def test_a_network_without_a_classifier_is_refused(tiny_rgb):
    plan = plan_for("dc", tiny_rgb)
    ctx, method = context(plan, tiny_rgb)

    class NoHead(condense.Encoder):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return condense.Features(self.conv(x).flatten(1))

    ctx.trainable_encoder = lambda *keys: NoHead()  # type: ignore[method-assign]
    with pytest.raises(condense.ConfigError, match="classifier"):
        method.iteration(ctx)


# -- runs: reproducibility, resume ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["dc", "dsa"])
def test_same_seed_gives_bitwise_identical_images(method, tiny_rgb, one_thread):
    a = condense.loop.run(plan_for(method, tiny_rgb), tiny_rgb)
    b = condense.loop.run(plan_for(method, tiny_rgb), tiny_rgb)
    assert torch.equal(a.images, b.images)
    init = condense.loop.run(plan_for(method, tiny_rgb, iterations=0), tiny_rgb).images
    assert not torch.equal(a.images, init)
    assert a.meta["method_config"]["outer_loop"] == 2


@pytest.mark.parametrize("method,norm", [("dc", "instancenorm"), ("dsa", "batchnorm")])
def test_resume_equals_uninterrupted(method, norm, tmp_path, tiny_rgb, one_thread):
    plan = plan_for(method, tiny_rgb, iterations=4, **{"sampler.norm": norm})
    full = condense.loop.run(plan, tiny_rgb)
    ckpt = tmp_path / "run.ckpt.safetensors"
    condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, stop_after=2)  # "killed" after 2
    resumed = condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, resume=True)
    assert torch.equal(full.images, resumed.images)
    assert resumed.meta["iterations"] == 4


def test_method_state_is_empty_and_round_trips():
    method = DSA()
    assert method.state_dict() == {}
    method.load_state_dict({})  # nothing survives an iteration: the network is drawn per iteration


# -- CLI, listing ---------------------------------------------------------------------------------


def test_listed_by_condense_list_and_plugins():
    from condense.cli import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["list", "--json"])
    assert r.exit_code == 0, r.output
    methods = {e["name"]: e for e in json.loads(r.stdout)["methods"]}
    assert {"dc", "dsa"} <= set(methods) and methods["dsa"]["presets"] == ["dsa-bn"]
    r = runner.invoke(cli, ["plugins", "--json"])
    assert r.exit_code == 0, r.output
    ours = [p for p in json.loads(r.stdout) if p["name"] in ("condense_dc", "dc")]
    assert ours and "register_methods" in ours[0]["hooks"]


@pytest.mark.slow
def test_installed_distribution_is_discovered():
    env = {k: v for k, v in os.environ.items() if k != "CONDENSE_DISABLE_PLUGIN_AUTOLOAD"}
    r = subprocess.run([sys.executable, "-m", "condense", "plugins", "--json"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    dists = {p["distribution"]: p["version"] for p in json.loads(r.stdout)}
    assert dists.get("condense-dc") == "0.1.0", dists


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dc", "dsa"])
def test_fashion_mnist_through_the_cli(method, fmnist_available, tmp_path):
    from condense.cli import cli

    runner = CliRunner()
    out = tmp_path / f"{method}.safetensors"
    r = runner.invoke(cli, ["run", method, "--dataset", "fashion-mnist", "--ipc", "1",
                            "--iterations", "2", "--set", "batch_real=16",
                            "--set", "sampler.width=32", "--no-progress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    syn = condense.load(out)
    assert syn.images.shape == (10, 1, 28, 28) and syn.labels.tolist() == list(range(10))
    assert syn.meta["iterations"] == 2 and syn.meta["method"] == method
    assert syn.meta["method_config"]["outer_loop"] == 1
    init = condense.distill(method, dataset="fashion-mnist", ipc=1, iterations=0,
                            settings={"batch_real": 16, "sampler.width": 32})
    assert not torch.equal(init.images, syn.images)  # two image updates moved the images
    assert torch.isfinite(syn.images).all()
