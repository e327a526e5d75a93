"""The import graph of the package: lower layers never import higher ones, no package cycle,
``synthetic`` only from the commands that generate synthetic data. Every import counts,
module-level or inside a function."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "smfusion"

# reader -> adapter -> sampler -> model -> objective -> trainer -> run -> evaluation/products -> cli
LAYERS = {
    "__init__": 0, "errors": 0, "settings": 0,
    "config": 1,
    "grids": 2,
    "io": 3,
    "data": 4,
    "models": 5,
    "training": 6,
    "runs": 7, "run_blocks": 7,
    "evaluation": 8,
    "products": 9,
    "cli": 10, "cli_args": 10, "cli_fusion": 10, "cli_validate": 10, "demo": 10,
}
SYNTHETIC_LAYER = 4  # generators may use data-layer code and below
SYNTHETIC_USERS = {"cli", "cli_fusion", "demo", "synthetic"}  # and tests, benchmarks (outside src)


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


@pytest.mark.parametrize("src, dst", [("data", "training"), ("training", "runs"), ("training", "evaluation"),
                                      ("config", "models"), ("data", "synthetic")])
def test_the_known_back_arrows_stay_gone(src, dst):
    """Arrows the one-pipeline rewrite removed (run -> evaluation, config -> model registry, ...)."""
    offenders = [where for s, d, where in _edges() if s == src and d == dst]
    assert not offenders, offenders


def test_runs_are_loaded_through_the_run_loader_only():
    """evaluation and products load and predict runs through smfusion.runs, never through training's
    internals; the exceptions are the protocols that train (cross-validation, the fusion ablation),
    which call training.run.train."""
    offenders = []
    for src, dst, where in _edges():
        if src in ("evaluation", "products") and dst == "training":
            line = _line(where)
            trains = where.startswith(("evaluation/cv.py", "evaluation/fusion_ablation.py"))
            if ("training.run" in line or "training.trainer" in line) and not (
                    trains and re.search(r"import (default_run_dir, )?train$", line.strip())):
                offenders.append(f"{where}: {line.strip()}")
    assert not offenders, offenders


def _line(where: str) -> str:
    path, line = where.rsplit(":", 1)
    return (SRC / path).read_text().splitlines()[int(line) - 1]
