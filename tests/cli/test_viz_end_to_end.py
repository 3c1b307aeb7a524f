"""``iterpose viz`` end to end: a BOP dataset and CSVs in, PNGs out whose contour pixels lie on the objects' outlines.

The expected outlines come from an independent render of the in-memory example object (``render_objects``) at the
poses written to the CSVs; the PNG is read back from disk. Each colour (results blue, initial red, GT green, RGB) must
appear only within 2 px of its own outline (outside the legend box) and trace most of that outline.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage

import iterpose.cli.main as cli_main
from iterpose.cli.main import main
from iterpose.data import BopDataset, ResultsTable, write_results_csv
from iterpose.data.synth import SynthConfig
from iterpose.data.synth_writer import write_synth_dataset
from iterpose.mesh import example_object
from iterpose.render import render_objects
from iterpose.viz import POSE_COLORS

H, W = 240, 320
K = (300.0, 0.0, 159.5, 0.0, 300.0, 119.5, 0.0, 0.0, 1.0)
# legend box of draw_contours: rows 4 .. 10 + 18 n, columns 4 .. 34 + 8 max(len(label)); kept clear below
LEGEND_ROWS, LEGEND_COLS = 10 + 18 * 3 + 1, 34 + 8 * 16 + 1


@pytest.fixture(autouse=True)
def _only_viz_verb(monkeypatch):
    monkeypatch.setattr(cli_main, "VERB_MODULES", ("viz",))


def _T(R: np.ndarray, t_m) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t_m
    return T


def _outline_band(mask: np.ndarray, px: int) -> np.ndarray:
    """Pixels within ``px`` of the silhouette's outline (inside or outside)."""
    return ndimage.binary_dilation(mask, iterations=px) & ~ndimage.binary_erosion(mask, iterations=px)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """One synthetic image; results 4 cm right of and initial poses 4 cm left of the centre, rotated differently,
    both in the lower half (clear of the legend)."""
    root = tmp_path_factory.mktemp("viz") / "tiny"
    cfg = SynthConfig(height=H, width=W, K=K, objects_per_image=(1, 1), distance_m=(0.6, 0.6), distractors=(0, 0),
                      occluders=(0, 0), margin_px=60.0)
    model = example_object(1)
    write_synth_dataset([model], root, 1, config=cfg, seed=1, progress=False, scene_id=1)
    gt = BopDataset(root).scene_gt(1)[0][0]
    T_gt = _T(np.asarray(gt.R), np.asarray(gt.t_mm) / 1000.0)
    c, s = np.cos(0.6), np.sin(0.6)
    R_res = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.asarray(gt.R)
    T_res = _T(R_res, [0.045, 0.035, 0.5])
    T_init = _T(np.asarray(gt.R), [-0.05, 0.04, 0.55])
    res_csv, init_csv = root.parent / "res_tiny-test.csv", root.parent / "init_tiny-test.csv"
    write_results_csv(res_csv, ResultsTable.from_T_co([1], [0], [1], [0.9], T_res[None], -1.0))
    write_results_csv(init_csv, ResultsTable.from_T_co([1], [0], [1], [0.9], T_init[None], -1.0))
    out = root.parent / "pictures"
    assert main(["viz", str(root), str(res_csv), "--out", str(out), "--init", str(init_csv)]) == 0
    png = out / "000001_000000.png"
    picture = cv2.cvtColor(cv2.imread(str(png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    T_all = torch.tensor(np.stack([T_res, T_init, T_gt]), dtype=torch.float32)
    masks = render_objects([model] * 3, T_all, torch.tensor(K).reshape(3, 3), H, W, shading=False).mask.numpy()
    return picture, dict(zip(("refined", "init", "gt"), masks))


@pytest.mark.parametrize("kind", ["refined", "init", "gt"])
def test_contour_pixels_lie_on_the_outline(drawn, kind):
    picture, masks = drawn
    assert picture.shape == (H, W, 3)
    mask = masks[kind]
    assert mask.sum() > 500
    colour = np.all(picture == np.array(POSE_COLORS[kind], np.uint8), axis=-1)
    colour[:LEGEND_ROWS, :LEGEND_COLS] = False
    assert colour.sum() > 60, f"no {kind} contour drawn"
    # every pixel of the colour is on this object's outline (2 px line, +1 for rasterisation differences) ...
    off = int((colour & ~_outline_band(mask, 3)).sum())
    assert off == 0, f"{off} {kind} pixels off the outline"
    # ... and the drawn contour follows most of the outline (outline pixels within 2 px of a drawn pixel)
    outline = mask & ~ndimage.binary_erosion(mask)
    outline[:LEGEND_ROWS, :LEGEND_COLS] = False
    near_drawn = ndimage.binary_dilation(colour, iterations=2)
    traced = int((outline & near_drawn).sum())
    assert traced >= 0.9 * outline.sum(), f"{kind} contour traces {traced} of {int(outline.sum())} outline pixels"


def test_the_poses_are_told_apart(drawn):
    """The three outlines are different (results and initial poses are not drawn at the GT, nor at each other)."""
    _, masks = drawn
    for a, b in (("refined", "init"), ("refined", "gt"), ("init", "gt")):
        inter = (masks[a] & masks[b]).sum()
        assert inter < 0.5 * min(masks[a].sum(), masks[b].sum()), (a, b)
