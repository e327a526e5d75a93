"""How long `smfusion check` takes on the shipped hydroDL configs (issue 10: a failing check must fail in seconds).

Prints, per config, the wall and CPU time of ``data.checks.check_config`` (imports excluded, best of 3) and
the problems it found. Needs the real CONUS sample (SMFUSION_DATA_DIR or ../shared/data).

    python benchmarks/check_speed.py
"""

from __future__ import annotations

import time
from pathlib import Path

from smfusion.config import load_config
from smfusion.data.adapters import available
from smfusion.data.checks import check_config

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    available()  # import the adapters once, outside the timing
    print(f"{'config':34s} {'wall s':>7s} {'cpu s':>7s}  problems")
    for path in sorted((REPO / "configs").glob("*.yaml")):
        cfg = load_config(path)
        if cfg.data.reader != "hydrodl":
            continue
        best = None
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time()
            problems = check_config(cfg)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            best = (wall, cpu) if best is None or wall < best[0] else best
        print(f"{path.name:34s} {best[0]:7.2f} {best[1]:7.2f}  {[str(p) for p in problems] or 'none'}")


if __name__ == "__main__":
    main()
