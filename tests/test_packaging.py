"""Packaging: version floors match what the code uses, one-step install, clean metadata.

The floors table below is the one place that says which feature needs which release: a new use of
a newer feature is a one-line addition here, and the test then says which pyproject to raise.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
REPO_URL = "https://github.com/condense-toolbox/condense"

#: package -> (minimum release, feature the code uses, where)
FEATURES: dict[str, list[tuple[str, str, str]]] = {
    "torch": [
        ("2.0", "torch.device as a context manager; nn.Module.to_empty", "condense/samplers.py"),
        ("2.0", "torch.func (functional_call, stack_module_state, vmap); torch.compile",
         "condense_evaluators/training.py"),
        ("2.0", "autograd.Function with setup_context and generate_vmap_rule",
         "condense/networks/pooling.py"),
        ("2.4", "torch.OutOfMemoryError (device-agnostic)", "condense/distributed.py"),
        ("2.5", "torch.serialization.safe_globals (context manager)",
         "condense/importers/_safe_load.py"),
        ("2.6", "safe_globals entries given as (callable, 'module.name') tuples",
         "condense/importers/_safe_load.py"),
    ],
    "torchvision": [
        ("0.16", "torchvision.transforms.v2.functional", "condense/datasets/images.py"),
        ("0.21", "the torchvision release made for torch 2.6 (the torch floor)", "-"),
    ],
    "numpy": [
        ("1.25", "numpy.dtypes", "condense/importers/_safe_load.py"),
    ],
}


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text.split("+")[0])[:3])


def needed(package: str) -> tuple[int, ...]:
    return max(version_tuple(v) for v, _, _ in FEATURES[package])


def load(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def requirement(spec: str) -> tuple[str, str]:
    """``"torch>=2.6"`` -> ``("torch", ">=2.6")`` (name normalised)."""
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)", spec)
    assert m, spec
    return re.sub(r"[-_.]+", "-", m.group(1)).lower(), m.group(2).split(";")[0].strip()


def floor(specifier: str) -> tuple[int, ...] | None:
    m = re.search(r">=\s*([0-9][0-9.]*)", specifier)
    return version_tuple(m.group(1)) if m else None


ROOT_PYPROJECT = ROOT / "pyproject.toml"
PLUGIN_DIRS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
EXAMPLE_DIRS = [ROOT / "docs" / "examples" / "condense-mmd"]
DISTRIBUTIONS = [ROOT, *PLUGIN_DIRS, *EXAMPLE_DIRS]
IDS = [str(d.relative_to(ROOT)) or "." for d in DISTRIBUTIONS]


def dependencies(directory: Path) -> dict[str, str]:
    return dict(requirement(s) for s in load(directory / "pyproject.toml")["project"].get(
        "dependencies", []))


# --- item 4: version floors ------------------------------------------------------------------

@pytest.mark.parametrize("package", sorted(FEATURES))
def test_core_floor_covers_every_feature_the_code_uses(package):
    declared = floor(dependencies(ROOT)[package])
    assert declared is not None, f"pyproject.toml: give {package} a floor (>=)"
    missing = [f"{feat} ({where}) needs {package} {v}" for v, feat, where in FEATURES[package]
               if version_tuple(v) > declared]
    assert not missing, f"pyproject.toml: raise the {package} floor: " + "; ".join(missing)


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=IDS)
def test_every_distribution_declares_the_same_floors(directory):
    """A plugin that names torch/numpy/torchvision needs the core's floor (ranges, not pins)."""
    core = dependencies(ROOT)
    for package, spec in dependencies(directory).items():
        if package not in FEATURES:
            continue
        assert "==" not in spec, f"{directory.name}: {package}{spec} is a pin; give a range"
        assert floor(spec) == floor(core[package]), (
            f"{directory / 'pyproject.toml'}: {package}{spec}; the core declares "
            f"{package}{core[package]} (the code needs {'.'.join(map(str, needed(package)))})")


@pytest.mark.parametrize("package", sorted(FEATURES))
def test_installed_versions_meet_the_floors(package):
    installed = version_tuple(importlib.metadata.version(package))
    assert installed >= floor(dependencies(ROOT)[package])


# --- item 1: one-step install -------------------------------------------------------------

def test_all_extra_installs_every_first_party_plugin():
    project = load(ROOT_PYPROJECT)["project"]
    extras = project["optional-dependencies"]
    everything = dict(requirement(s) for s in extras["all"])
    core_version = version_tuple(importlib.metadata.version("condense-toolbox"))
    for directory in PLUGIN_DIRS:
        plugin = load(directory / "pyproject.toml")["project"]
        name = requirement(plugin["name"])[0]
        assert name in everything, f"the `all` extra lacks {name}"
        lo = floor(everything[name])
        hi = re.search(r"<\s*([0-9][0-9.]*)", everything[name])
        assert lo is not None and lo <= version_tuple(plugin["version"]), (name, plugin["version"])
        assert hi is None or version_tuple(plugin["version"]) < version_tuple(hi.group(1))
        # the plugin accepts this core release
        core_spec = dict(requirement(s) for s in plugin["dependencies"])["condense-toolbox"]
        assert floor(core_spec) is None or floor(core_spec) <= core_version
    for extra, specs in extras.items():  # every optional third-party extra is in `all`
        if extra not in ("all", "dev"):
            assert {requirement(s)[0] for s in specs} <= set(everything), extra


def test_setup_script_installs_dev_not_all():
    """setup.sh installs the plugins from the checkout; `.[all]` would fetch them from an index."""
    code = [ln for ln in (ROOT / "scripts" / "setup.sh").read_text().splitlines()
            if not ln.lstrip().startswith("#")]
    assert 'args=(-e ".[dev]")' in code
    assert not any("[all]" in ln for ln in code)
    assert any("plugins/*/" in ln for ln in code)


@pytest.mark.parametrize("doc", ["README.md", "docs/getting-started.md"])
def test_docs_lead_with_the_one_step_install(doc):
    text = (ROOT / doc).read_text()
    one_step = text.find('pip install "condense-toolbox[all]"')
    assert one_step != -1, f"{doc}: give the one-step install"
    assert one_step < text.find("scripts/setup.sh"), f"{doc}: lead with the one-step install"


# --- item 3: metadata --------------------------------------------------------------------------

@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=IDS)
def test_distribution_metadata(directory):
    data = load(directory / "pyproject.toml")
    project = data["project"]
    where = directory / "pyproject.toml"
    requires = dict(requirement(s) for s in data["build-system"]["requires"])
    assert floor(requires.get("setuptools", "")) >= (77,), f"{where}: SPDX license needs " \
        "setuptools>=77"
    assert project.get("license") == "MIT", f"{where}: license = \"MIT\" (an SPDX string)"
    for name in project.get("license-files", []):
        assert (directory / name).is_file(), f"{where}: {name} missing"
    assert (directory / "LICENSE").is_file() and "LICENSE" in project.get("license-files", [])
    assert not any(c.startswith("License ::") for c in project.get("classifiers", [])), \
        f"{where}: no License classifiers next to an SPDX license"
    readme = project.get("readme")
    assert readme and (directory / readme).is_file(), f"{where}: give a README as readme"
    if directory not in EXAMPLE_DIRS:
        urls = project.get("urls", {})
        assert {"Homepage", "Documentation", "Issues"} <= set(urls), where
        assert all(u.startswith(REPO_URL) for u in urls.values()), urls
        assert any(c.startswith("Programming Language :: Python :: 3.")
                   for c in project.get("classifiers", [])), where


def _can_build() -> bool:
    try:
        return version_tuple(importlib.metadata.version("setuptools")) >= (77,)
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _can_build(), reason="needs setuptools>=77 in this environment")
@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=IDS)
def test_wheel_builds_without_warnings_and_with_full_metadata(directory, tmp_path):
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "build", "dist", ".venv",
                                    "runs", "tests", "docs", "benchmarks", "plugins", "scripts")
    shutil.copytree(directory, src, ignore=ignore)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--no-cache-dir", "-w", str(tmp_path / "out"), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = [ln for ln in (r.stdout + r.stderr).splitlines()
                if re.search(r"Warning|deprecated", ln) and "Location" not in ln
                and "byte-compiling is disabled" not in ln]
    assert not warnings, "\n".join(warnings)
    (wheel,) = (tmp_path / "out").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist())
    assert meta["License-Expression"] == "MIT"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert len(meta.get_payload()) > 200, "long description missing"
    if importlib.util.find_spec("twine") is not None:
        t = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel)],
                           capture_output=True, text=True)
        assert t.returncode == 0, t.stdout + t.stderr
