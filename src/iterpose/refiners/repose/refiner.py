"""`ReposeRefiner`: the :class:`~iterpose.refiners.Refiner` interface around a trained :class:`ReposeNet`.

One call runs the image network once per image (on the box around that image's objects, see
``ReposeConfig.feature_crop_margin_px``), then the unrolled LM for all objects together (no gradients).
Accept test (``config.accept_test``): the refined pose replaces the initial one only if it lowers the mean squared
feature residual over the object's comparison window (the same pixels for both poses, the rendered background
counting as 0); otherwise ``KEPT_INITIAL_WORSE``. A result that rotated more than :data:`MAX_ROTATION_DEG` or moved
more than :data:`MAX_TRANSLATION_REL` diameters from the initial pose is ``DIVERGED`` (both keep the initial pose).

With ``config.select_best_iterate`` the returned pose is the iterate with the lowest feature residual (an LM's
usual safeguard against a last step that overshoots), else the last one; the trace keeps every iterate.

Score (0..1): ``1 - sum |F_obs - F_rend|² / sum (|F_obs|² + |F_rend|²)`` over the rendered silhouette of the
returned pose: 1 when the image features equal the rendered texture, 0 when they are unrelated or opposite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from types import MappingProxyType

import torch

from iterpose.errors import DataFormatError, InvalidInputError
from iterpose.geometry import rotation_angle
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineStatus, RefineTimings
from iterpose.refiners.checkpoint import (FORMAT_VERSION, learned_checkpoint_parts, load_state_strict,
                                         render_meshes_to_dict)
from iterpose.refiners.repose.config import ReposeConfig
from iterpose.refiners.repose.model import ReposeNet

__all__ = ["ReposeRefiner", "MAX_ROTATION_DEG", "MAX_TRANSLATION_REL"]

MAX_ROTATION_DEG = 60.0
"""A refined pose rotated more than this from the initial one is treated as diverged (the LM's basin is far
smaller: 5 steps of at most ``max_step_rot_rad`` each)."""
MAX_TRANSLATION_REL = 1.0
"""A refined pose moved more than this many object diameters is treated as diverged."""


class ReposeRefiner(Refiner):
    """RePOSE refinement with a trained :class:`ReposeNet` (use :func:`iterpose.load_refiner` to read weights).

    Args:
        net: the model (its objects are the refiner's objects); put in eval mode, on the device of the images.
        objects: optional ``{obj_id: ObjectModel}`` (only checked by :func:`load_refiner`; diameters come from
            the render meshes).
    """

    def __init__(self, net: ReposeNet, objects: Mapping[int, object] | None = None) -> None:
        self.net = net.eval()
        self.config: ReposeConfig = net.config
        self.objects = MappingProxyType(dict(objects) if objects is not None else dict(net.meshes))
        self.default_iterations = net.config.iterations
        self.source: str | None = None

    def to(self, device) -> "ReposeRefiner":
        """A refiner whose network lives on ``device`` (a new object; this one is unchanged)."""
        import copy  # noqa: PLC0415

        net = copy.deepcopy(self.net).to(device)
        out = ReposeRefiner(net, self.objects)
        out.source = self.source
        return out

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def checkpoint(self, registry: list[dict]) -> dict:
        """The weights-file dict of this refiner (see :mod:`iterpose.refiners.checkpoint`)."""
        return {"format_version": FORMAT_VERSION, "method": "repose", "config": self.config.to_dict(),
                "state_dict": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
                "objects": registry, "meshes": render_meshes_to_dict(self.net.meshes)}

    @classmethod
    def from_checkpoint(cls, ckpt: dict, source: str, objects: Mapping[int, object] | None = None
                        ) -> "ReposeRefiner":
        """Build from a checkpoint dict read by :func:`~iterpose.refiners.checkpoint.read_refiner_checkpoint`
        (strict load; with ``objects``, the registry is checked against them and only they are refined)."""
        config, meshes = learned_checkpoint_parts(ckpt, source, "repose", ReposeConfig, objects)
        net = ReposeNet(meshes, config)
        load_state_strict(net, ckpt["state_dict"], source, "RePOSE")
        refiner = cls(net, {k: v for k, v in objects.items()} if objects is not None else None)
        refiner.source = source
        return refiner

    # -- refining ------------------------------------------------------------------------------------------------

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        t0 = time.perf_counter()
        dev = batch.images.device
        net = self.net
        T0 = batch.init_poses.to(dev, torch.float32)
        ids = [int(i) for i in batch.object_ids.tolist()]
        with torch.no_grad():
            image_hw = tuple(batch.images.shape[-2:])
            windows = net.windows(batch.K.to(dev)[batch.image_index.to(dev)].float(), image_hw, T0, ids)
            F_img = net.region_features(batch.images.to(torch.float32), windows, batch.image_index)
            t_feat = time.perf_counter()
            net.reset_timings()
            trace = net.refine_features(F_img, image_hw, batch.K, ids, T0, batch.image_index, iterations, windows)
        t_lm = time.perf_counter()
        M = len(ids)
        rows = torch.arange(M, device=dev)
        if self.config.select_best_iterate and iterations > 0:  # the iterate the features explain best
            best = trace.costs[1:].argmin(dim=0) + 1
        else:
            best = torch.full((M,), iterations, dtype=torch.int64, device=dev)
        T = torch.stack(trace.poses)[best, rows]
        cost, score = trace.costs[best, rows], trace.scores[best, rows]
        diam = torch.tensor([net.meshes[i].diameter_m for i in ids], device=dev, dtype=torch.float64)
        rot = rotation_angle(T[:, :3, :3].double() @ T0[:, :3, :3].double().transpose(1, 2)) * 180.0 / math.pi
        moved = (T[:, :3, 3] - T0[:, :3, 3]).double().norm(dim=1)
        diverged = ~torch.isfinite(T).all(dim=(1, 2)) | (rot > MAX_ROTATION_DEG) | (moved > MAX_TRANSLATION_REL * diam)
        worse = ~(cost < trace.cost_init) if self.config.accept_test else torch.zeros_like(diverged)
        status = torch.full((len(ids),), int(RefineStatus.OK), dtype=torch.int8, device=dev)
        status[worse] = int(RefineStatus.KEPT_INITIAL_WORSE)
        status[diverged] = int(RefineStatus.DIVERGED)
        keep = status != int(RefineStatus.OK)
        poses = torch.where(keep[:, None, None], T0, T)
        scores = torch.where(keep, trace.score_init, score)
        t_end = time.perf_counter()
        tm = net.timings
        timings = RefineTimings(total_s=t_end - t0, prepare_s=t_lm - t_feat - tm["render_s"] - tm["lm_s"],
                                features_s=t_feat - t0, render_s=tm["render_s"], terms_s=tm["lm_s"],
                                accept_s=t_end - t_lm)
        return RefineOutput(poses=poses, scores=scores, trace=torch.stack(trace.poses), status=status,
                            timings=timings)
