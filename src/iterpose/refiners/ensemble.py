"""`EnsembleRefiner`: several refiners run from the same initial poses; per object, the result that RGB-LM's
training-free score rates highest is kept (e.g. ``rgb-lm,deepim,deepim+rgb-lm``).

Why: on the real LM-O dev images the methods fail on different objects. From the keypoint estimator's poses RGB-LM
and DeepIM each pass ADD(-S)@0.1d on 0.47 and 0.45 of the targets, and on 0.56 taken together (had one known
which to keep); chosen by the score below, ``rgb-lm,deepim,deepim+rgb-lm`` reaches 0.50
(``benchmarks/RESULTS_ensemble.md``).

The judge is :meth:`~iterpose.refiners.rgb_lm.RgbLM.score_poses`: colour histograms of each candidate's own
silhouette and of a band around it, and how cleanly they separate the crop's pixels (0..1). Every member's result is
a candidate, including a member's initial pose when it kept it (``KEPT_INITIAL_WORSE``); a member's ``DIVERGED``
result is not (its pose is the input, and the input is not a candidate unless a member kept it).

Per object, relative to the ensemble's input: pose and status are the chosen member's (``DEPTH_ONLY`` stays
``DEPTH_ONLY``); score is the judge's score of the chosen pose (so scores of the ensemble are comparable across
objects, not across methods); trace is the chosen member's, padded with its last pose to the longest member's
length. It costs the sum of the members plus one render per member and object, except that a cascade member whose
first stage is another member (the same object: ``make_refiner`` builds each single method once per ensemble, so
in ``rgb-lm,deepim,deepim+rgb-lm`` the cascade's DeepIM is the ``deepim`` member) starts from that member's result
instead of running the stage again; the result is the same up to float32 rounding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import MappingProxyType

import torch

from iterpose.errors import InvalidInputError
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineStatus, RefineTimings
from iterpose.refiners.cascade import CascadeRefiner
from iterpose.refiners.rgb_lm import RgbLM

__all__ = ["EnsembleRefiner"]


class EnsembleRefiner(Refiner):
    """Refiners run side by side, the best-scored result kept (see the module docstring).

    Args:
        members: two or more refiners; the ensemble's objects are those every member knows.
        judge: the :class:`~iterpose.refiners.rgb_lm.RgbLM` whose :meth:`score_poses` ranks the results.
        name: the method name (e.g. ``"rgb-lm,deepim"``).
    """

    def __init__(self, members: Sequence[Refiner], judge: RgbLM, name: str = "ensemble") -> None:
        if len(members) < 2:
            raise InvalidInputError(f"EnsembleRefiner: needs at least two members, got {len(members)}.")
        if not isinstance(judge, RgbLM):
            raise InvalidInputError(f"EnsembleRefiner: judge must be an RgbLM, got {type(judge).__name__}.")
        self.members = list(members)
        self.judge = judge
        self.name = name
        common = [k for k in members[0].objects if all(k in m.objects for m in members[1:])]
        self.objects = MappingProxyType({k: members[0].objects[k] for k in common})

    def _first_stage_member(self, member: Refiner) -> int | None:
        """Index of the member that is ``member``'s first stage (the same object), when ``member`` is a
        :class:`~iterpose.refiners.cascade.CascadeRefiner`; else None."""
        if not isinstance(member, CascadeRefiner):
            return None
        return next((k for k, m in enumerate(self.members) if m is member.stages[0]), None)

    @property
    def default_iterations(self) -> int:
        return max(m.default_iterations for m in self.members)

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        if iterations != self.default_iterations:
            raise InvalidInputError(f"{self.name}: runs each member's own iterations; set them per member instead "
                                    f"of iterations={iterations}.")
        t0 = time.perf_counter()
        outs: list[RefineOutput | None] = [None] * len(self.members)
        firsts = [self._first_stage_member(m) for m in self.members]
        for k in sorted(range(len(outs)), key=lambda k: firsts[k] is not None):  # the members cascades reuse first
            m = self.members[k]
            if firsts[k] is None:
                outs[k] = m.refine(batch.images, batch.K, batch.object_ids, batch.init_poses, batch.image_index)
            else:  # a cascade whose first stage is another member: start it from that member's result
                outs[k] = m.run_stages(batch, first=outs[firsts[k]])
        t_judge = time.perf_counter()
        poses = torch.stack([o.poses.to(batch.init_poses) for o in outs])  # [C, M, 4, 4]
        status = torch.stack([o.status.cpu() for o in outs])  # [C, M]
        with torch.no_grad():
            scores = self.judge.score_poses(batch, poses).cpu()
        scores = torch.where(status == int(RefineStatus.DIVERGED), torch.full_like(scores, -torch.inf), scores)
        best = scores.argmax(0)  # [M]; all diverged: member 0, whose pose is then the input
        M = poses.shape[1]
        rows = torch.arange(M)
        length = max(o.trace.shape[0] for o in outs)
        traces = torch.stack([torch.cat([o.trace.to(batch.init_poses),
                                         o.trace[-1:].to(batch.init_poses).expand(length - o.trace.shape[0], M, 4, 4)])
                              for o in outs])  # [C, T+1, M, 4, 4]
        dev = batch.init_poses.device
        totals = {k: sum(getattr(o.timings, k) for o in outs)
                  for k in ("prepare_s", "features_s", "render_s", "terms_s", "solve_s", "accept_s")}
        totals["accept_s"] += time.perf_counter() - t_judge
        return RefineOutput(poses=poses[best.to(dev), rows.to(dev)], scores=scores[best, rows].clamp_min(0.0),
                            trace=traces[best.to(dev), :, rows.to(dev)].transpose(0, 1),
                            status=status[best, rows].to(torch.int8),
                            timings=RefineTimings(total_s=time.perf_counter() - t0, **totals))
