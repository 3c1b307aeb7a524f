"""`ScorerModel`: how far a candidate pose is from the truth, predicted from DeepIM's zoomed crop pair.

For each candidate pose the input is what a DeepIM iteration at that pose would see
(:func:`~iterpose.refiners.deepim.model.zoomed_inputs`: the observed crop, the object rendered at the candidate,
its mask and the box of the *initial* estimate's projection); the output is the predicted
``log(max(ADD(-S) / diameter, error_floor_rel))`` of the candidate. The encoder and hidden layers are DeepIM's
(:class:`~iterpose.refiners.deepim.network.DeepimNet`, same parameter names), so a scorer can start from a trained
DeepIM; only the output layer differs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from iterpose.refiners.deepim.config import DeepimConfig
from iterpose.refiners.deepim.model import zoomed_inputs
from iterpose.refiners.deepim.network import DeepimNet
from iterpose.refiners.deepim.zoom import projected_boxes
from iterpose.refiners.proxy_mesh import ProxyMesh
from iterpose.refiners.scorer.config import ScorerConfig

__all__ = ["ScorerNet", "ScorerModel", "encoder_config"]


def encoder_config(config: ScorerConfig) -> DeepimConfig:
    """The DeepIM config whose encoder (and input) a scorer with ``config`` shares."""
    return DeepimConfig(crop_size=config.crop_size, zoom_margin=config.zoom_margin, trunk=config.trunk,
                        trunk_blocks=config.trunk_blocks, fusion="early", head_width=config.head_width,
                        render_cell_rel=config.render_cell_rel)


class ScorerNet(DeepimNet):
    """DeepIM's encoder with one output: the predicted log relative error ``[N]`` of each crop pair."""

    def __init__(self, config: ScorerConfig) -> None:
        super().__init__(encoder_config(config))

    def _build_heads(self, width: int) -> None:
        self.error = nn.Linear(width, 1)

    def forward(self, observed: torch.Tensor, rendered: torch.Tensor, rendered_mask: torch.Tensor,
                observed_mask: torch.Tensor) -> torch.Tensor:
        """``[N]`` predicted ``log`` relative error (inputs as :meth:`DeepimNet.forward`)."""
        return self.error(self.hidden(observed, rendered, rendered_mask, observed_mask)).squeeze(1).float()


class ScorerModel(nn.Module):
    """The scorer for ``meshes`` (``{obj_id: ProxyMesh}``, the render meshes, object frame, metres)."""

    def __init__(self, meshes: Mapping[int, ProxyMesh], config: ScorerConfig) -> None:
        super().__init__()
        self.config = config
        self.meshes = dict(sorted((int(k), v) for k, v in meshes.items()))
        self.net = ScorerNet(config)

    def forward(self, images: torch.Tensor, K: torch.Tensor, obj_ids: list[int], T_co: torch.Tensor,
                image_index: torch.Tensor, T_ref: torch.Tensor) -> torch.Tensor:
        """``[N]`` predicted log relative error of each candidate.

        Args:
            images: ``[B, 3, H, W]`` RGB 0..1. K: ``[N, 3, 3]`` each candidate's image intrinsics.
            obj_ids: N object ids. T_co: ``[N, 4, 4]`` candidate poses (metres; not differentiated through).
            image_index: ``[N]`` image of each candidate. T_ref: ``[N, 4, 4]`` the initial estimates the
                candidates came from (their projected boxes are the observed masks, as in DeepIM).
        """
        proxies = [self.meshes[i] for i in obj_ids]
        observed_xyxy = projected_boxes([p.vertices for p in proxies], T_ref.detach().float(), K)
        x = zoomed_inputs(proxies, images, K, T_co, image_index, observed_xyxy, self.config.crop_size,
                          self.config.zoom_margin)
        return self.net(x.observed, x.rendered, x.rendered_mask, x.observed_mask)
