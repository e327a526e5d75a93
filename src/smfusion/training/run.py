"""Train a run from its config: one path for every adapter, model and objective.

The run directory it writes (config.yaml, scaler.yaml, split.json, climatology/, member_<i>/) is laid out in
:mod:`smfusion.runs.load`, which reads it back. Its lock (one job per run):
:mod:`smfusion.io.lock`.

:func:`train`: adapter -> run-directory guard -> split -> optional transfer
source -> fit (scaler, climatologies) -> for each member: model from the
registry -> transfer / freeze -> :class:`~smfusion.training.trainer.Trainer`
with the objective. :func:`load_trained` reads a run back (the run loader in
:mod:`smfusion.runs` and transfer sources use it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from smfusion.config import ModelConfig, RunConfig, dump_config, load_config
from smfusion.data.adapters import Adapter
from smfusion.data.loading import SiteSplit
from smfusion.errors import ConfigError, DataError, SmfusionError
from smfusion.io.atomic import clean_stale_in, move_aside, write_text
from smfusion.io.lock import hold
from smfusion.io.ownership import RUN_MARKER, check_not_input, is_empty_dir, is_run_dir
from smfusion.models.registry import build_model
from smfusion.training.objectives import build_objective, check_head, get_objective
from smfusion.runs.checks import check_run_names, member_key, named, refuse_invalid
from smfusion.runs.load import Trained, build_member, load_trained
from smfusion.training.trainer import Trainer, Validation

__all__ = ["train", "check_names", "check_training", "default_run_dir", "write_run_config", "build_member", "load_trained", "Trained"]

RUNTIME_ONLY = ("threads", "progress", "device", "loader_workers")  # training fields that do not change the result
HINT_RUN_DIR = "train again with --restart to start the run afresh, or choose another --run-dir"


def default_run_dir(cfg: RunConfig, run_dir: Optional[str | Path] = None) -> Path:
    """``run_dir`` when given, else the config's ``run_dir``, else ``runs/<name>``."""
    if run_dir is not None:
        return Path(run_dir)
    return Path(cfg.run_dir) if cfg.run_dir else Path("runs") / cfg.name


def config_key(cfg: RunConfig) -> str:
    """Short hash of what decides a run's weights: the resolved config without the run directory and the
    runtime-only training fields (threads, progress bar, device)."""
    d = cfg.to_dict()
    d.pop("run_dir", None)
    d["training"] = {k: v for k, v in d["training"].items() if k not in RUNTIME_ONLY}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _inputs(cfg: RunConfig) -> list[str]:
    """Paths a run reads (a run directory must neither be nor contain one)."""
    from smfusion.settings import data_dir

    out = [cfg.data.root, cfg.transfer.from_run if cfg.transfer else None]
    if cfg.data.gridded is not None:
        out += [cfg.data.gridded.forcing, cfg.data.gridded.smap_dir, cfg.data.gridded.ismn_dir]
    if cfg.data.grid_inputs is not None:
        out += [st.path for st in cfg.data.grid_inputs.stores if "*" not in st.path]
    try:
        out.append(data_dir())
    except SmfusionError:
        pass
    return [str(p) for p in out if p]


def _has_progress(run_dir: Path) -> bool:
    """True when a member has a checkpoint or trained weights (a failed first attempt has neither)."""
    return any(run_dir.glob("member_*/model.pt")) or any(run_dir.glob("member_*/checkpoints/epoch_*.pt"))


def write_run_config(cfg: RunConfig, run_dir: Path, resume: bool) -> None:
    """Prepare ``run_dir`` and write ``config.yaml`` (see docs/errors.md, "Run directories").

    Refused: a folder that exists, is not empty and is not a run directory; a
    folder that is or holds an input. ``resume`` False (``--restart``): the
    previous run, with everything in it, is moved aside whole to
    ``<run>.old-<UTC stamp>`` (never deleted; a warning names it). ``resume`` True: a run that has trained
    anything with a different config (runtime-only fields aside) is refused; one
    that has trained nothing yet (a failed first attempt) takes the new config.
    """
    check_not_input(run_dir, _inputs(cfg))
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError("is a file, not a run directory", path=run_dir, hint="choose another --run-dir")
    if run_dir.is_dir() and not is_empty_dir(run_dir) and not is_run_dir(run_dir):
        raise ConfigError("exists and is not a run directory: smfusion trains only into a new or empty folder "
                          "or one of its own runs", path=run_dir, hint="choose another --run-dir")
    if not resume:
        aside = move_aside(run_dir)
        if aside is not None:
            import warnings

            from smfusion.errors import SmfusionWarning

            warnings.warn(f"--restart: the previous run {run_dir} was moved aside to {aside.name}, with everything "
                          "in it (delete it yourself when you no longer need it)", SmfusionWarning, stacklevel=3)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / RUN_MARKER).exists():
        write_text(run_dir / RUN_MARKER, json.dumps({"written_by": "smfusion", "kind": "run"}) + "\n")
    cfg_path = run_dir / "config.yaml"
    clean_stale_in(run_dir)  # what a killed run (or --restart) left behind
    if resume and cfg_path.exists() and _has_progress(run_dir):
        try:
            old = load_config(cfg_path)
        except ConfigError as exc:
            raise ConfigError(f"the run's own config.yaml is unreadable: {exc.message}", path=cfg_path,
                              hint=HINT_RUN_DIR) from None
        if config_key(old) != config_key(cfg):
            raise ConfigError("holds a run trained with a different config", path=run_dir, hint=HINT_RUN_DIR)
    write_text(cfg_path, dump_config(cfg))


def _transfer_source(cfg: RunConfig) -> Optional[Trained]:
    if cfg.transfer is None:
        return None
    source = load_trained(cfg.transfer.from_run)
    if source.cfg.model.name != cfg.model.name:
        raise ConfigError(f"transfer.from_run is a '{source.cfg.model.name}' run; this config builds '{cfg.model.name}'")
    return source


def check_names(cfg: RunConfig, source: str = "<config>") -> Adapter:
    """Resolve every registry name of ``cfg`` (adapter, reader, model: :func:`smfusion.runs.checks.check_run_names`;
    objective and head of each member: :func:`check_training`) and return the adapter; a name no registry
    knows is a ConfigError naming ``source`` and the key."""
    adapter = check_run_names(cfg, source)
    with named(source):
        check_training(cfg, adapter, source)
    return adapter


def check_training(cfg: RunConfig, adapter: Adapter, source: str = "<config>") -> None:
    """What training adds to the names of a run (:mod:`smfusion.runs.checks`): each member's objective, head,
    device and memory, and the adapter's default objective; a ConfigError naming the key."""
    for m in cfg.members():
        key = member_key(cfg, m)
        get_objective(m.training.loss)
        if m.training.loss == "nse" and not adapter.carries_site_std():
            raise ConfigError("training.loss: nse needs each site's target std in the minibatch: the sequence or "
                              "tb adapter without data.lazy")
        check_head(m.model, m.training, key=key.replace(".name", ".head"))
        check_device(m.training.device)
        check_model_memory(cfg, adapter, m, key=key.replace(".name", ""))
    if adapter.default_objective:
        get_objective(adapter.default_objective, key="data.adapter")


def check_model_memory(cfg: RunConfig, adapter: Adapter, m, key: str = "model") -> None:
    """A ConfigError naming ``model.hidden_size``/``num_layers``/``training.batch_size`` when training member
    ``m`` needs more memory than its device has (:mod:`smfusion.models.memory`: parameters counted on the
    meta device, activations estimated), before any weight is allocated."""
    from smfusion.models.memory import count_parameters, training_bytes
    from smfusion.resources import check_memory, memory_bytes

    n_params = count_parameters(lambda: build_member(cfg, adapter, m.model))
    if n_params is None:
        return
    kw = adapter.model_kwargs()
    n_inputs = int(kw.get("n_dynamic", 0)) + int(kw.get("n_static", 0))
    t, mc = m.training, m.model
    need = training_bytes(n_params, t.batch_size, t.seq_len, n_inputs, mc.hidden_size, mc.num_layers)
    device = t.device
    if device.startswith("cuda") and torch.cuda.is_available():
        index = int(device.split(":")[1]) if ":" in device else 0
        memory, where = torch.cuda.get_device_properties(index).total_memory, device
    else:
        memory, where = memory_bytes(), "this machine"
    check_memory(need, f"{key}.hidden_size {mc.hidden_size} x num_layers {mc.num_layers} ({n_params:,} parameters) "
                 f"with training.batch_size {t.batch_size} x seq_len {t.seq_len}",
                 "use a smaller hidden_size, num_layers or batch_size", memory=memory, where=where)


def check_device(device: str) -> None:
    """A ConfigError naming ``training.device`` when this machine cannot train there (a CUDA device that
    torch does not see), before any data is read."""
    from smfusion.training.distributed import cuda_device_count

    if not device.startswith("cuda"):
        return
    n = cuda_device_count()
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= n:
        seen = f"{n} CUDA device(s)" if n else f"no CUDA device (torch {torch.__version__})"
        raise ConfigError(f"training.device: '{device}' but this machine has {seen}; use 'cpu'"
                          f"{f' or cuda:0..cuda:{n - 1}' if n else ''}")


def train(cfg: RunConfig, run_dir: Optional[str | Path] = None, resume: bool = True, data: Any = None) -> Path:
    """Train every ensemble member of ``cfg``; returns the run directory.

    ``data`` (optional) is what the adapter's ``load`` would return (the canonical
    Dataset, or a point set), to train on it instead of reading ``cfg.data``.
    Launched by torchrun with several processes, the members are trained with
    DistributedDataParallel (:mod:`smfusion.training.distributed`); rank 0 writes.
    """
    from smfusion.training.distributed import from_env

    run_dir = default_run_dir(cfg, run_dir)
    cfg.run_dir = str(run_dir)
    adapter = check_names(cfg)
    adapter.check()
    dist = from_env()
    if dist is not None:
        for m in cfg.members():
            dist.check_batch(m.training.batch_size)
            dist.check_machine(m.training.device, m.training.threads)
    main = dist is None or dist.is_main
    with hold(run_dir, "train") if main else contextlib.nullcontext():  # one writer per run (io/lock.py)
        return _train_locked(cfg, run_dir, resume, data, adapter, dist, main)


def _train_locked(cfg: RunConfig, run_dir: Path, resume: bool, data: Any, adapter: Adapter, dist, main: bool) -> Path:
    if data is None:
        refuse_invalid(cfg, training=check_training)  # what `smfusion check` reports
        data = adapter.load()  # bad input fails here, before anything is written
    if dist is not None:
        device = dist.init(cfg.training.device)
        cfg.training.device = device
    ok = False
    try:
        if main:
            write_run_config(cfg, run_dir, resume)
        split = adapter.split(data)
        source = _transfer_source(cfg)
        adapter.fit(data, split, source=source.adapter if source is not None else None)
        if main:
            adapter.save_split(run_dir, split)
            adapter.save(run_dir)
        if dist is not None:
            dist.barrier()  # the run directory is ready before any process reads its checkpoints
        vb = adapter.validation_batches(data, split)
        validation = Validation(vb) if vb is not None else None
        _train_members(cfg, adapter, data, split, source, validation, run_dir, resume, dist)
        ok = True
    finally:
        if dist is not None:
            dist.close(ok)
    return run_dir


def _train_members(cfg, adapter, data, split, source, validation, run_dir: Path, resume: bool, dist) -> None:
    members = cfg.members()
    for m in members:
        sampler = adapter.train_batches(data, split, m.training)  # member settings: batch size, window
        torch.manual_seed(m.training.seed)
        model = build_member(cfg, adapter, m.model)
        parameters = _transfer(cfg, source, adapter, model, m.index) if source is not None else None
        training = m.training if dist is None else m.training.model_copy(update={"device": cfg.training.device})
        objective = build_objective(cfg, m.training, adapter.default_objective)
        if hasattr(objective, "bind"):  # an objective with trained parts of its own (multiscale observation)
            objective.bind(model)
        Trainer(model, training, out_dir=run_dir / f"member_{m.index}",
                objective=objective, parameters=parameters,
                desc=f"member {m.index + 1}/{len(members)}", config_key=f"{config_key(cfg)}/member_{m.index}",
                dist=dist).fit(sampler, validation, resume=resume)
        if dist is not None:
            dist.barrier()


def _transfer(cfg: RunConfig, source: Trained, adapter: Adapter, model: torch.nn.Module, index: int) -> list:
    """Copy the source member's weights into ``model`` (input layer re-mapped by variable name) and freeze
    the listed parts; returns the parameters left to train."""
    from smfusion.training.transfer import freeze, transfer_weights

    t = cfg.transfer
    transfer_weights(source.members[index % len(source.members)], model, source.adapter.input_names(),
                     adapter.input_names(), reinit=t.reinit, input_layer=t.input_layer, input_map=t.input_map)
    return freeze(model, t.freeze)
