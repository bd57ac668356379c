"""Plugin manager: entry-point discovery (faked importlib.metadata), failures, env controls."""

from __future__ import annotations

import sys
import types

import pluggy
import pytest

import condense
from condense import plugins
from condense.plugins import pm
from condense.registry import components


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
