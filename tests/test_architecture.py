"""Import architecture: which package may import which, and no import cycles between modules.

Every module of the installed package is parsed (``ast``; nothing is imported) and its imports are collected at
any depth — module level, inside functions, ``importlib.import_module("...")`` / ``import_extra("...")`` calls and
module names in strings (``python -m toonsync.x`` command lines) — so a lazy or string import counts like any other.

Layers, lowest first; a module may import its own layer and the layers below it:

    runtime < training < export < calibration < tools < the toonsync facade (toonsync/__init__, cli)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# installed subpackage -> its folder in the repository (pyproject [tool.setuptools.package-dir])
FOLDERS = {
    "runtime": "runtime",
    "training": "training",
    "export": "export",
    "calibration": "calibration",
    "tools": "tools",
}
LAYERS = ["runtime", "training", "export", "calibration", "tools", ""]  # "" = the facade itself


def discover(root: Path = ROOT) -> dict[str, str]:
    """Module name -> source of every module of the package (the facade and each mapped folder)."""
    sources: dict[str, str] = {}
    for f in sorted((root / "toonsync").glob("*.py")):
        sources["toonsync" if f.stem == "__init__" else f"toonsync.{f.stem}"] = f.read_text()
    for sub, folder in FOLDERS.items():
        base = root / folder
        for f in sorted(base.rglob("*.py")):
            rel = f.relative_to(base)
            if not all((base / Path(*rel.parts[:i]) / "__init__.py").is_file() for i in range(len(rel.parts))):
                continue  # not inside the package (e.g. the pytest-benchmark cases folder)
            parts = ["toonsync", sub, *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            sources[".".join(parts)] = f.read_text()
    return sources


def _is_package(name: str, sources: dict[str, str]) -> bool:
    return any(m.startswith(name + ".") for m in sources)


def _resolve(name: str, sources: dict[str, str]) -> str | None:
    """The longest known module that ``name`` (a dotted import target) is or lies in."""
    while name:
        if name in sources:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, source: str, sources: dict[str, str]) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its source (but under ``if TYPE_CHECKING:``,
    which type checkers read and Python never runs)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    package = module if _is_package(module, sources) else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for a in node.names:  # `from pkg import mod` imports the module pkg.mod when there is one
                targets.add(f"{stem}.{a.name}" if f"{stem}.{a.name}" in sources else stem)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in sources
            and node.value != "toonsync"
        ):  # (the bare name is the root logger's, not an import)
            targets.add(node.value)  # importlib.import_module("..."), import_extra("..."), ["-m", "..."]
    found = {_resolve(t, sources) for t in targets if t == "toonsync" or t.startswith("toonsync.")}
    return {t for t in found if t and t != module}


def layer(module: str) -> int:
    parts = module.split(".")
    sub = parts[1] if len(parts) > 1 and parts[1] in FOLDERS else ""
    return LAYERS.index(sub)


def graph(sources: dict[str, str]) -> dict[str, set[str]]:
    return {m: imports_of(m, s, sources) for m, s in sources.items()}


def forbidden(g: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for each import of a higher layer (or of the facade from a subpackage)."""
    return sorted(f"{a} -> {b}" for a, deps in g.items() for b in deps if layer(b) > layer(a))


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


# a package's __init__ is imported with every module in it; an edge into it from inside is not a cycle
def _without_parents(g: dict[str, set[str]]) -> dict[str, set[str]]:
    return {a: {b for b in deps if not a.startswith(b + ".")} for a, deps in g.items()}


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    s = discover()
    assert {
        "toonsync",
        "toonsync.cli",
        "toonsync.runtime.pipeline",
        "toonsync.training.corpus",
        "toonsync.export.onnx_export",
        "toonsync.calibration.quantize",
        "toonsync.tools.bench",
    } <= set(s)
    return s


def test_no_forbidden_imports(sources):
    bad = forbidden(graph(sources))
    assert not bad, "imports against the layering " + " < ".join(LAYERS[:-1]) + " < facade:\n" + "\n".join(bad)


def test_no_import_cycles(sources):
    found = cycles(_without_parents(graph(sources)))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_runtime_names_no_heavy_module(sources):
    """The runtime never imports torch or the training-only libraries, not even lazily."""
    heavy = {"torch", "librosa", "h5py", "onnx", "onnxscript", "matplotlib", "skimage", "lpips"}
    bad = []
    for m, src in sources.items():
        if layer(m) != 0:
            continue
        for node in ast.walk(ast.parse(src)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            bad += [f"{m} -> {n}" for n in names if n.split(".")[0] in heavy]
    allowed = {"toonsync.runtime.trt_backend -> onnx"}  # reads a graph's inputs for TensorRT, guarded by ImportError
    assert not set(bad) - allowed, sorted(set(bad) - allowed)


# ------------------------------------------------------------------ the checker itself, on constructed packages
def _fake(**modules: str) -> dict[str, str]:
    return {name.replace("__", "."): src for name, src in modules.items()}


def test_checker_catches_a_forbidden_import():
    s = _fake(
        toonsync__runtime="",
        toonsync__runtime__a="import numpy\n",
        toonsync__training="",
        toonsync__training__t="from toonsync.runtime import a\n",
        toonsync__runtime__b="def f():\n    from toonsync.training.t import x\n",
    )
    assert forbidden(graph(s)) == ["toonsync.runtime.b -> toonsync.training.t"]


def test_checker_catches_string_imports_and_cycles():
    s = _fake(
        toonsync__runtime="",
        toonsync__runtime__a="import importlib\nimportlib.import_module('toonsync.export.e')\n",
        toonsync__export="",
        toonsync__export__e="from toonsync.runtime.a import f\n",
        toonsync__runtime__b="from . import c\n",
        toonsync__runtime__c="def g():\n    from .b import h\n",
    )
    g = _without_parents(graph(s))
    assert forbidden(g) == ["toonsync.runtime.a -> toonsync.export.e"]
    assert sorted(map(tuple, cycles(g))) == [
        ("toonsync.export.e", "toonsync.runtime.a"),
        ("toonsync.runtime.b", "toonsync.runtime.c"),
    ]


def test_checker_skips_type_checking_imports_only():
    s = _fake(
        toonsync__runtime="",
        toonsync__runtime__a="from . import b\n",
        toonsync__runtime__b="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
        toonsync__runtime__c="from . import d\n",
        toonsync__runtime__d="if True:\n    from .c import C\n",
    )
    assert sorted(map(tuple, cycles(_without_parents(graph(s))))) == [("toonsync.runtime.c", "toonsync.runtime.d")]
