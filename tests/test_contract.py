"""What the plugin contract promises, checked on every registered component and on toy methods
that use the parts of it the shipped methods do not (state across iterations, several image
steps per iteration, a sampler with other keys than the ConvNet's)."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
import torch
import torch.nn.functional as F

import condense
from condense.plugins import pm
from condense.registry import components

SPEC = condense.DataSpec(channels=3, image_size=(16, 16), num_classes=4)
SMALL = {"batch_real": 4, "iterations": 4}


def _plan(method, data, **over):
    return condense.resolve_plan(method, dataset=data.name, spec=data.spec, ipc=2, seed=3,
                                 overrides={**SMALL, **over})


# ---------------------------------------------------------------------------------------------
# every registered component (built-ins, first-party plugins, the docs example when installed)


@pytest.mark.parametrize("kind", ["methods", "samplers", "evaluators", "datasets"])
def test_every_component_names_itself_and_has_a_default_config(kind):
    comps = components(kind)
    assert comps, kind
    for name, (cls, _plugin) in comps.items():
        assert isinstance(cls.name, str) and cls.name.lower() == name
        assert not inspect.isabstract(cls), name
        assert dataclasses.is_dataclass(cls.Config) and issubclass(cls.Config, condense.Config)
        if kind != "datasets":  # imagefolder needs its paths
            cls.Config()  # every setting has a default
        for preset in cls.presets.values():
            assert isinstance(preset, dict)


def test_every_method_resolves_with_each_of_its_presets():
    loop_fields = set(condense.LoopConfig.field_names())
    for name, (cls, _) in components("methods").items():
        assert set(cls.loop_defaults) <= loop_fields, name
        plans = [condense.resolve_plan(name, dataset="x", spec=SPEC, ipc=1)]
        # a preset is checked at the IPC it names (methods may refuse others: Method.check), on
        # a spec with as many classes as the largest dataset presets exist for
        wide = dataclasses.replace(SPEC, num_classes=200)
        plans += [condense.resolve_plan(name, dataset="x", spec=wide, ipc=_preset_ipc(p), preset=p)
                  for p in cls.presets if not _needs_files(cls, p)]
        for plan in plans:
            assert isinstance(plan.method, cls) and plan.loop.iterations >= 0
            assert plan.method.state_dict() is not None


def _preset_ipc(preset):  # presets are named <dataset>-ipc<N>
    match = re.search(r"ipc(\d+)$", preset)
    return int(match.group(1)) if match else 1


def _needs_files(cls, preset):  # presets naming an external file (e.g. expert trajectories)
    return any(isinstance(v, str) and "/" in v for v in cls.presets[preset].values())


def test_every_sampler_draws_fresh_reproducible_untrainable_encoders():
    x = torch.randn(6, *[SPEC.channels, *SPEC.image_size])
    for name, (cls, _) in components("samplers").items():
        sampler = cls()
        a = sampler.sample(SPEC, generator=condense.keyed_generator(0, "t"))
        first = [p.detach().clone() for p in a.parameters()]
        assert isinstance(a, condense.Encoder) and a.training, name
        assert not any(p.requires_grad for p in a.parameters()), name
        feats = a(x)
        assert feats.embedding.shape[0] == 6 and feats.embedding.dim() == 2
        if feats.logits is not None:
            assert feats.logits.shape == (6, SPEC.num_classes)
        b = sampler.sample(SPEC, generator=condense.keyed_generator(0, "t"))
        assert all(torch.equal(p, q) for p, q in zip(first, b.parameters(), strict=True))
        trainable = sampler.sample_trainable(SPEC, generator=condense.keyed_generator(0, "t"))
        assert trainable is not b and all(p.requires_grad for p in trainable.parameters())
        assert all(torch.equal(p.detach(), q)
                   for p, q in zip(trainable.parameters(), first, strict=True))
        sampler.sample(SPEC, generator=condense.keyed_generator(1, "t"))  # re-draw the cached one
        assert all(torch.equal(p.detach(), q)
                   for p, q in zip(trainable.parameters(), first, strict=True))


def test_every_dataset_describes_its_images():
    for name, (cls, _) in components("datasets").items():
        channels = getattr(cls, "channels", None)
        if channels is None or not cls.mean:  # set per instance from the files (imagefolder)
            continue
        assert len(cls.mean) == channels and len(cls.std) == channels, name
        condense.augment.parse_strategy(cls.dsa_strategy)


# ---------------------------------------------------------------------------------------------
# method state: a network kept for `block` iterations and trained in between


class KeepNetwork(condense.Method):
    """Toy gradient-matching-like method: one network per block of iterations, trained on real
    images after each image step; the images follow its classification loss."""

    name = "keep-network"
    needs_encoder = False
    loop_defaults = {"lr_img": 0.1, "init": "real", "dsa_strategy": "none"}

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        block: int = 2
        save_state: bool = True  # False: a method that forgets its state (resume must differ)

    def __init__(self, config=None):
        super().__init__(config)
        self.net = self.opt = None
        self.born = -1
        self.pending = None

    def iteration(self, ctx):
        if self.pending is not None:  # restored state: build the network it belongs to
            self._new_network(ctx, self.pending["born"])
            self.net.load_state_dict(self.pending["net"])
            self.opt.load_state_dict(self.pending["opt"])
            self.pending = None
        if self.net is None or ctx.iteration - self.born >= self.config.block:
            self._new_network(ctx, ctx.iteration)
        syn, y = ctx.syn_images(ctx.classes), ctx.labels(ctx.classes, ctx.ipc)
        loss = F.cross_entropy(ctx.encode(syn, self.net).logits, y)
        loss.backward()  # reaches the images (and the network, zeroed below)
        self.opt.zero_grad()
        real, yr = ctx.real_images(ctx.classes, 3), ctx.labels(ctx.classes, 3)
        F.cross_entropy(ctx.encode(real, self.net).logits, yr).backward()
        self.opt.step()
        return loss.detach()

    def _new_network(self, ctx, born):
        self.net = ctx.trainable_encoder("block", born)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.05, momentum=0.9)
        self.born = born

    def state_dict(self):
        if self.net is None or not self.config.save_state:
            return {}
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "born": self.born}

    def load_state_dict(self, state):
        self.pending = dict(state) if state else None


def test_stateful_method_resumes_bitwise_from_the_middle_of_a_block(tmp_path, tiny_rgb):
    plan = _plan(KeepNetwork, tiny_rgb, iterations=6, checkpoint_every=1, block=2)
    full = condense.loop.run(plan, tiny_rgb)
    ckpt = tmp_path / "run.ckpt.safetensors"
    condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, stop_after=3)  # network born at 2 lives on
    resumed = condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, resume=True)
    assert torch.equal(full.images, resumed.images)
    init = condense.loop.run(_plan(KeepNetwork, tiny_rgb, iterations=0), tiny_rgb)
    assert not torch.equal(full.images, init.images)  # the images did move
    # the state is what makes it exact: the same method without it resumes differently
    amnesic = _plan(KeepNetwork, tiny_rgb, iterations=6, checkpoint_every=1, save_state=False)
    forgot = tmp_path / "forgot.ckpt.safetensors"
    condense.loop.run(amnesic, tiny_rgb, checkpoint=forgot, stop_after=3)
    assert not torch.equal(condense.loop.run(amnesic, tiny_rgb, checkpoint=forgot,
                                             resume=True).images, full.images)


def test_method_state_round_trips_through_a_checkpoint(tmp_path):
    from condense.loop.checkpoint import load_checkpoint, save_checkpoint

    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"net": net.state_dict(), "opt": opt.state_dict(), "cursor": (3, "a"), "lr": 0.5,
             "none": None}
    plan = {"loop": {}, "method": "unregistered", "method_config": {}, "sampler": "convnet",
            "sampler_config": {}}
    save_checkpoint(tmp_path / "c.safetensors", plan, 7, {"syn": torch.ones(2)}, state)
    back = load_checkpoint(tmp_path / "c.safetensors", plan)
    assert back.iteration == 7 and torch.equal(back.tensors["syn"], torch.ones(2))
    assert back.method_state["cursor"] == (3, "a") and back.method_state["none"] is None
    assert all(torch.equal(back.method_state["net"][k], v) for k, v in net.state_dict().items())
    opt2 = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(back.method_state["opt"])  # int keys and param groups survive
    assert torch.equal(opt2.state_dict()["state"][0]["momentum_buffer"],
                       opt.state_dict()["state"][0]["momentum_buffer"])
    with pytest.raises(condense.CheckpointError, match="neither a tensor nor JSON-able"):
        save_checkpoint(tmp_path / "d.safetensors", plan, 1, {}, {"bad": object()})


# ---------------------------------------------------------------------------------------------
# several image steps in one iteration


class TwoSteps(condense.Method):
    """Steps the images twice per iteration on d(sum)/d(syn) = 1."""

    name = "two-steps"
    needs_encoder = False
    loop_defaults = {"lr_img": 0.5, "momentum": 0.0, "init": "real"}

    def iteration(self, ctx):
        for _ in range(2):
            ctx.syn.sum().backward()
            ctx.step_images()
        return torch.zeros(())


def test_a_method_may_step_the_images_several_times(tiny_rgb):
    init = condense.loop.run(_plan(TwoSteps, tiny_rgb, iterations=0), tiny_rgb).images
    after = condense.loop.run(_plan(TwoSteps, tiny_rgb, iterations=3), tiny_rgb).images
    # 3 iterations × 2 steps × lr 0.5, and no extra loop step (it would move them further)
    assert torch.allclose(after, init - 3.0)


# ---------------------------------------------------------------------------------------------
# a sampler that knows nothing of the ConvNet's keys


class WidthOnlySampler(condense.EncoderSampler):
    """A one-block ConvNet whose only setting is its width."""

    name = "width-only"

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        width: int = 8

    def sample(self, spec, *, generator, device="cpu"):
        net = condense.networks.ConvNet(spec.channels, spec.num_classes, spec.image_size,
                                        width=self.config.width, depth=1)
        encoder = condense.networks.FeatureEncoder(net)
        condense.networks.reinit_(encoder, generator)
        return encoder.to(device).requires_grad_(False).train()


class _WidthPlugin:
    __name__ = "width-only-sampler"

    @staticmethod
    @condense.hookimpl
    def register_encoder_samplers(register):
        register(WidthOnlySampler)


@pytest.fixture
def width_sampler():
    pm.register(_WidthPlugin, name="width-only-sampler")
    yield
    pm.unregister(name="width-only-sampler")


@pytest.mark.parametrize("method", ["dm", "datadam"])
def test_a_sampler_with_only_a_width_runs_under_the_shipped_methods(method, tiny_rgb,
                                                                     width_sampler):
    # dm and datadam default sampler.norm; this sampler has no such key: the default is skipped
    plan = _plan(method, tiny_rgb, sampler="width-only", iterations=2, **{"sampler.width": 4})
    assert plan.sampler.config.to_dict() == {"width": 4}
    out = condense.loop.run(plan, tiny_rgb)
    assert out.meta["sampler"] == "width-only" and torch.isfinite(out.images).all()
    with pytest.raises(condense.ConfigError, match="sampler.norm"):  # asked for by the user
        _plan(method, tiny_rgb, sampler="width-only", **{"sampler.norm": "batchnorm"})


# ---------------------------------------------------------------------------------------------
# settings: one precedence order, prefixes, resumable fields


def test_prefixes_address_every_config_and_bare_keys_must_be_unique(tiny_rgb):
    plan = _plan("dm", tiny_rgb, **{"loop.lr_img": 3.0, "method.embedding_weight": 2.0,
                                    "dm.embedding_weight": 4.0, "sampler.width": 16})
    assert plan.loop.lr_img == 3.0 and plan.method.config.embedding_weight == 4.0
    assert plan.sampler.config.width == 16

    class Shadow(condense.Method):  # a method field named like a loop field
        name = "shadow"

        @dataclasses.dataclass(frozen=True)
        class Config(condense.Config):
            lr_img: float = 1.0

        def iteration(self, ctx):
            return torch.zeros(())

    with pytest.raises(condense.ConfigError, match="ambiguous.*method.lr_img or loop.lr_img"):
        _plan(Shadow, tiny_rgb, lr_img=2.0)
    p = _plan(Shadow, tiny_rgb, **{"method.lr_img": 2.0, "loop.lr_img": 5.0})
    assert p.method.config.lr_img == 2.0 and p.loop.lr_img == 5.0


def test_resumable_settings_are_declared_on_the_field():
    assert "iterations" in condense.LoopConfig.resumable_fields()
    assert "class_chunk" in condense.LoopConfig.resumable_fields()
    assert "lr_img" not in condense.LoopConfig.resumable_fields()

    @dataclasses.dataclass(frozen=True)
    class Cfg(condense.Config):
        depth: int = 3
        log_images: int = condense.setting(0, resumable=True)

    assert Cfg.resumable_fields() == {"log_images"}


def test_a_resumable_method_setting_may_change_on_resume(tmp_path, tiny_rgb):
    @dataclasses.dataclass(frozen=True)
    class Cfg(condense.Config):
        weight: float = 1.0
        note: str = condense.setting("a", resumable=True)

    class Noted(condense.FeatureMatching):
        name = "noted"
        Config = Cfg

        def loss(self, real, syn):
            return ((real.embedding.mean(1) - syn.embedding.mean(1)) ** 2).sum()

    class _P:
        __name__ = "noted-plugin"

        @staticmethod
        @condense.hookimpl
        def register_methods(register):
            register(Noted)

    pm.register(_P, name="noted-plugin")
    try:
        ckpt = tmp_path / "c.safetensors"
        condense.loop.run(_plan("noted", tiny_rgb, **{"sampler.width": 8}), tiny_rgb,
                          checkpoint=ckpt, stop_after=2)
        again = _plan("noted", tiny_rgb, note="b", **{"sampler.width": 8})
        assert condense.loop.run(again, tiny_rgb, checkpoint=ckpt, resume=True).meta[
            "iterations"] == 4
        with pytest.raises(condense.CheckpointError, match="weight"):
            condense.loop.run(_plan("noted", tiny_rgb, weight=2.0, **{"sampler.width": 8}),
                              tiny_rgb, checkpoint=ckpt, resume=True)
    finally:
        pm.unregister(name="noted-plugin")


class Picky(condense.Method):
    """A method that runs only at even IPC and only on the whole class set."""

    name = "picky"
    needs_encoder = False
    class_shardable = False
    loop_defaults = {"init": "real", "dsa_strategy": "none"}

    def check(self, spec, ipc):
        if ipc % 2:
            raise condense.ConfigError(f"picky needs an even IPC, not {ipc}")

    def iteration(self, ctx):
        loss = ctx.syn_images(ctx.classes).square().mean()
        loss.backward()
        return loss.detach()


def test_method_check_refuses_a_plan_before_any_data(tiny_rgb):
    with pytest.raises(condense.ConfigError, match="even IPC, not 3"):
        condense.resolve_plan(Picky, dataset="x", spec=tiny_rgb.spec, ipc=3)
    plan = condense.resolve_plan(Picky, dataset="x", spec=tiny_rgb.spec, ipc=2,
                                 overrides={"iterations": 1, "checkpoint_every": 0})
    assert condense.loop.run(plan, tiny_rgb).images.shape[0] == 2 * tiny_rgb.spec.num_classes


def test_a_method_that_is_not_class_shardable_refuses_a_class_subset(tiny_rgb):
    plan = condense.resolve_plan(Picky, dataset="x", spec=tiny_rgb.spec, ipc=2,
                                 overrides={"iterations": 1, "checkpoint_every": 0})
    with pytest.raises(condense.ConfigError, match="picky cannot run on a subset of the classes"):
        condense.loop.run(plan, tiny_rgb, classes=[0])
    every = list(range(tiny_rgb.spec.num_classes))[::-1]  # all classes, in any order: allowed
    assert condense.loop.run(plan, tiny_rgb, classes=every).images.shape[0] == 2 * len(every)
