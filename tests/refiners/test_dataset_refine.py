"""`refine_results` on a tiny synthetic BOP dataset: the BOP pixel shift of K and the DEPTH_ONLY rows."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from iterpose.data import BopDataset, ResultsTable
from iterpose.data.synth import SynthConfig
from iterpose.data.synth_writer import write_synth_dataset
from iterpose.mesh import example_object
from iterpose.refiners import RefineOutput, Refiner, RefineStatus, RefineTimings
from iterpose.refiners.dataset_refine import refine_results

K_SYNTH = (150.0, 0.0, 79.5, 0.0, 150.0, 59.5, 0.0, 0.0, 1.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``(dataset, init table)``: 2 images with one example object each, the GT poses as initial estimates."""
    root = tmp_path_factory.mktemp("dsrefine") / "tiny"
    cfg = SynthConfig(height=120, width=160, K=K_SYNTH, objects_per_image=(1, 1), distance_m=(0.5, 0.6),
                      distractors=(0, 0), occluders=(0, 0), margin_px=40.0)
    write_synth_dataset([example_object(1)], root, 2, config=cfg, seed=0, progress=False, scene_id=1)
    ds = BopDataset(root)
    T, iid = [], []
    for im in ds.image_ids(1):
        for inst in ds.scene_gt(1)[im]:
            T_co = np.eye(4)
            T_co[:3, :3] = np.asarray(inst.R)
            T_co[:3, 3] = np.asarray(inst.t_mm) / 1000
            T.append(T_co)
            iid.append(im)
    return ds, ResultsTable.from_T_co([1] * len(T), iid, [1] * len(T), [0.9] * len(T), np.stack(T), -1.0)


class _Recorder(Refiner):
    """Records the K it is given; moves every object 10 mm deeper and reports ``status``."""

    def __init__(self, status: RefineStatus):
        self.objects = {1: example_object(1)}
        self.default_iterations = 1
        self.status = status
        self.K: list[torch.Tensor] = []

    def _refine(self, batch, iterations):
        self.K.append(batch.K.clone())
        T = batch.init_poses.clone()
        T[:, 2, 3] += 0.01
        M = T.shape[0]
        return RefineOutput(poses=T, scores=torch.full((M,), 0.25), trace=torch.stack([batch.init_poses, T]),
                            status=torch.full((M,), int(self.status), dtype=torch.int8),
                            timings=RefineTimings(total_s=0.0))


@pytest.mark.parametrize("shift", [False, True, None])
def test_bop_pixel_shift_moves_the_principal_point(tiny, shift):
    """Explicit on/off; ``None`` is off here because the tiny dataset was written by iterpose's synth writer."""
    ds, init = tiny
    assert (ds.scene_dir(1) / ".synth").is_dir()
    ref = _Recorder(RefineStatus.OK)
    refine_results(ds, init, ref, progress=False, bop_pixel_shift=shift)
    K = ref.K[0][0]
    d = 0.5 if shift else 0.0
    assert float(K[0, 2]) == 79.5 - d and float(K[1, 2]) == 59.5 - d
    assert float(K[0, 0]) == 150.0 and float(K[1, 1]) == 150.0


def test_depth_only_rows_are_written_and_counted_as_refined(tiny):
    ds, init = tiny
    res = refine_results(ds, init, _Recorder(RefineStatus.DEPTH_ONLY), progress=False)
    assert res.status.tolist() == [int(RefineStatus.DEPTH_ONLY)] * 2
    assert res.summary.refined == 2 and res.summary.kept_initial == 0 and res.summary.passed_through == 0
    assert res.summary.status_counts == {"DEPTH_ONLY": 2}
    assert np.allclose(res.table.t_mm[:, 2] - init.t_mm[:, 2], 10.0, atol=1e-3)
    assert np.array_equal(res.table.score, [0.25, 0.25])


def test_depth_only_status_went_through_the_refiner():
    S = RefineStatus
    assert S.DEPTH_ONLY.went_through and not S.DEPTH_ONLY.is_invalid_init
    assert [s.is_invalid_init for s in S] == [False, False, False, True, True, True, True, True, False]
    assert int(S.DEPTH_ONLY) == 8 and int(S.INVALID_INIT_NOT_ROTATION) == 7  # old codes keep their values


def test_bop_pixel_shift_defaults_to_on_for_other_bop_datasets(tiny, tmp_path):
    ds, init = tiny
    root = tmp_path / "bop"
    shutil.copytree(ds.root, root)
    shutil.rmtree(root / "test" / "000001" / ".synth")
    ref = _Recorder(RefineStatus.OK)
    refine_results(BopDataset(root), init, ref, progress=False)
    assert float(ref.K[0][0, 0, 2]) == 79.0 and float(ref.K[0][0, 1, 2]) == 59.0
