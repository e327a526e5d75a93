"""Late-fusion point model: one encoder per input source, one head (after Batchu et al. 2023).

Built through the registry as ``build_model("fusion", 0, 0, n_target, sources=[...])``
where each source is ``{"name", "kind": "image"|"scalar", "channels", "timed"}``.
One source per input group of the schema (``smfusion.io.fusion_schema.GROUPS``).
Unlike the sequence models it maps a batch of *points*::

    {"<name>": (B, C, P, P) image or (B, C) scalar, "<name>_dt": (B, 1) time delta,
     "<name>_mask": (B, 1) 1 where the source is present (optional: all present)}

to ``{"y_hat": (B, 1, n_target), "fused": (B, n_sources * embed)}``.
Image sources: two 3x3 convolutions, then the mean over the patch and the
centre pixel's features, with the time delta, through a linear layer.
Scalar sources: a two-layer MLP of the values and the time delta.
A masked (absent) source's embedding is zeroed, and the head also sees the
masks, so an example without, say, a Sentinel-2 scene still gets a prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from smfusion.models.registry import register_model


class ImageEncoder(nn.Module):
    def __init__(self, channels: int, width: int, embed: int, timed: bool):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
        self.out = nn.Sequential(nn.Linear(2 * width + int(timed), embed), nn.ReLU())

    def forward(self, x: torch.Tensor, dt: torch.Tensor | None) -> torch.Tensor:
        h = self.conv(x)
        c0, c1 = h.shape[-2] // 2, h.shape[-1] // 2
        feats = [h.mean(dim=(-2, -1)), h[..., c0, c1]]
        if dt is not None:
            feats.append(dt)
        return self.out(torch.cat(feats, dim=-1))


class ScalarEncoder(nn.Module):
    def __init__(self, channels: int, hidden: int, embed: int, timed: bool):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(channels + int(timed), hidden), nn.ReLU(), nn.Linear(hidden, embed), nn.ReLU())

    def forward(self, x: torch.Tensor, dt: torch.Tensor | None) -> torch.Tensor:
        return self.net(x if dt is None else torch.cat([x, dt], dim=-1))


@register_model("fusion")
class FusionNet(nn.Module):
    """Per-source encoders, concatenated embeddings, MLP head."""

    #: parts that transfer learning may re-map or fine-tune
    parts = ("encoders", "head")

    def __init__(
        self,
        n_dynamic: int = 0,
        n_static: int = 0,
        n_target: int = 1,
        sources: list[dict] | tuple = (),
        cnn_channels: int = 16,
        embed_size: int = 16,
        hidden_size: int = 64,
        dropout: float = 0.1,
        **_ignored,
    ):
        super().__init__()
        if not sources:
            raise ValueError("the fusion model needs at least one source")
        self.sources = [dict(s) for s in sources]
        enc = {}
        for s in self.sources:
            if s["kind"] == "image":
                enc[s["name"]] = ImageEncoder(s["channels"], cnn_channels, embed_size, s["timed"])
            elif s["kind"] == "scalar":
                enc[s["name"]] = ScalarEncoder(s["channels"], hidden_size, embed_size, s["timed"])
            else:
                raise ValueError(f"source '{s['name']}': kind must be 'image' or 'scalar', got {s['kind']!r}")
        self.encoders = nn.ModuleDict(enc)
        self.head = nn.Sequential(
            nn.Linear((embed_size + 1) * len(self.sources), hidden_size), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_size, n_target),
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        embs, masks = [], []
        for s in self.sources:
            name = s["name"]
            emb = self.encoders[name](batch[name], batch[f"{name}_dt"] if s["timed"] else None)
            mask = batch.get(f"{name}_mask")
            mask = torch.ones_like(emb[:, :1]) if mask is None else mask.to(emb.dtype).reshape(-1, 1)
            embs.append(emb * mask)
            masks.append(mask)
        fused = torch.cat(embs, dim=-1)
        return {"y_hat": self.head(torch.cat([fused] + masks, dim=-1)).unsqueeze(1), "fused": fused}
