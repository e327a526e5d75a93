"""The same product code on a separately started ``dask scheduler`` + ``dask worker`` pair (127.0.0.1),
and on a local cluster that loses a worker mid-way."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smfusion.io.cf import read_product
from smfusion.products.longterm import predict_product

sys.path.insert(0, str(Path(__file__).parent))
from engine_setup import train_runs  # noqa: E402

pytest.importorskip("distributed")
PERIOD = ("2015-08-01", "2015-10-29")
KW = dict(chunk_days=30, chunk_sites=16, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_runs(tmp_path_factory.mktemp("cluster"))


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def test_external_scheduler_and_worker(runs, tmp_path):
    here = Path(sys.executable).with_name("dask")
    dask = str(here) if here.exists() else shutil.which("dask")
    if dask is None:
        pytest.skip("no dask command")
    sched_file = tmp_path / "scheduler.json"
    procs = [_spawn([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], tmp_path / "scheduler.log")]
    try:
        t0 = time.time()
        while not sched_file.exists() and time.time() - t0 < 60:
            time.sleep(0.1)
        procs.append(_spawn([dask, "worker", "--scheduler-file", str(sched_file), "--nworkers", "1", "--nthreads",
                             "1", "--host", "127.0.0.1", "--no-dashboard"], tmp_path / "worker.log"))
        import json

        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        remote = predict_product(runs["lstm"], *PERIOD, tmp_path / "remote.nc", scheduler=address, **KW)
        local = predict_product(runs["lstm"], *PERIOD, tmp_path / "local.nc", **KW)
        a, b = read_product(remote, load=True), read_product(local, load=True)
        for k in ("sm", "sm_epistemic_std", "sm_aleatoric_std"):
            np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)
    finally:
        for p in procs[::-1]:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


@pytest.mark.slow
def test_killed_worker_is_replaced(runs, tmp_path):
    """A worker process killed while the job runs: Dask reruns its tasks elsewhere (regions are rewritten
    whole, states come from the lineage), and the product equals the in-process one."""
    import threading

    import distributed

    kw = dict(KW, chunk_days=10, chunk_sites=8)
    work = tmp_path / ".k.nc.work"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as lc, \
            distributed.Client(lc) as client:
        killed = []

        def killer():
            t0 = time.time()
            while not (work / "done").is_dir() or len(list((work / "done").iterdir())) < 3:
                if time.time() - t0 > 120:
                    return
                time.sleep(0.02)
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        th = threading.Thread(target=killer)
        th.start()
        out = predict_product(runs["lstm"], *PERIOD, tmp_path / "k.nc", client=client, **kw)
        th.join()
    assert killed, "no worker was killed while the job ran"
    ref = predict_product(runs["lstm"], *PERIOD, tmp_path / "ref.nc", **kw)
    a, b = read_product(out, load=True), read_product(ref, load=True)
    np.testing.assert_array_equal(a["sm"].values, b["sm"].values)
