"""Property-based fuzzing (issue 10): the config loader, the hydroDL CSV reader and the CLI's number and date
arguments either accept their input or raise one of smfusion's own errors (one line) -- nothing else escapes."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from smfusion.cli.main import build_parser
from smfusion.cli.args import preflight
from smfusion.config import load_config, parse_config
from smfusion.errors import ConfigError, DataError, SmfusionError
from smfusion.io.csvmatrix import read_matrix
from smfusion.io.hydrodl import read_hydrodl

# garbler and tmp_path_factory are stateless between examples
FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_N", 60)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

BASE = {
    "data": {"dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"], "target": ["SMAP_AM"], "sites": [0, 1, 2]},
    "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"], "warmup_days": 30},
    "split": {"kind": "temporal"},
    "model": {"name": "lstm", "hidden_size": 4},
    "training": {"epochs": 1, "batch_size": 4},
}
KEYS = [("data", "dynamic"), ("data", "static"), ("data", "target"), ("data", "sites"), ("data", "root"),
        ("periods", "train"), ("periods", "test"), ("periods", "warmup_days"), ("split", "kind"), ("split", "k"),
        ("split", "fold"), ("split", "train_sites"), ("model", "hidden_size"), ("model", "dropout"),
        ("training", "epochs"), ("training", "lr"), ("training", "swa_epochs"), ("features", "lags"),
        ("seasonal", "window"), ("variants",), ("normalization", "log1p"), ("uncertainty", "noise_runs")]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["2015-04-01", "2019-12-31", "APCP_FORA", "Sand", "inf"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                                               inner, max_size=3),
                      max_leaves=10)


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=4))
def test_config_mutations_give_config_errors_only(edits):
    raw = copy.deepcopy(BASE)
    for path, value in edits:
        node = raw
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        node[path[-1]] = value
    try:
        parse_config(raw, source="fuzz.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(text=st.text(max_size=300) | st.builds(lambda d, extra: yaml.safe_dump(d) + extra,
                                                st.just(BASE), st.text(max_size=60)))
def test_config_files_give_config_errors_only(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "fuzz.yaml" in str(exc)


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory, mini_db):
    return mini_db(tmp_path_factory.mktemp("fuzzdb") / "db", n_sites=4, years=(2015,))


FILES = ["CONUSv4f1/crd.csv", "CONUSv4f1/2015/timeStr.csv", "CONUSv4f1/2015/APCP_FORA.csv",
         "CONUSv4f1/2015/SMAP_AM.csv", "CONUSv4f1/const/Sand.csv"]


@pytest.mark.realdata
@FUZZ
@given(data=st.data())
def test_hydrodl_reader_gives_data_errors_only(fuzz_db, garbler, data):
    rel = data.draw(st.sampled_from(FILES))
    path = fuzz_db / rel
    original = path.read_bytes()
    try:
        path.write_bytes(garbler(data, original, max_edits=3, max_chunk=8))
        try:
            ds = read_hydrodl(fuzz_db, dynamic=["APCP_FORA"], static=["Sand"], target=["SMAP_AM"],
                              start="2015-04-01", end="2016-03-31")
        except DataError as exc:
            assert "\n" not in str(exc)
        else:
            assert ds.sizes == {"site": 4, "time": 366}
    finally:
        path.write_bytes(original)


@FUZZ
@given(rows=st.lists(st.lists(st.sampled_from(["1", "-9999", "0.5", "", "nan", "inf", "-inf", "1e400", "x", " 2 "]),
                              min_size=1, max_size=5), min_size=1, max_size=5))
def test_csv_matrix_reader_gives_data_errors_only(tmp_path_factory, rows):
    path = tmp_path_factory.getbasetemp() / "m.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    try:
        arr = read_matrix(path, "v")
    except DataError as exc:
        assert "\n" not in str(exc) and "m.csv" in str(exc)
    else:
        text = [",".join(r) for r in rows]
        while not text[-1].strip():  # trailing blank lines are no rows
            text.pop()
        assert arr.shape == (len(text), len(rows[0])) and not np.isinf(arr).any()


def _parse(argv: list[str]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser().parse_args(argv), ""
        except SystemExit as exc:
            assert exc.code == 2
    return None, err.getvalue()


dates = st.text(max_size=20) | st.dates().map(str) | st.sampled_from(["2016-02-30", "0001-01-01", "9999-12-31",
                                                                       "20160401", "2016-W01-1", "now", "-1"])
numbers = st.text(max_size=10) | st.integers(-10**20, 10**20).map(str) | st.floats().map(str)


@FUZZ
@given(start=dates, end=dates, noise_runs=numbers, noise=numbers, chunk=numbers)
def test_cli_dates_and_numbers_parse_or_fail_in_one_line(tmp_path_factory, start, end, noise_runs, noise, chunk):
    out = str(tmp_path_factory.getbasetemp() / "p.nc")
    argv = ["predict", "run", "--start", start, "--end", end, "--out", out, "--product", "--noise-runs", noise_runs,
            "--noise", noise, "--chunk-days", chunk]
    args, err = _parse(argv)
    if args is None:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("smfusion: error: "), err
        return
    pd.Timestamp(args.start), pd.Timestamp(args.end)  # accepted dates are usable
    assert args.noise_runs >= 0 and args.noise >= 0 and args.chunk_days >= 1
    try:
        preflight(args)
    except SmfusionError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(epochs=numbers)
def test_cli_epochs_parse_or_fail_in_one_line(epochs):
    args, err = _parse(["train", "c.yaml", "--epochs", epochs])
    if args is None:
        assert len(err.strip().splitlines()) == 1 and "--epochs" in err
    else:
        assert args.epochs >= 1

