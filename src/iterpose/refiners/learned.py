"""`LearnedRefiner`: what every trained refiner (RePOSE, DeepIM) shares: a network over a fixed set of objects,
moving it to a device, and its weights file (:mod:`iterpose.refiners.checkpoint`) both ways."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from types import MappingProxyType

import torch
from torch import nn

from iterpose.geometry import rotation_angle
from iterpose.refiners.base import Refiner
from iterpose.refiners.checkpoint import learned_checkpoint_parts, load_state_strict, weights_dict

__all__ = ["LearnedRefiner", "diverged"]


def diverged(T: torch.Tensor, T0: torch.Tensor, diameter_m: torch.Tensor, max_rotation_deg: float,
             max_translation_rel: float) -> torch.Tensor:
    """``[N]`` bool: results ``T [N, 4, 4]`` that are not finite, rotated more than ``max_rotation_deg`` from
    ``T0``, or moved more than ``max_translation_rel`` x ``diameter_m [N]`` (metres)."""
    rot = rotation_angle(T[:, :3, :3].double() @ T0[:, :3, :3].double().transpose(1, 2)) * 180.0 / math.pi
    moved = (T[:, :3, 3] - T0[:, :3, 3]).double().norm(dim=1)
    return ~torch.isfinite(T).all(dim=(1, 2)) | (rot > max_rotation_deg) | \
        (moved > max_translation_rel * diameter_m.to(moved))


class LearnedRefiner(Refiner):
    """Base of the learned refiners.

    Subclasses set :attr:`method` (the checkpoint's method name), :attr:`config_cls`, :attr:`net_cls` (built as
    ``net_cls(meshes, config)``; it has ``.config`` with ``iterations`` and ``.meshes``) and :attr:`label` (for
    messages), and implement :meth:`_refine`.

    Args:
        net: the trained network (its objects are the refiner's objects); put in eval mode.
        objects: optional ``{obj_id: ObjectModel}`` (only checked by :func:`~iterpose.refiners.load_refiner`).
    """

    method: str
    config_cls: type
    net_cls: type
    label: str

    def __init__(self, net: nn.Module, objects: Mapping[int, object] | None = None) -> None:
        self.net = net.eval()
        self.config = net.config
        self.objects = MappingProxyType(dict(objects) if objects is not None else dict(net.meshes))
        self.default_iterations = net.config.iterations
        self.source: str | None = None

    def to(self, device) -> "LearnedRefiner":
        """A refiner whose network lives on ``device`` (a new object; this one is unchanged)."""
        out = type(self)(copy.deepcopy(self.net).to(device), self.objects)
        out.source = self.source
        return out

    def checkpoint(self, registry: list[dict]) -> dict:
        """The weights-file dict of this refiner (see :mod:`iterpose.refiners.checkpoint`)."""
        return weights_dict(self.method, self.config, self.net, registry)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, source: str, objects: Mapping[int, object] | None = None
                        ) -> "LearnedRefiner":
        """Build from a checkpoint dict read by :func:`~iterpose.refiners.checkpoint.read_refiner_checkpoint`
        (strict load; with ``objects``, the registry is checked against them)."""
        config, meshes = learned_checkpoint_parts(ckpt, source, cls.method, cls.config_cls, objects)
        net = cls.net_cls(meshes, config)
        load_state_strict(net, ckpt["state_dict"], source, cls.label)
        refiner = cls(net, dict(objects) if objects is not None else None)
        refiner.source = source
        return refiner
