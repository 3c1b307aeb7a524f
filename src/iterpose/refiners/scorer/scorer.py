"""`PoseScorer`: a trained :class:`~iterpose.refiners.scorer.model.ScorerModel` and its weights file (method
``"scorer"``, the same format as the learned refiners', :mod:`iterpose.refiners.checkpoint`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import torch

from iterpose.errors import InvalidInputError
from iterpose.refiners.checkpoint import (learned_checkpoint_parts, load_state_strict, read_refiner_checkpoint,
                                         weights_dict)
from iterpose.refiners.scorer.config import ScorerConfig
from iterpose.refiners.scorer.model import ScorerModel

__all__ = ["PoseScorer", "load_scorer", "read_scorer_checkpoint"]


class PoseScorer:
    """Predicts the ADD(-S) error of candidate poses (in object diameters) from the image.

    Args:
        net: the trained :class:`ScorerModel` (put in eval mode).
    """

    method = "scorer"

    def __init__(self, net: ScorerModel) -> None:
        self.net = net.eval()
        self.config: ScorerConfig = net.config
        self.objects = dict(net.meshes)
        self.source: str | None = None

    def to(self, device) -> "PoseScorer":
        """A scorer whose network lives on ``device`` (a new object; this one is unchanged)."""
        out = PoseScorer(copy.deepcopy(self.net).to(device))
        out.source = self.source
        return out

    def predict_error(self, images: torch.Tensor, K: torch.Tensor, obj_ids: list[int], T_co: torch.Tensor,
                      image_index: torch.Tensor, T_ref: torch.Tensor) -> torch.Tensor:
        """``[N]`` float32 predicted ADD(-S) / diameter of each candidate (arguments as
        :meth:`ScorerModel.forward`; at least ``config.error_floor_rel``, ``inf`` where the network gave NaN). Ranks
        candidates; not calibrated."""
        dev = next(self.net.parameters()).device
        with torch.no_grad():
            log_err = self.net(images.to(dev, torch.float32), K.to(dev, torch.float32), [int(i) for i in obj_ids],
                               T_co.to(dev, torch.float32), image_index.to(dev), T_ref.to(dev, torch.float32))
        # a non-finite prediction (e.g. from a NaN pose) must rank last, never first
        return log_err.nan_to_num(nan=torch.inf).exp().clamp_min(self.config.error_floor_rel)

    def checkpoint(self, registry: list[dict]) -> dict:
        """The weights-file dict of this scorer."""
        return weights_dict(self.method, self.config, self.net, registry)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, source: str, objects: Mapping[int, object] | None = None) -> "PoseScorer":
        """Build from a checkpoint dict (strict load; with ``objects``, the registry is checked against them)."""
        config, meshes = learned_checkpoint_parts(ckpt, source, cls.method, ScorerConfig, objects)
        net = ScorerModel(meshes, config)
        load_state_strict(net, ckpt["state_dict"], source, "scorer")
        scorer = cls(net)
        scorer.source = source
        return scorer


def load_scorer(path: str | Path, objects: Mapping[int, object] | None = None) -> PoseScorer:
    """Read a scorer weights file (``iterpose train --method scorer``); with ``objects``, checks they are the
    models it was trained for.

    Raises:
        MissingFileError, DataFormatError: no file, a damaged file. InvalidInputError: another method's weights,
            other objects.
    """
    return PoseScorer.from_checkpoint(read_scorer_checkpoint(path), str(path), objects)


def read_scorer_checkpoint(path: str | Path) -> dict:
    """Read a scorer weights file and check that it holds a scorer (what the CLI checks before reading a dataset).

    Raises:
        MissingFileError, DataFormatError: no file, a damaged file. InvalidInputError: another method's weights.
    """
    ckpt = read_refiner_checkpoint(path)
    if ckpt["method"] != PoseScorer.method:
        raise InvalidInputError(f"--scorer {path} holds a {ckpt['method']!r} refiner, not a pose scorer (train one "
                                f"with `iterpose train --method scorer`); a refiner's weights go to --weights.")
    return ckpt
