"""Transfer learning between input sets (sensors): copy a trained model's weights into a new one.

:func:`transfer_weights` copies every tensor of the source whose name and
shape match, except the parts listed in ``reinit``. The input layer's first
``nn.Linear`` (columns = the model's input variables, dynamic then static) is
re-mapped by variable name when the input sets differ (``input_layer="remap"``):
columns of variables both runs share are copied, columns of new variables
start at zero (so the transferred function is unchanged at the start of
fine-tuning), dropped variables are left out; ``"reinit"`` keeps the new
model's random input layer. ``input_map`` (new variable -> source variable)
starts a new variable's column from a source column of another name (another
sensor's analogue), and the columns derived from it (``_lag<k>``, ``_mean<w>``,
``_clim``) from the source's same derived columns; a source column that k new
columns start from is divided by k, so inputs that move together keep the
source's response. :func:`freeze` stops gradients of the listed
parts and returns the parameters left to train (the Trainer's ``parameters``).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Optional

import torch
from torch import nn

from smfusion.errors import ConfigError

__all__ = ["transfer_weights", "freeze", "input_linear"]

_DERIVED = re.compile(r"_(lag\d+|mean\d+|clim)")  # suffixes of derived inputs (data/features.py, data/seasonal.py)


def _parts(model: nn.Module) -> tuple[str, ...]:
    parts = tuple(getattr(model, "parts", ()))
    if not parts:
        raise ConfigError(f"model {type(model).__name__} lists no fine-tunable 'parts'")
    return parts


def _check_parts(model: nn.Module, names, key: str) -> None:
    unknown = [n for n in names if n not in _parts(model)]
    if unknown:
        raise ConfigError(f"transfer.{key}: unknown part(s) {unknown}; {type(model).__name__} has {list(_parts(model))}")


def input_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """Name prefix and module of the first ``nn.Linear`` inside ``model.input_layer``."""
    layer = getattr(model, "input_layer", None)
    if layer is None:
        raise ConfigError(f"model {type(model).__name__} has no 'input_layer' to re-map")
    for name, mod in layer.named_modules():
        if isinstance(mod, nn.Linear):
            return ("input_layer." + name).rstrip("."), mod
    raise ConfigError(f"model {type(model).__name__}: input_layer holds no nn.Linear")


@torch.no_grad()
def transfer_weights(
    source: nn.Module,
    target: nn.Module,
    source_inputs: list[str],
    target_inputs: list[str],
    reinit: list[str] = (),
    input_layer: str = "remap",
    input_map: Optional[dict[str, str]] = None,
) -> list[str]:
    """Copy ``source``'s weights into ``target`` (see the module docstring); returns the copied tensor names."""
    if type(source) is not type(target):
        raise ConfigError(f"cannot transfer {type(source).__name__} weights into {type(target).__name__}")
    _check_parts(target, reinit, "reinit")
    prefix, lin_t = input_linear(target)
    _, lin_s = input_linear(source)
    if lin_s.in_features != len(source_inputs) or lin_t.in_features != len(target_inputs):
        raise ConfigError("input-layer width differs from the number of input variables")
    src = source.state_dict()
    dst = target.state_dict()
    skip = tuple(f"{p}." for p in reinit)
    copied = []
    for name, value in dst.items():
        if name.startswith(skip) or name not in src or src[name].shape != value.shape:
            continue
        if name.startswith(prefix + ".") and (list(source_inputs) != list(target_inputs) or input_layer == "reinit"):
            continue  # handled below
        value.copy_(src[name])
        copied.append(name)
    if "input_layer" not in reinit and input_layer == "remap":
        same_out = lin_s.out_features == lin_t.out_features
        if same_out and list(source_inputs) != list(target_inputs):
            col = {v: i for i, v in enumerate(source_inputs)}
            origin = _origins(source_inputs, target_inputs, input_map or {})
            shares = Counter(origin.values())
            lin_t.weight.zero_()
            for j, v in enumerate(target_inputs):
                if v in origin:
                    lin_t.weight[:, j] = lin_s.weight[:, col[origin[v]]] / shares[origin[v]]
            if lin_t.bias is not None and lin_s.bias is not None:
                lin_t.bias.copy_(lin_s.bias)
            copied += [f"{prefix}.weight (re-mapped)", f"{prefix}.bias"]
    elif input_layer not in ("remap", "reinit"):
        raise ConfigError(f"transfer.input_layer must be 'remap' or 'reinit', got {input_layer!r}")
    return copied


def _origins(source_inputs, target_inputs, input_map: dict[str, str]) -> dict[str, str]:
    """New input -> the source input its column starts from (same name, else ``input_map``, else the same
    derived column of the ``input_map`` source: ``tb_h_amsr2_06_mean3`` -> ``tb_h_smos_mean3``)."""
    bad = {k: v for k, v in input_map.items() if k not in target_inputs or v not in source_inputs}
    if bad:
        raise ConfigError(f"transfer.input_map {bad}: keys must be this run's inputs {list(target_inputs)}, "
                          f"values the source run's {list(source_inputs)}")
    out = {v: v for v in target_inputs if v in source_inputs}
    out.update({k: v for k, v in input_map.items() if k not in out})
    for k, v in input_map.items():
        for t in target_inputs:
            suffix = t[len(k):]
            if t not in out and t.startswith(k) and _DERIVED.fullmatch(suffix) and v + suffix in source_inputs:
                out[t] = v + suffix
    return out


def freeze(model: nn.Module, parts: list[str]) -> list[nn.Parameter]:
    """Turn off gradients of ``parts``; return the parameters that stay trainable."""
    _check_parts(model, parts, "freeze")
    for p in parts:
        for param in getattr(model, p).parameters():
            param.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ConfigError(f"transfer.freeze {list(parts)} leaves nothing to train")
    return trainable
