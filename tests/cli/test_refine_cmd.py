"""`iterpose refine`: same rows in the same order, placeholders unchanged, clear errors and no partial output."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

import iterpose.cli.main as cli_main
from iterpose.cli.main import main
from iterpose.data import BopDataset, ResultsTable, read_results_csv, write_results_csv
from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.data.synth import SynthConfig
from iterpose.data.synth_writer import write_synth_dataset
from iterpose.mesh import example_object
from iterpose.refiners import RefineOutput, Refiner, RefineTimings
from iterpose.refiners.dataset_refine import FAILED_IMAGE_STATUS, refine_results


@pytest.fixture(autouse=True)
def _only_refine_verb(monkeypatch):
    monkeypatch.setattr(cli_main, "VERB_MODULES", ("refine",))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-image synthetic BOP dataset of the example object and an init CSV: perturbed GT rows, plus a t = 0
    placeholder row in the middle."""
    root = tmp_path_factory.mktemp("refine") / "tiny"
    cfg = SynthConfig(height=120, width=160, K=(150.0, 0.0, 79.5, 0.0, 150.0, 59.5, 0.0, 0.0, 1.0),
                      objects_per_image=(1, 1), distance_m=(0.5, 0.6), distractors=(0, 0), occluders=(0, 0),
                      margin_px=40.0)
    write_synth_dataset([example_object(1)], root, 2, config=cfg, seed=0, progress=False, scene_id=1)
    ds = BopDataset(root)
    rows_T, sid, iid = [], [], []
    gen = torch.Generator().manual_seed(0)
    for im in ds.image_ids(1):
        for inst in ds.scene_gt(1)[im]:
            T = torch.tensor(np.asarray(inst.R), dtype=torch.float64)
            T_co = torch.eye(4, dtype=torch.float64)
            T_co[:3, :3] = T
            T_co[:3, 3] = torch.tensor(np.asarray(inst.t_mm)) / 1000
            rows_T.append(perturb_poses(T_co[None], PerturbConfig(3.0, (0.003, 0.003, 0.01)), gen)[0].numpy())
            sid.append(1)
            iid.append(im)
    T = np.stack(rows_T)
    placeholder = np.eye(4)[None].copy()
    T = np.concatenate([T[:1], placeholder, T[1:]])
    sid.insert(1, 1)
    iid.insert(1, iid[0])
    n = len(T)
    table = ResultsTable.from_T_co(sid, iid, [1] * n, [0.9] + [0.0] + [0.8] * (n - 2), T, -1.0)
    init = root.parent / "init_tiny-test.csv"
    write_results_csv(init, table)
    return root, init


def test_refine_writes_same_rows(tiny, tmp_path, capsys):
    root, init = tiny
    out = tmp_path / "rgblm_tiny-test.csv"
    viz = tmp_path / "viz"
    threads = (torch.get_num_threads(), numba.get_num_threads())
    try:
        assert main(["refine", str(root), str(init), "--out", str(out), "--no-progress", "--iterations", "4",
                     "--threads", "1", "--viz", str(viz)]) == 0
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    finally:  # --threads changes process-wide settings: restore them for the other tests
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
    assert sorted(p.name for p in viz.iterdir()) == ["000001_000000.png", "000001_000001.png"]
    a, b = read_results_csv(init), read_results_csv(out)
    assert len(b) == len(a) == 3
    assert b.scene_id.tolist() == a.scene_id.tolist() and b.im_id.tolist() == a.im_id.tolist()
    assert b.obj_id.tolist() == a.obj_id.tolist()
    # the placeholder row is unchanged, score included
    assert b.placeholder_mask().tolist() == [False, True, False]
    # refined rows: a rotation, a score in 0..1, one time per image (>= 0)
    for i in (0, 2):
        assert np.allclose(b.R[i] @ b.R[i].T, np.eye(3), atol=1e-5)
        assert 0.0 <= b.score[i] <= 1.0 and b.time_s[i] > 0
    assert b.time_s[0] == b.time_s[1]  # same image, same time
    text = capsys.readouterr().out
    assert "2 refined" in text or "1 refined" in text
    assert "1 passed through" in text


def test_unknown_object_is_an_error_and_no_output(tiny, tmp_path, capsys):
    root, init = tiny
    a = read_results_csv(init)
    bad = ResultsTable(a.scene_id, a.im_id, np.where(np.arange(len(a)) == 2, 42, a.obj_id), a.score, a.R, a.t_mm,
                       a.time_s)
    bad_csv = tmp_path / "bad_tiny-test.csv"
    write_results_csv(bad_csv, bad)
    out = tmp_path / "out.csv"
    assert main(["refine", str(root), str(bad_csv), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "objects [42]" in err and "data row 3" in err and "no model" in err
    assert not out.exists()


def test_missing_image_is_an_error_and_no_output(tiny, tmp_path, capsys):
    root, init = tiny
    a = read_results_csv(init)
    bad = ResultsTable(a.scene_id, np.where(np.arange(len(a)) == 0, 77, a.im_id), a.obj_id, a.score, a.R, a.t_mm,
                       a.time_s)
    bad_csv = tmp_path / "bad_tiny-test.csv"
    write_results_csv(bad_csv, bad)
    out = tmp_path / "out.csv"
    assert main(["refine", str(root), str(bad_csv), "--out", str(out), "--no-progress"]) == 2
    assert "77" in capsys.readouterr().err
    assert not out.exists()


def test_learned_methods_need_weights_and_rgb_lm_takes_none(tiny, tmp_path, capsys):
    root, init = tiny
    out = tmp_path / "out.csv"
    assert main(["refine", str(root), str(init), "--out", str(out), "--method", "repose"]) == 2
    assert "needs weights" in capsys.readouterr().err
    assert main(["refine", str(root), str(init), "--out", str(out), "--method", "deepim"]) == 2
    assert "needs weights" in capsys.readouterr().err
    assert main(["refine", str(root), str(init), "--out", str(out), "--weights", "x.pt"]) == 2
    assert "takes no weights" in capsys.readouterr().err
    assert not out.exists()


class _FailingOnImage(Refiner):
    """Moves every object 1 mm along x, except that it raises on the image with ``fail_im``."""

    def __init__(self, objects, fail_im: int):
        self.objects = objects
        self.default_iterations = 1
        self.fail_im = fail_im
        self.calls = 0

    def _refine(self, batch, iterations):
        self.calls += 1
        if self.calls == self.fail_im + 1:
            raise RuntimeError("simulated crash")
        T = batch.init_poses.clone()
        T[:, 0, 3] += 0.001
        M = T.shape[0]
        return RefineOutput(poses=T, scores=torch.full((M,), 0.5), trace=torch.stack([batch.init_poses, T]),
                            status=torch.zeros(M, dtype=torch.int8), timings=RefineTimings(total_s=0.0))


def test_a_failing_image_is_logged_and_written_unchanged(tiny, caplog):
    root, init = tiny
    a = read_results_csv(init)
    ref = _FailingOnImage({1: example_object(1)}, fail_im=0)
    with caplog.at_level("WARNING", logger="iterpose.refine"):
        res = refine_results(BopDataset(root), a, ref, progress=False)
    assert res.summary.failed_images == 1 and res.summary.failed_rows == 2 and res.summary.refined == 1
    assert "simulated crash" in caplog.text and len(res.failures) == 1
    assert res.status.tolist() == [FAILED_IMAGE_STATUS, FAILED_IMAGE_STATUS, 0]
    t = res.table
    assert np.array_equal(t.R[:2], a.R[:2]) and np.array_equal(t.t_mm[:2], a.t_mm[:2])
    assert np.array_equal(t.score[:2], a.score[:2]) and np.array_equal(t.time_s[:2], a.time_s[:2])
    assert abs(t.t_mm[2, 0] - a.t_mm[2, 0] - 1.0) < 1e-3 and t.score[2] == 0.5


def test_output_folder_is_created(tiny, tmp_path):
    root, init = tiny
    out = tmp_path / "new" / "deeper" / "out.csv"
    assert main(["refine", str(root), str(init), "--out", str(out), "--iterations", "1", "--no-progress"]) == 0
    assert out.is_file()


def test_refine_with_repose_weights(tiny, tmp_path, capsys):
    """`--method repose --weights`: the weights' registry is checked against the dataset's models, every row is
    written, the placeholder is passed through; weights for other meshes are one error and no output file."""
    from iterpose.mesh import load_objects
    from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
    from iterpose.refiners.repose import ReposeConfig, ReposeRefiner, build_repose_net

    root, init = tiny
    models = load_objects(root / "models")
    cfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=2)
    weights = tmp_path / "w.pt"
    save_checkpoint_atomic(ReposeRefiner(build_repose_net(models, cfg)).checkpoint(object_registry(models)), weights)
    out = tmp_path / "out.csv"
    assert main(["refine", str(root), str(init), "--out", str(out), "--method", "repose", "--weights", str(weights),
                 "--no-progress"]) == 0
    a, b = read_results_csv(init), read_results_csv(out)
    assert np.array_equal(a.im_id, b.im_id) and np.array_equal(a.obj_id, b.obj_id)
    assert np.array_equal(b.t_mm[1], a.t_mm[1])  # the t = 0 placeholder, unchanged
    other = {1: example_object(1)}
    other[1] = type(other[1])(**{**other[1].__dict__, "vertices": other[1].vertices * 1.01})
    bad = tmp_path / "other.pt"
    save_checkpoint_atomic(ReposeRefiner(build_repose_net(other, cfg)).checkpoint(object_registry(other)), bad)
    out2 = tmp_path / "out2.csv"
    capsys.readouterr()
    assert main(["refine", str(root), str(init), "--out", str(out2), "--method", "repose", "--weights", str(bad),
                 "--no-progress"]) == 2
    assert "meshes of objects [1] differ" in capsys.readouterr().err and not out2.exists()


def test_refine_with_deepim_and_the_cascade(tiny, tmp_path, capsys):
    """`--method deepim` and `--method deepim+repose` (two weights files, any order) write every row; DeepIM
    weights given to `--method repose` are one error naming both methods and no output."""
    from iterpose.mesh import load_objects
    from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
    from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model
    from iterpose.refiners.repose import ReposeConfig, ReposeRefiner, build_repose_net

    root, init = tiny
    models = load_objects(root / "models")
    d, r = tmp_path / "d.pt", tmp_path / "r.pt"
    dcfg = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2)
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model(models, dcfg)).checkpoint(object_registry(models)), d)
    rcfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=2)
    save_checkpoint_atomic(ReposeRefiner(build_repose_net(models, rcfg)).checkpoint(object_registry(models)), r)
    a = read_results_csv(init)
    for method, weights in (("deepim", [d]), ("deepim+repose", [r, d])):
        out = tmp_path / f"{method}.csv"
        argv = ["refine", str(root), str(init), "--out", str(out), "--method", method, "--no-progress"]
        for w in weights:
            argv += ["--weights", str(w)]
        assert main(argv) == 0, capsys.readouterr().err
        b = read_results_csv(out)
        assert np.array_equal(a.im_id, b.im_id) and np.array_equal(a.obj_id, b.obj_id)
    bad_out = tmp_path / "bad.csv"
    capsys.readouterr()
    assert main(["refine", str(root), str(init), "--out", str(bad_out), "--method", "repose", "--weights", str(d),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'deepim' model, but method 'repose'" in err and not bad_out.exists()


def test_refine_with_hypotheses_and_bad_hypothesis_options(tiny, tmp_path, capsys):
    root, init = tiny
    out = tmp_path / "hyp.csv"
    assert main(["refine", str(root), str(init), "--out", str(out), "--iterations", "2", "--hypotheses", "3",
                 "--hypothesis-angle", "15", "--no-progress"]) == 0
    a, b = read_results_csv(init), read_results_csv(out)
    assert len(b) == len(a) and b.placeholder_mask().tolist() == [False, True, False]
    for i in (0, 2):
        assert np.allclose(b.R[i] @ b.R[i].T, np.eye(3), atol=1e-5) and 0.0 <= b.score[i] <= 1.0
    capsys.readouterr()
    for flags, message in ((["--hypotheses", "0"], "--hypotheses must be >= 1"),
                           (["--hypotheses", "3", "--hypothesis-angle", "0"], "--hypothesis-angle must be in")):
        bad = tmp_path / "bad.csv"
        assert main(["refine", str(root), str(init), "--out", str(bad), "--no-progress", *flags]) == 2
        assert message in capsys.readouterr().err and not bad.exists()


def _scorer_file(models, path):
    """An untrained pose scorer's weights file for ``models`` (tiny network)."""
    from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
    from iterpose.refiners.scorer import PoseScorer, ScorerConfig, build_scorer_model

    cfg = ScorerConfig(crop_size=32, trunk="scratch", trunk_blocks=4, head_width=16, render_cell_rel=0.06)
    save_checkpoint_atomic(PoseScorer(build_scorer_model(models, cfg)).checkpoint(object_registry(models)), path)
    return path


def test_refine_with_a_scorer_chooses_among_hypotheses(tiny, tmp_path, capsys, monkeypatch):
    from iterpose.mesh import load_objects
    from iterpose.refiners.scorer import PoseScorer

    root, init = tiny
    scorer = _scorer_file(load_objects(root / "models"), tmp_path / "scorer.pt")
    out = tmp_path / "scored.csv"
    calls = []
    real = PoseScorer.predict_error

    def spy(self, images, K, obj_ids, *args):
        calls.append(len(obj_ids))
        return real(self, images, K, obj_ids, *args)

    monkeypatch.setattr(PoseScorer, "predict_error", spy)
    assert main(["refine", str(root), str(init), "--out", str(out), "--iterations", "1", "--hypotheses", "2",
                 "--scorer", str(scorer), "--no-progress"]) == 0, capsys.readouterr().err
    assert calls == [2, 2]  # one call per image, 2 hypotheses of its one object (the placeholder is not refined)
    a, b = read_results_csv(init), read_results_csv(out)
    assert len(b) == len(a) and b.placeholder_mask().tolist() == [False, True, False]
    assert np.array_equal(a.im_id, b.im_id) and np.array_equal(a.obj_id, b.obj_id)
    assert np.array_equal(b.t_mm[1], a.t_mm[1])
    for i in (0, 2):
        assert np.allclose(b.R[i] @ b.R[i].T, np.eye(3), atol=1e-5) and 0.0 <= b.score[i] <= 1.0


def test_scorer_errors_are_clear_and_leave_no_output(tiny, tmp_path, capsys):
    from iterpose.mesh import load_objects
    from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
    from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model

    root, init = tiny
    models = load_objects(root / "models")
    scorer = _scorer_file(models, tmp_path / "scorer.pt")
    deepim = tmp_path / "deepim.pt"
    dcfg = DeepimConfig(trunk="scratch", crop_size=32, trunk_blocks=4, head_width=16, iterations=1)
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model(models, dcfg)).checkpoint(object_registry(models)), deepim)
    other = {1: type(models[1])(**{**models[1].__dict__, "vertices": models[1].vertices * 1.01})}
    other_scorer = _scorer_file(other, tmp_path / "other.pt")
    out = tmp_path / "out.csv"
    capsys.readouterr()
    cases = [
        # without --hypotheses (fails before reading the dataset: a missing dataset is not what is reported)
        (["--scorer", str(scorer)], "--scorer chooses among hypotheses: add --hypotheses", "missing"),
        (["--scorer", str(scorer), "--hypotheses", "1"], "add --hypotheses", None),
        # another method's weights given as the scorer, before the dataset is read too
        (["--scorer", str(deepim), "--hypotheses", "3"], "holds a 'deepim' refiner, not a pose scorer", "missing"),
        (["--scorer", str(tmp_path / "absent.pt"), "--hypotheses", "3"], "does not exist", None),
        # a scorer trained for other meshes
        (["--scorer", str(other_scorer), "--hypotheses", "3"], "differ", None),
        # a scorer's file given as a refiner's weights
        (["--method", "deepim", "--weights", str(scorer)], "holds a pose scorer, not a refiner: give it to --scorer",
         None),
    ]
    for flags, message, dataset in cases:
        data = tmp_path / "no-such-dataset" if dataset == "missing" else root
        assert main(["refine", str(data), str(init), "--out", str(out), "--no-progress", *flags]) == 2, flags
        err = capsys.readouterr().err
        assert message in err, (flags, err)
        assert not out.exists(), flags


def test_refine_with_an_ensemble_keeps_one_members_result_per_row(tiny, tmp_path, capsys):
    """`--method rgb-lm,deepim,deepim+rgb-lm` writes every row, and each refined pose is the one that member wrote
    when run alone; an unknown member is a usage error naming the choices."""
    from iterpose.mesh import load_objects
    from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
    from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model

    root, init = tiny
    models = load_objects(root / "models")
    d = tmp_path / "d.pt"
    dcfg = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2)
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model(models, dcfg)).checkpoint(object_registry(models)), d)
    members = ("rgb-lm", "deepim", "deepim+rgb-lm")
    tables = {}
    for method in (*members, ",".join(members)):
        out = tmp_path / f"{method.replace(',', '_')}.csv"
        argv = ["refine", str(root), str(init), "--out", str(out), "--method", method, "--no-progress"]
        if method != "rgb-lm":
            argv += ["--weights", str(d)]
        assert main(argv) == 0, capsys.readouterr().err
        tables[method] = read_results_csv(out)
    ens = tables[",".join(members)]
    a = read_results_csv(init)
    assert np.array_equal(a.im_id, ens.im_id) and np.array_equal(a.obj_id, ens.obj_id)
    assert np.array_equal(ens.t_mm[1], a.t_mm[1])  # the placeholder row is passed through
    for k in range(len(a)):
        assert any(np.allclose(ens.t_mm[k], tables[m].t_mm[k], atol=1e-3)
                   and np.allclose(ens.R[k], tables[m].R[k], atol=1e-5) for m in members), k
    with pytest.raises(SystemExit):
        main(["refine", str(root), str(init), "--out", str(tmp_path / "x.csv"), "--method", "rgb-lm,dope"])
    err = capsys.readouterr().err
    assert "joined by commas" in err and not (tmp_path / "x.csv").exists()
