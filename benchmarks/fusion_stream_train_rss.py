"""Peak resident memory of `smfusion train` on SYNTHETIC 64 x 64 shards, streamed (4, 12 and 40 shards, 0
loader workers; 12 shards with 2 workers) and loaded into memory (4 shards): issue 28's measurement.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/fusion_stream_train_rss.py [--out /tmp/fusion/e2e]

Shards: smfusion.synthetic.fusion_shards.write_shard_series, 12 shards of 500 examples each (10 sensors x 50
days, all labelled); the 4-shard set is the first 4 of them, the 40-shard set the 12 files linked under 40
names in turn (20,000 records read and indexed as 40 shards; each sensor's examples sit in 3 or 4 of them:
writing 28 more distinct shards takes about half an hour on the shared machine). Config: configs/fusion_synthetic.yaml
with fusion.patch_size 32, 1 epoch of 20 minibatches, no early stopping, --no-evaluate. Peak of the training
process = its VmHWM (/proc/self/status: the high-water mark of this process image, not of the parent it
was started from, which ru_maxrss would carry over an exec); with workers, the largest worker's ru_maxrss
(RUSAGE_CHILDREN; a forked worker's RSS also counts pages it still shares with the training process).
Takes 15-30 minutes on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from smfusion.config import dump_config, load_config
from smfusion.synthetic.fusion_shards import write_shard_series

REPO = Path(__file__).resolve().parents[1]
CHILD = ("import re, resource, sys; from smfusion.cli.main import main; rc = main(sys.argv[1:]); "
         "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1); "
         "print('PEAK_MB', int(hwm) / 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); "
         "sys.exit(rc)")


def shards(root: Path) -> None:
    if not (root / "s12").exists():
        write_shard_series(root / "s12", n_shards=12, sensors_per_shard=10, n_times=50, size=64, seed=0)
    files = sorted((root / "s12").glob("*.tfrecord.gz"))
    for n in (4, 40):  # the first 4; 40 = the 12 files linked under 40 names, in turn
        if not (root / f"s{n}").exists():
            (root / f"s{n}").mkdir()
            for k in range(n):
                (root / f"s{n}" / f"synthetic-{k:05d}-of-{n:05d}.tfrecord.gz").symlink_to(files[k % len(files)])


def peak(root: Path, name: str, stream: bool, workers: int = 0) -> str:
    c = load_config(REPO / "configs" / "fusion_synthetic.yaml")
    c.data.root = str(root / name)
    c.fusion.patch_size, c.fusion.stream, c.fusion.index_dir = 32, stream, str(root / "index")
    c.training.epochs, c.training.iterations_per_epoch, c.training.early_stopping = 1, 20, None
    c.training.loader_workers = workers
    cfg = root / f"{name}_{stream}_w{workers}.yaml"
    cfg.write_text(dump_config(c))
    t0 = time.time()
    run_dir = root / f"run_{name}_{stream}_w{workers}"
    out = subprocess.run([sys.executable, "-c", CHILD, "train", str(cfg), "--run-dir", str(run_dir), "--restart",
                          "--no-evaluate"], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    mb, wmb = map(float, next(line for line in out.stdout.splitlines() if line.startswith("PEAK_MB")).split()[1:])
    load = os.getloadavg()[0]
    wrk = f", largest worker {wmb:5.0f} MB" if workers else ""
    return (f"{name:<4} {'streamed' if stream else 'in memory':<10} {workers} workers: peak RSS {mb:6.0f} MB{wrk}   "
            f"({time.time() - t0:.0f} s, load average {load:.1f} at the end)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/fusion/e2e"))
    root = ap.parse_args().out
    shards(root)
    print("SYNTHETIC 64x64 shards of 500 examples; configs/fusion_synthetic.yaml, patch 32, 1 epoch of 20 minibatches "
          f"of 64, --no-evaluate; CPU; {os.cpu_count()} cores shared with other jobs")
    for name, stream, workers in (("s4", True, 0), ("s12", True, 0), ("s40", True, 0), ("s4", False, 0),
                                  ("s12", True, 2)):
        print(peak(root, name, stream, workers), flush=True)


if __name__ == "__main__":
    main()
