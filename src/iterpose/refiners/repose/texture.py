"""The deep texture: a learnable latent per vertex of each object and one small MLP shared by all objects.

``features(obj_id) = MLP(latent[obj_id])`` gives ``[V, C]`` per-vertex features, rendered with
:func:`iterpose.render.interpolate` (background 0). The latents are re-parameterised free codes (no positional
encoding, no dependence on xyz), as in RePOSE (Linear(L, hidden) - ReLU - Linear(hidden, C)).

``kind="rgb"`` (an ablation) replaces the learned texture by the mesh's vertex colours, fixed, repeated or cut
to C channels; then the image network must learn to predict them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from iterpose.errors import InvalidInputError

__all__ = ["DeepTexture"]


class DeepTexture(nn.Module):
    """Per-vertex features of several objects.

    Args:
        vertex_counts: ``{obj_id: V}`` number of vertices of each object's render mesh.
        channels: C, feature channels (must equal the image network's).
        latent_dim: L, size of each vertex's code.
        hidden: width of the MLP's hidden layer.
        kind: ``"deep"`` (latent + MLP) or ``"rgb"`` (fixed vertex colours, see ``colors``).
        colors: ``{obj_id: [V, 3]}`` vertex colours 0..1, needed for ``kind="rgb"``.
        generator: seeds the latents' initialisation.
    """

    def __init__(self, vertex_counts: Mapping[int, int], channels: int, latent_dim: int = 16, hidden: int = 32,
                 kind: str = "deep", colors: Mapping[int, torch.Tensor] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if kind not in ("deep", "rgb"):
            raise InvalidInputError(f"DeepTexture: kind must be 'deep' or 'rgb', got {kind!r}.")
        self.kind = kind
        self.channels = channels
        self.latents = nn.ParameterDict()
        self._rgb: dict[str, torch.Tensor] = {}
        for oid, V in sorted(vertex_counts.items()):
            key = str(int(oid))
            if kind == "deep":
                self.latents[key] = nn.Parameter(torch.randn(V, latent_dim, generator=generator) * 0.5)
            else:
                if colors is None or int(oid) not in colors:
                    raise InvalidInputError(f"DeepTexture: kind='rgb' needs the vertex colours of object {oid}.")
                c = colors[int(oid)].float()
                reps = -(-channels // 3)
                self.register_buffer(f"rgb_{key}", c.repeat(1, reps)[:, :channels].clone())
        self.mlp = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        if kind == "rgb":
            for p in self.mlp.parameters():
                p.requires_grad_(False)

    def forward(self, obj_id: int) -> torch.Tensor:
        """``[V, C]`` features of the vertices of object ``obj_id``."""
        key = str(int(obj_id))
        if self.kind == "rgb":
            return getattr(self, f"rgb_{key}")
        return self.mlp(self.latents[key])
