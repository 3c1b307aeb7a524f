"""A tiny BOP dataset WITH depth for VSD tests: an asymmetric box (40.6 x 30.6 x 40 mm) facing the camera, front
face at z = 500 mm, f = 500 px (1 mm on the front face = 1 px); three images of the same GT scene whose depth is the
GT render (integer mm). With bop's pixel centres (j + 0.5, i + 0.5) the front face covers columns 60..99 and rows
45..74 (40 x 30 px); only the front face is visible."""

from __future__ import annotations

import math

import numpy as np

from iterpose.data import bop_writer as bw
from iterpose.metrics.vsd_eval import bop_depth_renderer

HX, HY, HZ = 20.3, 15.3, 20.0  # box half sizes, mm
W, H = 160, 120
K = np.array([[500.0, 0.0, 80.0], [0.0, 500.0, 60.0], [0.0, 0.0, 1.0]])
T_GT = np.array([0.0, 0.0, 520.0])  # front face (z = -HZ in the model) at 500 mm
DIAM = 2 * math.sqrt(HX**2 + HY**2 + HZ**2)


def _box_ply(path) -> None:
    v = [(x, y, z) for x in (-HX, HX) for y in (-HY, HY) for z in (-HZ, HZ)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [f for a, b, c, d in quads for f in ((a, b, c), (a, c, d))]
    lines = ["ply", "format ascii 1.0", f"element vertex {len(v)}", "property float x", "property float y",
             "property float z", f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    lines += [f"{x} {y} {z}" for x, y, z in v] + [f"3 {a} {b} {c}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


def make_depth_dataset(root):
    """Write the dataset under ``root`` (created); returns ``(root, depth_mm [H, W])``."""
    (root / "models_eval").mkdir(parents=True)
    _box_ply(root / "models_eval" / "obj_000001.ply")
    (root / "models_eval" / "models_info.json").write_text(f'{{"1": {{"diameter": {DIAM!r}}}}}')
    bw.save_camera(root / "camera.json", K, W, H, depth_scale=1.0)
    scene = root / "test" / "000001"
    (scene / "depth").mkdir(parents=True)
    render = bop_depth_renderer(root / "models_eval", [1])
    depth = render(1, np.eye(3)[None], T_GT[None], K[None], H, W)[0]
    ims = (0, 1, 2)
    for im in ims:
        bw.save_depth_mm(scene / "depth" / f"{im:06d}.png", depth)
    bw.save_scene_camera(scene / "scene_camera.json", {im: {"cam_K": K, "depth_scale": 1.0} for im in ims})
    bw.save_scene_gt(scene / "scene_gt.json",
                     {im: [{"obj_id": 1, "cam_R_m2c": np.eye(3), "cam_t_m2c": T_GT}] for im in ims})
    info = {"bbox_obj": [60, 45, 39, 29], "bbox_visib": [60, 45, 39, 29], "px_count_all": 1200,
            "px_count_valid": 1200, "px_count_visib": 1200, "visib_fract": 1.0}
    bw.save_scene_gt_info(scene / "scene_gt_info.json", {im: [info] for im in ims})
    bw.save_targets(root / "test_targets_bop19.json",
                    [{"scene_id": 1, "im_id": im, "obj_id": 1, "inst_count": 1} for im in ims])
    return root, depth


def write_csv(path, t_by_image) -> str:
    """Results CSV with one identity-rotation estimate per image, ``t_by_image {im_id: t_mm}``."""
    rows = ["scene_id,im_id,obj_id,score,R,t,time"]
    for im, t in t_by_image.items():
        rows.append(f"1,{im},1,1.0,1 0 0 0 1 0 0 0 1,{t[0]} {t[1]} {t[2]},-1")
    path.write_text("\n".join(rows))
    return path


__all__ = ["make_depth_dataset", "write_csv", "K", "T_GT", "DIAM", "W", "H"]
