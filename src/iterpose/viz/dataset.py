"""Overlay pictures for the images of a BOP dataset from results CSVs (used by ``iterpose viz``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from iterpose.data.bop import BopDataset
from iterpose.data.results_csv import ResultsTable, read_results_csv
from iterpose.data.units import Rt_mm_to_T_co
from iterpose.errors import DataFormatError
from iterpose.mesh.io import load_objects
from iterpose.viz.overlay import save_png
from iterpose.viz.refinement import PoseSet, pose_overlay

__all__ = ["draw_results"]


def _rows_of(table: ResultsTable, scene_id: int, im_id: int) -> np.ndarray:
    return np.nonzero((table.scene_id == scene_id) & (table.im_id == im_id))[0]


def draw_results(dataset_root: str | Path, results_csv: str | Path, out_dir: str | Path, *,
                 init_csv: str | Path | None = None, split: str = "test", draw_gt: bool = True,
                 max_images: int = 20, im_ids: Sequence[int] | None = None) -> list[Path]:
    """Write ``OUT/<scene>_<im>.png`` with contours of the results (blue), initial poses (red) and GT (green).

    Images are taken in the order of the results file; placeholder rows (t = 0) are not drawn.

    Returns:
        the written paths.
    """
    dataset = BopDataset(dataset_root, split=split)
    results = read_results_csv(results_csv)
    init = read_results_csv(init_csv) if init_csv is not None else None
    objects = load_objects(dataset.models_dir)
    for path, table in ((results_csv, results), (init_csv, init)):
        missing = [] if table is None else sorted(set(table.obj_id.tolist()) - set(objects))
        if missing:
            raise DataFormatError(f"{path}: object ids {missing} have no model in {dataset.models_dir}")
    keys = list(dict.fromkeys(zip(results.scene_id.tolist(), results.im_id.tolist())))
    if im_ids is not None:
        keys = [k for k in keys if k[1] in set(im_ids)]
    keys = keys[:max_images]
    written = []
    for scene_id, im_id in tqdm(keys, desc="viz", unit="image"):
        rows = _rows_of(results, scene_id, im_id)
        image = dataset.load_rgb(scene_id, im_id)
        K = torch.tensor(dataset.camera_K(scene_id, im_id), dtype=torch.float32)
        models = [objects[int(o)] for o in results.obj_id[rows]]
        sets = []
        if draw_gt and dataset.has_scene_gt(scene_id):
            gts = [g for g in dataset.scene_gt(scene_id).get(im_id, []) if not g.is_placeholder and g.obj_id in objects]
            if gts:
                T_gt = torch.from_numpy(np.stack([Rt_mm_to_T_co(g.R, g.t_mm) for g in gts])).float()
                sets.append(PoseSet([objects[g.obj_id] for g in gts], T_gt, "gt", "ground truth"))
        if init is not None:
            irows = _rows_of(init, scene_id, im_id)
            T_init = torch.from_numpy(Rt_mm_to_T_co(init.R[irows], init.t_mm[irows])).float()
            sets.append(PoseSet([objects[int(o)] for o in init.obj_id[irows]], T_init, "init", "initial"))
        T_res = torch.from_numpy(Rt_mm_to_T_co(results.R[rows], results.t_mm[rows])).float()
        sets.append(PoseSet(models, T_res, "refined", Path(results_csv).stem))
        picture = pose_overlay(image, K, sets)
        written.append(save_png(Path(out_dir) / f"{scene_id:06d}_{im_id:06d}.png", picture))
    return written
