"""`DeepimRefiner`: the :class:`~iterpose.refiners.Refiner` interface around a trained :class:`DeepimModel`.

Each iteration renders every object at its current estimate, zooms, and lets the network predict the update (no
gradients). DeepIM has no cost to minimise, so there is no accept test: a result that rotated more than
``config.max_rotation_deg`` or moved more than :data:`MAX_TRANSLATION_REL` diameters from the initial pose, or came
nearer than :data:`~iterpose.refiners.base.MIN_DEPTH_M` to the camera, is ``DIVERGED`` (initial pose kept).

Score (0..1): ``exp(-m / SCORE_SCALE_REL)``, ``m`` = the mean distance (in diameters) the last iteration moved the
render mesh's vertices: a network that has converged asks for no further motion. It ranks results, it is not a
calibrated probability.
"""

from __future__ import annotations

import math
import time

import torch

from iterpose.refiners.base import MIN_DEPTH_M, RefineBatch, RefineOutput, RefineStatus, RefineTimings
from iterpose.refiners.deepim.config import DeepimConfig
from iterpose.refiners.deepim.model import DeepimModel
from iterpose.refiners.learned import LearnedRefiner, diverged

__all__ = ["DeepimRefiner", "MAX_TRANSLATION_REL", "SCORE_SCALE_REL"]

MAX_TRANSLATION_REL = 1.0
"""A refined pose moved more than this many object diameters is treated as diverged."""
SCORE_SCALE_REL = 0.01
"""Last-iteration motion (diameters) at which the score is 1/e."""


class DeepimRefiner(LearnedRefiner):
    """DeepIM refinement with a trained :class:`DeepimModel` (use :func:`iterpose.load_refiner` to read weights).

    Args:
        net: the :class:`DeepimModel` (its objects are the refiner's objects); put in eval mode.
        objects: optional ``{obj_id: ObjectModel}`` (only checked by :func:`load_refiner`).
    """

    method = "deepim"
    config_cls = DeepimConfig
    net_cls = DeepimModel
    label = "DeepIM"
    config: DeepimConfig
    net: DeepimModel

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        t0 = time.perf_counter()
        dev = batch.images.device
        model = self.net
        T0 = batch.init_poses.to(dev, torch.float32)
        ids = [int(i) for i in batch.object_ids.tolist()]
        K_obj = batch.K.to(dev)[batch.image_index.to(dev)].float()
        model.reset_timings()
        with torch.no_grad():
            poses = model.refine(batch.images.to(torch.float32), K_obj, ids, T0, batch.image_index.to(dev),
                                 iterations)
        t_iter = time.perf_counter()
        T = poses[-1]
        diam = torch.tensor([model.meshes[i].diameter_m for i in ids], device=dev, dtype=torch.float64)
        bad = diverged(T, T0, diam, self.config.max_rotation_deg, MAX_TRANSLATION_REL) | (T[:, 2, 3] < MIN_DEPTH_M)
        status = torch.full((len(ids),), int(RefineStatus.OK), dtype=torch.int8, device=dev)
        status[bad] = int(RefineStatus.DIVERGED)
        poses_out = torch.where(bad[:, None, None], T0, T)
        last_motion = self._mean_vertex_motion(ids, poses[-2], T) / diam.float()
        scores = torch.exp(-last_motion.nan_to_num(nan=math.inf) / SCORE_SCALE_REL)
        scores = torch.where(bad, torch.zeros_like(scores), scores)
        t_end = time.perf_counter()
        tm = model.timings
        # the network (and its pose update) is the "features" part; DeepIM has no LM terms or solves
        timings = RefineTimings(total_s=t_end - t0, prepare_s=t_iter - t0 - tm["net_s"] - tm["render_s"],
                                features_s=tm["net_s"], render_s=tm["render_s"], accept_s=t_end - t_iter)
        return RefineOutput(poses=poses_out, scores=scores, trace=torch.stack(poses), status=status,
                            timings=timings)

    def _mean_vertex_motion(self, ids: list[int], T_a: torch.Tensor, T_b: torch.Tensor) -> torch.Tensor:
        """``[N]`` mean distance (metres) between the render-mesh vertices posed at ``T_a`` and at ``T_b``."""
        out = torch.empty(len(ids), dtype=torch.float32, device=T_a.device)
        for k, i in enumerate(ids):
            v = self.net.meshes[i].vertices.to(T_a.device)
            d = v @ (T_a[k, :3, :3] - T_b[k, :3, :3]).T + (T_a[k, :3, 3] - T_b[k, :3, 3])
            out[k] = d.norm(dim=1).mean()
        return out
