from __future__ import annotations

import dataclasses

import pytest
import torch

import condense
from condense.plugins import pm
from condense.registry import components, describe


class FakeMethod(condense.FeatureMatching):
    """A fake method for registry tests."""

    name = "fake-method"

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        weight: float = 1.0

    def loss(self, real, syn):
        return self.config.weight * (real.embedding.mean(1) - syn.embedding.mean(1)).pow(2).sum()


class FakePlugin:
    __name__ = "fake-plugin"

    @staticmethod
    @condense.hookimpl
    def register_methods(register):
        register(FakeMethod)


@pytest.fixture
def fake_plugin():
    pm.register(FakePlugin, name="fake-plugin")
    try:
        yield
    finally:
        pm.unregister(name="fake-plugin")


def test_builtins_and_first_party_are_listed():
    assert {"datadam", "dm", "random", "herding"} <= set(components("methods"))
    assert "convnet" in components("samplers")
    assert {"mnist", "fashion-mnist"} <= set(components("datasets"))


def test_fake_plugin_registers_and_unregisters(fake_plugin):
    assert condense.get_method("fake-method") is FakeMethod
    assert components("methods")["fake-method"][1] == "fake-plugin"


def test_fake_plugin_gone_after_fixture():
    assert "fake-method" not in components("methods")


def test_unknown_name_lists_installed():
    with pytest.raises(condense.UnknownComponentError) as exc:
        condense.get_method("datadamm")
    msg = str(exc.value)
    assert "datadam" in msg and "dm" in msg and "Did you mean 'datadam'" in msg


def test_case_insensitive_and_aliases():
    assert condense.get_method("DataDAM").name == "datadam"
    assert condense.get_dataset("FashionMNIST").name == "fashion-mnist"
    assert condense.get_dataset("fashion_mnist").name == "fashion-mnist"


def test_duplicate_names_name_both_plugins(fake_plugin):
    class Other:
        __name__ = "other-plugin"

        @staticmethod
        @condense.hookimpl
        def register_methods(register):
            register(type("Clash", (FakeMethod,), {"name": "fake-method"}))

    pm.register(Other, name="other-plugin")
    try:
        with pytest.raises(condense.DuplicateComponentError) as exc:
            components("methods")
        assert "fake-plugin" in str(exc.value) and "other-plugin" in str(exc.value)
    finally:
        pm.unregister(name="other-plugin")


def test_describe_lists_config_and_presets():
    entry = next(e for e in describe("methods") if e["name"] == "datadam")
    assert entry["config"]["attention_power"] == 1.0
    assert "datadam-paper" in entry["presets"]
    ds = next(e for e in describe("datasets") if e["name"] == "fashion-mnist")
    assert ds["channels"] == 1 and ds["mean"] == [0.2861]


def test_fake_method_runs_through_the_loop(fake_plugin, tiny_data):
    plan = condense.resolve_plan("fake-method", dataset="tiny", spec=tiny_data.spec, ipc=2,
                                 overrides={"iterations": 2, "batch_real": 4, "sampler.width": 8})
    syn = condense.loop.run(plan, tiny_data)
    assert syn.images.shape == (6, 1, 8, 8)
    assert torch.isfinite(syn.images).all()
