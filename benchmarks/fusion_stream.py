"""Streaming fusion input pipeline on SYNTHETIC shards: decode rate, training rate with 0 and 2 loader workers,
peak resident memory, for 4, 12 and 40 shards at 64 x 64 and a few shards at the published 512 x 512.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/fusion_stream.py [--out /tmp/fusion_stream]

Shards: smfusion.synthetic.fusion_shards.write_shard_series (every published field, gzip), the paper's full
groups (s1, dem, s2, soilgrids, smap, gldas), fusion.patch_size 32, lanes 4, shuffle buffer 32 per lane,
batch 32. Each measurement runs in its own process (peak RSS = that process's ru_maxrss; the workers'
largest is RUSAGE_CHILDREN). decode = records read, CRC-checked, decoded, cropped and normalised in one
process; model = Adam steps of the fusion model on one fixed minibatch (no input pipeline); train = the
examples streamed into the same steps with 0 or 2 DataLoader workers (CPU, 1 torch thread per process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

GROUPS = ["s1", "dem", "s2", "soilgrids", "smap", "gldas"]
PATCH, LANES, BUFFER, BATCH = 32, 4, 32, 32


def _shards(paths: list[str], index_dir: str):
    from smfusion.data.points_stream import ShardSet
    from smfusion.io.shard_index import index_shards

    return ShardSet(index_shards(paths, index_dir), GROUPS, PATCH)


def child(mode: str, paths: list[str], index_dir: str, batches: int, workers: int, batch: int) -> dict:
    """One measurement in this process: examples/s and peak RSS."""
    import numpy as np
    import torch

    from smfusion.data import points as P
    from smfusion.data import points_stream as S
    from smfusion.data.stream_loader import StreamSampler

    torch.set_num_threads(1)
    ss = _shards(paths, index_dir)
    rows = ss.rows()
    scaler = P.fit_scaler(ss.load(rows[:8]))
    t0 = time.perf_counter()
    if mode == "decode":
        n = 0
        for k in np.unique(ss.index.shard[rows]).tolist():
            for pts in S._examples(ss.index, k, ss.index.record[rows[ss.index.shard[rows] == k]], GROUPS, PATCH):
                P.model_inputs(pts, scaler)
                n += 1
    else:
        from smfusion.models.registry import build_model

        kw = {"n_dynamic": 0, "n_static": 0, "n_target": 1, "sources": P.model_sources("tfrecord", GROUPS),
              "cnn_channels": 16, "embed_size": 16}
        model = build_model("fusion", hidden_size=64, dropout=0.1, **kw)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sampler = StreamSampler(ss, rows, scaler, SimpleNamespace(lanes=LANES, shuffle_buffer=BUFFER),
                                SimpleNamespace(seed=0, batch_size=batch, loader_workers=workers, device="cpu"))
        sampler.start_epoch(1, 1 if mode == "model" else batches)
        fixed = sampler.sample() if mode == "model" else None
        t0 = time.perf_counter()
        for _ in range(batches):
            mb = fixed if mode == "model" else sampler.sample()
            loss = torch.mean((model(mb)["y_hat"] - mb["y"]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sampler.close()
        n = batches * batch
    dt = time.perf_counter() - t0
    return {"rate": n / dt, "n": n, "seconds": dt,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def run_child(mode: str, paths: list, index_dir: Path, batches: int, workers: int, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--index", str(index_dir), "--batches", str(batches),
           "--workers", str(workers), "--batch", str(batch), *map(str, paths)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(name: str, paths: list, index_dir: Path, batches: int, batch: int = BATCH) -> None:
    dec = run_child("decode", paths, index_dir, batches, 0, batch)
    mod = run_child("model", paths, index_dir, batches, 0, batch)
    t0 = run_child("train", paths, index_dir, batches, 0, batch)
    t2 = run_child("train", paths, index_dir, batches, 2, batch)
    print(f"{name:<24}{dec['n']:>6}{dec['rate']:>8.1f}{dec['peak_mb']:>7.0f}{mod['rate']:>8.1f}{t0['rate']:>8.1f}"
          f"{t0['peak_mb']:>7.0f}{t2['rate']:>8.1f}{t2['peak_mb']:>7.0f}{t2['worker_peak_mb']:>7.0f}"
          f"{100 * t2['rate'] / dec['rate']:>7.0f}%{100 * t2['rate'] / min(dec['rate'], mod['rate']):>7.0f}%", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/fusion_stream")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--child")
    ap.add_argument("--index")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("paths", nargs="*")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.paths, args.index, args.batches, args.workers, args.batch)))
        return
    from smfusion.synthetic.fusion_shards import write_shard_series

    out = Path(args.out)
    small = out / "shards_64"
    if not small.exists():
        write_shard_series(small, n_shards=40, sensors_per_shard=2, n_times=10, size=64, seed=0)
    big = out / "shards_512"
    if not big.exists():
        write_shard_series(big, n_shards=2, sensors_per_shard=1, n_times=4, size=512, seed=0)
    paths = sorted(p for p in small.iterdir() if ".tfrecord" in p.name)
    print(f"SYNTHETIC shards (write_shard_series, 20 examples per 64x64 shard, all labelled); patch {PATCH}, groups "
          f"{GROUPS}, lanes {LANES}, shuffle buffer {BUFFER}/lane, batch {BATCH}, {args.batches} minibatches; "
          f"CPU, 1 torch thread per process; {os.cpu_count()} cores, shared with other jobs")
    print("columns: ex = examples in the shards; dec/s, dec MB = decode only (examples/s, peak RSS); mod/s = model "
          "steps alone on one fixed minibatch (examples/s); w0, w2 = streamed training with 0 / 2 loader workers "
          "(examples/s, peak RSS of the training process), wrk MB = largest worker's peak RSS; w2/dec = w2 rate / "
          "decode rate; w2/min = w2 rate / min(decode, model) rate")
    print(f"{'shards':<24}{'ex':>6}{'dec/s':>8}{'dec MB':>7}{'mod/s':>8}{'w0/s':>8}{'w0 MB':>7}{'w2/s':>8}{'w2 MB':>7}"
          f"{'wrk MB':>7}{'w2/dec':>8}{'w2/min':>8}")
    for n in (4, 12, 40):
        table(f"{n} x 64x64", paths[:n], out / "index", args.batches)
    bigp = sorted(p for p in big.iterdir() if ".tfrecord" in p.name)
    table("2 x 512x512 (batch 4)", bigp, out / "index", 3, batch=4)


if __name__ == "__main__":
    main()
