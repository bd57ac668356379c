"""Plugin manager: entry-point discovery (faked importlib.metadata), failures, env controls."""

from __future__ import annotations

import json
import sys
import types

import pluggy
import pytest
from click.testing import CliRunner

import condense
from condense import plugins
from condense.cli import cli
from condense.plugins import pm
from condense.registry import components, plugin_problems


class FakeEntryPoint:
    group = "condense"

    def __init__(self, name: str, module: types.ModuleType | Exception):
        self.name = name
        self.value = name
        self._module = module

    def load(self):
        if isinstance(self._module, Exception):
            raise self._module
        return self._module


class FakeDist:
    def __init__(self, name: str, version: str, eps: list[FakeEntryPoint]):
        self.metadata = {"Name": name}
        self.version = version
        self.entry_points = eps


def _method_module(mod_name: str, method_name: str) -> types.ModuleType:
    mod = types.ModuleType(mod_name)

    class M(condense.FeatureMatching):
        name = method_name

        def loss(self, real, syn):
            return (real.embedding.mean(1) - syn.embedding.mean(1)).pow(2).sum()

    @condense.hookimpl
    def register_methods(register):
        register(M)

    mod.register_methods = register_methods
    return mod


@pytest.fixture
def fake_dists(monkeypatch):
    good = _method_module("good_mod", "good-method")
    dists = [
        FakeDist("condense-good", "1.2.3", [FakeEntryPoint("good", good)]),
        FakeDist("condense-broken", "0.0.1",
                 [FakeEntryPoint("broken", ImportError("No module named 'missing_dep'"))]),
    ]
    monkeypatch.setattr(plugins.importlib.metadata, "distributions", lambda: dists)
    before = len(plugins.failures)
    yield dists
    for name in ("good", "broken", "typo"):
        if pm.has_plugin(name):
            pm.unregister(name=name)
        plugins._distinfo.pop(name, None)
    del plugins.failures[before:]


def test_entry_points_load_and_broken_plugin_is_reported(fake_dists, monkeypatch):
    monkeypatch.delenv("CONDENSE_LOAD_PLUGINS", raising=False)
    plugins._load_entry_points()
    assert "good-method" in components("methods")
    info = {p["name"]: p for p in plugins.plugin_info()}
    assert info["good"]["distribution"] == "condense-good"
    assert info["good"]["version"] == "1.2.3"
    assert info["good"]["hooks"] == ["register_methods"]
    failure = plugins.failures[-1]
    assert failure.name == "broken" and "missing_dep" in failure.error
    assert "datadam" in components("methods")  # everything else keeps working


def test_allow_list_env(fake_dists, monkeypatch):
    monkeypatch.setenv("CONDENSE_LOAD_PLUGINS", "condense-broken")
    plugins._load_entry_points()
    assert not pm.has_plugin("good")


def test_block_list_env(fake_dists, monkeypatch):
    monkeypatch.setenv("CONDENSE_DISABLED_PLUGINS", "good,broken")
    before = len(plugins.failures)
    plugins._load_entry_points()
    assert not pm.has_plugin("good")
    assert len(plugins.failures) == before


def test_misspelled_hook_fails_loudly():
    mod = types.ModuleType("typo_mod")

    @condense.hookimpl
    def register_methodz(register):  # misspelled
        pass

    mod.register_methodz = register_methodz
    pm.register(mod, name="typo")
    try:
        with pytest.raises(pluggy.PluginValidationError):
            pm.check_pending()
    finally:
        pm.unregister(name="typo")


def test_entry_point_with_unknown_hook_is_reported_not_loaded(fake_dists, monkeypatch):
    mod = types.ModuleType("typo_mod")

    @condense.hookimpl
    def register_methodz(register):
        pass

    mod.register_methodz = register_methodz
    fake_dists.append(FakeDist("condense-typo", "0.1", [FakeEntryPoint("typo", mod)]))
    plugins._load_entry_points()
    assert not pm.has_plugin("typo")
    assert any(f.name == "typo" and "unknown hook" in f.error for f in plugins.failures)


def test_misspelt_hook_is_skipped_with_a_suggestion(fake_dists):
    mod = _method_module("typo_mod", "typo-method")
    mod.register_method = mod.register_methods  # the hook's name misspelt
    del mod.register_methods
    fake_dists.append(FakeDist("condense-typo", "0.1", [FakeEntryPoint("typo", mod)]))
    plugins._load_entry_points()
    assert not pm.has_plugin("typo") and pm.has_plugin("good")
    pm.check_pending()  # nothing of the skipped plugin is left behind
    failure = next(f for f in plugins.failures if f.name == "typo")
    assert failure.kind == "hook"
    assert failure.error == ("implements unknown hook 'register_method'; "
                             "did you mean 'register_methods'?")
    assert failure.message.startswith("plugin 'typo' (condense-typo) was skipped: ")
    assert "typo-method" not in components("methods")


def test_builtins_never_hit_the_unknown_hook_path():
    """Built-in and first-party plugins implement only condense's hooks; a built-in that did not
    would raise PluginError (a bug in condense), not be skipped."""
    for name, plugin in pm.list_name_plugin():
        assert plugins.unknown_hooks(plugin) == [], name
    pm.check_pending()
    assert plugin_problems() == []

    class Typo:
        __name__ = "typo"

        @staticmethod
        @condense.hookimpl
        def register_evaluator(register):
            pass

    pm.register(Typo, name="typo")
    try:
        with pytest.raises(condense.PluginError, match="did you mean 'register_evaluators'"):
            plugins._check_pending()
    finally:
        pm.unregister(name="typo")


def test_failed_import_traceback_with_debug(fake_dists):
    plugins._load_entry_points()
    failure = next(f for f in plugins.failures if f.name == "broken")
    assert failure.kind == "import"
    assert failure.traceback.startswith("Traceback") and "missing_dep" in failure.traceback
    runner = CliRunner()
    r = runner.invoke(cli, ["list", "samplers"])
    assert r.exit_code == 0, r.output
    (warning,) = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert warning.startswith("warning: plugin 'broken' (condense-broken) failed to load")
    assert "--debug" in warning and "Traceback" not in r.stderr
    for args in (["--debug", "plugins"], ["--debug", "list", "samplers"],
                 ["list", "samplers", "--debug"]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, r.output
        lines = r.stderr.splitlines()
        assert lines[0].startswith("warning: plugin 'broken'") and "--debug" not in lines[0]
        assert lines[1] == "Traceback (most recent call last):"
        assert "ImportError: No module named 'missing_dep'" in r.stderr
    info = json.loads(runner.invoke(cli, ["plugins", "--json"]).stdout)
    broken = next(p for p in info if p["name"] == "broken")
    assert broken["failed"] and broken["kind"] == "import" and "missing_dep" in broken["traceback"]


def test_plugins_never_import_private_condense_names():
    """Built-in plugins use only the public API, exactly as a third party would."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    pattern = re.compile(r"(from\s+condense(\.\w+)*\s+import\s+.*\b_\w+|condense(\.\w+)*\._\w+|"
                         r"from\s+condense(\.\w+)*\._\w+|import\s+condense(\.\w+)*\._\w+)")
    offenders = []
    for path in list((root / "plugins").rglob("*.py")) + list((root / "docs").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and "__version__" not in code:
                offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert not offenders, "private condense names used in plugins:\n" + "\n".join(offenders)


def test_private_name_check_catches_violations(tmp_path):
    import re

    pattern = re.compile(r"(from\s+condense(\.\w+)*\s+import\s+.*\b_\w+|condense(\.\w+)*\._\w+|"
                         r"from\s+condense(\.\w+)*\._\w+|import\s+condense(\.\w+)*\._\w+)")
    assert pattern.search("from condense._alloc import tune_allocator")
    assert pattern.search("from condense.cli import _console")
    assert pattern.search("x = condense._alloc.tune_allocator()")
    assert not pattern.search("from condense.networks import ConvNet")
    assert sys.modules["condense"] is condense
