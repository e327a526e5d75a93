"""Streaming fusion input pipeline on SYNTHETIC shards: decode rate, training rate with 0 and 2 loader workers,
CPU time per example of each process, peak memory, for 4, 12 and 40 shards at 64 x 64 and 2 shards at the
published 512 x 512.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fusion_stream.py [--out DIR] [--repeats 3] [--sets 4,12,40,512]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fusion_stream.py --profile   # where decoding spends its time
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fusion_stream.py --split     # the loader's CPU beside decoding

Shards: smfusion.synthetic.fusion_shards.write_shard_series (every published field, gzip), the paper's full
groups (s1, dem, s2, soilgrids, smap, gldas), fusion.patch_size 32, lanes 4, shuffle buffer 32 per lane,
batch 32 (512 x 512: batch 4). Each measurement runs in its own process; per shard set the measurements
alternate (decode, model, 0 workers, 2 workers) ``--repeats`` times and the table gives medians, with the
1-minute load average seen at their starts: the machine is shared, and the kernel's autogroup scheduling
gives each command's process group one share of the 2 cores whatever its number of processes.

decode = records read, CRC-checked, decoded, cropped and normalised in one process (as many examples as
training uses); model = Adam steps of the fusion model on one fixed minibatch; w0, w2 = the examples streamed
into the same steps with 0 or 2 DataLoader workers (CPU, 1 torch thread per process), rate after the first
``--warmup`` minibatches (the shuffle buffers fill and the workers start before the first one), and over
everything (``w2 all``). Training runs in the trainer's epochs (``StreamSampler.start_epoch`` every
``ceil(examples / batch)`` minibatches: 3 at 4 shards, 8 at 12, 25 at 40; 2 at 512 x 512), so the cost of each
epoch's start (a new order, its shuffle buffers' fill) counts as it does in ``smfusion train``. CPU ms/ex: CPU
seconds (user + system) per example used: of the decode process, of the training process with 2 workers and of
its workers together (buffer fill and start included). ``bound``: the w2/dec ratio those CPU times allow when
both cores are free for the run, min(2 / (main + workers), 1 / main, 2 / workers) x decode CPU time; a derived
figure, not a measured rate. Memory: VmHWM of the process (decode, training with 2 workers), largest worker's
VmHWM (counts pages still shared with the training process) and its private memory mid-run (Private_Clean +
Private_Dirty of smaps_rollup).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

GROUPS = ["s1", "dem", "s2", "soilgrids", "smap", "gldas"]
PATCH, LANES, BUFFER, BATCH = 32, 4, 32, 32


def _status_mb(pid: str, key: str) -> float:
    """``key`` of /proc/PID/status in MB (0 for a process that has just exited)."""
    found = re.search(rf"{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else 0.0


def _private_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return sum(int(v) for v in re.findall(r"Private_(?:Clean|Dirty):\s+(\d+) kB", text)) / 1024


def _largest(f, procs) -> float:
    """The largest ``f(pid)`` over the worker processes still there (one may be exiting at an epoch's end)."""
    got = []
    for p in procs:
        try:
            got.append(f(p.pid))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return max(got, default=float("nan"))


def _thread_ticks(pid: int) -> dict[int, int]:
    """User + system clock ticks of every thread of process ``pid`` (/proc/PID/task/TID/stat)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        f = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        out[int(tid)] = int(f[11]) + int(f[12])
    return out


def _cpu(who) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _decode(ss, rows, scaler, n: int) -> int:
    import numpy as np

    from smfusion.data import points as P
    from smfusion.data import points_stream as S

    done, ix = 0, ss.index
    while done < n:
        for k in np.unique(ix.shard[rows]).tolist():
            for pts in S._examples(ix, k, ix.record[rows[ix.shard[rows] == k]], GROUPS, PATCH):
                P.model_inputs(pts, scaler)
                done += 1
                if done == n:
                    return done
    return done


def _train(ss, rows, scaler, mode: str, batches: int, workers: int, batch: int, warmup: int) -> dict:
    import torch

    from smfusion.data import points as P
    from smfusion.data.points_stream import iterations
    from smfusion.data.stream_loader import StreamSampler
    from smfusion.models.registry import build_model

    kw = {"n_dynamic": 0, "n_static": 0, "n_target": 1, "sources": P.model_sources("tfrecord", GROUPS),
          "cnn_channels": 16, "embed_size": 16}
    model = build_model("fusion", hidden_size=64, dropout=0.1, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = StreamSampler(ss, rows, scaler, SimpleNamespace(lanes=LANES, shuffle_buffer=BUFFER),
                            SimpleNamespace(seed=0, batch_size=batch, loader_workers=workers, device="cpu"))
    fixed = None
    if mode == "model":
        sampler.start_epoch(1, 1)
        fixed = sampler.sample()
        sampler.close()
    per_epoch = iterations(len(rows), batch)  # the trainer's epoch: one pass over the rows on average
    c0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    marks, mem = [], {}
    for i in range(batches):
        if mode != "model" and i % per_epoch == 0:
            sampler.start_epoch(1 + i // per_epoch, per_epoch)
        mb = fixed if mode == "model" else sampler.sample()
        if mode != "sampler":
            loss = torch.mean((model(mb)["y_hat"] - mb["y"]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        marks.append(time.perf_counter())
        procs = getattr(sampler._it, "_workers", []) if sampler._it is not None else []
        if procs and i == batches // 2:  # mid-run, while every worker is at work
            mem = {"worker_hwm_mb": _largest(lambda q: _status_mb(str(q), "VmHWM"), procs),
                   "worker_private_mb": _largest(_private_mb, procs)}
    out = {"rate_all": batches * batch / (marks[-1] - t0),
           "rate": (batches - warmup) * batch / (marks[-1] - marks[warmup - 1]),
           "cpu_ms": 1000 * (_cpu(resource.RUSAGE_SELF) - c0) / (batches * batch), **mem}
    procs = getattr(sampler._it, "_workers", []) if sampler._it is not None else []
    if procs and mode == "sampler":  # each worker's threads: its main thread (decoding) and the queue's feeder
        ticks = [_thread_ticks(p.pid) for p in procs]
        per_ms = 1000 / os.sysconf("SC_CLK_TCK") / (batches * batch)
        out["worker_main_ms"] = per_ms * sum(t[p.pid] for t, p in zip(ticks, procs))
        out["worker_other_ms"] = per_ms * sum(sum(t.values()) - t[p.pid] for t, p in zip(ticks, procs))
    sampler.close()
    time.sleep(0.5)  # the workers exit: their CPU time counts in RUSAGE_CHILDREN
    out["workers_cpu_ms"] = 1000 * _cpu(resource.RUSAGE_CHILDREN) / (batches * batch)
    return out


def child(mode: str, paths: list[str], index_dir: str, batches: int, workers: int, batch: int, warmup: int) -> dict:
    """One measurement in this process: examples/s, CPU time per example and peak memory."""
    import torch

    from smfusion.data import points as P
    from smfusion.data.points_stream import ShardSet
    from smfusion.io.shard_index import index_shards

    torch.set_num_threads(1)
    ss = ShardSet(index_shards(paths, index_dir), GROUPS, PATCH)
    rows = ss.rows()
    scaler = P.fit_scaler(ss.load(rows[:8]))
    decoded = []
    if mode == "sampler" and workers == 0:  # count the records decoded in this process
        from smfusion.data import points_stream as S

        real = S.decode_record
        S.decode_record = lambda *a, **k: decoded.append(1) or real(*a, **k)
    if mode == "decode":
        c0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
        n = _decode(ss, rows, scaler, batches * batch)
        out = {"rate": n / (time.perf_counter() - t0), "cpu_ms": 1000 * (_cpu(resource.RUSAGE_SELF) - c0) / n}
    else:
        out = _train(ss, rows, scaler, mode, batches, workers, batch, warmup)
    out["hwm_mb"] = _status_mb("self", "VmHWM")
    if decoded:
        out["decoded_per_used"] = len(decoded) / (batches * batch)
    return out


def split(args, paths: list) -> None:
    """Where the stream's CPU time goes beside decoding: the loader alone (no model step) with 0 workers (the
    same code in one process, no pipe) and with 2 (the workers' main threads, their other threads: the
    queue's feeder that pickles and writes each piece), against decoding alone."""
    dec = run_child(args, "decode", paths, args.batches, 0, BATCH)
    w0 = run_child(args, "sampler", paths, args.batches, 0, BATCH)
    w2 = run_child(args, "sampler", paths, args.batches, 2, BATCH)
    print(f"{len(paths)} x 64x64, loader alone, CPU ms per example used: decode {dec['cpu_ms']:.2f}; 0 workers "
          f"{w0['cpu_ms']:.2f} ({w0['decoded_per_used']:.2f} records decoded per example used); 2 workers: "
          f"workers' main threads {w2['worker_main_ms']:.2f}, their other threads {w2['worker_other_ms']:.2f}, "
          f"whole workers {w2['workers_cpu_ms']:.2f}, training process {w2['cpu_ms']:.2f} (load average "
          f"{dec['load']:.1f}-{w2['load']:.1f})", flush=True)


def run_child(args, mode: str, paths: list, batches: int, workers: int, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--index", str(Path(args.out) / "index"), "--batches",
           str(batches), "--workers", str(workers), "--batch", str(batch), "--warmup", str(args.warmup),
           *map(str, paths)]
    load = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


def table(args, name: str, paths: list, batches: int, batch: int) -> None:
    runs: dict[str, list[dict]] = {"dec": [], "mod": [], "w0": [], "w2": []}
    for _ in range(args.repeats):  # alternated, so that a change of load hits every kind alike
        runs["dec"].append(run_child(args, "decode", paths, batches, 0, batch))
        runs["mod"].append(run_child(args, "model", paths, batches, 0, batch))
        runs["w0"].append(run_child(args, "train", paths, batches, 0, batch))
        runs["w2"].append(run_child(args, "train", paths, batches, 2, batch))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    ratio = statistics.median(w["rate"] / d["rate"] for d, w in zip(runs["dec"], runs["w2"]))
    main, wrk, dec = med("w2", "cpu_ms"), med("w2", "workers_cpu_ms"), med("dec", "cpu_ms")
    bound = min(2 / (main + wrk), 1 / main, 2 / wrk) * dec
    loads = [r["load"] for rs in runs.values() for r in rs]
    print(f"{name:<22}{med('dec', 'rate'):>7.1f}{med('mod', 'rate'):>7.1f}{med('w0', 'rate'):>7.1f}"
          f"{med('w2', 'rate'):>7.1f}{med('w2', 'rate_all'):>7.1f}{100 * ratio:>6.0f}%{100 * bound:>6.0f}%"
          f"{dec:>7.2f}{main:>7.2f}{wrk:>7.2f}{med('dec', 'hwm_mb'):>7.0f}{med('w2', 'hwm_mb'):>7.0f}"
          f"{med('w2', 'worker_hwm_mb'):>7.0f}{med('w2', 'worker_private_mb'):>7.0f}"
          f"  {min(loads):.1f}-{max(loads):.1f}", flush=True)


def transfer(paths: list, index_dir: str, n: int = 50) -> None:
    """What handing one worker piece (8 examples) to the training process costs in the sending and receiving
    code (no pipe): as torch's default collate sends it (every array a shared-memory tensor of its own) and
    as the loader sends it (numpy arrays pickled)."""
    import io
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401 - registers the shared-memory reductions
    from torch.utils.data._utils.collate import default_convert

    from smfusion.data import points as P
    from smfusion.data.points_stream import ShardSet
    from smfusion.io.shard_index import index_shards

    ss = ShardSet(index_shards(paths, index_dir), GROUPS, PATCH)
    pts = ss.load(ss.rows()[:8])
    arrays = P.model_inputs(pts, P.fit_scaler(pts))

    def shm():
        buf = io.BytesIO()
        ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(default_convert(arrays))
        return ForkingPickler.loads(buf.getvalue())

    def pickled():
        return pickle.loads(ForkingPickler.dumps(arrays, pickle.HIGHEST_PROTOCOL))

    ms = {}
    for name, f in (("shared-memory tensors", shm), ("pickled numpy", pickled)):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        ms[name] = 1000 * (time.perf_counter() - t0) / n
    mb = sum(a.nbytes for a in arrays.values()) / 2**20
    print(f"one piece of 8 examples ({len(arrays)} arrays, {mb:.1f} MB) sent and received, ms: "
          + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()) + f" (load average {os.getloadavg()[0]:.1f})")


def profile(paths: list, index_dir: str, n: int = 240) -> None:
    """Where decoding spends its time: cProfile of ``n`` examples decoded in this process, top functions."""
    import cProfile
    import pstats

    from smfusion.data import points as P
    from smfusion.data.points_stream import ShardSet
    from smfusion.io.shard_index import index_shards

    ss = ShardSet(index_shards(paths, index_dir), GROUPS, PATCH)
    rows = ss.rows()
    scaler = P.fit_scaler(ss.load(rows[:8]))
    prof = cProfile.Profile()
    prof.runcall(_decode, ss, rows, scaler, n)
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/fusion_stream")
    ap.add_argument("--batches", type=int, default=40, help="minibatches per 64 x 64 measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="minibatches left out of the steady rates")
    ap.add_argument("--sets", default="4,12,40,512", help="shard sets to measure: 4, 12, 40 (64 x 64), 512")
    ap.add_argument("--split", action="store_true", help="the loader's CPU time beside decoding (64 x 64 sets)")
    ap.add_argument("--profile", action="store_true", help="profile decoding (12 shards at 64 x 64) and stop")
    ap.add_argument("--child")
    ap.add_argument("--index")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("paths", nargs="*")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.paths, args.index, args.batches, args.workers, args.batch,
                               args.warmup)))
        return
    from smfusion.synthetic.fusion_shards import write_shard_series

    out = Path(args.out)
    small, big = out / "shards_64", out / "shards_512"
    if not small.exists():
        write_shard_series(small, n_shards=40, sensors_per_shard=2, n_times=10, size=64, seed=0)
    if not big.exists():
        write_shard_series(big, n_shards=2, sensors_per_shard=1, n_times=4, size=512, seed=0)
    paths = sorted(p for p in small.iterdir() if ".tfrecord" in p.name)
    if args.profile:
        return profile(paths[:12], str(out / "index"))
    if args.split:
        for n in (4, 12, 40):
            if str(n) in args.sets.split(","):
                split(args, paths[:n])
        return
    transfer(paths[:4], str(out / "index"))
    print(f"SYNTHETIC shards (write_shard_series, 20 examples per 64x64 shard, 4 per 512x512 shard, all labelled); "
          f"patch {PATCH}, groups {GROUPS}, lanes {LANES}, shuffle buffer {BUFFER}/lane; {args.batches} minibatches "
          f"of {BATCH} (512x512: 16 of 4) in epochs of ceil(examples / batch), steady rates after {args.warmup}; "
          f"medians of {args.repeats} alternated repeats; CPU, 1 torch thread per process; {os.cpu_count()} cores "
          "shared with other jobs")
    print("rates ex/s: dec decode only, mod model steps alone, w0/w2 training with 0/2 loader workers (steady), "
          "w2all w2 from the start; w2/dec median of paired ratios; bound: w2/dec the CPU times allow on 2 free "
          "cores; CPU ms/ex: dec, w2 main process, w2 workers; MB: dec, w2 main, worker peak (incl. shared), "
          "worker private; load: 1-min load average at the measurements' starts")
    print(f"{'shards':<22}{'dec':>7}{'mod':>7}{'w0':>7}{'w2':>7}{'w2all':>7}{'w2/dec':>7}{'bound':>7}"
          f"{'cpuDec':>7}{'cpuW2m':>7}{'cpuW2w':>7}{'decMB':>7}{'w2MB':>7}{'wrkMB':>7}{'wrkPr':>7}  load")
    sets = args.sets.split(",")
    for n in (4, 12, 40):
        if str(n) in sets:
            table(args, f"{n} x 64x64", paths[:n], args.batches, BATCH)
    if "512" in sets:
        table(args, "2 x 512x512 (batch 4)", sorted(p for p in big.iterdir() if ".tfrecord" in p.name), 16, 4)


if __name__ == "__main__":
    main()
