from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.plugins import pm
from condense.registry import components, describe, plugin_problems


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


def test_duplicate_names_break_only_that_name(fake_plugin):
    class Other:
        __name__ = "other-plugin"

        @staticmethod
        @condense.hookimpl
        def register_methods(register):
            register(type("Clash", (FakeMethod,), {"name": "fake-method"}))

    pm.register(Other, name="other-plugin")
    try:
        with pytest.raises(condense.DuplicateComponentError) as exc:
            condense.get_method("fake-method")
        msg = str(exc.value)
        assert "fake-plugin" in msg and "other-plugin" in msg
        assert "CONDENSE_DISABLED_PLUGINS" in msg
        assert condense.get_method("dm").name == "dm"  # every other name still resolves
        listed = {e["name"] for e in describe("methods")}
        assert "dm" in listed and "fake-method" not in listed  # listings still work
        assert "fake-method" not in components("methods")
        duplicate = [p for p in plugin_problems() if p.kind == "duplicate"]
        assert len(duplicate) == 1 and duplicate[0].message == msg
        r = CliRunner().invoke(cli, ["list", "methods"])
        assert r.exit_code == 0, r.output
        assert "datadam" in r.stdout
        warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
        assert len(warnings) == 1 and "'fake-method' is registered twice" in warnings[0]
    finally:
        pm.unregister(name="other-plugin")
    assert condense.get_method("fake-method") is FakeMethod


def _register_one(cls, plugin_name="my-plugin"):
    class Plugin:
        __name__ = plugin_name

        @staticmethod
        @condense.hookimpl
        def register_methods(register):
            register(cls)

    pm.register(Plugin, name=plugin_name)


def test_abstract_class_is_refused_at_registration():
    class MyMethod(condense.Method):
        name = "half-done"

    _register_one(MyMethod)
    try:
        assert "half-done" not in components("methods")
        expected = "plugin 'my-plugin': method MyMethod is abstract: implement iteration"
        refused = [p for p in plugin_problems() if p.kind == "refused"]
        assert [p.message for p in refused] == [expected + " (not registered)"]
        with pytest.raises(condense.UnknownComponentError) as exc:
            condense.get_method("half-done")
        assert str(exc.value) == f"method 'half-done' was refused: {expected}"
        r = CliRunner().invoke(cli, ["list", "methods", "--json"])
        assert r.exit_code == 0 and "Traceback" not in r.output
        assert f"warning: {expected}" in r.stderr
        assert "half-done" not in {e["name"] for e in json.loads(r.stdout)}
    finally:
        pm.unregister(name="my-plugin")
    assert plugin_problems() == []


def test_class_without_name_is_refused():
    class Nameless(FakeMethod):
        name = None  # type: ignore[assignment]

    _register_one(Nameless)
    try:
        assert [p.message for p in plugin_problems()] == [
            "plugin 'my-plugin': method Nameless has no 'name' attribute (not registered)"]
        assert "fake-method" not in components("methods")
    finally:
        pm.unregister(name="my-plugin")


def test_config_must_be_a_config_dataclass():
    class Loose(FakeMethod):
        name = "loose"

        class Config(condense.Config):  # forgot @dataclasses.dataclass: `weight` is no field
            weight: float = 2.0

    _register_one(Loose)
    try:
        with pytest.raises(condense.UnknownComponentError, match="Config is not a dataclass"):
            condense.get_method("loose")
    finally:
        pm.unregister(name="my-plugin")


def test_registration_hook_that_raises_is_recorded():
    class Broken:
        __name__ = "broken-hook"

        @staticmethod
        @condense.hookimpl
        def register_methods(register):
            register(FakeMethod)
            raise RuntimeError("boom")

    pm.register(Broken, name="broken-hook")
    try:
        assert "fake-method" not in components("methods") and "dm" in components("methods")
        (problem,) = plugin_problems()
        assert problem.kind == "register" and "RuntimeError: boom" in problem.message
        assert "Traceback" in problem.traceback
    finally:
        pm.unregister(name="broken-hook")


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


# --- core-only installs: a first-party name that is not loaded says what to pip install ---------

FIRST_PARTY_MODULES = {"condense_datadam": "condense-datadam", "condense_dm": "condense-dm",
                       "condense_dc": "condense-dc", "condense_mtt": "condense-mtt",
                       "condense_evaluators": "condense-evaluators"}


@pytest.fixture
def without_plugin(monkeypatch):
    """Unregister a first-party plugin for one test (as on a core-only install); put it back."""
    from condense import registry

    removed = []
    monkeypatch.setattr(registry, "_installed", lambda dist: False)

    def remove(name):
        removed.append((name, pm.unregister(name=name)))

    yield remove
    for name, module in removed:
        pm.register(module, name=name)


def test_first_party_table_names_what_the_plugins_register():
    """registry.FIRST_PARTY lists every name (and CLI-usable preset) a first-party plugin
    registers, with its distribution; no stale entries."""
    from condense.registry import FIRST_PARTY

    for kind in ("methods", "evaluators"):
        loaded_dists = set()
        for name, (_cls, plugin) in components(kind).items():
            if plugin in FIRST_PARTY_MODULES:
                loaded_dists.add(FIRST_PARTY_MODULES[plugin])
                assert FIRST_PARTY[kind].get(name) == FIRST_PARTY_MODULES[plugin], (kind, name)
        for name, dist in FIRST_PARTY[kind].items():
            if dist not in loaded_dists:
                continue  # plugin not importable in this checkout
            owners = [FIRST_PARTY_MODULES.get(plugin) for n, (cls, plugin)
                      in components(kind).items() if n == name or name in cls.presets]
            assert owners == [dist], (kind, name, owners)


def test_core_only_method_names_the_distribution(without_plugin):
    without_plugin("condense_dm")
    with pytest.raises(condense.UnknownComponentError) as exc:
        condense.get_method("dm")
    msg = str(exc.value)
    assert msg.startswith("unknown method 'dm'; installed methods: ")
    assert "herding" in msg and "random" in msg  # the installed list stays
    assert msg.endswith(
        "'dm' is provided by condense-dm: pip install condense-dm (or \"condense-toolbox[all]\").")
    with pytest.raises(condense.UnknownComponentError, match="pip install condense-dm"):
        condense.get_method("DM_BN")  # a preset name the CLI accepts as METHOD, any spelling
    with pytest.raises(condense.UnknownComponentError) as exc:
        condense.get_method("dmm")
    assert "pip install" not in str(exc.value)  # not a first-party name: no install hint


def test_core_only_evaluator_names_the_distribution(without_plugin):
    without_plugin("condense_evaluators")
    with pytest.raises(condense.UnknownComponentError) as exc:
        condense.get_evaluator("accuracy")
    assert str(exc.value) == (
        "unknown evaluator 'accuracy'; installed evaluators: (none). 'accuracy' is provided by "
        "condense-evaluators: pip install condense-evaluators (or \"condense-toolbox[all]\").")


def test_core_only_preset_and_cli_name_the_distribution(without_plugin):
    without_plugin("condense_datadam")
    with pytest.raises(condense.UnknownComponentError) as exc:
        condense.get_method("datadam-paper")
    msg = str(exc.value)
    assert "installed methods: " in msg and "pip install condense-datadam" in msg
    r = CliRunner().invoke(cli, ["run", "datadam", "--dataset", "tiny", "--ipc", "1"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "pip install condense-datadam (or \"condense-toolbox[all]\")" in r.stderr


def test_installed_but_not_loaded_plugin_is_not_told_to_pip_install(without_plugin, monkeypatch):
    from condense import plugins, registry

    without_plugin("condense_dm")
    monkeypatch.setattr(registry, "_installed", lambda dist: dist == "condense-dm")
    with pytest.raises(condense.UnknownComponentError) as exc:
        condense.get_method("dm")
    assert "condense-dm, which is installed but not loaded" in str(exc.value)
    assert "pip install" not in str(exc.value)
    failure = plugins.PluginFailure("dm", "condense-dm", "ImportError: no module named x")
    monkeypatch.setattr(plugins, "failures", [failure])
    monkeypatch.setattr(registry, "failures", [failure])
    with pytest.raises(condense.UnknownComponentError) as exc:
        condense.get_method("dm")
    assert "installed but failed to load: ImportError: no module named x" in str(exc.value)
