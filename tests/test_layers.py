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
    "__init__": 0, "errors": 0, "settings": 0,
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
