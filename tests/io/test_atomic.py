"""Atomic, non-destructive writes: what may be replaced, stale temporaries, and SIGKILL mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from smfusion.errors import OutputError
from smfusion.io import cf
from smfusion.io.atomic import atomic_path, clean_stale, temp_name, write_text
from smfusion.io.ownership import MARKER, check_output, is_run_dir, is_smfusion_output


def _site_ds(value: float = 0.2) -> xr.Dataset:
    return xr.Dataset(
        {"sm": (("site", "time"), np.full((3, 4), value, dtype=np.float32))},
        coords={"site": np.arange(3), "time": np.arange(4).astype("datetime64[D]").astype("datetime64[ns]"),
                "lat": ("site", [40.0, 41.0, 42.0]), "lon": ("site", [-100.0, -101.0, -102.0])},
    )


def _temps(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if ".smfusion-" in n and n.endswith((".tmp", ".old", ".trash")))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_netcdf_overwrite_rules(tmp_path):
    out = tmp_path / "p.nc"
    cf.write_netcdf(_site_ds(0.1), out, overwrite=False)
    assert is_smfusion_output(out)
    first = out.read_bytes()
    with pytest.raises(OutputError, match="exists.*--overwrite"):
        cf.write_netcdf(_site_ds(0.2), out, overwrite=False)
    assert out.read_bytes() == first
    cf.write_netcdf(_site_ds(0.3), out, overwrite=True)
    assert float(cf.read_product(out, load=True)["sm"].mean()) == pytest.approx(0.3)
    assert _temps(tmp_path) == []


def test_foreign_files_and_folders_are_never_replaced(tmp_path):
    foreign = tmp_path / "theirs.nc"
    _site_ds().to_netcdf(foreign)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("field notes")
    before = foreign.read_bytes()
    for overwrite in (True, None):
        with pytest.raises(OutputError, match="did not write"):
            cf.write_zarr(_site_ds(), folder, overwrite=overwrite)
    with pytest.raises(OutputError, match="cannot tell that it wrote"):
        cf.write_netcdf(_site_ds(), foreign, overwrite=True)
    assert foreign.read_bytes() == before and (folder / "a.txt").read_text() == "field notes"
    link = tmp_path / "link.nc"
    link.symlink_to(foreign)
    with pytest.raises(OutputError, match="symbolic link"):
        cf.write_netcdf(_site_ds(), link, overwrite=True)


def test_zarr_marker_lists_entries_and_guards_user_files(tmp_path):
    store = tmp_path / "p.zarr"
    cf.write_zarr(_site_ds(0.1), store)
    marker = json.loads((store / MARKER).read_text())
    assert marker["written_by"] == "smfusion" and ".zattrs" in marker["entries"] and "sm" in marker["entries"]
    assert float(cf.read_product(store, load=True)["sm"].mean()) == pytest.approx(0.1)
    cf.write_zarr(_site_ds(0.2), store, overwrite=True)
    assert float(cf.read_product(store, load=True)["sm"].mean()) == pytest.approx(0.2)
    (store / "my_notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="holds 'my_notes.txt'"):
        cf.write_zarr(_site_ds(0.3), store, overwrite=True)
    assert (store / "my_notes.txt").read_text() == "mine"
    assert _temps(tmp_path) == []


def test_run_directories_and_inputs_are_never_replaced(tmp_path):
    run = tmp_path / "run"
    (run / "member_0" / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("name: r\n")
    (run / "member_0" / "checkpoints" / "epoch_0001.pt").write_bytes(b"weights")
    assert is_run_dir(run) and is_run_dir(run / "member_0") and is_run_dir(run / "member_0" / "checkpoints")
    with pytest.raises(OutputError, match="is a run directory"):
        check_output(run / "member_0", overwrite=True)
    with pytest.raises(OutputError, match="contains the run directory"):
        check_output(tmp_path, overwrite=True)
    cf.write_netcdf(_site_ds(), run / "pred.nc")
    with pytest.raises(OutputError, match="inside the run directory"):
        check_output(run / "pred.nc", overwrite=True)
    # smfusion's own rewrites inside its run directory keep working (overwrite=None)
    write_text(run / "config.yaml", "name: r2\n")
    assert (run / "config.yaml").read_text() == "name: r2\n"
    with pytest.raises(OutputError, match="contains the run directory"):
        with atomic_path(tmp_path) as tmp:
            tmp.mkdir()
    src = tmp_path / "inputs"
    src.mkdir()
    with pytest.raises(OutputError, match="is an input"):
        check_output(src, overwrite=True, protect=[src])
    with pytest.raises(OutputError, match="contains the input"):
        check_output(tmp_path, overwrite=True, protect=[src / "x.csv"])


def test_parents_and_kinds_checked_before_work(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output(tmp_path / "f" / "sub" / "p.nc")
    with pytest.raises(OutputError, match="parent of the output is a file"):
        write_text(tmp_path / "f" / "x.txt", "y")
    (tmp_path / "empty").mkdir()
    assert check_output(tmp_path / "empty", kind="dir") == tmp_path / "empty"  # nothing to lose
    with pytest.raises(OutputError, match="is a folder, and this output is a file"):
        check_output(tmp_path / "empty", kind="file")
    cf.write_zarr(_site_ds(), tmp_path / "empty")  # an empty folder takes a folder output
    assert is_smfusion_output(tmp_path / "empty")


def test_failed_write_leaves_target_and_no_temp(tmp_path):
    out = tmp_path / "a.txt"
    write_text(out, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert out.read_text() == "old" and _temps(tmp_path) == []


def test_stale_temps_of_dead_processes_are_cleaned_and_moved_aside_targets_restored(tmp_path):
    out = tmp_path / "p.zarr"
    cf.write_zarr(_site_ds(0.1), out)
    pid, mine = _dead_pid(), os.getpid()
    dead_tmp = Path(str(temp_name(out, "tmp")).replace(f"-{mine}-", f"-{pid}-"))
    dead_tmp.mkdir()
    (dead_tmp / "chunk").write_bytes(b"partial")
    live_tmp = temp_name(out, "tmp")  # this (live) process's: kept
    live_tmp.write_text("in progress")
    other = tmp_path / ".other.nc.smfusion-host-1-abcd.tmp"  # another target's: kept
    other.write_text("x")
    assert clean_stale(out) == [dead_tmp]
    assert live_tmp.exists() and other.exists() and not dead_tmp.exists()
    # a crash between the two renames of a folder swap: the target was moved aside, then the process died
    aside = Path(str(temp_name(out, "old")).replace(f"-{mine}-", f"-{pid}-"))
    os.rename(out, aside)
    clean_stale(out)
    assert not aside.exists() and float(cf.read_product(out, load=True)["sm"].mean()) == pytest.approx(0.1)


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from smfusion.io.atomic import atomic_path
    target, kind = Path(sys.argv[1]), sys.argv[2]
    with atomic_path(target, overwrite=True) as tmp:
        if kind == "dir":
            tmp.mkdir()
            tmp = tmp / "chunk"
        with open(tmp, "wb") as fh:
            fh.write(b"x" * 100000)
            fh.flush()
            print("WRITING", flush=True)
            time.sleep(120)
""")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_sigkill_mid_overwrite_keeps_the_old_output(tmp_path, kind):
    out = tmp_path / ("p.nc" if kind == "file" else "p.zarr")
    write = cf.write_netcdf if kind == "file" else cf.write_zarr
    write(_site_ds(0.1), out)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out), kind], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert float(cf.read_product(out, load=True)["sm"].mean()) == pytest.approx(0.1)  # untouched
    assert len(_temps(tmp_path)) == 1  # the killed writer's temporary
    write(_site_ds(0.4), out, overwrite=True)  # the next write cleans it up
    assert _temps(tmp_path) == []
    assert float(cf.read_product(out, load=True)["sm"].mean()) == pytest.approx(0.4)


def test_move_aside_renames_a_whole_run_and_deletes_nothing(tmp_path):
    from smfusion.io.atomic import move_aside

    run = tmp_path / "run"
    ckpts = run / "member_0" / "checkpoints"
    ckpts.mkdir(parents=True)
    (run / "config.yaml").write_text("name: r\n")
    (ckpts / "epoch_0010.pt").write_bytes(b"stale")
    (run / "member_0" / "my notes.txt").write_text("mine")
    first = move_aside(run)
    assert not run.exists() and first.name.startswith("run.old-")
    assert (first / "member_0" / "my notes.txt").read_text() == "mine"  # the user's file went along
    run.mkdir()
    (run / "config.yaml").write_text("name: r\n")
    second = move_aside(run)  # the same second: another name, the first one untouched
    assert second != first and first.is_dir() and second.is_dir()
    assert move_aside(tmp_path / "absent") is None
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    with pytest.raises(OutputError, match="not a run directory"):
        move_aside(tmp_path / "mine")
    assert (tmp_path / "mine" / "a.txt").is_file()


def test_ledger_makes_any_file_smfusion_wrote_recognisable(tmp_path):
    from smfusion.io.ownership import LEDGER

    out = tmp_path / "points.csv"
    write_text(out, "a,b\n1,2\n", overwrite=False)
    assert is_smfusion_output(out) and json.loads((tmp_path / LEDGER).read_text())["points.csv"]
    write_text(out, "a,b\n3,4\n", overwrite=True)
    out.write_text("a,b\n3,4\nmy own row\n")  # edited by the user: theirs now
    with pytest.raises(OutputError, match="cannot tell that it wrote"):
        write_text(out, "a,b\n5,6\n", overwrite=True)
    assert out.read_text().endswith("my own row\n")
    (tmp_path / "theirs.csv").write_text("x\n")
    with pytest.raises(OutputError, match="cannot tell"):
        check_output(tmp_path / "theirs.csv", overwrite=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("name: r\n")
    write_text(run / "metrics.json", "{}")  # inside a run directory: no record needed
    assert not (run / LEDGER).exists()
    cf.write_netcdf(_site_ds(), tmp_path / "p.nc")  # describes itself: no record
    assert "p.nc" not in json.loads((tmp_path / LEDGER).read_text())


def test_user_output_context_applies_the_overwrite_rules_to_writers_that_do_not_pass_them(tmp_path):
    from smfusion.io.atomic import user_output

    out = tmp_path / "p.csv"
    with user_output(out, overwrite=False):
        write_text(out, "a\n")  # a writer that leaves overwrite unset
    assert is_smfusion_output(out)  # recorded in the ledger: a user-named output
    with user_output(out, overwrite=False), pytest.raises(OutputError, match="exists"):
        write_text(out, "b\n")
    with user_output(out, overwrite=True):
        write_text(out, "c\n")
    assert out.read_text() == "c\n"
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("x\n")
    with user_output(theirs, overwrite=True), pytest.raises(OutputError, match="cannot tell"):
        write_text(theirs, "y\n")
    assert theirs.read_text() == "x\n"
