"""Per-day multilayer perceptron (the CASM network): each day is mapped on its own."""

from __future__ import annotations

import torch
from torch import nn

from smfusion.models.heads import build_head
from smfusion.models.registry import register_model


@register_model("mlp")
class MLP(nn.Module):
    """Input layer (linear + ReLU) -> ``num_layers - 1`` hidden (linear + ReLU + dropout) -> output head
    (:mod:`smfusion.models.heads`).

    Applied to every day independently: ``y_hat[b, t] = f(x_dynamic[b, t], x_static[b])``.
    Memory of the past comes only from lagged / antecedent input features
    (``features`` in the config; :mod:`smfusion.data.features`).
    """

    #: parts that transfer learning may re-map or fine-tune
    parts = ("input_layer", "hidden", "head")
    #: sites per forward pass at prediction: a few thousand rows stay in cache
    predict_chunk_sites = 8
    #: each day is mapped on its own: time blocks of a product need no model warm-up
    per_day = True

    def __init__(
        self,
        n_dynamic: int,
        n_static: int,
        n_target: int,
        hidden_size: int = 64,
        dropout: float = 0.0,
        num_layers: int = 2,
        head: str = "regression",
        components: int = 3,
    ):
        super().__init__()
        self.n_dynamic, self.n_static, self.n_target = n_dynamic, n_static, n_target
        self.input_layer = nn.Sequential(nn.Linear(n_dynamic + n_static, hidden_size), nn.ReLU())
        layers: list[nn.Module] = []
        for _ in range(num_layers - 1):
            layers += [nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
        self.hidden = nn.Sequential(*layers)
        self.head = build_head(head, hidden_size, n_target, components=components)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x_dynamic"]
        lin = self.input_layer[0]
        # = input_layer(cat(x, statics repeated over time)); the statics' term is computed once per sequence
        z = nn.functional.linear(x, lin.weight[:, : self.n_dynamic], lin.bias)
        if self.n_static:
            z = z + nn.functional.linear(batch["x_static"], lin.weight[:, self.n_dynamic :]).unsqueeze(1)
        h = self.hidden(self.input_layer[1](z))
        return {**self.head(h), "hidden": h}
