"""The `Refiner` interface: one call refines every object of a batch of images, on any device.

Conventions (DESIGN.md): images ``[B, 3, H, W]`` float RGB 0..1; ``K [B, 3, 3]`` pixels, OpenCV pixel centres;
poses ``T_co [N, 4, 4]`` object-to-camera, metres; ``image_index [N]`` says which image each object is in.

Guarantees of every refiner:

- inputs are never modified; outputs are on the device of ``init_poses``;
- no returned pose is NaN or behind the camera: an object whose refinement diverges or is invalid keeps its
  initial pose and is flagged in ``status``;
- initial poses that cannot be refined (non-finite, ``t = 0``, not a rotation, behind or too close to the camera,
  or projecting entirely outside the image) are passed through unchanged and flagged.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import torch

from iterpose.errors import CameraError, InvalidInputError, ShapeError
from iterpose.geometry import orthonormalize, principal_point_in_image, validate_K

__all__ = [
    "RefineStatus",
    "RefineTimings",
    "RefineOutput",
    "RefineBatch",
    "Refiner",
    "classify_initial_poses",
    "MIN_DEPTH_M",
]

MIN_DEPTH_M = 0.01
"""An object whose bounding sphere comes nearer to the camera than this (metres, along z) cannot be refined."""

_ZERO_T_M = 1e-9  # |t| below this (metres) is the "no estimate" placeholder t = 0
_ROTATION_TOL = 2e-2  # max |R^T R - I| entry accepted as a rotation (then orthonormalised before refining)


class RefineStatus(IntEnum):
    """Outcome per object (``RefineOutput.status`` holds these codes as int8).

    OK: refined; the returned pose is the refined one.
    KEPT_INITIAL_WORSE: refined, but the result explained the image worse than the initial pose; initial kept.
    DIVERGED: the refinement moved the object absurdly far (or produced non-finite values); initial kept.
    INVALID_INIT_ZERO_T: initial translation is 0 (a BOP "no estimate" placeholder); passed through.
    INVALID_INIT_BEHIND_CAMERA: the object's bounding sphere is behind or within 1 cm of the camera plane.
    INVALID_INIT_OUTSIDE_IMAGE: the projected bounding sphere does not overlap the image.
    INVALID_INIT_NONFINITE: the initial pose has NaN or inf entries.
    INVALID_INIT_NOT_ROTATION: the rotation block is not a proper rotation (``|R^T R - I| > 0.02`` or det <= 0);
        rotations within that tolerance (e.g. printed with few digits) are orthonormalised and refined.
    DEPTH_ONLY: refined, the full result failed the accept test, and the returned pose is the initial one moved
        along its viewing ray to the refined depth (same rotation, same image position of the object origin;
        RGB-LM's ``depth_fallback``). Added after the others, so the codes above keep their values.
    """

    OK = 0
    KEPT_INITIAL_WORSE = 1
    DIVERGED = 2
    INVALID_INIT_ZERO_T = 3
    INVALID_INIT_BEHIND_CAMERA = 4
    INVALID_INIT_OUTSIDE_IMAGE = 5
    INVALID_INIT_NONFINITE = 6
    INVALID_INIT_NOT_ROTATION = 7
    DEPTH_ONLY = 8

    @property
    def is_invalid_init(self) -> bool:
        """True for the codes of initial poses that were passed through without refinement (the
        ``INVALID_INIT_*`` codes)."""
        return self in _INVALID_INIT_CODES

    @property
    def went_through(self) -> bool:
        """True for the codes of poses that went through the refiner (OK, KEPT_INITIAL_WORSE, DIVERGED,
        DEPTH_ONLY)."""
        return not self.is_invalid_init


#: The codes of initial poses passed through without refinement, listed (not an ordinal range: codes are added at
#: the end, e.g. DEPTH_ONLY).
_INVALID_INIT_CODES = frozenset({
    RefineStatus.INVALID_INIT_ZERO_T, RefineStatus.INVALID_INIT_BEHIND_CAMERA, RefineStatus.INVALID_INIT_OUTSIDE_IMAGE,
    RefineStatus.INVALID_INIT_NONFINITE, RefineStatus.INVALID_INIT_NOT_ROTATION,
})


@dataclass(frozen=True)
class RefineTimings:
    """Wall-clock seconds of one :meth:`Refiner.refine` call.

    Attributes:
        total_s: the whole call.
        prepare_s: validation, crops, histograms, occlusion masks.
        features_s: image feature network (learned methods).
        render_s: rendering inside the iterations.
        terms_s: residuals, Jacobians and normal equations.
        solve_s: LM solves and pose updates.
        accept_s: the final accept test and scores.
    """

    total_s: float
    prepare_s: float = 0.0
    features_s: float = 0.0
    render_s: float = 0.0
    terms_s: float = 0.0
    solve_s: float = 0.0
    accept_s: float = 0.0


@dataclass(frozen=True, eq=False)
class RefineOutput:
    """Result of :meth:`Refiner.refine` for N objects and T iterations.

    Attributes:
        poses: ``[N, 4, 4]`` refined ``T_co`` (metres), dtype/device of the initial poses; never NaN, never
            behind the camera unless the initial pose was (objects not refined keep their initial pose exactly;
            a non-finite initial pose becomes the BOP placeholder ``R = I, t = 0``).
        scores: ``[N]`` float in 0..1, higher = the pose explains the image better (method-specific, documented
            by each refiner); objects passed through get 0.
        trace: ``[T + 1, N, 4, 4]`` the pose after each iteration; ``trace[0]`` is the initial poses. Objects
            that stop early repeat their last pose. ``trace[-1]`` is the last iterate, before the accept test
            (``poses`` is after it).
        status: ``[N]`` int8 :class:`RefineStatus` codes.
        timings: :class:`RefineTimings`.
    """

    poses: torch.Tensor
    scores: torch.Tensor
    trace: torch.Tensor
    status: torch.Tensor
    timings: RefineTimings

    @property
    def num_iterations(self) -> int:
        """T, the number of iterations in :attr:`trace`."""
        return int(self.trace.shape[0]) - 1

    def status_counts(self) -> dict[str, int]:
        """``{status name: count}`` of the statuses present."""
        out: dict[str, int] = {}
        for code in self.status.tolist():
            name = RefineStatus(code).name
            out[name] = out.get(name, 0) + 1
        return out


@dataclass(frozen=True, eq=False)
class RefineBatch:
    """Checked inputs handed to a refiner's implementation (only the objects that can be refined).

    Attributes:
        images: ``[B, 3, H, W]`` float 0..1. K: ``[B, 3, 3]`` pixels (float32, on the images' device).
        object_ids: ``[M]`` int64 keys of the refiner's objects. init_poses: ``[M, 4, 4]`` float32 ``T_co``.
        image_index: ``[M]`` int64 image of each object.
    """

    images: torch.Tensor
    K: torch.Tensor
    object_ids: torch.Tensor
    init_poses: torch.Tensor
    image_index: torch.Tensor


def _check_inputs(images, K, object_ids, init_poses, image_index, known_ids) -> None:
    fn = "Refiner.refine"
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        got = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ShapeError(f"{fn}: images must be [B, 3, H, W] float RGB 0..1, got {got}.")
    if not images.is_floating_point():
        raise InvalidInputError(f"{fn}: images must be float RGB in 0..1, got dtype {images.dtype}; divide uint8 "
                                f"images by 255.")
    B, _, H, W = images.shape
    if not isinstance(K, torch.Tensor) or K.shape != (B, 3, 3):
        got = list(K.shape) if isinstance(K, torch.Tensor) else type(K).__name__
        raise ShapeError(f"{fn}: K must be [B, 3, 3] = [{B}, 3, 3] (one per image), got {got}.")
    validate_K(K.float(), "K")
    bad = ~principal_point_in_image(K.detach().cpu(), W, H)
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        cx, cy = K[:, 0, 2].detach().cpu(), K[:, 1, 2].detach().cpu()
        raise CameraError(f"{fn}: K[{b}] has principal point (cx, cy) = ({float(cx[b]):.1f}, {float(cy[b]):.1f}) "
                          f"outside the {W}x{H} image; K does not match the image size (wrong camera or a "
                          f"resized image?).")
    if not isinstance(init_poses, torch.Tensor) or init_poses.dim() != 3 or init_poses.shape[1:] != (4, 4):
        got = list(init_poses.shape) if isinstance(init_poses, torch.Tensor) else type(init_poses).__name__
        raise ShapeError(f"{fn}: init_poses must be [N, 4, 4] T_co (metres), got {got}.")
    N = init_poses.shape[0]
    for name, t in (("object_ids", object_ids), ("image_index", image_index)):
        if not isinstance(t, torch.Tensor) or t.shape != (N,) or t.is_floating_point() or t.dtype == torch.bool:
            got = f"{list(t.shape)} {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ShapeError(f"{fn}: {name} must be [N] = [{N}] int64 (one per pose), got {got}.")
    if N and (int(image_index.min()) < 0 or int(image_index.max()) >= B):
        raise InvalidInputError(f"{fn}: image_index values must be in [0, {B}) for B={B} images, got range "
                                f"[{int(image_index.min())}, {int(image_index.max())}].")
    unknown = sorted(set(object_ids.tolist()) - set(known_ids))
    if unknown:
        raise InvalidInputError(f"{fn}: object_ids {unknown} have no model in this refiner (known: "
                                f"{sorted(known_ids)}); build the refiner with those objects.")


def classify_initial_poses(T_co: torch.Tensor, K: torch.Tensor, radius_m: torch.Tensor, height: int, width: int
                           ) -> torch.Tensor:
    """Which initial poses can be refined.

    Args:
        T_co: ``[N, 4, 4]`` initial poses (metres). K: ``[N, 3, 3]`` each object's image intrinsics (pixels).
        radius_m: ``[N]`` bounding-sphere radius of each object (metres; half the diameter).
        height, width: image size in pixels.

    Returns:
        ``[N]`` int8 :class:`RefineStatus`: ``OK`` for refinable poses, else the first ``INVALID_INIT_*`` reason in
        the order non-finite, zero t, not a rotation, behind camera, outside image.
    """
    T = T_co.detach().double()
    N = T.shape[0]
    status = torch.zeros(N, dtype=torch.int8, device=T.device)

    def flag(mask: torch.Tensor, code: RefineStatus) -> None:
        status[(status == 0) & mask] = int(code)

    finite = torch.isfinite(T).all(dim=(1, 2))
    flag(~finite, RefineStatus.INVALID_INIT_NONFINITE)
    T = torch.where(finite[:, None, None], T, torch.eye(4, dtype=T.dtype, device=T.device))
    t = T[:, :3, 3]
    flag(t.norm(dim=1) < _ZERO_T_M, RefineStatus.INVALID_INIT_ZERO_T)
    R = T[:, :3, :3]
    ortho = (R.transpose(1, 2) @ R - torch.eye(3, dtype=T.dtype, device=T.device)).abs().amax(dim=(1, 2))
    flag((ortho > _ROTATION_TOL) | (torch.linalg.det(R) <= 0), RefineStatus.INVALID_INIT_NOT_ROTATION)
    r = radius_m.to(T)
    z = t[:, 2]
    flag(z - r < MIN_DEPTH_M, RefineStatus.INVALID_INIT_BEHIND_CAMERA)
    Kd = K.detach().to(T)
    zs = z.clamp_min(MIN_DEPTH_M)
    u = Kd[:, 0, 0] * t[:, 0] / zs + Kd[:, 0, 2]
    v = Kd[:, 1, 1] * t[:, 1] / zs + Kd[:, 1, 2]
    # conservative projected radius of the sphere (its silhouette is at most r f / (z - r) from the centre)
    rad = r * torch.maximum(Kd[:, 0, 0], Kd[:, 1, 1]) / (z - r).clamp_min(MIN_DEPTH_M)
    outside = (u + rad < -0.5) | (u - rad > width - 0.5) | (v + rad < -0.5) | (v - rad > height - 0.5)
    flag(outside, RefineStatus.INVALID_INIT_OUTSIDE_IMAGE)
    return status


class Refiner(ABC):
    """A pose refiner over a fixed set of objects.

    Subclasses set :attr:`objects` (``{obj_id: ObjectModel}``) and :attr:`default_iterations`, and implement
    :meth:`_refine`, which only sees objects whose initial pose is valid.
    """

    objects: Mapping[int, object]
    default_iterations: int

    def refine(self, images: torch.Tensor, K: torch.Tensor, object_ids: torch.Tensor, init_poses: torch.Tensor,
               image_index: torch.Tensor, *, iterations: int | None = None) -> RefineOutput:
        """Refine N object poses in B images.

        Args:
            images: ``[B, 3, H, W]`` float RGB 0..1.
            K: ``[B, 3, 3]`` intrinsics of each image (pixels, OpenCV convention).
            object_ids: ``[N]`` int64 keys of :attr:`objects`.
            init_poses: ``[N, 4, 4]`` initial ``T_co`` (metres).
            image_index: ``[N]`` int64, the image of each object (0..B-1).
            iterations: number of iterations (default: :attr:`default_iterations`); 0 returns the initial poses.

        Returns:
            :class:`RefineOutput` on the device of ``init_poses``.

        Raises:
            ShapeError, CameraError, InvalidInputError: malformed inputs (the message names the argument).
        """
        t0 = time.perf_counter()
        _check_inputs(images, K, object_ids, init_poses, image_index, self.objects.keys())
        iters = self.default_iterations if iterations is None else iterations
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
            raise InvalidInputError(f"Refiner.refine: iterations must be an int >= 0, got {iterations!r}.")
        dev, dtype = init_poses.device, init_poses.dtype
        N = init_poses.shape[0]
        H, W = images.shape[2], images.shape[3]
        ids = object_ids.to("cpu", torch.int64)
        img_idx = image_index.to("cpu", torch.int64)
        radius = torch.tensor([self.objects[int(i)].diameter_m / 2 for i in ids.tolist()], dtype=torch.float64)
        status = classify_initial_poses(init_poses.detach().cpu(), K.detach().cpu()[img_idx], radius, H, W)
        poses = init_poses.detach().clone()
        nonfinite = (status == int(RefineStatus.INVALID_INIT_NONFINITE)).to(dev)
        if bool(nonfinite.any()):  # never return NaN: such rows get the BOP placeholder (R = I, t = 0)
            poses[nonfinite] = torch.eye(4, dtype=dtype, device=dev)
        scores = torch.zeros(N, dtype=dtype, device=dev)
        trace = poses[None].repeat(iters + 1, 1, 1, 1)
        ok = (status == 0).nonzero().flatten()
        timings = RefineTimings(total_s=0.0)
        if len(ok) and iters > 0:
            T_ok = init_poses.detach()[ok.to(dev)].to(torch.float64).clone()
            T_ok[:, :3, :3] = orthonormalize(T_ok[:, :3, :3])
            batch = RefineBatch(
                images=images.detach(), K=K.detach().to(images.device, torch.float32), object_ids=ids[ok],
                init_poses=T_ok.to(torch.float32), image_index=img_idx[ok],
            )
            result = self._refine(batch, iters)
            okd = ok.to(dev)
            refined_poses = result.poses.to(dev, dtype)
            refined_trace = result.trace.to(dev, dtype)
            refined_status = result.status.cpu()
            # last line of defence: a non-finite or behind-camera result keeps the initial pose
            bad = ~torch.isfinite(refined_poses).all(dim=(1, 2)) | (refined_poses[:, 2, 3] <= MIN_DEPTH_M)
            if bool(bad.any()):
                refined_poses = torch.where(bad[:, None, None], poses[okd], refined_poses)
                refined_status = torch.where(bad.cpu(), torch.tensor(int(RefineStatus.DIVERGED), dtype=torch.int8),
                                         refined_status)
            refined_trace = torch.where(torch.isfinite(refined_trace), refined_trace, poses[okd][None])
            refined_trace[0] = poses[okd]  # exactly the input (the refiner saw it orthonormalised in float32)
            keep = ((refined_status == int(RefineStatus.KEPT_INITIAL_WORSE)) |
                    (refined_status == int(RefineStatus.DIVERGED))).to(dev)
            refined_poses = torch.where(keep[:, None, None], poses[okd], refined_poses)  # kept poses: the input, bit for bit
            depth_only = (refined_status == int(RefineStatus.DEPTH_ONLY)).to(dev)
            if bool(depth_only.any()):  # their rotation too
                refined_poses[:, :3, :3] = torch.where(depth_only[:, None, None], poses[okd][:, :3, :3],
                                                   refined_poses[:, :3, :3])
            poses[okd] = refined_poses
            trace[:, okd] = refined_trace
            scores[okd] = result.scores.to(dev, dtype).nan_to_num(0.0).clamp(0, 1)
            status[ok] = refined_status.to(torch.int8)
            timings = result.timings
        total = time.perf_counter() - t0
        timings = RefineTimings(total_s=total, prepare_s=timings.prepare_s, features_s=timings.features_s,
                                render_s=timings.render_s,
                                terms_s=timings.terms_s, solve_s=timings.solve_s, accept_s=timings.accept_s)
        return RefineOutput(poses=poses, scores=scores, trace=trace, status=status.to(dev), timings=timings)

    @abstractmethod
    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        """Refine the valid objects of ``batch`` (M of them) for ``iterations`` iterations (>= 1).

        Returns a :class:`RefineOutput` over the M objects (poses, scores, trace ``[T+1, M, 4, 4]``, status with
        ``OK``, ``KEPT_INITIAL_WORSE``, ``DIVERGED`` or ``DEPTH_ONLY``, timings). The base class enforces the no-NaN
        guarantee, returns the input pose bit for bit for ``KEPT_INITIAL_WORSE`` / ``DIVERGED`` and the input
        rotation bit for bit for ``DEPTH_ONLY``.
        """
