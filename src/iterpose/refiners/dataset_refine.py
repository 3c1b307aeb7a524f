"""Refining every estimate of a BOP results table on a BOP dataset (what ``iterpose refine`` does).

One :meth:`Refiner.refine` call per image, with all estimates of that image together (so occlusion handling
sees them). Output rows are the input rows in the same order, with:

- ``R``, ``t``: the refined pose for status ``OK`` and ``DEPTH_ONLY``; otherwise the input values, bit for bit;
- ``score``: the refiner's score (0..1) for every row that went through the refiner (``OK``,
  ``KEPT_INITIAL_WORSE``, ``DIVERGED``: the fit of the pose written); rows passed through (``INVALID_INIT_*``,
  e.g. the ``t = 0`` placeholders) keep their input score. BOP keeps the top ``inst_count`` estimates per
  (image, object) by score, so the refiner's fit decides among hypotheses of the same object;
- ``time``: wall-clock seconds of that image's refine call (the same on all its rows).

Bad input (objects without a model, missing images, ``K`` that does not fit the image size) is checked before any
work and raises an :class:`~iterpose.errors.IterposeError`. An unexpected failure while refining one image is
logged, that image's rows are written unchanged, and the summary counts it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from tqdm import tqdm

from iterpose.data.bop import BopDataset
from iterpose.data.results_csv import ResultsTable
from iterpose.data.units import mm_from_m
from iterpose.errors import CameraError, InvalidInputError, IterposeError
from iterpose.geometry.camera import bop_to_opencv_K, principal_point_in_image
from iterpose.refiners.base import RefineOutput, Refiner, RefineStatus

__all__ = ["DatasetRefineSummary", "DatasetRefineResult", "RefinedImage", "refine_results", "check_refine_inputs",
           "uses_bop_pixel_shift", "FAILED_IMAGE_STATUS"]

_log = logging.getLogger("iterpose.refine")

#: What a refine call may raise on one hard image (torch and linear-algebra failures are RuntimeError / ValueError,
#: OpenCV's distance transforms raise cv2.error); anything else (a TypeError, an AttributeError) is a bug and stops
#: the run.
_IMAGE_FAILURES = (RuntimeError, ValueError, ArithmeticError, IndexError, MemoryError, cv2.error)

FAILED_IMAGE_STATUS = -1
"""Status code in :attr:`DatasetRefineResult.status` of rows whose image failed (written unchanged)."""


@dataclass(frozen=True)
class DatasetRefineSummary:
    """Counts of one :func:`refine_results` run.

    Attributes:
        n_rows, n_images: rows and images of the input table.
        refined: rows with status OK or DEPTH_ONLY. kept_initial: KEPT_INITIAL_WORSE or DIVERGED (initial pose written).
        passed_through: rows with an invalid initial pose (e.g. t = 0 placeholders), written unchanged.
        failed_images, failed_rows: images whose refine call failed (rows written unchanged).
        status_counts: ``{status name: rows}``.
        total_s: wall time. refine_s: sum of the per-image refine times.
        objects_refined: objects that went through the refiner (not passed through, not failed).
    """

    n_rows: int
    n_images: int
    refined: int
    kept_initial: int
    passed_through: int
    failed_images: int
    failed_rows: int
    status_counts: dict = field(default_factory=dict)
    total_s: float = 0.0
    refine_s: float = 0.0
    objects_refined: int = 0

    def format(self) -> str:
        """One-paragraph human summary."""
        per_obj = self.refine_s / self.objects_refined * 1000 if self.objects_refined else float("nan")
        return (f"{self.n_rows} estimates in {self.n_images} images: {self.refined} refined, {self.kept_initial} "
                f"kept initial (refined pose not better or diverged), {self.passed_through} passed through (invalid "
                f"initial pose), {self.failed_rows} in {self.failed_images} failed images written unchanged; "
                f"{self.total_s:.1f} s total, {per_obj:.0f} ms per refined object")


@dataclass(frozen=True, eq=False)
class DatasetRefineResult:
    """Output of :func:`refine_results`.

    Attributes:
        table: the refined :class:`ResultsTable`, rows in input order.
        status: ``[N]`` int8 :class:`RefineStatus` codes per row (:data:`FAILED_IMAGE_STATUS` for failed images).
        summary: :class:`DatasetRefineSummary`.
        failures: ``((scene_id, im_id, message), ...)`` of failed images.
        per_image_s: ``{(scene_id, im_id): seconds}`` of each refine call.
    """

    table: ResultsTable
    status: np.ndarray
    summary: DatasetRefineSummary
    failures: tuple
    per_image_s: dict


@dataclass(frozen=True, eq=False)
class RefinedImage:
    """One image's refine call, handed to the ``on_image`` callback of :func:`refine_results` (e.g. the CLI's
    ``--viz`` overlay writer).

    Attributes:
        scene_id, im_id: the image.
        image: ``[3, H, W]`` float32 RGB in 0..1, on the refine device.
        K: ``[3, 3]`` float32 intrinsics the refiner used (BOP pixel shift applied when it was on).
        object_ids: ``[n]`` int64 object ids of the image's estimates, in table order.
        T_init: ``[n, 4, 4]`` float32 initial poses ``T_co`` (m).
        output: the refiner's :class:`~iterpose.refiners.base.RefineOutput` for these estimates.
    """

    scene_id: int
    im_id: int
    image: torch.Tensor
    K: torch.Tensor
    object_ids: torch.Tensor
    T_init: torch.Tensor
    output: RefineOutput


def _image_groups(init: ResultsTable) -> list[tuple[int, int, np.ndarray]]:
    keys = np.stack([init.scene_id, init.im_id], axis=1)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (s, m) in enumerate(keys.tolist()):
        groups.setdefault((s, m), []).append(i)
    return [(s, m, np.array(rows)) for (s, m), rows in groups.items()]


def check_refine_inputs(dataset: BopDataset, init: ResultsTable, object_ids, what: str = "results table") -> None:
    """Raise a clear :class:`~iterpose.errors.IterposeError` before any work when the table names objects without
    a model, images that are missing, or images whose ``K`` does not fit the dataset's image size."""
    known = set(int(i) for i in object_ids)
    unknown = sorted(set(init.obj_id.tolist()) - known)
    if unknown:
        first = int(np.nonzero(np.isin(init.obj_id, unknown))[0][0])
        raise InvalidInputError(f"{what} names objects {unknown} (first at data row {first + 1}: scene "
                                f"{int(init.scene_id[first])}, image {int(init.im_id[first])}) but there is no model "
                                f"for them (models: {sorted(known)}); use the dataset the estimates were made for.")
    width, height = dataset.image_size
    for s, m, rows in _image_groups(init):
        dataset.rgb_path(s, m)  # MissingFileError naming the scene, image and folder
        K = dataset.camera_K(s, m)
        if not principal_point_in_image(K, width, height):
            raise CameraError(f"scene {s} image {m}: K has principal point ({K[0, 2]:.1f}, {K[1, 2]:.1f}) outside "
                              f"the {width}x{height} images of {dataset.root}; scene_camera.json does not match the "
                              f"image size.")


def refine_results(dataset: BopDataset, init: ResultsTable, refiner: Refiner, *, device: str | torch.device = "cpu",
                   iterations: int | None = None, progress: bool = True,
                   on_image: Callable[[RefinedImage], None] | None = None,
                   bop_pixel_shift: bool | None = None) -> DatasetRefineResult:
    """Refine every row of ``init`` on the images of ``dataset`` (see the module docstring for the output).

    Args:
        dataset: the BOP dataset (images, ``scene_camera.json``).
        init: initial estimates (BOP results table, mm).
        refiner: any :class:`Refiner` whose objects cover ``init``'s object ids.
        device: torch device for images and poses.
        iterations: override of the refiner's default.
        progress: tqdm bar on stderr.
        on_image: called with a :class:`RefinedImage` after each successful refine call (the CLI writes its
            ``--viz`` overlays there); not called for failed images.
        bop_pixel_shift: refine with ``cx, cy`` of ``scene_camera.json`` shifted by -0.5 px, i.e. with BOP's
            pixel-centre convention (centre of pixel (i, j) at (j + 0.5, i + 0.5)) translated into the OpenCV
            convention that the refiners use. The poses are not changed by the shift, only how they project.
            ``None`` (default): on for BOP datasets, off for scenes written by :mod:`iterpose.data.synth_writer`
            (they have a ``.synth`` folder and were rendered with OpenCV's convention). Measured on LM-O: started
            from the ground truth, RGB-LM's mean horizontal drift of the object centre goes from -0.42 px to
            -0.07 px with the shift (``benchmarks/RESULTS_rgb_lm.md``).
    """
    t_start = time.perf_counter()
    check_refine_inputs(dataset, init, refiner.objects.keys())
    device = torch.device(device)
    width, height = dataset.image_size
    n = len(init)
    R_out = np.array(init.R, dtype=np.float64, copy=True)
    t_out = np.array(init.t_mm, dtype=np.float64, copy=True)
    score_out = np.array(init.score, dtype=np.float64, copy=True)
    time_out = np.array(init.time_s, dtype=np.float64, copy=True)
    status = np.full(n, FAILED_IMAGE_STATUS, dtype=np.int8)
    T_all = init.T_co()
    failures: list[tuple[int, int, str]] = []
    per_image: dict[tuple[int, int], float] = {}
    groups = _image_groups(init)
    for s, m, rows in tqdm(groups, desc="refine", unit="img", disable=not progress):
        rgb = dataset.load_rgb(s, m)
        if rgb.shape[:2] != (height, width):
            raise CameraError(f"scene {s} image {m}: image is {rgb.shape[1]}x{rgb.shape[0]} but the dataset's camera "
                              f"is {width}x{height} ({dataset.rgb_path(s, m)}); K does not match the image size.")
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(device, torch.float32) / 255.0
        K_np = np.array(dataset.camera_K(s, m), dtype=np.float64, copy=True)
        if uses_bop_pixel_shift(dataset, s, bop_pixel_shift):
            K_np = bop_to_opencv_K(K_np)
        K = torch.tensor(K_np, dtype=torch.float32, device=device)[None]
        T0 = torch.tensor(T_all[rows], dtype=torch.float32, device=device)
        ids = torch.tensor(init.obj_id[rows], dtype=torch.int64)
        t0 = time.perf_counter()
        try:
            out = refiner.refine(image, K, ids, T0, torch.zeros(len(rows), dtype=torch.int64),
                                 iterations=iterations)
        except IterposeError:
            raise
        except _IMAGE_FAILURES as exc:  # one image's numerical failure must not lose the others
            msg = f"{type(exc).__name__}: {exc}"
            _log.warning("refine: scene %d image %d failed (%s); its %d initial poses are written unchanged",
                         s, m, msg, len(rows))
            failures.append((s, m, msg))
            continue
        dt = time.perf_counter() - t0
        per_image[(s, m)] = dt
        st = out.status.cpu().numpy().astype(np.int8)
        status[rows] = st
        ok = np.isin(st, [int(RefineStatus.OK), int(RefineStatus.DEPTH_ONLY)])
        went = np.array([RefineStatus(int(c)).went_through for c in st.tolist()], dtype=bool)
        P = out.poses.detach().cpu().double().numpy()
        R_out[rows[ok]] = P[ok, :3, :3]
        t_out[rows[ok]] = mm_from_m(P[ok, :3, 3])
        score_out[rows[went]] = out.scores.detach().cpu().double().numpy()[went]
        time_out[rows] = dt
        if on_image is not None:
            on_image(RefinedImage(scene_id=s, im_id=m, image=image[0], K=K[0], object_ids=ids, T_init=T0, output=out))
    table = ResultsTable(init.scene_id, init.im_id, init.obj_id, score_out, R_out, t_out, time_out)
    counts = Counter(RefineStatus(int(c)).name if c >= 0 else "FAILED_IMAGE" for c in status.tolist())
    refined = int(np.isin(status, [int(RefineStatus.OK), int(RefineStatus.DEPTH_ONLY)]).sum())
    kept = int(np.isin(status, [int(RefineStatus.KEPT_INITIAL_WORSE), int(RefineStatus.DIVERGED)]).sum())
    passed = int(np.isin(status, [int(c) for c in RefineStatus if c.is_invalid_init]).sum())
    failed_rows = int((status == FAILED_IMAGE_STATUS).sum())
    summary = DatasetRefineSummary(
        n_rows=n, n_images=len(groups), refined=refined, kept_initial=kept, passed_through=passed,
        failed_images=len(failures), failed_rows=failed_rows, status_counts=dict(counts),
        total_s=time.perf_counter() - t_start, refine_s=float(sum(per_image.values())),
        objects_refined=refined + kept)
    return DatasetRefineResult(table=table, status=status, summary=summary, failures=tuple(failures),
                               per_image_s=per_image)


def uses_bop_pixel_shift(dataset: BopDataset, scene_id: int, requested: bool | None = None) -> bool:
    """Whether to refine this scene with ``cx, cy`` shifted by -0.5 px (see :func:`refine_results`): ``requested``
    when given, else True unless the scene was written by iterpose's synthetic writer (a ``.synth`` folder)."""
    if requested is not None:
        return bool(requested)
    return not (dataset.scene_dir(scene_id) / ".synth").is_dir()

