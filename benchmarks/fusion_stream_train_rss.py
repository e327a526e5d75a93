"""Peak resident memory of `smfusion train` on SYNTHETIC 64 x 64 shards, streamed (4 and 12 shards) and
loaded into memory (4 shards): issue 28's measurement.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/fusion_stream_train_rss.py [--out /tmp/fusion/e2e]

Shards: smfusion.synthetic.fusion_shards.write_shard_series, 500 examples each (10 sensors x 50 days, all
labelled); the 4-shard set is the first 4 of the 12. Config: configs/fusion_synthetic.yaml with
fusion.patch_size 32, 1 epoch of 20 minibatches, no early stopping, --no-evaluate, 0 loader workers (one
process: its ru_maxrss is the peak). Takes about 15 minutes on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from smfusion.config import dump_config, load_config
from smfusion.synthetic.fusion_shards import write_shard_series

REPO = Path(__file__).resolve().parents[1]
CHILD = ("import resource, sys; from smfusion.cli.main import main; rc = main(sys.argv[1:]); "
         "print('PEAK_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)")


def shards(root: Path) -> None:
    if not (root / "s12").exists():
        write_shard_series(root / "s12", n_shards=12, sensors_per_shard=10, n_times=50, size=64, seed=0)
    if not (root / "s4").exists():
        (root / "s4").mkdir()
        for p in sorted((root / "s12").glob("*.tfrecord.gz"))[:4]:
            (root / "s4" / p.name).symlink_to(p)


def peak(root: Path, name: str, stream: bool) -> str:
    c = load_config(REPO / "configs" / "fusion_synthetic.yaml")
    c.data.root = str(root / name)
    c.fusion.patch_size, c.fusion.stream, c.fusion.index_dir = 32, stream, str(root / "index")
    c.training.epochs, c.training.iterations_per_epoch, c.training.early_stopping = 1, 20, None
    cfg = root / f"{name}_{stream}.yaml"
    cfg.write_text(dump_config(c))
    t0 = time.time()
    run_dir = root / f"run_{name}_{stream}"
    out = subprocess.run([sys.executable, "-c", CHILD, "train", str(cfg), "--run-dir", str(run_dir), "--restart",
                          "--no-evaluate"], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    mb = float(next(line for line in out.stdout.splitlines() if line.startswith("PEAK_MB")).split()[1])
    return f"{name:<4} {'streamed' if stream else 'in memory':<10} peak RSS {mb:7.0f} MB   ({time.time() - t0:.0f} s)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/fusion/e2e"))
    root = ap.parse_args().out
    shards(root)
    print("SYNTHETIC 64x64 shards of 500 examples; configs/fusion_synthetic.yaml, patch 32, 1 epoch of 20 minibatches "
          "of 64, 0 loader workers, --no-evaluate; one process, CPU")
    for name, stream in (("s4", True), ("s12", True), ("s4", False)):
        print(peak(root, name, stream), flush=True)


if __name__ == "__main__":
    main()
