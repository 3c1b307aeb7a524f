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

import time

import torch

from iterpose.refiners.base import RefineBatch, RefineOutput, RefineStatus, RefineTimings
from iterpose.refiners.learned import LearnedRefiner, diverged
from iterpose.refiners.repose.config import ReposeConfig
from iterpose.refiners.repose.model import ReposeNet

__all__ = ["ReposeRefiner", "MAX_ROTATION_DEG", "MAX_TRANSLATION_REL"]

MAX_ROTATION_DEG = 60.0
"""A refined pose rotated more than this from the initial one is treated as diverged (the LM's basin is far
smaller: 5 steps of at most ``max_step_rot_rad`` each)."""
MAX_TRANSLATION_REL = 1.0
"""A refined pose moved more than this many object diameters is treated as diverged."""


class ReposeRefiner(LearnedRefiner):
    """RePOSE refinement with a trained :class:`ReposeNet` (use :func:`iterpose.load_refiner` to read weights).

    Args:
        net: the model (its objects are the refiner's objects); put in eval mode, on the device of the images.
        objects: optional ``{obj_id: ObjectModel}`` (only checked by :func:`load_refiner`; diameters come from
            the render meshes).
    """

    method = "repose"
    config_cls = ReposeConfig
    net_cls = ReposeNet
    label = "RePOSE"
    config: ReposeConfig
    net: ReposeNet

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
        bad = diverged(T, T0, diam, MAX_ROTATION_DEG, MAX_TRANSLATION_REL)
        worse = ~(cost < trace.cost_init) if self.config.accept_test else torch.zeros_like(bad)
        status = torch.full((len(ids),), int(RefineStatus.OK), dtype=torch.int8, device=dev)
        status[worse] = int(RefineStatus.KEPT_INITIAL_WORSE)
        status[bad] = int(RefineStatus.DIVERGED)
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
