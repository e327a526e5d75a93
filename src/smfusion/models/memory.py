"""How much memory a model needs to train, estimated before it exists (no weight is allocated).

The parameters are counted on a model built on torch's ``meta`` device (shapes only, any registered
model). Training memory, in float32 (4 bytes):

    4 x (4 x parameters + batch x seq_len x (inputs + 12 x hidden_size x num_layers))

four copies of the parameters (weights, gradients, Adam's two moments) and the activations kept for the
backward pass: per row and time step the inputs and, per layer, about 12 values per hidden unit (an
LSTM's four gates, cell, hidden state and its tanh, the dropout mask, their gradients' work space). It is
an estimate for refusing absurd sizes before any allocation, not a profile.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

__all__ = ["count_parameters", "training_bytes", "ACTIVATIONS_PER_UNIT"]

ACTIVATIONS_PER_UNIT = 12


def count_parameters(build: Callable[[], nn.Module]) -> Optional[int]:
    """Parameters of the model ``build()`` returns, built on the meta device (None when it cannot be)."""
    try:
        with torch.device("meta"):
            model = build()
    except Exception:  # noqa: BLE001  (a model whose constructor needs real tensors: no estimate)
        return None
    return int(sum(p.numel() for p in model.parameters()))


def training_bytes(n_params: int, batch_size: int, seq_len: int, n_inputs: int, hidden_size: int,
                   num_layers: int) -> int:
    """Estimated bytes to train (module docstring)."""
    activations = batch_size * seq_len * (n_inputs + ACTIVATIONS_PER_UNIT * hidden_size * num_layers)
    return 4 * (4 * int(n_params) + int(activations))
