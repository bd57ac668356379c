"""The import graph of ``condense/``, built from the source: no circles, no upward imports.

Every ``import``/``from ... import`` statement counts, at module level, inside functions and under
``TYPE_CHECKING``. An import may point only to its own layer or a lower one (the table is
docs/architecture.md's); inside functions only optional third-party packages may be imported.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "condense"

#: lowest first; a module belongs to the first entry that is it or a package above it
LAYERS: list[tuple[str, ...]] = [
    ("condense.errors", "condense.rng", "condense.fileio", "condense.version", "condense.process",
     "condense.distributed", "condense.devices"),
    ("condense.config", "condense.augment", "condense.zca", "condense.synset"),
    ("condense.realdata",),
    ("condense.interfaces",),
    ("condense.hookspecs", "condense.plugins", "condense.registration", "condense.registry",
     "condense.networks", "condense.samplers", "condense.baselines", "condense.datasets"),
    ("condense.store", "condense.records", "condense.validation"),
    ("condense.loop",),
    ("condense.api", "condense.dryrun", "condense.hub", "condense.importers"),
    ("condense.cli", "condense.__main__", "condense"),
]
#: third-party packages that are optional, or parts of one that a build may lack
OPTIONAL = {"scipy", "huggingface_hub", "torchvision", "PIL", "torch.distributed"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for i, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                if best is None or len(name) > best[0]:
                    best = (len(name), i)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best[1]


def _resolve(current: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The condense modules a statement imports (a name that is a submodule counts as it)."""
    if isinstance(node, ast.Import):
        return [_existing(a.name) for a in node.names if a.name.split(".")[0] == "condense"]
    if node.level:
        base = current.split(".") if is_package else current.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        pkg = ".".join(base + ([node.module] if node.module else []))
    else:
        pkg = node.module or ""
    if pkg.split(".")[0] != "condense":
        return []
    out = []
    for alias in node.names:
        sub = f"{pkg}.{alias.name}"
        out.append(sub if sub in MODULES else _existing(pkg))
    return out


def _existing(name: str) -> str:
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports() -> list[tuple[str, str, int, bool]]:
    """``(importer, imported, line, inside_a_function)`` for every condense-internal import."""
    found = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, in_function: bool, mod: str = mod,
                  is_package: bool = is_package) -> None:
            for child in ast.iter_child_nodes(node):
                inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _resolve(mod, is_package, child):
                        if target != mod:
                            found.append((mod, target, child.lineno, in_function))
                visit(child, inner)

        visit(tree, False)
    return found


def _compat_fallbacks(tree: ast.AST) -> set[ast.AST]:
    """Imports inside ``try: ... except ImportError:`` (a module's name in another version)."""
    out: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            out.update(n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return out


def third_party_in_functions() -> list[tuple[str, str, int]]:
    out = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text())
        compat = _compat_fallbacks(tree)
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if node in compat:
                    continue
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    optional = top in OPTIONAL or any(name == o or name.startswith(o + ".")
                                                      for o in OPTIONAL)
                    if top != "condense" and not optional:
                        out.append((mod, name, node.lineno))
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            strongconnect(v)
    return found


def test_every_module_has_a_layer():
    for mod in MODULES:
        layer_of(mod)


def test_no_upward_imports():
    upward = [f"{MODULES[a].relative_to(ROOT)}:{line}: {a} (layer {layer_of(a)}) imports {b} "
              f"(layer {layer_of(b)})" for a, b, line, _ in imports() if layer_of(b) > layer_of(a)]
    assert not upward, "imports that point to a higher layer:\n" + "\n".join(upward)


def test_no_import_circles():
    edges: dict[str, set[str]] = defaultdict(set)
    for a, b, _, _ in imports():
        edges[a].add(b)
    assert not cycles(edges), f"import circles: {cycles(edges)}"


def test_condense_modules_are_imported_at_module_level():
    inner = [f"{MODULES[a].relative_to(ROOT)}:{line}: imports {b} inside a function"
             for a, b, line, in_function in imports() if in_function]
    assert not inner, "\n".join(inner)


def test_only_optional_packages_are_imported_inside_functions():
    found = [f"{MODULES[m].relative_to(ROOT)}:{line}: {name}"
             for m, name, line in third_party_in_functions()]
    assert not found, ("import these at module level (or add an optional package):\n"
                       + "\n".join(found))


def test_the_contract_imports_nothing_of_the_loop():
    deps = {b for a, b, _, _ in imports() if a == "condense.interfaces"}
    assert all(layer_of(b) < layer_of("condense.interfaces") for b in deps), deps


@pytest.mark.parametrize("statement,expected", [
    ("from . import distributed", ["condense.distributed"]),
    ("from .loop import resolve_plan", ["condense.loop"]),
    ("from .loop.plan import Plan", ["condense.loop.plan"]),
    ("import condense.loop.run", ["condense.loop.run"]),
])
def test_the_graph_resolves_imports(statement, expected):
    node = ast.parse(statement).body[0]
    assert _resolve("condense.api", False, node) == expected  # type: ignore[arg-type]
