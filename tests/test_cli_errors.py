"""Issue 10, table-driven: every bad input and every unsafe output, run through the CLI as a subprocess,
ends as exactly one ``smfusion: error: <where>: <what> (<hint>)`` line with exit code 2, no traceback,
and leaves every folder of the user byte-for-byte as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest
import xarray as xr

from smfusion.cli.main import main

pytestmark = pytest.mark.realdata

CLI = [sys.executable, "-m", "smfusion.cli"]
PREFIX = "smfusion: error: "
MINI = """\
name: mini
data:
  root: {root}
  dynamic: [APCP_FORA, TMP_2_FORA]
  static: [Sand]
  target: [SMAP_AM]
periods:
  train: [2015-04-01, 2016-03-31]
  test: [2016-04-01, 2017-03-31]
  warmup_days: 30
model: {{name: lstm, hidden_size: 4, dropout: 0.0}}
training: {{epochs: 1, batch_size: 4, seq_len: 30, iterations_per_epoch: 2, progress: false, checkpoint_every: 1}}
evaluation: {{baselines: [climatology], plots: false}}
"""


def tree_hash(root: Path) -> str:
    """sha256 over every path below ``root`` with its kind and bytes (links by target)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            h.update(str(p.relative_to(root)).encode())
            if p.is_symlink():
                h.update(b"L" + os.readlink(p).encode())
            elif p.is_file():
                h.update(b"F" + p.read_bytes())
            else:
                h.update(b"D")
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory, mini_db):
    """A user's folder: a small database, a config, a trained run, a product smfusion wrote, and files it did not."""
    w = tmp_path_factory.mktemp("world")
    db = mini_db(w / "db")
    (w / "mini.yaml").write_text(MINI.format(root=db))
    assert main(["train", str(w / "mini.yaml"), "--run-dir", str(w / "run"), "--no-evaluate"]) == 0
    assert main(["predict", str(w / "run"), "--start", "2016-04-01", "--end", "2016-04-05",
                 "--out", str(w / "pred.nc")]) == 0
    (w / "mydata.zarr").mkdir()
    (w / "mydata.zarr" / "notes.txt").write_text("a week of field notes")
    (w / "afile.txt").write_text("not a folder")
    (w / "mine.csv").write_text("my,table\n")
    xr.Dataset({"x": ("t", [1.0, 2.0])}).to_netcdf(w / "foreign.nc")
    return w


# -- preparations of a case: write a bad config or a corrupted copy of the database into tmp -------------------
def config(text_edit: Callable[[str], str]) -> Callable:
    def prep(w: Path, tmp: Path) -> None:
        (tmp / "bad.yaml").write_text(text_edit((w / "mini.yaml").read_text()))
    return prep


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)
    return edit


def corrupt(rel: str, edit: Callable[[list[str]], list[str]]) -> Callable:
    """A copy of the world's database in tmp/db with ``edit`` applied to the lines of one file, and tmp/bad.yaml on it."""
    def prep(w: Path, tmp: Path) -> None:
        shutil.copytree(w / "db", tmp / "db")
        path = tmp / "db" / "CONUSv4f1" / rel
        path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))
        (tmp / "bad.yaml").write_text((w / "mini.yaml").read_text().replace(str(w / "db"), str(tmp / "db")))
    return prep


def set_cell(row: int, col: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        cells = lines[row].rstrip("\n").split(",")
        cells[col] = value
        lines[row] = ",".join(cells) + "\n"
        return lines
    return edit


def fill_row(row: int) -> Callable[[list[str]], list[str]]:
    def edit(lines):
        lines[row] = ",".join(["-9999"] * len(lines[row].split(","))) + "\n"
        return lines
    return edit


def all_fill(lines):
    return [",".join(["-9999"] * len(line.split(","))) + "\n" for line in lines]


def drop_last_value(row: int):
    def edit(lines):
        lines[row] = lines[row].rstrip("\n").rsplit(",", 1)[0] + "\n"
        return lines
    return edit


def unwritable(w: Path, tmp: Path) -> None:
    ro = tmp / "readonly"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root: a folder nobody can create files in
        ro.chmod(0o700)
        ro.rmdir()
        if not Path("/sys").is_dir():
            pytest.skip("no unwritable folder available to root")
        ro.symlink_to("/sys")


def data_home(w: Path, tmp: Path) -> None:
    (tmp / "home").mkdir()
    (tmp / "empty").mkdir()
    (tmp / "dd").mkdir()
    shutil.copytree(w / "db", tmp / "dd" / "conus_smap")
    (tmp / "noroot.yaml").write_text("".join(l for l in (w / "mini.yaml").read_text().splitlines(True)
                                             if not l.startswith("  root:")))


@dataclass
class Case:
    id: str
    argv: list[str]
    needles: list[str]
    where: str = ""  # must occur in the <where> part of the line
    prep: Optional[Callable] = None
    env: dict = field(default_factory=dict)
    rc: int = 2


PRED = ["predict", "{run}", "--start", "2016-04-01", "--end", "2016-04-10"]
TRAIN_BAD = ["train", "{tmp}/bad.yaml", "--run-dir", "{tmp}/newrun", "--no-evaluate"]
CHECK_BAD = ["check", "{tmp}/bad.yaml"]
ML = ["merge-labels", "--examples", "{tmp}/ex", "--ismn", "{tmp}/ismn"]

CASES = [
    # never delete or replace what smfusion did not write
    Case("out_is_run", PRED + ["--out", "{run}"], ["is an input"], where="run"),
    Case("out_is_run_overwrite", PRED + ["--out", "{run}", "--overwrite"], ["is an input"], where="run"),
    Case("out_is_checkpoints", ["fusion-shards", "--out", "{run}/member_0/checkpoints"], ["exists", "--overwrite"],
         where="checkpoints"),
    Case("out_is_checkpoints_overwrite", PRED + ["--out", "{run}/member_0/checkpoints", "--overwrite"],
         ["is a folder, and this output is a file"], where="checkpoints"),
    Case("folder_out_is_checkpoints_overwrite", ["fusion-shards", "--out", "{run}/member_0/checkpoints",
                                                 "--overwrite"], ["is a run directory"], where="checkpoints"),
    Case("folder_out_is_run_overwrite", ["fusion-shards", "--out", "{run}", "--overwrite"], ["is a run directory"],
         where="run"),
    Case("out_in_run_overwrite", PRED + ["--out", "{run}/config.yaml", "--overwrite"], ["inside the run directory"],
         where="config.yaml"),
    Case("out_user_folder_overwrite", PRED + ["--out", "{w}/mydata.zarr", "--overwrite"], ["did not write"],
         where="mydata.zarr"),
    Case("out_foreign_netcdf_overwrite", PRED + ["--out", "{w}/foreign.nc", "--overwrite"], ["cannot tell"],
         where="foreign.nc"),
    Case("out_own_netcdf_without_flag", PRED + ["--out", "{w}/pred.nc"], ["exists", "--overwrite"], where="pred.nc"),
    Case("out_folder_holding_run", ML + ["--out", "{w}", "--overwrite"], ["contains the run directory"]),
    Case("out_parent_is_file", PRED + ["--out", "{w}/afile.txt/p.nc"], ["is a file, not a folder"]),
    Case("out_unwritable", PRED + ["--out", "{tmp}/readonly/p.nc"], ["not writable"], prep=unwritable),
    Case("validate_table_over_user_csv", ["validate", "{w}/pred.nc", "--stations", "{tmp}/st.csv", "--out",
                                          "{w}/mine.csv"], ["exists"], where="mine.csv"),
    Case("validate_sibling_over_user_json", ["validate", "{w}/pred.nc", "--stations", "{tmp}/st.csv", "--out",
                                             "{tmp}/t.csv"], ["exists"], where="t.json",
         prep=lambda w, tmp: (tmp / "t.json").write_text("{}")),
    Case("shards_into_user_folder", ["fusion-shards", "--out", "{w}/mydata.zarr"], ["exists"]),
    Case("shards_into_user_folder_overwrite", ["fusion-shards", "--out", "{w}/mydata.zarr", "--overwrite"],
         ["did not write"]),
    # numbers and dates on the command line
    Case("epochs_negative", ["train", "{w}/mini.yaml", "--epochs", "-1"], ["--epochs", "at least 1"]),
    Case("epochs_text", ["train", "{w}/mini.yaml", "--epochs", "ten"], ["--epochs", "not a whole number"]),
    Case("start_not_a_date", ["predict", "{run}", "--start", "foo", "--end", "2016-04-10", "--out", "{tmp}/p.nc"],
         ["--start", "not a date"]),
    Case("start_after_end", ["predict", "{run}", "--start", "2016-05-01", "--end", "2016-04-10", "--out",
                             "{tmp}/p.nc"], ["--start 2016-05-01 is after --end 2016-04-10"]),
    Case("noise_runs_negative", PRED + ["--out", "{tmp}/p.nc", "--product", "--noise-runs", "-1"], ["--noise-runs"]),
    Case("noise_nan", PRED + ["--out", "{tmp}/p.nc", "--product", "--noise", "nan"], ["--noise", "finite"]),
    Case("chunk_days_zero", PRED + ["--out", "{tmp}/p.nc", "--product", "--chunk-days", "0"], ["--chunk-days"]),
    Case("predict_past_the_data", ["predict", "{run}", "--start", "2018-03-01", "--end", "2019-01-31", "--out",
                                   "{tmp}/p.nc"], ["2019-01-31 is after the last day of the inputs, 2018-03-31"],
         where="--end"),
    Case("required_missing", ["predict", "{run}", "--out", "{tmp}/p.nc"], ["required", "--start"]),
    # config
    Case("yaml_duplicate_key", TRAIN_BAD, ["duplicate key 'model'", "line"], where="bad.yaml",
         prep=config(lambda t: t + "model: {name: mlp}\n")),
    Case("yaml_bad_date", TRAIN_BAD, ["invalid date", "line 8"], where="bad.yaml",
         prep=config(replace("train: [2015-04-01", "train: [2015-13-01"))),
    Case("variable_twice", TRAIN_BAD, ["data.dynamic", "'APCP_FORA' listed twice"], where="bad.yaml",
         prep=config(replace("[APCP_FORA, TMP_2_FORA]", "[APCP_FORA, TMP_2_FORA, APCP_FORA]"))),
    Case("variable_in_two_roles", TRAIN_BAD, ["'Sand' is in both data.dynamic and data.static"], where="bad.yaml",
         prep=config(replace("dynamic: [APCP_FORA, TMP_2_FORA]", "dynamic: [APCP_FORA, Sand]"))),
    Case("sites_empty", TRAIN_BAD, ["data.sites", "empty list"], where="bad.yaml",
         prep=config(replace("  target: [SMAP_AM]", "  target: [SMAP_AM]\n  sites: []"))),
    Case("epochs_zero_in_config", TRAIN_BAD, ["training.epochs"], where="bad.yaml",
         prep=config(replace("epochs: 1,", "epochs: 0,"))),
    Case("k_above_sites", TRAIN_BAD, ["split.k 5 exceeds the 3 sites"], where="bad.yaml",
         prep=config(lambda t: t.replace("  target: [SMAP_AM]", "  target: [SMAP_AM]\n  sites: [0, 1, 2]")
                     + "split: {kind: kfold, k: 5}\n")),
    Case("test_period_past_data_train", TRAIN_BAD, ["outside the data, 2015-04-01 .. 2018-03-31"],
         where="periods.test",
         prep=config(replace("test: [2016-04-01, 2017-03-31]", "test: [2016-04-01, 2019-03-31]"))),
    Case("test_period_past_data_check", CHECK_BAD, ["outside the data"], where="periods.test",
         prep=config(replace("test: [2016-04-01, 2017-03-31]", "test: [2016-04-01, 2019-03-31]"))),
    Case("test_period_without_target_check", CHECK_BAD, ["SMAP_AM has no observation"], where="periods.test",
         prep=config(replace("test: [2016-04-01, 2017-03-31]", "test: [2017-04-01, 2018-03-31]"))),
    Case("site_out_of_range_check", CHECK_BAD, ["site 9 out of range"], where="data.sites",
         prep=config(replace("  target: [SMAP_AM]", "  target: [SMAP_AM]\n  sites: [0, 9]"))),
    # data files
    Case("inf_in_forcing", TRAIN_BAD, ["non-finite value inf", "line 3 (site 2)", "column 10 (2015-04-10)"],
         where="2015/APCP_FORA.csv", prep=corrupt("2015/APCP_FORA.csv", set_cell(2, 9, "inf"))),
    Case("text_in_forcing", TRAIN_BAD, ["line 2, column 5", "'abc' is not a number"],
         where="2016/TMP_2_FORA.csv", prep=corrupt("2016/TMP_2_FORA.csv", set_cell(1, 4, "abc"))),
    Case("forcing_all_missing", TRAIN_BAD, ["no valid value"], where="2015/TMP_2_FORA.csv",
         prep=corrupt("2015/TMP_2_FORA.csv", all_fill)),
    Case("site_all_missing", TRAIN_BAD, ["site 4 (line 5) has no valid value"], where="2016/APCP_FORA.csv",
         prep=corrupt("2016/APCP_FORA.csv", fill_row(4))),
    Case("static_all_missing", TRAIN_BAD, ["no valid value"], where="const/Sand.csv",
         prep=corrupt("const/Sand.csv", all_fill)),
    Case("ragged_row", TRAIN_BAD, ["ragged", "line 4"], where="2015/APCP_FORA.csv",
         prep=corrupt("2015/APCP_FORA.csv", drop_last_value(3))),
    Case("truncated_rows", TRAIN_BAD, ["has 5 rows", "crd.csv lists 6 cells"], where="2016/APCP_FORA.csv",
         prep=corrupt("2016/APCP_FORA.csv", lambda lines: lines[:5])),
    Case("truncated_mid_row", TRAIN_BAD, ["ragged or truncated", "line 3"], where="2015/APCP_FORA.csv",
         prep=corrupt("2015/APCP_FORA.csv", lambda lines: lines[:2] + [lines[2][: len(lines[2]) // 2]])),
    Case("crd_nan", TRAIN_BAD, ["line 2 (site 1)"], where="crd.csv", prep=corrupt("crd.csv", set_cell(1, 0, "nan"))),
    Case("crd_out_of_range", TRAIN_BAD, ["latitude 123 outside -90 .. 90"], where="crd.csv",
         prep=corrupt("crd.csv", set_cell(3, 0, "123"))),
    Case("crd_extra_row", TRAIN_BAD, ["lists 7 cells", "have 6 rows"], where="crd.csv",
         prep=corrupt("crd.csv", lambda lines: lines + ["40.0,-100.0\n"])),
    Case("timestr_bad_date", TRAIN_BAD, ["line 5", "not a date"], where="timeStr.csv",
         prep=corrupt("2016/timeStr.csv", set_cell(4, 0, "2016-04-3x"))),
    # where the data are
    Case("data_dir_missing", ["train", "{tmp}/noroot.yaml", "--run-dir", "{tmp}/newrun"],
         ["SMFUSION_DATA_DIR", "does not exist"], where="nope", prep=data_home,
         env={"SMFUSION_DATA_DIR": "{tmp}/nope", "HOME": "{tmp}/home", "XDG_CACHE_HOME": "{tmp}/home/.cache"}),
    Case("data_dir_empty", ["train", "{tmp}/noroot.yaml", "--run-dir", "{tmp}/newrun"],
         ["has no conus_smap/ folder"], where="empty", prep=data_home,
         env={"SMFUSION_DATA_DIR": "{tmp}/empty", "HOME": "{tmp}/home", "XDG_CACHE_HOME": "{tmp}/home/.cache"}),
    Case("data_dir_incomplete", ["train", "{tmp}/noroot.yaml", "--run-dir", "{tmp}/newrun"],
         ["file of the CONUS sample missing"], where="DLWRF_FORA.csv", prep=data_home,
         env={"SMFUSION_DATA_DIR": "{tmp}/dd", "HOME": "{tmp}/home", "XDG_CACHE_HOME": "{tmp}/home/.cache"}),
]


def _fmt(text: str, w: Path, tmp: Path) -> str:
    return text.format(w=w, run=w / "run", tmp=tmp)


def run_cli(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("SMFUSION_DEBUG", None)
    return subprocess.run(CLI + argv, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line_and_nothing_changes(case, world, tmp_path):
    if case.prep is not None:
        case.prep(world, tmp_path)
    before = tree_hash(world), tree_hash(tmp_path)
    env = {k: _fmt(v, world, tmp_path) for k, v in case.env.items()}
    proc = run_cli([_fmt(a, world, tmp_path) for a in case.argv], env=env, cwd=tmp_path)
    assert proc.returncode == case.rc, proc.stderr
    line = one_error_line(proc)
    for needle in case.needles:
        assert needle in line, line
    assert case.where in line[len(PREFIX):].split(": ")[0], line
    assert (tree_hash(world), tree_hash(tmp_path)) == before, "a refused command changed the user's files"


# -- the paths that succeed, and what an error looks like with --debug ------------------------------------------
def test_overwrite_replaces_only_what_smfusion_wrote(world, tmp_path):
    out = tmp_path / "pred.nc"
    shutil.copy(world / "pred.nc", out)
    before = out.read_bytes()
    proc = run_cli(PRED[:1] + [str(world / "run")] + PRED[2:] + ["--out", str(out), "--overwrite"])
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() != before and xr.open_dataset(out).sizes["time"] == 10
    assert not [n for n in os.listdir(tmp_path) if ".smfusion-" in n]


def test_overwrite_replaces_a_folder_output_smfusion_wrote(tmp_path):
    argv = ["fusion-shards", "--out", str(tmp_path / "shards"), "--sensors", "2", "--times", "2", "--shards", "2"]
    assert run_cli(argv).returncode == 0
    before = tree_hash(tmp_path)
    proc = run_cli(argv)
    assert proc.returncode == 2 and "--overwrite" in one_error_line(proc) and tree_hash(tmp_path) == before
    proc = run_cli(argv[:-1] + ["3", "--overwrite"])
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        ".smfusion-output"] + [f"synthetic-0000{k}-of-00003.tfrecord.gz" for k in range(3)]


def test_overwrite_replaces_a_file_output_recorded_in_the_ledger(tmp_path):
    """casm-twin's writer does not take the flag: the CLI's user_output context applies it, and records the file."""
    argv = ["casm-twin", "--out", str(tmp_path / "twin.nc"), "--cells", "2", "--start", "2015-04-01",
            "--end", "2015-04-30"]
    assert run_cli(argv).returncode == 0
    assert (tmp_path / ".smfusion-files").is_file()
    before = tree_hash(tmp_path)
    proc = run_cli(argv)
    assert proc.returncode == 2 and "--overwrite" in one_error_line(proc) and tree_hash(tmp_path) == before
    proc = run_cli(argv + ["--seed", "1", "--overwrite"])
    assert proc.returncode == 0, proc.stderr
    assert tree_hash(tmp_path) != before


def test_check_passes_a_good_config(world):
    proc = run_cli(["check", str(world / "mini.yaml")])
    assert proc.returncode == 0 and proc.stderr == "" and "inputs OK" in proc.stdout


def test_debug_shows_the_traceback(world, tmp_path):
    argv = PRED[:1] + [str(world / "run")] + PRED[2:] + ["--out", str(world / "pred.nc")]
    for extra, env in ((["--debug"], {}), ([], {"SMFUSION_DEBUG": "1"})):
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
        proc = subprocess.run(CLI + argv + extra, capture_output=True, text=True, env=full_env, timeout=300)
        assert proc.returncode == 2 and "Traceback" in proc.stderr and "OutputError" in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(PREFIX + str(world / "pred.nc"))


def test_internal_error_is_one_line_with_exit_1(capsys):
    from smfusion.cli.args import Parser, run

    def boom(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    parser = Parser(prog="smfusion")
    parser.set_defaults(func=boom)
    assert run(parser, []) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["smfusion: internal error: ZeroDivisionError: division by zero second line (run with --debug or"
                   " SMFUSION_DEBUG=1 for the traceback, and please report it)"]
    assert run(parser, ["--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(world, tmp_path):
    cfg = tmp_path / "two.yaml"
    cfg.write_text((world / "mini.yaml").read_text().replace("epochs: 1,", "epochs: 2,"))
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(run), "--no-evaluate"]) == 0
    last = run / "member_0" / "checkpoints" / "epoch_0002.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a truncated write
    proc = run_cli(["train", str(cfg), "--run-dir", str(run), "--no-evaluate"])
    assert proc.returncode == 0, proc.stderr
    warns = [line for line in proc.stderr.splitlines() if line.startswith("smfusion: warning: ")]
    assert len(warns) == 1 and "epoch_0002.pt" in warns[0] and "corrupt checkpoint" in warns[0], proc.stderr
    assert (last.parent / "epoch_0002.pt.corrupt").is_file() and last.is_file()  # retrained from epoch 1
    assert "Traceback" not in proc.stderr


def test_corrupt_model_pt_is_one_line_naming_it(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    (run / "member_0" / "model.pt").write_bytes(b"not a zip archive")
    proc = run_cli(PRED[:1] + [str(run)] + PRED[2:] + ["--out", str(tmp_path / "p.nc")])
    assert proc.returncode == 2 and "member_0/model.pt" in one_error_line(proc)
