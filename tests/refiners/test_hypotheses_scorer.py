"""Multi-hypothesis refinement ranked by a learned pose scorer: the candidate with the smallest predicted error is
chosen (among converged ones), what the scorer is given, and how it is asked for (`make_refiner(scorer=...)`)."""

from __future__ import annotations

import pytest
import torch

from iterpose.errors import InvalidInputError
from iterpose.refiners import RefineStatus, make_refiner
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineTimings
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model
from iterpose.refiners.hypotheses import HypothesisCandidates, MultiHypothesisRefiner
from iterpose.refiners.rgb_lm import RgbLM
from iterpose.refiners.scorer import PoseScorer, ScorerConfig, build_scorer_model

from .conftest import make_scene

TINY = ScorerConfig(crop_size=32, trunk="scratch", trunk_blocks=4, head_width=16, render_cell_rel=0.06)
OK, WORSE = int(RefineStatus.OK), int(RefineStatus.KEPT_INITIAL_WORSE)


class _FixedScorer(PoseScorer):
    """A PoseScorer whose predictions are given: ``errors [M H]`` in the order it is asked (object-major); records
    its calls."""

    def __init__(self, objects, errors):
        self.objects = {int(k): None for k in objects}
        self.config = TINY
        self.source = "fixed.pt"
        self.errors = torch.as_tensor(errors, dtype=torch.float32)
        self.calls = []

    def predict_error(self, images, K, obj_ids, T_co, image_index, T_ref):
        self.calls.append(dict(images=images, K=K, obj_ids=list(obj_ids), T_co=T_co.clone(),
                               image_index=image_index.clone(), T_ref=T_ref.clone()))
        return self.errors.clone()


class _Statuses(Refiner):
    """Moves each start 1 mm along x (so each refined pose is its own start's) with given statuses (M H, in the order
    of the starts)."""

    def __init__(self, objects, status):
        self.objects, self.default_iterations = objects, 1
        self.status = torch.tensor(status, dtype=torch.int8)

    def _refine(self, batch, iterations):
        T = batch.init_poses.clone()
        T[:, 0, 3] += 0.001
        return RefineOutput(poses=T, scores=torch.linspace(0.1, 0.9, len(T)), trace=torch.stack([batch.init_poses, T]),
                            status=self.status.clone(), timings=RefineTimings(total_s=0.0))


@pytest.fixture(scope="module")
def two(example_model):
    """Two objects in two images."""
    (im0, K, T0), (im1, _, T1) = make_scene(example_model, 4), make_scene(example_model, 5)
    return dict(images=torch.stack([im0, im1]), K=torch.stack([K, K]), object_ids=torch.tensor([1, 1]),
                init_poses=torch.stack([T0, T1]), image_index=torch.tensor([0, 1]))


def _same(a, b):
    """Equal poses (the refiner's output passes through float64 and back)."""
    torch.testing.assert_close(a.float(), b.float(), rtol=0, atol=1e-6)


def _refine(refiner, two):
    return refiner.refine(two["images"], two["K"], two["object_ids"], two["init_poses"], two["image_index"])


def test_the_smallest_predicted_error_is_chosen(example_model, two):
    objs = {1: example_model}
    H = 4
    for errors, want in (([0.5, 0.3, 0.05, 0.2, 0.08, 0.9, 0.4, 0.02], [2, 3]),
                         ([0.01, 0.3, 0.05, 0.2, 0.6, 0.03, 0.4, 0.5], [0, 1])):
        scorer = _FixedScorer(objs, errors)
        inner = _Statuses(objs, [OK] * (2 * H))
        refiner = MultiHypothesisRefiner(inner, hypotheses=H, angle_deg=20.0, crop_size=32, scorer=scorer)
        assert refiner.scorer is scorer
        out = _refine(refiner, two)
        batch = RefineBatch(**two)
        cands = refiner.candidates(batch, 1)
        assert torch.equal(cands.predicted_errors, torch.tensor(errors).view(2, H))
        assert torch.equal(cands.ranking, -cands.predicted_errors)
        for m in range(2):
            _same(out.poses[m], cands.poses[m, want[m]])
            assert float(out.scores[m]) == pytest.approx(float(cands.output.scores[m * H + want[m]]))
            assert int(out.status[m]) == OK
            _same(out.trace[-1, m], cands.output.trace[-1, m * H + want[m]])
            _same(out.trace[0, m], two["init_poses"][m])  # trace[0] is the wrapper's input, as always


def test_the_scorer_gets_each_refined_candidate_its_image_and_its_initial_pose(example_model, two):
    objs = {1: example_model}
    H = 3
    scorer = _FixedScorer(objs, [0.1] * (2 * H))
    refiner = MultiHypothesisRefiner(_Statuses(objs, [OK] * (2 * H)), hypotheses=H, crop_size=32, scorer=scorer)
    cands = refiner.candidates(RefineBatch(**two), 1)
    call = scorer.calls[-1]
    assert call["images"] is two["images"] or torch.equal(call["images"], two["images"])
    assert call["obj_ids"] == [1] * (2 * H)
    assert call["image_index"].tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(call["K"], two["K"].repeat_interleave(H, 0))
    assert torch.equal(call["T_co"], cands.output.poses.float())
    assert torch.equal(call["T_ref"], two["init_poses"].repeat_interleave(H, 0))


def test_rejected_rotated_candidates_are_never_chosen_with_a_scorer(example_model, two):
    objs = {1: example_model}
    H = 4
    # object 0: its best-predicted candidate (2) did not converge, the next best OK one (3) is chosen;
    # object 1: only the initial pose's refinement is a candidate, though it did not succeed and scores worst
    errors = [0.5, 0.3, 0.01, 0.2, 0.9, 0.01, 0.02, 0.03]
    status = [OK, WORSE, WORSE, OK, WORSE, WORSE, WORSE, WORSE]
    refiner = MultiHypothesisRefiner(_Statuses(objs, status), hypotheses=H, crop_size=32,
                                     scorer=_FixedScorer(objs, errors))
    out = _refine(refiner, two)
    cands = refiner.candidates(RefineBatch(**two), 1)
    _same(out.poses[0], cands.poses[0, 3])
    _same(out.poses[1], cands.poses[1, 0])
    assert out.status.tolist() == [OK, WORSE]


def test_without_a_scorer_the_ranking_is_the_outline_score():
    outline = torch.tensor([[0.2, 0.7]])
    c = HypothesisCandidates(output=None, outline_scores=outline, hypotheses=2)
    assert c.predicted_errors is None and torch.equal(c.ranking, outline)
    c = HypothesisCandidates(output=None, outline_scores=outline, hypotheses=2,
                             predicted_errors=torch.tensor([[0.05, 0.3]]))
    assert torch.equal(c.ranking, torch.tensor([[-0.05, -0.3]]))


def test_a_scorer_must_know_every_object_and_be_a_scorer(example_model):
    other = type(example_model)(**{**example_model.__dict__, "obj_id": 2})
    inner = RgbLM({1: example_model, 2: other})
    with pytest.raises(InvalidInputError, match=r"not trained for objects \[2\]"):
        MultiHypothesisRefiner(inner, hypotheses=3, scorer=_FixedScorer({1: None}, [0.1]))
    MultiHypothesisRefiner(inner, hypotheses=3, scorer=_FixedScorer({1: None, 2: None, 3: None}, [0.1]))
    with pytest.raises(InvalidInputError, match="PoseScorer"):
        MultiHypothesisRefiner(inner, hypotheses=3, scorer="scorer.pt")


def test_make_refiner_with_a_scorer_file(example_model, tmp_path):
    objs = {1: example_model}
    path = tmp_path / "scorer.pt"
    save_checkpoint_atomic(PoseScorer(build_scorer_model(objs, TINY)).checkpoint(object_registry(objs)), path)
    refiner = make_refiner("rgb-lm", objs, hypotheses=3, scorer=path)
    assert isinstance(refiner, MultiHypothesisRefiner) and isinstance(refiner.scorer, PoseScorer)
    assert refiner.scorer.source == str(path) and refiner.hypotheses == 3
    with pytest.raises(InvalidInputError, match="hypotheses >= 2"):
        make_refiner("rgb-lm", objs, hypotheses=1, scorer=path)
    with pytest.raises(InvalidInputError, match="hypotheses >= 2"):
        make_refiner("rgb-lm", objs, scorer=path)  # the default is 1 hypothesis
    # a scorer of other meshes, a DeepIM file as the scorer
    bigger = {1: type(example_model)(**{**example_model.__dict__, "vertices": example_model.vertices * 1.01})}
    with pytest.raises(InvalidInputError, match="differ"):
        make_refiner("rgb-lm", bigger, hypotheses=3, scorer=path)
    deepim = tmp_path / "deepim.pt"
    dcfg = DeepimConfig(trunk="scratch", crop_size=32, trunk_blocks=4, head_width=16, render_cell_rel=0.06)
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model(objs, dcfg)).checkpoint(object_registry(objs)), deepim)
    with pytest.raises(InvalidInputError, match="not a pose scorer"):
        make_refiner("rgb-lm", objs, hypotheses=3, scorer=deepim)


def test_a_real_scorer_ranks_the_hypotheses_end_to_end(example_model, two):
    """A real (untrained) PoseScorer in the loop: its predictions are the ranking, and the choice follows them."""
    objs = {1: example_model}
    H = 3
    scorer = PoseScorer(build_scorer_model(objs, TINY, seed=1))
    refiner = MultiHypothesisRefiner(_Statuses(objs, [OK] * (2 * H)), hypotheses=H, crop_size=32, scorer=scorer)
    cands = refiner.candidates(RefineBatch(**two), 1)
    K = two["K"][two["image_index"]]
    want = scorer.predict_error(two["images"], K.repeat_interleave(H, 0), [1] * (2 * H), cands.output.poses.float(),
                                two["image_index"].repeat_interleave(H), two["init_poses"].repeat_interleave(H, 0))
    torch.testing.assert_close(cands.predicted_errors, want.view(2, H))
    out = _refine(refiner, two)
    best = cands.predicted_errors.argmin(1)
    for m in range(2):
        _same(out.poses[m], cands.poses[m, int(best[m])])


def test_with_a_scorer_refine_does_not_compute_outline_scores(example_model, two, monkeypatch):
    objs = {1: example_model}
    H = 3
    errors = [0.4, 0.1, 0.3, 0.2, 0.5, 0.05]
    refiner = MultiHypothesisRefiner(_Statuses(objs, [OK] * (2 * H)), hypotheses=H, crop_size=32,
                                     scorer=_FixedScorer(objs, errors))
    full = refiner.candidates(RefineBatch(**two), 1)  # asked for: both rankings
    assert full.outline_scores.shape == (2, H) and full.predicted_errors.shape == (2, H)
    assert refiner.candidates(RefineBatch(**two), 1, outline=False).outline_scores is None

    def fail(*args, **kwargs):
        raise AssertionError("outline scores computed though the scorer ranks")

    monkeypatch.setattr(MultiHypothesisRefiner, "_outline_scores", fail)
    out = _refine(refiner, two)
    _same(out.poses[0], full.poses[0, 1])
    _same(out.poses[1], full.poses[1, 2])
    # without a scorer the outline is the ranking and is always computed
    plain = MultiHypothesisRefiner(_Statuses(objs, [OK] * (2 * H)), hypotheses=H, crop_size=32)
    with pytest.raises(AssertionError, match="outline scores computed"):
        plain.candidates(RefineBatch(**two), 1, outline=False)
