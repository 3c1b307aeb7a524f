"""BOP19 evaluation of a results CSV against a BOP dataset, reproducing bop_toolkit's numbers exactly.

Pipeline (bop_toolkit ``eval_calc_errors.py`` + ``eval_calc_scores.py`` + ``eval_bop19_pose.py``, localisation mode,
``n_top = -1``, ``visib_gt_min = -1``, ``max_sym_disc_step = 0.01``):

1. Targets ``(scene_id, im_id, obj_id, inst_count)`` from ``test_targets_bop19.json``. For each target, the
   estimates of that object in that image are sorted by score (descending, stable) and the top ``inst_count``
   are kept. Estimates for images or objects without a target are ignored, as in bop_toolkit.
2. Errors of each kept estimate w.r.t. the **valid** GT instances of the same object in the image (bop computes
   them w.r.t. every instance but its matching skips the others, so they are not computed here), with the points of
   ``models_eval`` (mm): ``ad`` (ADI for symmetric objects, i.e. objects with symmetries in ``models_info.json``;
   ADD otherwise), ``add``, ``adi``, ``proj`` (px), ``re`` (deg), ``te`` (mm), ``mssd``, ``mspd``. Shortcut as bop:
   ``ad``/``add``/``adi``/``mssd`` are ``inf`` when ``|t_e - t_g| >= diameter``. ADI is computed by
   :mod:`iterpose.metrics.adi_fast`: every threshold decision is bop's, values that cannot match are bounds.
3. Normalisation: ``ad``/``add``/``adi``/``mssd`` divided by the diameter (``models_eval/models_info.json``),
   ``mspd`` multiplied by ``640 / image_width``.
4. Valid GTs (per image: most visible ``inst_count`` instances of each target object) and greedy matching
   (:mod:`iterpose.metrics.matching`) for every threshold; recall = TP / valid GTs, pooled over all targets.

Thresholds (strict ``<``): ``ad``/``add``/``adi`` 0.1 (x diameter), ``proj`` 5 px, ``rete`` re < 5 deg **and**
te < 50 mm (both elements of a two-element error, matched like any other error; bop's own default of 5 "cm" is
really 5 mm because ``te`` is in mm — we use 50 mm, the usual "5 deg 5 cm"), ``mssd`` ``np.arange(0.05, 0.51,
0.05)``, ``mspd`` ``np.arange(5, 51, 5)`` px. AR_MSSD / AR_MSPD are the means of those recalls. VSD (and the
overall AR = (AR_VSD + AR_MSSD + AR_MSPD) / 3) is computed only when the dataset has depth images
(:mod:`iterpose.metrics.vsd_eval`; AR_VSD = mean recall over 10 taus x 10 thetas).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Optional, Union

import numpy as np

from iterpose.data.bop import BopDataset
from iterpose.data.results_csv import ResultsTable, read_results_csv
from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError
from iterpose.geometry.symmetry import bop_symmetry_transforms_np
from iterpose.mesh.ply_points import load_points_mm
from iterpose.mesh.models_info import ModelInfo, load_models_info
from iterpose.metrics import pose_error as pe
from iterpose.metrics.adi_fast import adi_for_matching, build_adi_index
from iterpose.metrics.matching import match_greedy, select_valid_gts
from iterpose.metrics.scores import average_recall, bop19_ar, recall

__all__ = ["evaluate", "EvalReport", "RECALL_KEYS", "THRESHOLDS", "VSD_THRESHOLDS"]

#: Keys of :attr:`EvalReport.recall`, in display order ("ar_vsd" and "ar" only with depth).
RECALL_KEYS = ("ad_0.1d", "add_0.1d", "adi_0.1d", "proj_5px", "rete_5deg_50mm", "ar_mssd", "ar_mspd", "ar_vsd", "ar")

#: Correctness thresholds per error type (same floats as bop_toolkit, see module docstring).
THRESHOLDS: Mapping[str, tuple] = MappingProxyType(
    {
        "ad": ((0.1,),),
        "add": ((0.1,),),
        "adi": ((0.1,),),
        "proj": ((5.0,),),
        "rete": ((5.0, 50.0),),
        "mssd": tuple((th,) for th in pe.BOP19_THRESHOLDS_MSSD),
        "mspd": tuple((th,) for th in pe.BOP19_THRESHOLDS_MSPD),
    }
)


#: BOP19 VSD correctness thresholds theta (the same floats as the taus), strict ``<``.
VSD_THRESHOLDS = pe.BOP19_VSD_TAUS


@dataclass(frozen=True)
class EvalReport:
    """Result of :func:`evaluate`.

    Attributes:
        n_targets: number of targets (valid GT instances to find), e.g. 737 for the LM-O dev subset.
        recall: read-only ``{key: recall in 0..1}`` pooled over all targets, keys from :data:`RECALL_KEYS`
            ("ar_vsd" and "ar" only when the dataset has depth).
        per_object: read-only ``{obj_id: {key: recall}}`` with recall = TP of that object / its targets.
        n_targets_per_object: read-only ``{obj_id: number of targets}``.
        tp_counts: read-only ``{"<error>@<threshold>": TP count}``, e.g. ``"mssd@0.05"``, for inspection.
        n_estimates: number of estimates evaluated (top ``inst_count`` per target).
    """

    n_targets: int
    recall: Mapping[str, float]
    per_object: Mapping[int, Mapping[str, float]]
    n_targets_per_object: Mapping[int, int] = field(default_factory=dict)
    tp_counts: Mapping[str, int] = field(default_factory=dict)
    n_estimates: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        """``{"n_targets": int, "recall": {key: float}, "per_object": {"<obj_id>": {key: float}}}``."""
        return {
            "n_targets": int(self.n_targets),
            "recall": {k: float(v) for k, v in self.recall.items()},
            "per_object": {str(o): {k: float(v) for k, v in r.items()} for o, r in sorted(self.per_object.items())},
        }


class _NoBar(list):
    """The items of a disabled progress bar (``close()`` does nothing)."""

    def close(self) -> None:
        pass


@dataclass
class _Pairs:
    """All (estimate, GT) pairs of one object, as flat lists (filled by :func:`_collect_pairs`)."""

    R_e: list = field(default_factory=list)
    t_e: list = field(default_factory=list)
    R_g: list = field(default_factory=list)
    t_g: list = field(default_factory=list)
    K: list = field(default_factory=list)
    index: list = field(default_factory=list)  # global pair index
    multi: list = field(default_factory=list)  # the estimate may match one of several valid GTs
    image: list = field(default_factory=list)  # (scene_id, im_id) of each pair

    def add(self, R_est: list, t_est: list, gts: list, K: np.ndarray, first_index: int, image: tuple) -> None:
        """Append every (estimate, GT) pair of one target, estimate-major, with global indices from ``first_index``."""
        index = first_index
        for R_e, t_e in zip(R_est, t_est):
            for g in gts:
                self.R_e.append(R_e)
                self.t_e.append(t_e)
                self.R_g.append(np.asarray(g.R, dtype=np.float64))
                self.t_g.append(np.asarray(g.t_mm, dtype=np.float64).reshape(3))
                self.K.append(K)
                self.index.append(index)
                self.multi.append(len(gts) > 1)
                self.image.append(image)
                index += 1


def _load_dataset(dataset, split: str) -> BopDataset:
    if isinstance(dataset, BopDataset):
        return dataset
    if isinstance(dataset, (str, Path)):
        root = Path(dataset)
        if not root.is_dir():
            raise MissingFileError(f"evaluate: dataset folder not found: {root} (give the BOP dataset root, e.g. .../lmo)")
        return BopDataset(root, split=split)
    raise InvalidInputError(f"evaluate: dataset must be a path or a BopDataset, got {type(dataset).__name__}")


def _load_results(results) -> ResultsTable:
    if isinstance(results, ResultsTable):
        return results
    if isinstance(results, (str, Path)):
        path = Path(results)
        if not path.is_file():
            raise MissingFileError(f"evaluate: results CSV not found: {path}")
        return read_results_csv(path)
    raise InvalidInputError(f"evaluate: results must be a CSV path or a ResultsTable, got {type(results).__name__}")


def _syms_mm(info: ModelInfo, max_sym_disc_step: float) -> tuple[np.ndarray, np.ndarray]:
    """``(R [M, 3, 3], t [M, 3])`` float64, t in mm: bop_toolkit's symmetry set of the object, bit for bit."""
    return bop_symmetry_transforms_np(
        np.asarray(info.symmetries_discrete, dtype=np.float64).reshape(-1, 4, 4),
        list(info.symmetries_continuous),
        max_sym_disc_step,
    )


@dataclass(frozen=True, eq=False)
class _TargetGroup:
    """One (image, object) target that has estimates and valid GT instances: the unit of BOP's matching.

    Attributes:
        obj_id: the object.
        scores: ``[E]`` the kept estimates' scores, highest first (the top ``inst_count`` of the target).
        pair_index: ``[E, G]`` int64 index into the flat (estimate, GT) pair arrays: row = estimate (same order as
            ``scores``), column = valid GT instance of the object in the image (``gt_id`` order).
    """

    obj_id: int
    scores: tuple
    pair_index: np.ndarray


@dataclass(frozen=True, eq=False)
class _Collected:
    """What :func:`_collect_pairs` gathers: the matching groups, the pairs per object, and the counts."""

    groups: list
    pairs: dict  # obj_id -> _Pairs
    n_pairs: int
    n_targets: int
    n_targets_per_object: dict
    n_estimates: int


def evaluate(
    dataset: Union[str, Path, BopDataset],
    results: Union[str, Path, ResultsTable],
    targets_filename: str = "test_targets_bop19.json",
    progress: bool = True,
    *,
    split: str = "test",
    max_sym_disc_step: float = 0.01,
    vsd_renderer_factory: Optional[Callable[..., Any]] = None,
) -> EvalReport:
    """Evaluate pose estimates with the BOP19 protocol (bop_toolkit-exact numbers, see the module docstring).

    Stages: targets -> (estimate, valid GT) pairs and matching groups (:func:`_collect_pairs`) -> errors of every
    pair (:func:`_pair_errors`) -> true positives per threshold (:func:`_count_all`) -> recalls
    (:func:`_summarise`), plus VSD when the dataset has depth (:func:`_add_vsd`).

    Args:
        dataset: BOP dataset root (e.g. ``.../lmo``) or a :class:`~iterpose.data.bop.BopDataset`.
        results: BOP19 results CSV path or a :class:`~iterpose.data.results_csv.ResultsTable` (R row-major,
            t in mm).
        targets_filename: targets file in the dataset root.
        progress: show a tqdm progress bar on stderr.
        split: dataset split when ``dataset`` is a path.
        max_sym_disc_step: discretisation of continuous symmetries (BOP: 0.01).
        vsd_renderer_factory: for datasets with depth: ``factory(models_eval_dir, obj_ids) -> render`` with
            ``render(obj_id, R [N,3,3], t_mm [N,3], K [N,3,3], height, width) -> [N, H, W]`` depth in mm rendered
            with bop's pixel centres; ``None`` uses :func:`iterpose.metrics.vsd_eval.bop_depth_renderer`.

    Returns:
        :class:`EvalReport`.

    Raises:
        MissingFileError: the dataset, a required file of it, a model of ``models_eval`` or the CSV is missing.
        DataFormatError: the CSV names an object without a model in the dataset, or a file is malformed.
    """
    ds = _load_dataset(dataset, split)
    table = _load_results(results)
    models_info = _load_models_info(ds, table)
    targets_org, target_obj_ids = _organise_targets(ds, targets_filename, models_info)
    collected = _collect_pairs(ds, table, targets_org, target_obj_ids, targets_filename)
    err = _pair_errors(ds, collected, models_info, max_sym_disc_step, progress)
    matching = _prepare_matching(collected.groups)
    tp_counts, tp_obj = _count_all(matching, err)
    n_targets_obj = collected.n_targets_per_object
    overall = _summarise(lambda k: tp_counts[k], collected.n_targets)
    per_object = {o: _summarise(lambda k, o=o: tp_obj[k].get(o, 0), n_targets_obj[o]) for o in target_obj_ids}
    if ds.has_depth:
        _add_vsd(ds, collected, models_info, matching, progress, vsd_renderer_factory, tp_counts, overall, per_object)
    return EvalReport(
        n_targets=collected.n_targets,
        recall=MappingProxyType(overall),
        per_object=MappingProxyType({o: MappingProxyType(rec) for o, rec in per_object.items()}),
        n_targets_per_object=MappingProxyType(dict(n_targets_obj)),
        tp_counts=MappingProxyType(tp_counts),
        n_estimates=collected.n_estimates,
    )


def _load_models_info(ds: BopDataset, table: ResultsTable) -> dict:
    """``models_eval/models_info.json``, after checking that every object the CSV names has a model (bop_toolkit
    would fail later or silently skip it)."""
    models_dir = ds.models_eval_dir
    info_path = Path(models_dir) / "models_info.json"
    if not info_path.is_file():
        raise MissingFileError(f"evaluate: {info_path} not found (BOP evaluation reads models_eval/models_info.json)")
    models_info = load_models_info(info_path)
    csv_obj_ids = sorted(set(np.asarray(table.obj_id).tolist()))
    unknown = [o for o in csv_obj_ids if o not in models_info]
    if unknown:
        raise DataFormatError(
            f"evaluate: the results CSV names object id(s) {unknown} that have no model in {models_dir} "
            f"(known ids: {sorted(models_info)}); remove those rows or evaluate against the right dataset"
        )
    return models_info


def _organise_targets(ds: BopDataset, targets_filename: str, models_info) -> tuple[dict, list[int]]:
    """Targets like bop: ``{scene: {im: {obj: inst_count}}}`` (a repeated target overrides the earlier one) and
    the sorted target object ids."""
    targets_org: dict[int, dict[int, dict[int, int]]] = {}
    for tg in ds.targets(targets_filename):
        targets_org.setdefault(tg.scene_id, {}).setdefault(tg.im_id, {})[tg.obj_id] = tg.inst_count
    target_obj_ids = sorted({o for s in targets_org.values() for im in s.values() for o in im})
    unknown = [o for o in target_obj_ids if o not in models_info]
    if unknown:
        raise DataFormatError(
            f"evaluate: {targets_filename} has targets for object id(s) {unknown} without a model in "
            f"{ds.models_eval_dir}"
        )
    return targets_org, target_obj_ids


def _collect_pairs(ds: BopDataset, table: ResultsTable, targets_org: dict, target_obj_ids: list[int],
                   targets_filename: str) -> _Collected:
    """Stage 1, matching set-up: the valid GTs of every target image, the kept estimates of every target (top
    ``inst_count`` by score, stable), and every (kept estimate, valid GT of the same object) pair."""
    ests: dict[tuple[int, int, int], list[int]] = {}  # (scene, im, obj) -> CSV rows, in CSV order
    for i, key in enumerate(zip(table.scene_id.tolist(), table.im_id.tolist(), table.obj_id.tolist())):
        ests.setdefault(key, []).append(i)
    scores_all = np.asarray(table.score, dtype=np.float64).tolist()
    R_all = np.asarray(table.R, dtype=np.float64)
    t_all = np.asarray(table.t_mm, dtype=np.float64)
    groups: list[_TargetGroup] = []
    pairs: dict[int, _Pairs] = {}
    n_pairs = n_targets = n_estimates = 0
    n_targets_obj: dict[int, int] = {o: 0 for o in target_obj_ids}
    for scene_id, scene_targets in targets_org.items():
        scene_gt, scene_gt_info = ds.scene_gt(scene_id), ds.scene_gt_info(scene_id)
        scene_camera = ds.scene_camera(scene_id)
        for im_id, im_targets in scene_targets.items():
            if im_id not in scene_gt or im_id not in scene_gt_info or im_id not in scene_camera:
                raise DataFormatError(
                    f"evaluate: scene {scene_id}, image {im_id} is a target in {targets_filename} but is missing "
                    f"from scene_gt.json, scene_gt_info.json or scene_camera.json of scene {scene_id}"
                )
            im_gt = scene_gt[im_id]
            K = np.asarray(scene_camera[im_id].K, dtype=np.float64)
            valid = select_valid_gts([g.obj_id for g in im_gt], [i.visib_fract for i in scene_gt_info[im_id]],
                                     im_targets)
            for g, is_valid in zip(im_gt, valid):
                if is_valid:
                    n_targets += 1
                    n_targets_obj[g.obj_id] = n_targets_obj.get(g.obj_id, 0) + 1
            for obj_id, inst_count in im_targets.items():
                rows = ests.get((scene_id, im_id, obj_id), [])
                rows = sorted(rows, key=lambda r: scores_all[r], reverse=True)[:inst_count]
                # Only valid GTs take part in bop's matching (pose_matching.match_poses skips the others), so
                # errors w.r.t. the other GT instances of the object are never used: they are not computed.
                gts = [g for k, g in enumerate(im_gt) if g.obj_id == obj_id and valid[k]]
                n_estimates += len(rows)
                pair_index = np.arange(n_pairs, n_pairs + len(rows) * len(gts), dtype=np.int64).reshape(
                    len(rows), len(gts))
                pairs.setdefault(obj_id, _Pairs()).add(
                    [R_all[r] for r in rows], [t_all[r] for r in rows], gts, K, n_pairs, (scene_id, im_id))
                n_pairs += len(rows) * len(gts)
                if rows and gts:
                    groups.append(_TargetGroup(obj_id, tuple(scores_all[r] for r in rows), pair_index))
    return _Collected(groups, pairs, n_pairs, n_targets, n_targets_obj, n_estimates)


def _pair_errors(ds: BopDataset, collected: _Collected, models_info, max_sym_disc_step: float,
                 progress: bool) -> dict[str, np.ndarray]:
    """Stage 2: ``{error name: [n_pairs]}`` errors of every pair, computed per object in batches (``inf`` where
    bop's sphere shortcut applies); ``ad``/``add``/``adi``/``mssd`` relative to the diameter, ``mspd`` scaled to
    640 px wide images."""
    err = {name: np.full(collected.n_pairs, np.inf) for name in ("ad", "add", "adi", "proj", "re", "te", "mssd",
                                                                "mspd")}
    objs = sorted(collected.pairs)
    if progress:
        from tqdm import tqdm  # noqa: PLC0415 (imported only when a bar is shown)

        bar = tqdm(objs, desc="evaluate", unit="obj", leave=False)
    else:
        bar = _NoBar(objs)
    mspd_scale = 640.0 / float(ds.image_size[0])  # bop: MSPD thresholds are for 640 px wide images
    for obj_id in bar:
        pp = collected.pairs[obj_id]
        if pp.index:
            _object_errors(err, pp, obj_id, ds.models_eval_dir, models_info[obj_id], max_sym_disc_step, mspd_scale)
    bar.close()
    return err


def _object_errors(err: dict[str, np.ndarray], pp: _Pairs, obj_id: int, models_dir, info: ModelInfo,
                   max_sym_disc_step: float, mspd_scale: float) -> None:
    """Fill ``err`` at the pairs of one object (see :func:`_pair_errors`)."""
    diameter = float(info.diameter_mm)
    model_path = Path(models_dir) / f"obj_{obj_id:06d}.ply"
    if not model_path.is_file():
        raise MissingFileError(f"evaluate: model of object {obj_id} not found: {model_path}")
    pts = np.asarray(load_points_mm(model_path), dtype=np.float64)
    syms = _syms_mm(info, max_sym_disc_step)
    symmetric = syms[0].shape[0] > 1
    idx = np.asarray(pp.index)
    R_e, t_e = np.stack(pp.R_e), np.stack(pp.t_e)
    R_g, t_g = np.stack(pp.R_g), np.stack(pp.t_g)
    te = pe.te_many(t_e, t_g)
    err["te"][idx] = te
    err["re"][idx] = pe.re_many(R_e, R_g)
    proj_v, mspd_v = pe.proj_mspd_many(R_e, t_e, R_g, t_g, np.stack(pp.K), pts, syms)
    err["proj"][idx] = proj_v
    err["mspd"][idx] = mspd_v * mspd_scale
    near = np.nonzero(te < diameter)[0]  # bop: spheres overlap; otherwise ad/add/adi/mssd are inf
    if near.size == 0:
        return
    poses_near = (R_e[near], t_e[near], R_g[near], t_g[near])
    add_v, mssd_v = pe.add_mssd_many(*poses_near, pts, syms)
    # ADI: exact threshold decisions (and exact values wherever matching can use them), see adi_fast.
    adi_v, _ = adi_for_matching(
        build_adi_index(pts, diameter), *poses_near, THRESHOLDS["adi"][0][0] * diameter,
        need_value=np.asarray(pp.multi)[near], upper_bound=add_v,
    )
    err["add"][idx[near]] = add_v / diameter
    err["adi"][idx[near]] = adi_v / diameter
    err["ad"][idx[near]] = (adi_v if symmetric else add_v) / diameter
    err["mssd"][idx[near]] = mssd_v / diameter


def _count_all(matching: "_Matching", err: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, dict[int, int]]]:
    """Stage 3: true positives for every ``"<error>@<threshold>"`` of :data:`THRESHOLDS`, total and per object."""
    tp_counts: dict[str, int] = {}
    tp_obj: dict[str, dict[int, int]] = {}
    for name, th_list in THRESHOLDS.items():
        values = np.stack([err["re"], err["te"]], axis=1) if name == "rete" else err[name][:, None]
        for th in th_list:
            key = f"{name}@{'/'.join(repr(x) for x in th)}"
            tp_counts[key], tp_obj[key] = _count_tp(matching, values, th)
    return tp_counts, tp_obj


def _summarise(tp_of: Callable[[str], float], n: int) -> dict[str, float]:
    """Stage 4: the recalls of :data:`RECALL_KEYS` (without VSD) from ``tp_of(key) -> TP count`` and ``n`` targets."""
    return {
        "ad_0.1d": recall(tp_of("ad@0.1"), n),
        "add_0.1d": recall(tp_of("add@0.1"), n),
        "adi_0.1d": recall(tp_of("adi@0.1"), n),
        "proj_5px": recall(tp_of("proj@5.0"), n),
        "rete_5deg_50mm": recall(tp_of("rete@5.0/50.0"), n),
        "ar_mssd": average_recall([recall(tp_of(f"mssd@{th[0]!r}"), n) for th in THRESHOLDS["mssd"]]),
        "ar_mspd": average_recall([recall(tp_of(f"mspd@{th[0]!r}"), n) for th in THRESHOLDS["mspd"]]),
    }


def _add_vsd(ds: BopDataset, collected: _Collected, models_info, matching: "_Matching", progress: bool,
             renderer_factory: Optional[Callable[..., Any]], tp_counts: dict[str, int], overall: dict[str, float],
             per_object: dict[int, dict[str, float]]) -> None:
    """VSD (datasets with depth): adds the ``vsd@<tau>/<theta>`` TP counts to ``tp_counts`` and ``ar_vsd``, ``ar``
    to ``overall`` and to each ``per_object`` record (the dicts are this module's own, not yet frozen)."""
    vsd_err = _vsd_errors(ds, collected.pairs, collected.n_pairs, models_info, progress, renderer_factory)
    tp_vsd_obj: dict[str, dict[int, int]] = {}
    for ti, tau in enumerate(pe.BOP19_VSD_TAUS):
        values = vsd_err[:, ti : ti + 1]
        for th in VSD_THRESHOLDS:
            key = f"vsd@{tau!r}/{th!r}"
            tp_counts[key], tp_vsd_obj[key] = _count_tp(matching, values, (th,))

    def ar_vsd(tp_of: Callable[[str], float], n: int) -> float:
        return average_recall([recall(tp_of(k), n) for k in tp_vsd_obj])

    overall["ar_vsd"] = ar_vsd(lambda k: tp_counts[k], collected.n_targets)
    overall["ar"] = bop19_ar(overall["ar_vsd"], overall["ar_mssd"], overall["ar_mspd"])
    for o, rec in per_object.items():
        rec["ar_vsd"] = ar_vsd(lambda k, o=o: tp_vsd_obj[k].get(o, 0), collected.n_targets_per_object[o])
        rec["ar"] = bop19_ar(rec["ar_vsd"], rec["ar_mssd"], rec["ar_mspd"])


@dataclass(frozen=True, eq=False)
class _Matching:
    """The groups of :func:`evaluate`, prepared for counting true positives at many thresholds.

    Groups with one valid GT (the usual case) are counted vectorised: ``single_pairs`` are their pair indices
    (the column of the valid GT), ``single_starts`` the start of each group in it and ``single_obj`` its object.
    Groups with several valid GTs (``multi``) run :func:`match_greedy`.
    """

    single_pairs: np.ndarray
    single_starts: np.ndarray
    single_obj: np.ndarray
    multi: list  # _TargetGroup with several valid GTs


def _prepare_matching(groups: list[_TargetGroup]) -> _Matching:
    pairs, starts, objs, multi = [], [], [], []
    n = 0
    for group in groups:
        n_gts = group.pair_index.shape[1]
        if n_gts == 1:
            col = group.pair_index[:, 0]
            starts.append(n)
            pairs.append(col)
            objs.append(group.obj_id)
            n += col.shape[0]
        elif n_gts > 1:
            multi.append(group)
    cat = np.concatenate(pairs) if pairs else np.zeros(0, dtype=np.int64)
    return _Matching(cat, np.asarray(starts, dtype=np.int64), np.asarray(objs, dtype=np.int64), multi)


def _count_tp(m: _Matching, values: np.ndarray, th: tuple) -> tuple[int, dict[int, int]]:
    """True positives (matched valid GTs) over all groups, total and per object.

    ``values``: ``[n_pairs, C]`` errors; ``th``: ``C`` thresholds. A group with one valid GT has a TP iff some of
    its estimates has every element strictly below the threshold on that GT (what greedy matching gives); groups
    with several valid GTs run :func:`match_greedy`.
    """
    per: dict[int, int] = {}
    total = 0
    if m.single_pairs.size:
        ok = np.all(values[m.single_pairs] < np.asarray(th, dtype=np.float64), axis=1).astype(np.int64)
        tp = np.maximum.reduceat(ok, m.single_starts)
        total = int(tp.sum())
        for o, c in zip(*np.unique(m.single_obj[tp > 0], return_counts=True)):
            per[int(o)] = int(c)
    for group in m.multi:
        matched = match_greedy(list(group.scores), values[group.pair_index], th)
        tp = sum(1 for k in matched if k >= 0)
        if tp:
            total += tp
            per[group.obj_id] = per.get(group.obj_id, 0) + tp
    return total, per


def _vsd_errors(ds: BopDataset, pairs: dict[int, "_Pairs"], n_pairs: int, models_info, progress: bool,
                renderer_factory: Optional[Callable[..., Any]]) -> np.ndarray:
    """``[n_pairs, 10]`` BOP19 VSD errors (one column per tau) of every (estimate, valid GT) pair."""
    from iterpose.metrics import vsd_eval  # noqa: PLC0415 (the renderer is imported only for VSD)

    out = np.ones((n_pairs, len(pe.BOP19_VSD_TAUS)))
    objs = [o for o in sorted(pairs) if pairs[o].index]
    if not objs:
        return out
    factory = vsd_eval.bop_depth_renderer if renderer_factory is None else renderer_factory
    render = factory(ds.models_eval_dir, objs)
    cat = lambda name: np.concatenate([np.stack(getattr(pairs[o], name)) for o in objs])  # noqa: E731
    idx = np.concatenate([np.asarray(pairs[o].index) for o in objs])
    obj_of = np.concatenate([np.full(len(pairs[o].index), o) for o in objs])
    image = [im for o in objs for im in pairs[o].image]
    diam = [float(models_info[int(o)].diameter_mm) for o in obj_of]
    out[idx] = vsd_eval.vsd_errors(
        ds.load_depth_mm, image, obj_of.tolist(), cat("R_e"), cat("t_e"), cat("R_g"), cat("t_g"), cat("K"), diam,
        render, delta_mm=vsd_eval.vsd_delta_mm(ds.name), progress=progress,
    )
    return out
