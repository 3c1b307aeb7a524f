"""The demo: perturb a pose, refine it with RGB-LM (and RePOSE when weights are at hand), print the errors
before and after, and draw pictures.

Two modes:

- synthetic (``make demo`` / ``iterpose demo``): the bundled example object rendered over a procedural
  background; nothing to download;
- a user's BOP data (``iterpose demo --dataset DIR --init CSV``): the estimates of one image refined and, where
  the dataset has ground truth, compared with it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from iterpose.data.backgrounds import fast_procedural_background
from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.data.units import mm_from_m
from iterpose.errors import InvalidInputError
from iterpose.geometry import look_at_T_co
from iterpose.mesh import example_object
from iterpose.metrics.batched import add_m, proj_px, re_deg, te_m
from iterpose.refiners import RefineStatus, RgbLM, RgbLMConfig
from iterpose.render import render_objects
from iterpose.viz import iteration_strip, refinement_overlay, save_png

__all__ = ["PoseErrors", "DemoResult", "DEMO_REFINER_CONFIG", "DEMO_PERTURBATION", "pose_errors", "make_demo_scene",
           "run_demo", "run_dataset_demo", "default_demo_weights"]

HEIGHT, WIDTH = 480, 640
K_DEMO = torch.tensor([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])

#: The synthetic object's vertex colours are exactly what the camera sees, so the demo switches the photometric
#: term on (its default weight is 0 because real LM-O colours do not match their models; see
#: benchmarks/RESULTS_rgb_lm.md) and gives it 20 iterations.
DEMO_REFINER_CONFIG = RgbLMConfig(iterations=20, weight_photometric=0.5)
#: Half of DeepIM's noise: RGB-LM, which needs no training, has a basin of about 5-10 degrees.
DEMO_PERTURBATION = PerturbConfig(rot_std_deg=5.0, trans_std_m=(0.005, 0.005, 0.02))


@dataclass(frozen=True)
class PoseErrors:
    """Errors of one pose against the ground truth.

    Attributes:
        add_mm: ADD, mean distance of corresponding model points, millimetres.
        add_rel_diameter: ADD divided by the object diameter (success below 0.1).
        proj2d_px: mean image distance of projected model points, pixels (success below 5).
        rot_deg: rotation error, degrees.
        trans_mm: translation error, millimetres.
    """

    add_mm: float
    add_rel_diameter: float
    proj2d_px: float
    rot_deg: float
    trans_mm: float


@dataclass(frozen=True)
class DemoResult:
    """What a demo measured and wrote.

    Attributes:
        errors: ``"init"`` and ``"refined"`` -> one :class:`PoseErrors` per object (empty without ground truth).
        overlay_png: path of the overlay picture (initial red, refined blue, ground truth green).
        strip_png: path of the per-iteration strip of the first object.
        seconds_per_object: wall time of the refine call divided by the number of objects.
        headline: one line saying what was refined (the object or the image) and how.
        object_names: a label per object, in the order of ``errors``' lists.
        status: the :class:`~iterpose.refiners.RefineStatus` name of each object.
    """

    errors: dict[str, list[PoseErrors]]
    overlay_png: Path
    strip_png: Path
    seconds_per_object: float
    headline: str = ""
    object_names: tuple = ()
    status: tuple = ()

    def format(self) -> str:
        """The demo's report as text (what ``iterpose demo`` prints): the headline, the error table (or a note
        without ground truth) and where the pictures are."""
        lines = [self.headline]
        if self.errors.get("init"):
            lines.append(f"{'object':<14}{'pose':<9}{'ADD mm':>9}{'ADD/d':>8}{'proj2D px':>11}{'rot deg':>9}"
                         f"{'trans mm':>10}")
            for k, name in enumerate(self.object_names):
                for which in ("init", "refined"):
                    e = self.errors[which][k]
                    lines.append(f"{name:<14}{which:<9}{e.add_mm:>9.2f}{e.add_rel_diameter:>8.3f}"
                                 f"{e.proj2d_px:>11.2f}{e.rot_deg:>9.2f}{e.trans_mm:>10.2f}")
        else:
            lines.append("no ground truth for this image: errors not computed")
        lines.append(f"pictures: {self.overlay_png} (red initial, blue refined, green ground truth) and "
                     f"{self.strip_png}")
        return "\n".join(lines)


def pose_errors(T_est: torch.Tensor, T_gt: torch.Tensor, K: torch.Tensor, points: torch.Tensor, diameter_m: float
                ) -> PoseErrors:
    """Errors of a single pose ``T_est [4, 4]`` against ``T_gt [4, 4]`` (metres) with model ``points [P, 3]``."""
    e, g = T_est[None].double(), T_gt[None].double()
    pts = points[None].double()
    add = float(add_m(e, g, pts)[0])
    return PoseErrors(
        add_mm=mm_from_m(add),
        add_rel_diameter=add / diameter_m,
        proj2d_px=float(proj_px(e, g, K.double(), pts)[0]),
        rot_deg=float(re_deg(e, g)[0]),
        trans_mm=mm_from_m(float(te_m(e, g)[0])),
    )


def make_demo_scene(seed: int = 0):
    """The example object at a random viewpoint 0.45 m away, rendered over a procedural background.

    Returns:
        ``(model, image [3, H, W] float 0..1, K [3, 3], T_gt [4, 4])``.
    """
    rng = np.random.default_rng(seed)
    model = example_object()
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    eye = torch.tensor(direction * 0.45, dtype=torch.float32)
    up = torch.tensor([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
    T_gt = look_at_T_co(eye, torch.zeros(3), up)
    render = render_objects([model], T_gt[None], K_DEMO, HEIGHT, WIDTH)
    background = torch.from_numpy(fast_procedural_background(HEIGHT, WIDTH, rng)).permute(2, 0, 1)
    image = torch.where(render.mask[0], render.rgb[0], background)
    image = (image + torch.from_numpy(rng.normal(0.0, 0.01, image.shape).astype(np.float32))).clamp(0, 1)
    return model, image, K_DEMO.clone(), T_gt


def _write_outputs(out_dir: Path, image, K, models, T_init, out, T_gt, errors) -> tuple[Path, Path]:
    overlay = save_png(out_dir / "overlay.png", refinement_overlay(image, K, models, T_init, out.poses, T_gt))
    strip = save_png(out_dir / "iterations.png", iteration_strip(image, K, models[0], out.trace[:, 0],
                                                                None if T_gt is None else T_gt[0]))
    report = {which: [asdict(e) for e in errs] for which, errs in errors.items()}
    report["status"] = [int(s) for s in out.status]
    report["scores"] = [float(s) for s in out.scores]
    (out_dir / "errors.json").write_text(json.dumps(report, indent=2))
    return overlay, strip


LEARNED_LABELS = {"repose": "RePOSE", "deepim": "DeepIM"}
"""Display names of the learned methods the demo can show."""


def default_demo_weights() -> list[Path]:
    """``weights/example-repose.pt`` and ``weights/example-deepim.pt`` of a source checkout (the folder next to
    ``src/``), those that exist."""
    root = Path(__file__).resolve().parents[2] / "weights"
    return [root / f"example-{m}.pt" for m in LEARNED_LABELS if (root / f"example-{m}.pt").is_file()]


def run_demo(out_dir: str | Path, seed: int = 0, method: str = "rgb-lm", weights: str | Path | None = None
             ) -> DemoResult:
    """Synthetic demo: perturb the example object's pose, refine it, write ``overlay.png``, ``iterations.png``
    and ``errors.json`` to ``out_dir``.

    Args:
        method: ``"rgb-lm"`` (:data:`DEMO_REFINER_CONFIG`), ``"repose"`` or ``"deepim"`` (need ``weights``, e.g.
            :func:`default_demo_weights`). The scene and the initial pose depend only on ``seed``, so two calls
            with the same seed compare the methods on the same problem.
    """
    out_dir = Path(out_dir)
    model, image, K, T_gt = make_demo_scene(seed)
    T_init = perturb_poses(T_gt[None], DEMO_PERTURBATION, torch.Generator().manual_seed(seed))
    if method == "rgb-lm":
        refiner = RgbLM({model.obj_id: model}, DEMO_REFINER_CONFIG)
        label = f"RGB-LM, {DEMO_REFINER_CONFIG.iterations} iterations"
    elif method in LEARNED_LABELS:
        from iterpose.refiners import load_refiner

        if weights is None:
            raise InvalidInputError(f"run_demo: method {method!r} needs weights (weights/example-{method}.pt of a "
                                    f"source checkout, or `iterpose train --method {method} --objects example`).")
        refiner = load_refiner(weights, {model.obj_id: model}, method=method)
        label = f"{LEARNED_LABELS[method]} ({Path(weights).name}), {refiner.default_iterations} iterations"
    else:
        raise InvalidInputError(f"run_demo: method must be 'rgb-lm', 'repose' or 'deepim', got {method!r}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    out = refiner.refine(image[None], K[None], torch.tensor([model.obj_id]), T_init, torch.tensor([0]))
    seconds = time.perf_counter() - start
    errors = {"init": [pose_errors(T_init[0], T_gt, K, model.vertices, model.diameter_m)],
              "refined": [pose_errors(out.poses[0], T_gt, K, model.vertices, model.diameter_m)]}
    overlay, strip = _write_outputs(out_dir, image, K, [model], T_init, out, T_gt[None], errors)
    headline = (f"example object: {model.num_vertices} vertices, diameter {mm_from_m(model.diameter_m):.1f} mm; "
                f"{label}, {seconds * 1000:.0f} ms")
    return DemoResult(errors=errors, overlay_png=overlay, strip_png=strip, seconds_per_object=seconds,
                      headline=headline, object_names=(model.name,),
                      status=tuple(RefineStatus(int(c)).name for c in out.status))


def run_dataset_demo(dataset_dir: str | Path, init_csv: str | Path, out_dir: str | Path, *,
                     im_id: int | None = None, split: str = "test") -> DemoResult:
    """The same demo on a user's BOP data: refine the estimates of one image (the first of ``init_csv`` unless
    ``im_id`` is given) with the default RGB-LM and compare with the ground truth when the dataset has it."""
    from iterpose.data.bop import BopDataset
    from iterpose.data.results_csv import read_results_csv
    from iterpose.data.units import Rt_mm_to_T_co
    from iterpose.errors import DataFormatError
    from iterpose.mesh import load_objects
    from iterpose.geometry.camera import bop_to_opencv_K
    from iterpose.refiners.dataset_refine import uses_bop_pixel_shift

    out_dir = Path(out_dir)
    dataset = BopDataset(dataset_dir, split=split)
    table = read_results_csv(init_csv)
    keep = ~table.placeholder_mask()
    if im_id is not None:
        keep &= table.im_id == im_id
    rows = np.nonzero(keep)[0]
    if len(rows) == 0:
        raise DataFormatError(f"{init_csv}: no usable estimate" + (f" for image {im_id}" if im_id is not None else ""))
    scene_id, im_id = int(table.scene_id[rows[0]]), int(table.im_id[rows[0]])
    rows = rows[(table.scene_id[rows] == scene_id) & (table.im_id[rows] == im_id)]
    obj_ids = [int(o) for o in table.obj_id[rows]]
    objects = load_objects(dataset.models_dir, obj_ids=sorted(set(obj_ids)))
    image = torch.from_numpy(dataset.load_rgb(scene_id, im_id)).permute(2, 0, 1).float() / 255.0
    K = torch.tensor(dataset.camera_K(scene_id, im_id), dtype=torch.float32)
    # as `iterpose refine` does; see refiners.dataset_refine
    K_refine = bop_to_opencv_K(K) if uses_bop_pixel_shift(dataset, scene_id) else K.clone()
    T_init = torch.from_numpy(Rt_mm_to_T_co(table.R[rows], table.t_mm[rows])).float()
    refiner = RgbLM(objects)
    start = time.perf_counter()
    out = refiner.refine(image[None], K_refine[None], torch.tensor(obj_ids), T_init,
                         torch.zeros(len(rows), dtype=torch.long))
    seconds = time.perf_counter() - start
    models = [objects[o] for o in obj_ids]
    gt_by_obj: dict[int, list[torch.Tensor]] = {}
    if dataset.has_scene_gt(scene_id):
        for g in dataset.scene_gt(scene_id).get(im_id, []):
            if not g.is_placeholder:
                gt_by_obj.setdefault(g.obj_id, []).append(torch.from_numpy(Rt_mm_to_T_co(g.R, g.t_mm)).float())
    errors: dict[str, list[PoseErrors]] = {"init": [], "refined": []}
    T_gt = None
    if all(o in gt_by_obj for o in obj_ids):
        # several instances of one object: compare each estimate with the GT instance nearest to its translation
        T_gt = torch.stack([min(gt_by_obj[o], key=lambda T: float((T[:3, 3] - T_init[k, :3, 3]).norm()))
                            for k, o in enumerate(obj_ids)])
        for k, m in enumerate(models):
            errors["init"].append(pose_errors(T_init[k], T_gt[k], K, m.vertices, m.diameter_m))
            errors["refined"].append(pose_errors(out.poses[k], T_gt[k], K, m.vertices, m.diameter_m))
    overlay, strip = _write_outputs(out_dir, image, K, models, T_init, out, T_gt, errors)
    status = tuple(RefineStatus(int(c)).name for c in out.status)
    headline = (f"scene {scene_id} image {im_id}: {len(rows)} estimates, RGB-LM {seconds / len(rows) * 1000:.0f} ms "
                f"per object; status: {list(status)}")
    return DemoResult(errors=errors, overlay_png=overlay, strip_png=strip, seconds_per_object=seconds / len(rows),
                      headline=headline, object_names=tuple(f"obj {o}" for o in obj_ids), status=status)
