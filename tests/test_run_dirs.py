"""Run directories are safe to restart and resume (issue 10): --restart starts from a clean slate, a
resume refuses another config's run, a failed first attempt blocks nothing, a training run never takes
over a user's folder, and a kill mid-checkpoint or mid-restart leaves a run that trains on to the same
weights."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from smfusion.cli.main import main
from smfusion.config import parse_config
from smfusion.errors import ConfigError
from smfusion.training.run import train

pytestmark = pytest.mark.realdata


def _raw(root: Path, epochs: int = 3, **training) -> dict:
    return {
        "name": "rd",
        "data": {"root": str(root), "dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"],
                 "target": ["SMAP_AM"]},
        "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"],
                    "warmup_days": 30},
        "model": {"name": "lstm", "hidden_size": 4, "dropout": 0.0},
        "training": {"epochs": epochs, "batch_size": 4, "seq_len": 30, "iterations_per_epoch": 2,
                     "progress": False, "checkpoint_every": 1, "threads": 1, **training},
    }


@pytest.fixture(scope="module")
def db(tmp_path_factory, mini_db):
    return mini_db(tmp_path_factory.mktemp("rd") / "db")


def _weights(run: Path) -> dict:
    return torch.load(run / "member_0" / "model.pt", weights_only=True)


def test_restart_moves_the_old_run_aside_and_resume_refuses_another_config(db, tmp_path, capsys):
    run = tmp_path / "run"
    train(parse_config(_raw(db, epochs=3)), run)
    assert (run / ".smfusion-run").is_file() and (run / "member_0/checkpoints/epoch_0003.pt").is_file()
    (run / "plots").mkdir(exist_ok=True)
    (run / "plots" / "my figure.png").write_bytes(b"mine")
    (run / "member_0" / "notes.txt").write_text("mine")
    # the same run dir with another config: refused, and the message says how to go on
    with pytest.raises(ConfigError, match="trained with a different config.*--restart"):
        train(parse_config(_raw(db, epochs=2)), run)
    # --restart with fewer epochs: no later checkpoint of the old run survives to be resumed from
    with pytest.warns(Warning, match="moved aside to run.old-"):
        train(parse_config(_raw(db, epochs=2)), run, resume=False)
    ckpts = sorted(p.name for p in (run / "member_0/checkpoints").iterdir())
    assert ckpts == ["epoch_0001.pt", "epoch_0002.pt"]
    (old,) = tmp_path.glob("run.old-*")  # the old run, whole, with the user's files: nothing deleted
    assert (old / "member_0/checkpoints/epoch_0003.pt").is_file()
    assert (old / "plots" / "my figure.png").read_bytes() == b"mine"
    assert (old / "member_0" / "notes.txt").read_text() == "mine"
    fresh = tmp_path / "fresh"
    train(parse_config(_raw(db, epochs=2)), fresh)
    for k, v in _weights(fresh).items():
        assert torch.equal(v, _weights(run)[k]), k  # exactly the run a fresh directory gives
    # the CLI says the same in one line
    (tmp_path / "c.yaml").write_text(__import__("yaml").safe_dump(_raw(db, epochs=4)))
    assert main(["train", str(tmp_path / "c.yaml"), "--run-dir", str(run), "--no-evaluate"]) == 2
    assert "--restart" in capsys.readouterr().err


def test_failed_first_attempt_blocks_nothing(db, tmp_path):
    run = tmp_path / "run"
    bad = _raw(db)
    bad["training"]["loss"] = "mse"
    run.mkdir()
    (run / "config.yaml").write_text("name: earlier attempt that trained nothing\n")
    train(parse_config(_raw(db, epochs=1)), run)  # no checkpoint, no weights: the new config is taken
    assert (run / "member_0/model.pt").is_file()


def test_training_never_takes_over_a_user_folder_or_an_input(db, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("field notes")
    with pytest.raises(ConfigError, match="is not a run directory"):
        train(parse_config(_raw(db, epochs=1)), mine)
    assert sorted(os.listdir(mine)) == ["notes.txt"]
    with pytest.raises(Exception, match="is an input|contains the input"):
        train(parse_config(_raw(db, epochs=1)), db)


def test_checkpoint_of_another_config_is_refused(tmp_path):
    from smfusion.config import TrainingConfig
    from smfusion.data.adapters.sequence import SequenceSampler
    from smfusion.data.sampling import Arrays
    from smfusion.models.registry import build_model
    from smfusion.training.trainer import Trainer

    import numpy as np

    rng = np.random.default_rng(0)
    arr = Arrays(rng.normal(size=(4, 40, 2)).astype(np.float32), rng.normal(size=(4, 1)).astype(np.float32),
                 rng.normal(size=(4, 40, 1)).astype(np.float32), np.arange(4), np.arange(40))
    cfg = TrainingConfig(epochs=2, batch_size=2, seq_len=10, iterations_per_epoch=2, progress=False)
    model = build_model("lstm", n_dynamic=2, n_static=1, n_target=1, hidden_size=4)
    Trainer(model, cfg.model_copy(update={"epochs": 1}), out_dir=tmp_path, config_key="a").fit(SequenceSampler(arr, 2, 10))
    with pytest.raises(ConfigError, match="written by another config"):
        Trainer(model, cfg, out_dir=tmp_path, config_key="b").fit(SequenceSampler(arr, 2, 10))


KILLER = textwrap.dedent("""
    import os, signal, sys, yaml
    from smfusion.config import parse_config
    import smfusion.io.atomic as atomic
    from smfusion.training import run as runmod

    raw, run_dir, where = yaml.safe_load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
    if where == "checkpoint":  # die inside the second checkpoint write, after its temp file exists
        real = atomic._commit
        calls = {"n": 0}
        def dying(tmp, path):
            if path.name.startswith("epoch_"):
                calls["n"] += 1
                if calls["n"] == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(tmp, path)
        atomic._commit = dying
        runmod.train(parse_config(raw), run_dir)
    else:  # die in --restart, right after the old run was moved aside
        real_move = runmod.move_aside
        def dying_move(path):
            real_move(path)
            os.kill(os.getpid(), signal.SIGKILL)
        runmod.move_aside = dying_move
        runmod.train(parse_config(raw), run_dir, resume=False)
""")


@pytest.mark.parametrize("where", ["checkpoint", "restart"])
def test_sigkill_mid_checkpoint_or_mid_restart_leaves_a_run_that_trains_on(db, tmp_path, where):
    import yaml

    raw = _raw(db, epochs=3)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "kill.py").write_text(KILLER)
    ref = tmp_path / "ref"
    train(parse_config(raw), ref)
    run = tmp_path / "run"
    if where == "restart":
        shutil.copytree(ref, run)  # a finished run to restart
    proc = subprocess.run([sys.executable, str(tmp_path / "kill.py"), str(tmp_path / "c.yaml"), str(run), where],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if where == "checkpoint":
        leftovers = [p for p in run.rglob("*") if ".smfusion-" in p.name and p.name.endswith((".tmp", ".trash"))]
        assert leftovers  # the kill really hit mid-write
    else:  # the kill hit after the move: the old run is whole beside the new place
        (old,) = tmp_path.glob("run.old-*")
        assert (old / "member_0/model.pt").is_file()
    train(parse_config(raw), run, resume=where == "checkpoint")  # resume after the kill / restart again
    assert not [p for p in run.rglob("*") if ".smfusion-" in p.name and p.name.endswith((".tmp", ".trash"))]
    for k, v in _weights(ref).items():
        assert torch.equal(v, _weights(run)[k]), k
