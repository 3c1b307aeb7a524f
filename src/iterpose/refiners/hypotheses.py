"""`MultiHypothesisRefiner`: refine several rotated copies of each initial pose and keep the best: the one whose
outline best matches the image's edges, or the one a learned scorer predicts closest to the truth.

A refiner's basin is limited (on the real LM-O images none of ours recovers most 20°+ rotation errors). With
``hypotheses = H``, each object's initial pose and ``H - 1`` copies of it rotated by ``angle_deg`` about axes spread
evenly over the sphere (camera frame, about the object's origin, so its projected centre and depth do not move)
are all refined by the wrapped refiner in one call (each hypothesis index in its own copy of the image, with the
same hypothesis of the image's other objects); the results are ranked, and the best is returned. A rotated copy
whose refinement did not succeed (status other than ``OK``: its pose is an unrefined guess) is not a candidate;
the initial pose's own refinement always is. Two rankings:

- without a scorer, training-free: :func:`~iterpose.refiners.contour_score.contour_alignment` (how well the
  outline follows the image's edges) in a crop around the initial pose;
- with a :class:`~iterpose.refiners.scorer.PoseScorer` (``iterpose train --method scorer``), learned as MegaPose
  ranks its hypotheses: the candidate with the smallest predicted ADD(-S) error.

Per object, relative to the wrapper's input: pose and score are those of the chosen candidate's refinement (the
wrapped refiner's score), status is its status when the initial pose's own refinement is chosen and ``OK``
otherwise, and the trace is the chosen candidate's (``trace[0]`` is the input, as always). It costs about ``H``
times the wrapped refiner plus one render per candidate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from types import MappingProxyType

import torch

from iterpose.errors import InvalidInputError
from iterpose.geometry.rotations import axis_angle_to_matrix
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineStatus, RefineTimings
from iterpose.refiners.contour_score import contour_alignment
from iterpose.refiners.crops import crop_intrinsics, sample_crops, sphere_crop_boxes
from iterpose.refiners.proxy_mesh import make_proxy_mesh, render_proxies

__all__ = ["MultiHypothesisRefiner", "HypothesisCandidates", "hypothesis_rotations"]

_PROXY_CELL_REL = 0.015
"""outline renders use the model simplified on a grid of this fraction of its diameter (as DeepIM's renders)."""


def hypothesis_rotations(count: int, angle_deg: float) -> torch.Tensor:
    """``[count, 3, 3]`` float64: the identity, then ``count - 1`` rotations by ``angle_deg`` about axes on a
    Fibonacci sphere (evenly spread directions, so no preferred axis)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInputError(f"hypothesis_rotations: count must be an int >= 1, got {count!r}.")
    n = count - 1
    k = torch.arange(n, dtype=torch.float64)
    z = 1.0 - 2.0 * (k + 0.5) / max(n, 1)
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    r = torch.sqrt((1.0 - z ** 2).clamp_min(0.0))
    axes = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=1)
    rotations = axis_angle_to_matrix(axes * math.radians(angle_deg))
    return torch.cat([torch.eye(3, dtype=torch.float64)[None], rotations.reshape(n, 3, 3)])


@dataclass(frozen=True, eq=False)
class HypothesisCandidates:
    """All refined hypotheses of M objects (H each, object-major: row ``m H + h``).

    Attributes:
        output: the wrapped refiner's :class:`RefineOutput` over the ``M H`` starts (hypothesis 0 of each object
            is its initial pose). outline_scores: ``[M, H]`` :func:`contour_alignment` of the refined poses (None
            when a scorer ranked and they were not asked for).
        hypotheses: H. predicted_errors: ``[M, H]`` the scorer's predicted ADD(-S) / diameter (None without one).
    """

    output: RefineOutput
    outline_scores: torch.Tensor | None
    hypotheses: int
    predicted_errors: torch.Tensor | None = None

    @property
    def ranking(self) -> torch.Tensor:
        """``[M, H]`` higher is better: the negated predicted errors with a scorer, else the outline scores."""
        return -self.predicted_errors if self.predicted_errors is not None else self.outline_scores

    @property
    def poses(self) -> torch.Tensor:
        """``[M, H, 4, 4]`` refined poses."""
        return self.output.poses.reshape(-1, self.hypotheses, 4, 4)

    @property
    def status(self) -> torch.Tensor:
        """``[M, H]`` int8 :class:`RefineStatus` codes (CPU)."""
        return self.output.status.cpu().reshape(-1, self.hypotheses)


class MultiHypothesisRefiner(Refiner):
    """``refiner`` run from ``hypotheses`` rotated copies of each initial pose (see the module docstring).

    Args:
        refiner: any refiner (a cascade too); its objects and default iterations are the wrapper's.
        hypotheses: H >= 2, the initial pose included.
        angle_deg: rotation of each extra hypothesis (degrees, > 0 and <= 90).
        crop_size: side of the crops the outlines are scored in (pixels).
        crop_margin: the crop's side is this times the object's projected diameter at the initial pose.
        scorer: optional :class:`~iterpose.refiners.scorer.PoseScorer` for all the refiner's objects: ranks by its
            predicted error instead of the outline score.
    """

    def __init__(self, refiner: Refiner, hypotheses: int = 7, angle_deg: float = 20.0, crop_size: int = 160,
                 crop_margin: float = 1.8, scorer=None) -> None:
        if not isinstance(refiner, Refiner):
            raise InvalidInputError(f"MultiHypothesisRefiner: refiner must be a Refiner, got {type(refiner).__name__}.")
        if isinstance(hypotheses, bool) or not isinstance(hypotheses, int) or hypotheses < 2:
            raise InvalidInputError(f"MultiHypothesisRefiner: hypotheses must be an int >= 2, got {hypotheses!r}.")
        if isinstance(angle_deg, bool) or not isinstance(angle_deg, (int, float)) or not 0 < angle_deg <= 90:
            raise InvalidInputError(f"MultiHypothesisRefiner: angle_deg must be in (0, 90], got {angle_deg!r}.")
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 16:
            raise InvalidInputError(f"MultiHypothesisRefiner: crop_size must be an int >= 16, got {crop_size!r}.")
        if isinstance(crop_margin, bool) or not isinstance(crop_margin, (int, float)) or not crop_margin >= 1:
            raise InvalidInputError(f"MultiHypothesisRefiner: crop_margin must be a number >= 1, got {crop_margin!r}.")
        if scorer is not None:
            from iterpose.refiners.scorer import PoseScorer  # noqa: PLC0415

            if not isinstance(scorer, PoseScorer):
                raise InvalidInputError(f"MultiHypothesisRefiner: scorer must be a PoseScorer, got "
                                        f"{type(scorer).__name__}.")
            missing = sorted(set(refiner.objects) - set(scorer.objects))
            if missing:
                raise InvalidInputError(f"MultiHypothesisRefiner: the scorer {scorer.source or ''} was not trained "
                                        f"for objects {missing}; train one on them (`iterpose train --method scorer`).")
        self.scorer = scorer
        self.refiner = refiner
        self.hypotheses = hypotheses
        self.angle_deg = float(angle_deg)
        self.crop_size = int(crop_size)
        self.crop_margin = float(crop_margin)
        self.name = f"{getattr(refiner, 'name', type(refiner).__name__)} x{hypotheses}"
        self.objects = MappingProxyType(dict(refiner.objects))
        self._rotations = hypothesis_rotations(hypotheses, angle_deg).to(torch.float32)
        self._proxies = {k: make_proxy_mesh(m, _PROXY_CELL_REL * m.diameter_m) for k, m in self.objects.items()}

    @property
    def default_iterations(self) -> int:
        return self.refiner.default_iterations

    def candidates(self, batch: RefineBatch, iterations: int, outline: bool = True) -> HypothesisCandidates:
        """Every hypothesis of every object refined and scored (what :meth:`refine` chooses from).

        Args:
            batch: checked inputs (:class:`RefineBatch`, valid initial poses only). iterations: the wrapped
                refiner's. outline: also the outline scores when a scorer ranks (they are the ranking without one).
        """
        M, H = batch.init_poses.shape[0], self.hypotheses
        T0 = batch.init_poses
        starts = T0.repeat_interleave(H, 0).clone()  # [M H, 4, 4], object-major
        starts[:, :3, :3] = self._rotations.to(T0).repeat(M, 1, 1) @ starts[:, :3, :3]
        # hypothesis h of every object goes to copy h of its image: the copies of one object must not see each
        # other (a refiner that reasons about occlusion between an image's objects would mask them out)
        copy = torch.arange(H).repeat(M)
        out = self.refiner.refine(batch.images.repeat_interleave(H, 0), batch.K.repeat_interleave(H, 0),
                                  batch.object_ids.repeat_interleave(H), starts,
                                  batch.image_index.repeat_interleave(H) * H + copy, iterations=iterations)
        outline_scores = None
        if outline or self.scorer is None:
            outline_scores = self._outline_scores(batch, out.poses.to(torch.float32))
        predicted = None
        if self.scorer is not None:
            K = batch.K[batch.image_index.to(batch.K.device)].float()
            predicted = self.scorer.predict_error(
                batch.images, K.repeat_interleave(H, 0), [int(i) for i in batch.object_ids.repeat_interleave(H)],
                out.poses.to(torch.float32), batch.image_index.repeat_interleave(H), T0.repeat_interleave(H, 0)
            ).cpu().view(M, H)
        return HypothesisCandidates(output=out, outline_scores=outline_scores, hypotheses=H,
                                    predicted_errors=predicted)

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        t0 = time.perf_counter()
        cands = self.candidates(batch, iterations, outline=False)
        out, H = cands.output, self.hypotheses
        M = batch.init_poses.shape[0]
        status = cands.status
        candidate = status == int(RefineStatus.OK)
        candidate[:, 0] = True
        best = torch.where(candidate, cands.ranking, torch.full_like(cands.ranking, -torch.inf)).argmax(1)
        pick = torch.arange(M) * H + best
        chosen_status = torch.where(best == 0, status[torch.arange(M), 0],
                                    torch.full_like(best, int(RefineStatus.OK))).to(torch.int8)
        t_end = time.perf_counter()
        inner = out.timings
        return RefineOutput(poses=out.poses[pick.to(out.poses.device)].to(batch.init_poses),
                            scores=out.scores[pick.to(out.scores.device)], trace=out.trace[:, pick.to(
                                out.trace.device)], status=chosen_status,
                            timings=RefineTimings(total_s=t_end - t0, prepare_s=inner.prepare_s,
                                                  features_s=inner.features_s, render_s=inner.render_s,
                                                  terms_s=inner.terms_s, solve_s=inner.solve_s,
                                                  # outline scores and the choice count as the accept test
                                                  accept_s=inner.accept_s + (t_end - t0 - inner.total_s)))

    def _outline_scores(self, batch: RefineBatch, poses: torch.Tensor) -> torch.Tensor:
        """``[M, H]`` :func:`contour_alignment` of the refined candidates ``poses [M H, 4, 4]`` in crops around the
        initial poses."""
        H, S = self.hypotheses, self.crop_size
        dev = batch.images.device
        ids = [int(i) for i in batch.object_ids.tolist()]
        K = batch.K[batch.image_index.to(batch.K.device)].float()
        radius = torch.tensor([self.objects[i].diameter_m / 2 for i in ids], dtype=torch.float32, device=K.device)
        boxes = sphere_crop_boxes(K, batch.init_poses.to(K), radius, self.crop_margin)
        observed, _ = sample_crops(batch.images.float(), batch.image_index.to(dev), boxes, S)
        K_crop = crop_intrinsics(K, boxes, S)
        proxies = [self._proxies[i] for i in ids for _ in range(H)]
        masks = render_proxies(proxies, poses.to(dev), K_crop.repeat_interleave(H, 0).to(dev), S,
                               with_albedo=False).mask
        return contour_alignment(observed, masks.view(len(ids), H, S, S)).cpu()
