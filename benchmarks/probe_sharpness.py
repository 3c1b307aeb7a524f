"""Does a refiner's depth on the real LM-O images depend on how sharp they are? Refines the dev images blurred or
sharpened at test time, and reports ADD(-S)@0.1d, Proj@5px and the signed depth bias.

Usage::

    PYTHONPATH=src python benchmarks/probe_sharpness.py [--method deepim] [--weights weights/lmo-deepim.pt] \
        [--filters none blur:0.7 blur:1.2 sharpen:1.0] [--init kpt perturbed] [--threads 2] [--tag T]

From the keypoint estimator's poses both DeepIM and RGB-LM end about 0.4 % farther than the ground truth
(`diagnose_pose_errors.py`, column "z %"), which they do not do on synthetic scenes. Real images are blurred by
the camera and the renders are not; if that is what the network reads as size, the bias moves with the image's
sharpness. Filters: ``blur:S`` is a Gaussian blur of standard deviation S px, ``sharpen:S`` an unsharp mask (the
image plus its difference from that blur). The refined CSVs go to ``--work-dir``; the depth bias is the median of
(z_est − z_gt) / z_gt over the estimates within 30° of their ground truth. Writes
``benchmarks/results/sharpness_probe[_<tag>].json``. Needs ../shared/data/lmo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import DATA, _report, parse_probe_args, write_result_json  # noqa: E402
from diagnose_pose_errors import summarise, pose_errors  # noqa: E402

import iterpose  # noqa: E402
from iterpose.data import BopDataset, read_results_csv, write_results_csv  # noqa: E402
from iterpose.refiners import make_refiner  # noqa: E402
from iterpose.refiners.dataset_refine import refine_results  # noqa: E402


def apply_filter(image: np.ndarray, spec: str) -> np.ndarray:
    """``image`` uint8 ``[H, W, 3]`` filtered by ``spec`` (``none``, ``blur:S`` or ``sharpen:S``, S in px)."""
    if spec == "none":
        return image
    kind, _, sigma = spec.partition(":")
    if kind not in ("blur", "sharpen") or not sigma:
        raise SystemExit(f"--filters: expected none, blur:S or sharpen:S, got {spec!r}")
    im = image.astype(np.float32)
    blurred = cv2.GaussianBlur(im, (0, 0), float(sigma))
    out = blurred if kind == "blur" else 2 * im - blurred
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class FilteredDataset(BopDataset):
    """A :class:`BopDataset` whose RGB images come through :func:`apply_filter` with the class's ``spec`` (a
    class attribute: datasets are read-only; :func:`filtered_dataset` makes one per filter)."""

    spec = "none"

    def load_rgb(self, scene_id: int, im_id: int) -> np.ndarray:
        return apply_filter(super().load_rgb(scene_id, im_id), self.spec)


def filtered_dataset(root: Path, spec: str) -> FilteredDataset:
    return type("FilteredDataset", (FilteredDataset,), {"spec": spec})(root)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", default="deepim")
    p.add_argument("--weights", type=Path, nargs="+", default=[Path("weights/lmo-deepim.pt")])
    p.add_argument("--filters", nargs="+", default=["none", "blur:0.7", "blur:1.2", "sharpen:1.0"])
    p.add_argument("--init", nargs="+", default=["kpt", "perturbed"])
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/iterpose_sharpness"))
    args, lmo = parse_probe_args(p)
    if lmo is None:
        return 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    objects = iterpose.load_objects(lmo / "models")
    weights = None if args.method == "rgb-lm" else args.weights
    refiner = make_refiner(args.method, objects, weights=weights)
    out: dict = {"method": args.method, "weights": None if weights is None else [str(w) for w in weights],
                 "filters": {}}
    for spec in args.filters:
        ds = filtered_dataset(lmo, spec)
        rows = out["filters"][spec] = {}
        for init_name in args.init:
            init = read_results_csv(DATA / "lmo-init" / f"{init_name}_lmo-test.csv")
            res = refine_results(ds, init, refiner, progress=False)
            csv = args.work_dir / f"{spec.replace(':', '_')}_{init_name}.csv"
            write_results_csv(csv, res.table)
            recall = _report(ds, res.table, None)["recall"]
            bias = summarise(pose_errors(ds, csv))["all"]["z_rel_pct_median_within_30deg"]
            rows[init_name] = {"ad_0.1d": recall["ad_0.1d"], "proj_5px": recall["proj_5px"],
                               "z_rel_pct_median_within_30deg": bias}
            print(f"{spec:>12} {init_name:>9}: ADD(-S)@0.1d {recall['ad_0.1d']:.4f}  Proj@5px "
                  f"{recall['proj_5px']:.4f}  depth bias {bias:+.2f} %", flush=True)
    write_result_json("sharpness_probe", args.tag, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
