"""The import graph of the package: lower layers never import higher ones, no package cycle,
``synthetic`` only from the commands that generate synthetic data. Every import counts,
module-level or inside a function."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "smfusion"

# reader -> adapter -> sampler -> model -> run loader / forward passes -> objective + trainer
#   -> evaluation -> products -> experiments (train, then score) -> cli
LAYERS = {
    "__init__": 0, "errors": 0, "settings": 0, "resources": 0,
    "config": 1,
    "grids": 2,
    "io": 3,
    "data": 4,
    "models": 5,
    "runs": 6,
    "training": 7,
    "evaluation": 8,
    "products": 9,
    "experiments": 10,
    "cli": 11,
}
SYNTHETIC_LAYER = 4  # generators may use data-layer code and below
SYNTHETIC_USERS = {"cli", "synthetic"}  # and tests, benchmarks (outside src)


def _package(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, first component after 'smfusion.') of every smfusion import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "smfusion":
                if len(parts) > 1:
                    out.append((node.lineno, parts[1]))
                else:
                    out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "smfusion" and len(parts) > 1:
                    out.append((node.lineno, parts[1]))
    return out


def _edges() -> list[tuple[str, str, str]]:
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        pkg = _package(path)
        for line, target in _imports(path):
            target = "__init__" if target == "__version__" else target
            if target != pkg:
                edges.append((pkg, target, f"{path.relative_to(SRC)}:{line}"))
    return edges


def _layer(pkg: str) -> int:
    return SYNTHETIC_LAYER if pkg == "synthetic" else LAYERS[pkg]


def test_every_package_has_a_layer():
    pkgs = {_package(p) for p in SRC.rglob("*.py")} - {"synthetic"}
    assert pkgs <= set(LAYERS), sorted(pkgs - set(LAYERS))


def test_no_import_goes_up_a_layer():
    bad = [f"{where}: {src} (layer {_layer(src)}) imports {dst} (layer {_layer(dst)})"
           for src, dst, where in _edges() if dst != "synthetic" and _layer(dst) > _layer(src)]
    assert not bad, "\n".join(bad)


def test_synthetic_only_from_the_generating_commands():
    bad = [f"{where}: {src} imports synthetic" for src, dst, where in _edges()
           if dst == "synthetic" and src not in SYNTHETIC_USERS]
    assert not bad, "\n".join(bad)


def test_no_package_cycle():
    graph: dict[str, set[str]] = {}
    for src, dst, _ in _edges():
        graph.setdefault(src, set()).add(dst)

    def reach(a: str, seen: set[str]) -> set[str]:
        for b in graph.get(a, ()):
            if b not in seen:
                seen.add(b)
                reach(b, seen)
        return seen

    cycles = sorted(a for a in graph if a in reach(a, set()))
    assert not cycles, cycles


@pytest.mark.parametrize("src, dst", [("data", "training"), ("runs", "training"), ("training", "evaluation"),
                                      ("config", "models"), ("data", "synthetic")])
def test_the_known_back_arrows_stay_gone(src, dst):
    """Arrows the one-pipeline rewrite removed (run -> evaluation, config -> model registry, ...)."""
    offenders = [where for s, d, where in _edges() if s == src and d == dst]
    assert not offenders, offenders


def test_inference_never_asks_training():
    """runs/ is the inference layer: runs, evaluation and products import it and never ``training``
    (what trains and then scores, cross-validation and ablations, lives in experiments/)."""
    offenders = [where for src, dst, where in _edges() if src in ("runs", "evaluation", "products")
                 and dst == "training"]
    assert not offenders, offenders


def test_nothing_below_the_command_line_imports_it():
    offenders = [where for src, dst, where in _edges() if dst == "cli" and src != "cli"]
    assert not offenders, offenders


# -- module-level cycles -------------------------------------------------------------------------------------------
# Circles being removed by other branches of issue 25's round; the lead deletes each entry when that branch is
# merged (an entry whose circle is gone fails test_the_allowed_circles_still_exist, so none outlives its circle).
ALLOWED_CIRCLES: list[set[str]] = []  # none left


def _module(path: Path) -> str:
    """'data.loading' for src/smfusion/data/loading.py; a package's __init__ is the package ('data.adapters')."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_graph() -> dict[str, set[str]]:
    """Module -> the smfusion modules it imports (module level and in functions). ``from pkg import sub``
    counts the package's __init__ too (Python runs it first); ``from pkg.mod import name`` counts ``pkg.mod``."""
    files = {_module(p): p for p in SRC.rglob("*.py")}

    def known(name: str) -> str:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        out = graph.setdefault(mod, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {known(a.name[len("smfusion."):]) for a in node.names if a.name.startswith("smfusion.")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from .x import y
                    base = ".".join([p for p in pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if p]
                                    + ([node.module] if node.module else []))
                elif node.module and node.module.startswith("smfusion"):
                    base = node.module[len("smfusion."):] if node.module != "smfusion" else ""
                else:
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}" if base else a.name
                    if sub in files:
                        out.add(sub)
                        if base in files and files[base].name == "__init__.py":
                            out.add(base)
                    else:
                        out.add(known(base))
        out.discard(mod)
        out.discard("")
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def test_no_module_circle():
    """No two smfusion modules import each other, directly or through others (every import counts): a
    registry is filled by the modules that register, checks live with their readers or above them, a
    package's __init__ does not import its own submodules back. Only the commented ALLOWED_CIRCLES pass."""
    graph = _module_graph()
    bad = []
    for comp in _circles(graph):
        if comp in ALLOWED_CIRCLES:
            continue
        edges = sorted(f"{a} -> {b}" for a in comp for b in graph[a] & comp)
        bad.append(f"circle of {len(comp)} modules: " + "; ".join(edges))
    assert not bad, "\n".join(bad)


def test_the_allowed_circles_still_exist():
    """An allow-list entry whose circle is gone (or changed) must be deleted or updated."""
    found = _circles(_module_graph())
    stale = [sorted(c) for c in ALLOWED_CIRCLES if c not in found]
    assert not stale, stale


def test_the_circle_check_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [{"a", "b", "c"}]
