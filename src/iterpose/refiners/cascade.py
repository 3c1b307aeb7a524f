"""`CascadeRefiner`: refiners run one after the other, each from the previous one's result (e.g. ``deepim+repose``:
DeepIM's wide basin, then RePOSE's feature-metric LM).

Per object, relative to the cascade's own input:

- pose: the last stage's result (a stage that keeps its input passes the previous stage's result on);
- status: ``OK`` when any stage changed the pose, else the first stage's status (``KEPT_INITIAL_WORSE`` or
  ``DIVERGED``: the input is returned); a later stage's ``DEPTH_ONLY`` counts as ``OK`` (its rotation is the
  earlier stage's, not the input's);
- score: the score of the last stage whose result was kept;
- trace: the stages' traces one after the other (``1 + sum of the stages' iterations`` poses).

With a ``guard`` (an :class:`~iterpose.refiners.rgb_lm.RgbLM`), the cascade's result must also pass RGB-LM's accept
test against the cascade's input, otherwise the input is kept (``KEPT_INITIAL_WORSE``, RGB-LM's score of the input):
a learned first stage can move a good initial pose to a worse one that a later stage's own accept test, which
compares with the first stage's result, would let through.

The cascade runs each stage's default number of iterations; set them per stage (``refiner.stages[k]``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import MappingProxyType

import torch

from iterpose.errors import InvalidInputError
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineStatus, RefineTimings
from iterpose.refiners.rgb_lm import RgbLM

__all__ = ["CascadeRefiner"]

_KEPT = (int(RefineStatus.KEPT_INITIAL_WORSE), int(RefineStatus.DIVERGED))


class CascadeRefiner(Refiner):
    """Refiners chained in order (see the module docstring).

    Args:
        stages: two or more refiners; the cascade's objects are those every stage knows.
        name: the method name (e.g. ``"deepim+repose"``).
        guard: optional :class:`~iterpose.refiners.rgb_lm.RgbLM` whose accept test the result must pass against
            the cascade's input (see the module docstring).
    """

    def __init__(self, stages: Sequence[Refiner], name: str = "cascade", guard: RgbLM | None = None) -> None:
        if len(stages) < 2:
            raise InvalidInputError(f"CascadeRefiner: needs at least two stages, got {len(stages)}.")
        if guard is not None and not isinstance(guard, RgbLM):
            raise InvalidInputError(f"CascadeRefiner: guard must be an RgbLM, got {type(guard).__name__}.")
        self.stages = list(stages)
        self.name = name
        self.guard = guard
        common = [k for k in stages[0].objects if all(k in s.objects for s in stages[1:])]
        self.objects = MappingProxyType({k: stages[0].objects[k] for k in common})

    @property
    def default_iterations(self) -> int:
        return sum(s.default_iterations for s in self.stages)

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        if iterations != self.default_iterations:
            raise InvalidInputError(f"{self.name}: runs each stage's own iterations ("
                                    f"{'+'.join(str(s.default_iterations) for s in self.stages)}); set them per stage "
                                    f"instead of iterations={iterations}.")
        return self.run_stages(batch)

    def run_stages(self, batch: RefineBatch, first: RefineOutput | None = None) -> RefineOutput:
        """The cascade on a checked batch (what :meth:`refine` runs after its checks).

        Args:
            batch: checked inputs (:class:`RefineBatch`).
            first: the first stage's :meth:`~Refiner.refine` output on this same batch when it is already known
                (an :class:`~iterpose.refiners.ensemble.EnsembleRefiner` whose member is that stage): the stage
                is then not run again and its time is not counted in the returned timings.

        Returns:
            :class:`RefineOutput` as :meth:`refine`'s, relative to ``batch.init_poses``.
        """
        t0 = time.perf_counter()
        poses = batch.init_poses
        status = scores = None
        traces, totals = [], {"prepare_s": 0.0, "features_s": 0.0, "render_s": 0.0, "terms_s": 0.0, "solve_s": 0.0,
                              "accept_s": 0.0}
        for k, stage in enumerate(self.stages):
            if k == 0 and first is not None:
                out = first
            else:
                out = stage.refine(batch.images, batch.K, batch.object_ids, poses, batch.image_index)
                for key in totals:
                    totals[key] += getattr(out.timings, key)
            traces.append(out.trace if k == 0 else out.trace[1:])
            changed = ~torch.isin(out.status.cpu(), torch.tensor(_KEPT, dtype=out.status.dtype))
            if status is None:
                status, scores = out.status.clone(), out.scores.clone()
            else:
                status = torch.where(changed.to(status.device), torch.zeros_like(status), status)  # 0 = OK
                scores = torch.where(changed.to(scores.device), out.scores.to(scores), scores)
            poses = out.poses.to(batch.init_poses)
        if self.guard is not None:
            t_guard = time.perf_counter()
            poses, scores, status = self._guarded(batch, poses, scores, status)
            totals["accept_s"] += time.perf_counter() - t_guard
        return RefineOutput(poses=poses, scores=scores, trace=torch.cat(traces), status=status,
                            timings=RefineTimings(total_s=time.perf_counter() - t0, **totals))

    def _guarded(self, batch: RefineBatch, poses: torch.Tensor, scores: torch.Tensor, status: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(poses, scores, status)`` with the input kept where a moved object fails the guard's accept test."""
        moved = ~torch.isin(status.cpu(), torch.tensor(_KEPT, dtype=status.dtype))
        if not bool(moved.any()):
            return poses, scores, status
        idx = moved.nonzero().flatten()  # CPU indices: RefineBatch keeps object_ids and image_index on the CPU
        sub = RefineBatch(images=batch.images, K=batch.K, object_ids=batch.object_ids[idx],
                          init_poses=batch.init_poses[idx], image_index=batch.image_index[idx])
        test = self.guard.accept_test(sub, poses[idx])
        failed = ~test.passed.cpu()
        rejected = idx[failed]
        poses, scores, status = poses.clone(), scores.clone(), status.clone()
        poses[rejected] = batch.init_poses[rejected].to(poses)
        status[rejected] = int(RefineStatus.KEPT_INITIAL_WORSE)
        scores[rejected] = test.reference_scores.cpu()[failed].to(scores)
        return poses, scores, status
