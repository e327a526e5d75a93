"""Issue 24: safe with untrusted runs, concurrent jobs and hostile names (docs/security.md).

Every case runs on a small SYNTHETIC run (tests/products/engine_setup.py) and checks the family as a whole:
no file of a run is ever executed (a malicious pickle in each place a run holds a file), nothing the user
made is deleted (hash of the user's tree before and after), one writer per output and run (a real
two-process race: a second job is refused in one line naming the first, a dead holder's lock is taken over),
run names stay names, and the HTML report escapes every string it shows.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from smfusion.cli.main import main
from smfusion.config import dump_config

sys.path.insert(0, str(Path(__file__).parent / "products"))
from engine_setup import config, write_domain  # noqa: E402

PERIOD = ("2015-08-01", "2015-08-20")
SRC = str(Path(__file__).resolve().parents[1] / "src")


class Evil:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not any(part in skip for part in p.relative_to(root).parts):
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not ln.startswith("smfusion: warning")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec")
    store, cells = write_domain(tmp)
    cfg = config(store, cells, "lstm", name="secrun")
    cfg.training.ensemble = 1
    cfg.training.checkpoint_every = 1
    path = tmp / "secrun.yaml"
    path.write_text(dump_config(cfg))
    from smfusion.training.run import train

    run = train(cfg, tmp / "run")
    return {"tmp": tmp, "cfg": path, "run": run}


# -- 1. no code from data ------------------------------------------------------------------------------------
def _poison(path: Path, marker: Path) -> None:
    if path.suffix == ".pt":
        torch.save({"model": Evil(marker), "epoch": 1}, path)  # a torch file whose pickle calls os.system
    else:
        path.write_bytes(pickle.dumps(Evil(marker)))


def test_a_malicious_pickle_in_any_file_of_a_run_never_runs(setup, tmp_path, capsys):
    """Each file the run holds, in turn, replaced by a pickle whose unpickling would run a command: loading and
    predicting (which read every file a run is loaded from) and resuming (checkpoints) never run it; each
    refusal is one line, exit 2. The recalibration file's own reader is called directly (this run has no
    validation period, so nothing reads it)."""
    base = setup["run"]
    from smfusion.runs import RECALIBRATION_FILE

    (base / RECALIBRATION_FILE.format(method="variance", runs=2)).write_text("{}")  # a place a run holds
    files = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
    assert {"config.yaml", "scaler.yaml", "split.json", "member_0/model.pt", "member_0/history.json",
            "member_0/checkpoints/epoch_0001.pt", ".smfusion-run"} <= set(files), files
    marker = tmp_path / "PWNED"
    refused = {}
    for rel in files:
        run = tmp_path / "run"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(base, run)
        _poison(run / rel, marker)
        codes = [main(["predict", str(run), "--start", PERIOD[0], "--end", PERIOD[1],
                       "--out", str(tmp_path / f"p{len(refused)}.nc")]),
                 main(["train", str(setup["cfg"]), "--run-dir", str(run), "--no-evaluate"])]
        err = capsys.readouterr().err
        assert not marker.exists(), f"{rel}: the pickle ran"
        assert set(codes) <= {0, 2}, (rel, codes, err)
        for line in err.strip().splitlines():
            assert line.startswith("smfusion: "), (rel, err)  # one line per failure, no traceback
        refused[rel] = codes
    # the files the commands read were refused (exit 2), not skipped
    for rel in ("config.yaml", "scaler.yaml", "split.json", "member_0/model.pt"):
        assert refused[rel][0] == 2, (rel, refused[rel])
    assert refused["member_0/checkpoints/epoch_0001.pt"][1] == 2  # resume refuses, never renames it aside
    from smfusion.errors import DataError
    from smfusion.runs.predictive import load_recalibrations

    recal = tmp_path / RECALIBRATION_FILE.format(method="variance", runs=2)
    _poison(recal, marker)
    with pytest.raises(DataError, match="not a recalibration file") as exc:
        load_recalibrations(recal)
    assert "\n" not in str(exc.value) and not marker.exists()


def test_a_checkpoint_that_is_not_data_is_refused_with_a_hint(setup, tmp_path):
    from smfusion.errors import DataError
    from smfusion.training.checkpoint import NotData, load_checkpoint

    ck = setup["run"] / "member_0" / "checkpoints" / "epoch_0001.pt"
    payload = load_checkpoint(ck)
    import json

    json.dumps({k: payload[k] for k in ("epoch", "config_key", "rng_numpy", "history")})  # metadata is JSON
    assert isinstance(payload["rng_torch"], torch.Tensor) and payload["format"] == 2
    bad = tmp_path / "epoch_0001.pt"
    _poison(bad, tmp_path / "PWNED")
    with pytest.raises(NotData, match=r"not plain data.*refused posix\.system.*--restart") as exc:
        load_checkpoint(bad)
    assert "\n" not in str(exc.value) and not (tmp_path / "PWNED").exists()
    torch.save({"epoch": 1, "x": np.float64(1.0)}, bad)  # an older checkpoint with NumPy scalars: refused too
    with pytest.raises(DataError, match="not plain data"):
        load_checkpoint(bad)


# -- 2. nothing the user made is deleted; 4. run names are names -------------------------------------------
def _case_restart(setup, tmp):
    run = tmp / "run"
    shutil.copytree(setup["run"], run)
    (run / "plots").mkdir()
    (run / "plots" / "figure.png").write_bytes(b"user figure")
    (run / "member_0" / "notes.txt").write_text("user notes")
    return ["train", str(setup["cfg"]), "--run-dir", str(run), "--restart", "--no-evaluate"], 0


def _case_overwrite_nested(setup, tmp):
    out = tmp / "p.zarr"
    assert main(["predict", str(setup["run"]), "--start", PERIOD[0], "--end", PERIOD[1], "--out", str(out)]) == 0
    (next(p for p in out.iterdir() if p.is_dir()) / "notes.txt").write_text("user file inside the store")
    return ["predict", str(setup["run"]), "--start", PERIOD[0], "--end", PERIOD[1], "--out", str(out),
            "--overwrite"], 2


def _case_run_name(setup, tmp):
    raw = yaml.safe_load(Path(setup["cfg"]).read_text())
    raw["name"] = "../../escaped"
    raw.pop("run_dir", None)
    (tmp / "c.yaml").write_text(yaml.safe_dump(raw))
    return ["train", str(tmp / "c.yaml"), "--no-evaluate"], 2


def _case_report_nested(setup, tmp):
    out = tmp / "report"
    assert main(["report", str(setup["run"]), "--out", str(out), "--quiet"]) == 0
    (out / "img" / "mine.png").write_bytes(b"user image")
    return ["report", str(setup["run"]), "--out", str(out), "--overwrite", "--quiet"], 2


@pytest.mark.parametrize("case", [_case_restart, _case_overwrite_nested, _case_run_name, _case_report_nested],
                         ids=lambda c: c.__name__[6:])
def test_user_files_survive_every_command(setup, tmp_path, monkeypatch, capsys, case):
    """Hash every file of the user's tree before and after: each file is still there, bytes unchanged (a
    restarted run's files in the run moved aside), and a refusal is one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    argv, want = case(setup, tmp_path)
    capsys.readouterr()
    before = _tree(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == want, err
    after = _tree(tmp_path)
    moved = {k.split("/", 1)[1]: v for k, v in after.items() if k.startswith("run.old-")}
    for rel, digest in before.items():
        assert after.get(rel) == digest or (rel.startswith("run/") and moved.get(rel[4:]) == digest), rel
    if want == 2:
        _one_line(err)
        assert after == before  # a refusal writes nothing
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path / "runs").exists()


# -- 3. one writer per output and per run ----------------------------------------------------------------------
WAITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    flag, what = Path(sys.argv[1]), sys.argv[2]

    def wait(*a, **k):
        Path(str(flag) + ".started").write_text("")
        while not flag.exists():
            time.sleep(0.05)

    if what == "product":  # predict --product, held at its first block until the flag appears
        import smfusion.products.engine as engine
        real = engine.run_block
        def slow(*a, **k):
            wait()
            return real(*a, **k)
        engine.run_block = slow
        from smfusion.products.longterm import predict_product
        predict_product(sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], chunk_days=10, chunk_sites=48,
                        progress=False, overwrite=True)
    else:  # train, held in its first epoch until the flag appears
        import smfusion.training.trainer as trainer
        real = trainer.Trainer._train_epoch
        def slow(self, *a, **k):
            wait()
            return real(self, *a, **k)
        trainer.Trainer._train_epoch = slow
        from smfusion.cli.main import main
        sys.exit(main(["train", sys.argv[3], "--run-dir", sys.argv[4], "--no-evaluate"]))
""")


def _start_holder(tmp: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    (tmp / "waiter.py").write_text(WAITER)
    flag = tmp / "go"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(tmp / "waiter.py"), str(flag), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not Path(str(flag) + ".started").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline
        time.sleep(0.1)
    return proc, flag


def test_two_product_jobs_on_one_output(setup, tmp_path, capsys):
    """Job A (another process) is inside its first block; job B on the same --out with --overwrite is refused in
    one line naming A (pid, host, start time) before any work; A's product is then exactly a lone job's."""
    from smfusion.io.cf import read_product
    from smfusion.products.longterm import predict_product

    out = tmp_path / "prod.nc"
    a, flag = _start_holder(tmp_path, "product", str(setup["run"]), PERIOD[0], PERIOD[1], str(out))
    try:
        code = main(["predict", str(setup["run"]), "--start", PERIOD[0], "--end", PERIOD[1], "--product",
                     "--out", str(out), "--overwrite", "--workers", "1", "--chunk-days", "10",
                     "--chunk-sites", "48"])
        line = _one_line(capsys.readouterr().err)
        assert code == 2 and f"in use by smfusion predict --product (pid {a.pid} on " in line, line
        assert not (tmp_path / ".prod.nc.work" / "done").exists() or not any((tmp_path / ".prod.nc.work" / "done").iterdir())
    finally:
        flag.write_text("")
        assert a.wait(timeout=300) == 0, a.communicate()[1]
    alone = predict_product(setup["run"], *PERIOD, tmp_path / "alone.nc", chunk_days=10, chunk_sites=48,
                            progress=False)
    got, ref = read_product(out, load=True), read_product(alone, load=True)
    for name in ref.data_vars:
        if name != "crs":
            np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)
    assert not list(tmp_path.glob(".*.smfusion-lock"))  # released and removed


HOLDER = "import sys, time; from smfusion.io.lock import hold; h = hold(sys.argv[1], 'train'); h.__enter__(); " \
         "open(sys.argv[2], 'w').close(); time.sleep(600)"


def test_a_held_run_is_refused_and_a_dead_holders_lock_is_taken_over(setup, tmp_path, capsys):
    """Another process holds the run's lock as train does: train (even --restart) is refused in one line naming
    it and moves nothing aside; after that process is killed with SIGKILL its lock file is taken over."""
    run, ready = tmp_path / "run", tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), str(ready)],
                              env={**os.environ, "PYTHONPATH": SRC})
    try:
        while not ready.exists():
            assert holder.poll() is None
            time.sleep(0.05)
        code = main(["train", str(setup["cfg"]), "--run-dir", str(run), "--restart", "--no-evaluate"])
        line = _one_line(capsys.readouterr().err)
        assert code == 2 and f"in use by smfusion train (pid {holder.pid} on " in line and "started 20" in line
        assert not list(tmp_path.glob("run*"))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert (tmp_path / ".run.smfusion-lock").is_file()  # left by the dead holder, no longer locked
    assert main(["train", str(setup["cfg"]), "--run-dir", str(run), "--no-evaluate"]) == 0
    assert (run / "member_0" / "model.pt").is_file() and not (tmp_path / ".run.smfusion-lock").exists()


@pytest.mark.slow
def test_two_trainings_on_one_run_dir_and_a_dead_holder(setup, tmp_path, capsys):
    """Training A holds the run; B (even with --restart) is refused naming A and moves nothing aside. Once A is
    killed with SIGKILL, its lock file is left behind and taken over: B trains."""
    run = tmp_path / "run"
    a, flag = _start_holder(tmp_path, "train", str(setup["cfg"]), str(run))
    try:
        code = main(["train", str(setup["cfg"]), "--run-dir", str(run), "--restart", "--no-evaluate"])
        line = _one_line(capsys.readouterr().err)
        assert code == 2 and f"in use by smfusion train (pid {a.pid} on " in line, line
        assert not list(tmp_path.glob("run.old-*"))
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=60)
    assert (tmp_path / ".run.smfusion-lock").is_file()  # the dead holder's lock file, no longer locked
    assert main(["train", str(setup["cfg"]), "--run-dir", str(run), "--no-evaluate"]) == 0
    assert (run / "member_0" / "model.pt").is_file() and not (tmp_path / ".run.smfusion-lock").exists()


# -- 5. the report is safe to open -----------------------------------------------------------------------------
MARKUP = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


def test_report_escapes_every_string_it_shows(setup, tmp_path):
    """Markup through the run's path, its name and config, a station name and file, a file attribute: the
    page's parsed text holds it verbatim, and the page holds no element or attribute it did not write."""
    from html.parser import HTMLParser

    import pandas as pd
    import xarray as xr

    from smfusion.evaluation.htmlreport import build_report

    run = tmp_path / f"run{MARKUP.replace('/', '_')}"
    shutil.copytree(setup["run"], run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["name"] = "n" + MARKUP  # the report reads config.yaml as text (no validation)
    cfg["data"]["note"] = MARKUP
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "predictions").mkdir()
    dims, zeros = ("site", "time"), np.full((1, 2), 0.2)
    ds = xr.Dataset({"sm": (dims, zeros), "sm_obs": (dims, zeros),
                     "sm_std": (dims, zeros / 4, {"comment": "attr" + MARKUP})},  # a file attribute the page shows
                    coords={"site": [MARKUP], "time": pd.date_range("2015-08-01", periods=2),
                            "lat": ("site", [40.0]), "lon": ("site", [-100.0])})
    ds.to_netcdf(run / "predictions" / "test.nc")
    table = tmp_path / f"val{MARKUP.replace('/', '_')}.csv"
    pd.DataFrame({"product": [MARKUP], "station": [MARKUP], "network": ["n"], "lat": [40.0], "lon": [-100.0],
                  "distance_km": [1.0], "n": [30], "R": [0.5], "ubRMSE": [0.04], "RMSE": [0.05], "bias": [0.0],
                  "status": [MARKUP]}).to_csv(table, index=False)
    page = build_report(run, tmp_path / "report", validation=table, progress=False).read_text()

    class Parse(HTMLParser):
        tags, attrs, text = set(), set(), []

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            self.attrs.update(k for k, _ in attrs)

        def handle_data(self, data):
            self.text.append(data)

    p = Parse(convert_charrefs=True)
    p.feed(page)
    text = "".join(p.text)
    assert "script" not in p.tags and "onerror" not in p.attrs and "img" in p.tags
    for what in (str(run.resolve()), "n" + MARKUP, str(table), "attr" + MARKUP, f"site {MARKUP}"):
        assert what in text, what
    assert text.count(MARKUP) >= 3  # config text, station / product in the validation table, the path
    assert "<script>" not in page and "onerror=alert" not in page.replace("onerror=alert(2)&gt;", "")


def test_a_zarr_store_naming_the_pickle_codec_is_refused_before_it_is_read(tmp_path):
    """numcodecs' pickle codec would unpickle every chunk (zarr 2 reads it): refused from the metadata alone."""
    import json

    import xarray as xr

    from smfusion.errors import DataError
    from smfusion.io.cf import read_product

    store = tmp_path / "p.zarr"
    xr.Dataset({"sm": ("site", np.arange(3.0))}, attrs={"Conventions": "CF-1.8"}).to_zarr(store, zarr_format=2,
                                                                                           consolidated=False)
    meta = json.loads((store / "sm" / ".zarray").read_text())
    meta["filters"] = [{"id": "pickle", "protocol": 5}]
    (store / "sm" / ".zarray").write_text(json.dumps(meta))
    (store / "sm" / "0").write_bytes(pickle.dumps(Evil(tmp_path / "PWNED")))
    with pytest.raises(DataError, match=r"Zarr array 'sm' names the codec 'pickle'.*refused") as exc:
        read_product(store, load=True)
    assert "\n" not in str(exc.value) and not (tmp_path / "PWNED").exists()


def test_a_product_work_folder_is_removed_only_while_it_holds_the_engines_files(tmp_path):
    from smfusion.errors import OutputError
    from smfusion.products.engine import remove_work

    work = tmp_path / ".p.nc.work"
    for rel in ("request.json", ".smfusion-output", "done/0_0", "state/0_0.npz", "layers.zarr/.zgroup",
                "layers.zarr/sm/.zarray", "layers.zarr/sm/0.0"):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text("x")
    (work / "state" / "mine.txt").write_text("user file")
    with pytest.raises(OutputError, match="holds 'state/mine.txt', which smfusion did not write"):
        remove_work(work)
    assert (work / "state" / "mine.txt").read_text() == "user file" and (work / "done" / "0_0").is_file()
    (work / "state" / "mine.txt").unlink()
    remove_work(work)
    assert not work.exists()


def test_a_work_folder_is_joined_only_when_its_owner_is_gone(tmp_path):
    """Even where the output's lock is not there (a file system without locks), a live owner on this host
    keeps its work folder; a dead owner's folder is joined."""
    import json

    from smfusion.errors import OutputError
    from smfusion.products.engine import OWNER, _check_owner_gone

    work = tmp_path / ".p.nc.work"
    work.mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (work / OWNER).write_text(json.dumps({"host": __import__("socket").gethostname(), "pid": alive.pid}))
        with pytest.raises(OutputError, match=f"work folder in use by pid {alive.pid}"):
            _check_owner_gone(work)
    finally:
        alive.kill()
        alive.wait()
    _check_owner_gone(work)  # its owner is gone: joined
