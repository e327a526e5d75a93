"""LSTM driven by dynamic forcing with static attributes appended to every step."""

from __future__ import annotations

import torch
from torch import nn

from smfusion.models.heads import build_head
from smfusion.models.registry import register_model


@register_model("lstm")
class LSTM(nn.Module):
    """Input layer (linear + ReLU) -> ``nn.LSTM`` -> dropout -> output head (:mod:`smfusion.models.heads`).

    The layout follows hydroDL's soil-moisture LSTM. Statics are repeated
    along time and concatenated to the dynamic inputs. The recurrent state can
    be carried from one call to the next (products over time blocks): optional
    inputs ``state_h``/``state_c`` (B, num_layers, H) start the sequence from
    that state (zeros otherwise), and the outputs ``state_h``/``state_c`` hold
    the state after the last step.
    """

    #: parts that transfer learning may re-map or fine-tune
    parts = ("input_layer", "lstm", "head")
    #: batch keys of the carried recurrent state (in and out; see the class docstring)
    carries_state = ("state_h", "state_c")

    def __init__(
        self,
        n_dynamic: int,
        n_static: int,
        n_target: int,
        hidden_size: int = 256,
        dropout: float = 0.5,
        num_layers: int = 1,
        head: str = "regression",
        components: int = 3,
    ):
        super().__init__()
        self.n_dynamic, self.n_static, self.n_target = n_dynamic, n_static, n_target
        self.input_layer = nn.Sequential(nn.Linear(n_dynamic + n_static, hidden_size), nn.ReLU())
        self.lstm = nn.LSTM(
            hidden_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = build_head(head, hidden_size, n_target, components=components)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x_dynamic"]
        if self.n_static:
            s = batch["x_static"].unsqueeze(1).expand(-1, x.shape[1], -1)
            x = torch.cat([x, s], dim=-1)
        state = None
        if "state_h" in batch:
            state = (batch["state_h"].transpose(0, 1).contiguous(), batch["state_c"].transpose(0, 1).contiguous())
        h, (h_n, c_n) = self.lstm(self.input_layer(x), state)
        return {**self.head(self.dropout(h)), "hidden": h, "state_h": h_n.transpose(0, 1),
                "state_c": c_n.transpose(0, 1)}
