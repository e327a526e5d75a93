"""Read a trained run back: its config, its adapter with the fitted state restored, its split and its
ensemble members (weights loaded as tensors only, never as code).

Run directory (written by :func:`smfusion.training.run.train`)::

    config.yaml        the resolved config
    scaler.yaml        normalisation statistics (training period and sites)
    split.json         train / validation / test ids (sites, stations or sensors)
    climatology/<var>.nc   day-of-year climatologies (sequence adapters; docs/casm.md)
    member_<i>/        one per ensemble member: checkpoints/, model.pt, history.json
    metrics/, predictions/, plots/   written by evaluation
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from smfusion.config import ModelConfig, RunConfig, load_config
from smfusion.data.adapters import Adapter, adapter_for
from smfusion.data.loading import SiteSplit
from smfusion.errors import DataError
from smfusion.models.registry import build_model

__all__ = ["Trained", "load_trained", "build_member", "load_weights", "read_data_only", "NotData", "HINT_RESTART"]

HINT_RESTART = "train again with --restart to start the run afresh"
HINT_NOT_DATA = ("it was not written by this smfusion version, or not by smfusion; nothing in it was run: "
                 "train again with --restart (the old run is moved aside, not deleted)")


class NotData(DataError):
    """A file that the data-only reader refuses (it would build or call something other than data)."""


def read_data_only(path: Path, device: str, what: str):
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists, tuples, numbers, strings, None.

    :class:`NotData` when the pickle names any other global (refused before
    anything is called: docs/security.md); :class:`DataError` "corrupt <what>"
    for a truncated, empty or garbage file.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        m = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if m:  # a pickle that names a function or class: refused before anything is built or called
            raise NotData(f"{what} is not plain data: the weights-only reader refused {m.group(1)}", path=path,
                          hint=HINT_NOT_DATA) from None
        raise DataError(f"corrupt {what} (not a torch file of tensors)", path=path, hint=HINT_RESTART) from None
    except Exception as exc:  # truncated zip, garbage bytes, empty file: torch raises many types
        raise DataError(f"corrupt {what} ({type(exc).__name__})", path=path, hint=HINT_RESTART) from None


def load_weights(path: str | Path, device: str = "cpu") -> dict:
    """The ``state_dict`` in a ``model.pt``; :class:`DataError` naming the file when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError("trained weights missing", path=path, hint=HINT_RESTART)
    state = read_data_only(path, device, "weights file")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError("not a weights file (a state_dict of tensors)", path=path, hint=HINT_RESTART)
    return state


def build_member(cfg: RunConfig, adapter: Adapter, model: Optional[ModelConfig] = None) -> torch.nn.Module:
    """The model of ``cfg`` (or of one member's ``model`` settings), untrained."""
    m = model or cfg.model
    head = {} if m.head == "regression" else {"head": m.head, "components": m.components}  # any model takes none
    return build_model(m.name, hidden_size=m.hidden_size, dropout=m.dropout, num_layers=m.num_layers,
                       **head, **adapter.model_kwargs())


@dataclass
class Trained:
    """A trained run as read from its directory: config, adapter (fitted state restored), split, members."""

    run_dir: Path
    cfg: RunConfig
    adapter: Adapter
    split: SiteSplit
    members: list[torch.nn.Module]


def load_trained(run_dir: str | Path) -> Trained:
    """Read a run directory written by :func:`train` (any adapter)."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "scaler.yaml", "split.json"):
        if not (run_dir / name).is_file():
            raise DataError("not a trained run directory (missing file)", path=run_dir / name)
    cfg = load_config(run_dir / "config.yaml")
    adapter = adapter_for(cfg)
    adapter.restore(run_dir)
    members = []
    for m in cfg.members():
        path = run_dir / f"member_{m.index}" / "model.pt"
        if not path.is_file():
            raise DataError("ensemble member has no trained weights", path=path,
                            hint="train the run to the end (smfusion train resumes it)")
        model = build_member(cfg, adapter, m.model)
        model.load_state_dict(load_weights(path))
        model.eval()
        members.append(model)
    return Trained(run_dir, cfg, adapter, adapter.load_split(run_dir), members)
