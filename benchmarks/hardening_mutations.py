"""Break one behaviour at a time in a copy of ``src/`` and check that the test written for it fails (issue 8, item 1).

Each mutation replaces one exact snippet of one source file in a temporary copy of ``src/`` (the working tree is
never touched), then runs the named tests with that copy first on ``PYTHONPATH``. A mutation whose snippet is not
found (the code moved) is reported as such, not as a pass. Usage::

    .venv/bin/python benchmarks/hardening_mutations.py            # all, prints a markdown table
    .venv/bin/python benchmarks/hardening_mutations.py mspd_scale # only the named mutations

The table of the last full run is in ``benchmarks/HARDENING_tests.md``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to src/iterpose
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids, relative to the repository root
    what: str  # the deliberate break, in words
    extra: tuple[tuple[str, str], ...] = ()  # further (old, new) replacements in the same file, applied together
    blind: tuple[str, ...] = ()  # pre-existing tests that the break gets past (reported, to show the gap)


M = Mutation
T_EVAL = "tests/metrics/test_eval_thresholds.py"
T_ORACLE = "tests/metrics/test_pose_error_oracles.py"
T_PH = "tests/data/test_placeholders.py"
T_PE = "tests/metrics/test_pose_error.py"
T_LM = "tests/refiners/test_rgb_lm_accept_occlusion.py"
T_VIZ = "tests/cli/test_viz_end_to_end.py"
T_INTERP = "tests/data/test_synth_interpolation_oracle.py"
T_SYNTH = "tests/data/test_synth.py"

MUTATIONS = [
    # -- thresholds: strict < on every path ---------------------------------------------------------------------
    M("tie_single_path", "metrics/evaluate.py",
      "ok = np.all(values[m.single_pairs] < np.asarray(th, dtype=np.float64), axis=1)",
      "ok = np.all(values[m.single_pairs] <= np.asarray(th, dtype=np.float64), axis=1)",
      (f"{T_EVAL}::test_errors_at_threshold_are_not_true_positives",),
      "single-GT fast path counts `error <= threshold`"),
    M("tie_multi_path", "metrics/matching.py",
      "if all(cand[c] < best[c] for c in range(len(th))):",
      "if all(cand[c] <= best[c] for c in range(len(th))):",
      (f"{T_EVAL}::test_ties_on_the_multi_gt_path_alone",),
      "greedy matching (several valid GTs) accepts `error <= threshold`"),
    M("tie_adi_decision", "metrics/adi_fast.py",
      "    if lower >= th_hi:\n        return lower", "    if lower >= th_lo:\n        return lower",
      (f"{T_EVAL}::test_errors_at_threshold_are_not_true_positives",),
      "fast ADI stores a lower bound for a pair only within the margin below the threshold (a tie becomes a TP)"),
    M("tie_vsd_tau", "metrics/pose_error.py",
      "costs = dists >= tau", "costs = dists > tau",
      (f"{T_EVAL}::test_vsd_pixel_error_at_tau_counts_as_misaligned",),
      "VSD step cost counts a pixel misaligned only when its error is > tau"),
    # -- MSPD scaled by 640 / width -----------------------------------------------------------------------------
    M("mspd_no_scale", "metrics/evaluate.py",
      "mspd_scale = 640.0 / float(ds.image_size[0])", "mspd_scale = 1.0",
      (f"{T_EVAL}::test_mspd_scaled_by_image_width",), "MSPD not scaled by 640 / image width"),
    M("mspd_inverse_scale", "metrics/evaluate.py",
      "mspd_scale = 640.0 / float(ds.image_size[0])", "mspd_scale = float(ds.image_size[0]) / 640.0",
      (f"{T_EVAL}::test_mspd_scaled_by_image_width",), "MSPD scaled by width / 640 (inverted)"),
    M("proj_scaled_too", "metrics/evaluate.py",
      'err["proj"][idx] = proj_v', 'err["proj"][idx] = proj_v * mspd_scale',
      (f"{T_EVAL}::test_mspd_scaled_by_image_width",), "proj scaled like MSPD (BOP does not)"),
    # -- ADD-S direction ----------------------------------------------------------------------------------------
    M("adi_direction_pair", "metrics/pose_error.py",
      "nn_dists, _ = cKDTree(pts_e).query(pts_g, k=1)", "nn_dists, _ = cKDTree(pts_g).query(pts_e, k=1)",
      (f"{T_ORACLE}::test_adi_direction_per_pair_and_many",), "pe.adi: nearest GT point for each estimate point"),
    M("adi_direction_many", "metrics/pose_error.py",
      "out[i] = cKDTree(pts_e).query(pts_g, k=1)[0].mean()", "out[i] = cKDTree(pts_g).query(pts_e, k=1)[0].mean()",
      (f"{T_ORACLE}::test_adi_direction_per_pair_and_many",), "pe.adi_many: reversed direction"),
    M("adi_direction_fast", "metrics/adi_fast.py",
      'R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "adi_model_frame")',
      'R_g, t_g, R_e, t_e = _pairs(R_e, t_e, R_g, t_g, "adi_model_frame")',
      (f"{T_ORACLE}::test_adi_direction_fast_routes",),
      "adi_model_frame: estimate and GT swapped (nearest GT point for each estimate point)"),
    M("adi_direction_torch", "metrics/batched.py",
      "torch.cdist(_pose(T_gt, pts), _pose(T_est, pts)).min(dim=-1)",
      "torch.cdist(_pose(T_gt, pts), _pose(T_est, pts)).min(dim=-2)",
      (f"{T_ORACLE}::test_adi_direction_torch_batched",), "adi_m: min over the GT points (reversed direction)"),
    M("adi_direction_eval", "metrics/adi_fast.py",
      'R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "adi_for_matching")',
      'R_g, t_g, R_e, t_e = _pairs(R_e, t_e, R_g, t_g, "adi_for_matching")',
      (f"{T_EVAL}::test_adi_direction_decides_a_true_positive", f"{T_ORACLE}::test_adi_direction_fast_routes"),
      "adi_for_matching (the evaluate path): estimate and GT swapped"),
    # -- symmetry offsets ---------------------------------------------------------------------------------------
    M("sym_offset_unrotated_pair", "metrics/pose_error.py",
      "pts_g_sym = transform_pts_Rt(pts, R_g.dot(R_s[k]), R_g.dot(t_s[k]) + t_g)",
      "pts_g_sym = transform_pts_Rt(pts, R_g.dot(R_s[k]), t_s[k] + t_g)",
      (f"{T_ORACLE}::test_mssd_mspd_with_symmetry_offset_hand_values",), "pe.mssd: t_S added unrotated"),
    M("sym_offset_unrotated_mspd_pair", "metrics/pose_error.py",
      "proj_g_sym = project_pts(pts, K, R_g.dot(R_s[k]), R_g.dot(t_s[k]) + t_g)",
      "proj_g_sym = project_pts(pts, K, R_g.dot(R_s[k]), t_s[k] + t_g)",
      (f"{T_ORACLE}::test_mssd_mspd_with_symmetry_offset_hand_values",), "pe.mspd: t_S added unrotated"),
    M("sym_offset_unrotated_many", "metrics/pose_error.py",
      "return np.matmul(R_g, R_s), np.matmul(R_g, t_s) + t_g", "return np.matmul(R_g, R_s), t_s + t_g",
      (f"{T_ORACLE}::test_mssd_mspd_with_symmetry_offset_hand_values",
       f"{T_EVAL}::test_symmetry_with_translation_offset"),
      "*_many / fused / evaluate: t_S added unrotated"),
    M("sym_offset_unrotated_everywhere", "metrics/pose_error.py",
      "return np.matmul(R_g, R_s), np.matmul(R_g, t_s) + t_g", "return np.matmul(R_g, R_s), t_s + t_g",
      (f"{T_ORACLE}::test_many_and_fused_variants_match_a_point_by_point_oracle",),
      "t_S unrotated in the per-pair, *_many and fused MSSD/MSPD alike (they still agree with each other)",
      extra=(("pts_g_sym = transform_pts_Rt(pts, R_g.dot(R_s[k]), R_g.dot(t_s[k]) + t_g)",
              "pts_g_sym = transform_pts_Rt(pts, R_g.dot(R_s[k]), t_s[k] + t_g)"),
             ("proj_g_sym = project_pts(pts, K, R_g.dot(R_s[k]), R_g.dot(t_s[k]) + t_g)",
              "proj_g_sym = project_pts(pts, K, R_g.dot(R_s[k]), t_s[k] + t_g)")),
      blind=(f"{T_PE}::test_vectorised_variants_are_bit_identical", f"{T_PE}::test_fused_variants_are_bit_identical")),
    M("adi_direction_everywhere", "metrics/pose_error.py",
      "nn_dists, _ = cKDTree(pts_e).query(pts_g, k=1)", "nn_dists, _ = cKDTree(pts_g).query(pts_e, k=1)",
      (f"{T_ORACLE}::test_adi_direction_per_pair_and_many",),
      "ADD-S direction reversed in pe.adi and pe.adi_many alike",
      extra=(("out[i] = cKDTree(pts_e).query(pts_g, k=1)[0].mean()",
              "out[i] = cKDTree(pts_g).query(pts_e, k=1)[0].mean()"),),
      blind=(f"{T_PE}::test_vectorised_variants_are_bit_identical", f"{T_PE}::test_adi_direction_gt_to_estimate")),
    M("adds_direction_train_loss", "train/losses.py",
      "adds = torch.cdist(gt[s], est[s]).min(dim=2)", "adds = torch.cdist(gt[s], est[s]).min(dim=1)",
      ("tests/train/test_losses_symmetry.py::test_adds_direction_gt_to_estimate",),
      "training loss ADD-S: nearest GT point for each estimate point"),
    M("sym_offset_metres_eval", "metrics/evaluate.py",
      "np.asarray(info.symmetries_discrete, dtype=np.float64).reshape(-1, 4, 4),",
      "np.asarray(info.symmetries_discrete, dtype=np.float64).reshape(-1, 4, 4) * "
      "np.array([1, 1, 1, 0.001])[None, None, :],",
      (f"{T_EVAL}::test_symmetry_with_translation_offset",), "evaluate: discrete symmetry offset read as metres"),
    M("sym_continuous_offset_unrotated", "geometry/symmetry.py",
      "cont_t.append(-R.dot(offset) + offset)", "cont_t.append(-offset + offset)",
      (f"{T_EVAL}::test_symmetry_with_translation_offset",), "continuous symmetry: offset term not rotated"),
    M("sym_offset_metres_mesh", "mesh/io.py",
      "sym_d[:, :3, 3] *= scale", "pass",
      ("tests/mesh/test_symmetry_units.py",), "load_objects: symmetry translation left in mm (model in m)"),
    # -- placeholders: every field ------------------------------------------------------------------------------
    M("placeholder_mask_no_R", "data/results_csv.py",
      "            & np.all(self.R == np.eye(3), axis=(1, 2))\n", "",
      (f"{T_PH}::test_results_placeholder_needs_every_field",), "placeholder_mask ignores R (score and t only)"),
    M("placeholder_mask_no_score", "data/results_csv.py",
      "            (self.score == 0.0)\n            & np.all", "            np.all",
      (f"{T_PH}::test_results_placeholder_needs_every_field",), "placeholder_mask ignores the score"),
    M("placeholder_mask_any", "data/results_csv.py",
      "            (self.score == 0.0)\n            & np.all(self.R == np.eye(3), axis=(1, 2))\n"
      "            & np.all(self.t_mm == 0.0, axis=1)",
      "            (self.score == 0.0)\n            | np.all(self.R == np.eye(3), axis=(1, 2))\n"
      "            | np.all(self.t_mm == 0.0, axis=1)",
      (f"{T_PH}::test_results_placeholder_needs_every_field",), "placeholder_mask: any field instead of all"),
    M("placeholder_row_t_only", "data/results_csv.py",
      "return self.score == 0.0 and bool(np.all(self.R == np.eye(3))) and bool(np.all(self.t_mm == 0.0))",
      "return bool(np.all(self.t_mm == 0.0))",
      (f"{T_PH}::test_results_placeholder_needs_every_field",), "ResultRow.is_placeholder: t = 0 only"),
    M("gt_placeholder_any", "data/bop.py",
      "is_placeholder=bool(np.all(t == -1.0)),", "is_placeholder=bool(np.any(t == -1.0)),",
      (f"{T_PH}::test_gt_placeholder_needs_all_three_minus_ones",), "GT placeholder: any component -1"),
    M("gt_placeholder_first", "data/bop.py",
      "is_placeholder=bool(np.all(t == -1.0)),", "is_placeholder=bool(t[0] == -1.0),",
      (f"{T_PH}::test_gt_placeholder_needs_all_three_minus_ones",), "GT placeholder: first component only"),
    M("check_placeholder_any", "data/checks.py",
      "if R is None or t is None or (t == -1).all():", "if R is None or t is None or (t == -1).any():",
      (f"{T_PH}::test_gt_placeholder_needs_all_three_minus_ones",),
      "dataset check skips the rotation test when any component of t is -1"),
    # -- DeepIM perturbation in the camera frame ----------------------------------------------------------------
    M("perturb_object_frame", "data/perturb.py",
      "out[:, :3, :3] = R_delta @ T_co[:, :3, :3]", "out[:, :3, :3] = T_co[:, :3, :3] @ R_delta",
      ("tests/data/test_perturb_frame.py::test_rotation_is_perturbed_in_the_camera_frame",),
      "R' = R R_delta (object frame)"),
    M("perturb_translation_object_frame", "data/perturb.py",
      "out[:, :3, 3] = T_co[:, :3, 3] + dt.to(T_co)",
      "out[:, :3, 3] = T_co[:, :3, 3] + (T_co[:, :3, :3] @ dt.to(T_co)[:, :, None])[:, :, 0]",
      ("tests/data/test_perturb_frame.py::test_translation_noise_is_in_the_camera_frame",),
      "t' = t + R dt (noise in the object frame)"),
    # -- RGB-LM accept test and occlusion -----------------------------------------------------------------------
    M("accept_no_energy", "refiners/rgb_lm/refiner.py",
      "ok = e < e_init - cfg.accept_margin", "ok = torch.ones_like(e, dtype=torch.bool)",
      (f"{T_LM}::test_each_accept_criterion_on_its_own[energy-rejects]",), "accept test without its energy criterion"),
    M("accept_energy_flipped", "refiners/rgb_lm/refiner.py",
      "ok = e < e_init - cfg.accept_margin", "ok = e > e_init - cfg.accept_margin",
      (f"{T_LM}::test_each_accept_criterion_on_its_own[both-pass]",), "energy criterion compares the wrong way"),
    M("accept_no_edge", "refiners/rgb_lm/refiner.py",
      "        if edge_init is not None:\n            ok &= self._edge_strength(",
      "        if False:\n            ok &= self._edge_strength(",
      (f"{T_LM}::test_each_accept_criterion_on_its_own[edge-rejects]",), "accept test without its edge criterion"),
    M("accept_edge_flipped", "refiners/rgb_lm/refiner.py",
      ">= cfg.accept_edge_ratio * edge_init", "<= cfg.accept_edge_ratio * edge_init",
      (f"{T_LM}::test_each_accept_criterion_on_its_own[edge-passes]",), "edge criterion compares the wrong way"),
    M("occlusion_ignored", "refiners/rgb_lm/refiner.py",
      "valid = inside & ~occluded", "valid = inside",
      (f"{T_LM}::test_back_object_is_not_penalised_by_the_front_one",), "occlusion mask computed but not applied"),
    M("occlusion_no_depth", "refiners/rgb_lm/refiner.py",
      "front = in_others.mask & (~r0.mask[others_dev] | (in_others.depth_m < r0.depth_m[others_dev]))",
      "front = in_others.mask",
      (f"{T_LM}::test_occlusion_masks_front_and_back",), "any other object's pixel occludes, whatever its depth"),
    M("occlusion_depth_flipped", "refiners/rgb_lm/refiner.py",
      "(in_others.depth_m < r0.depth_m[others_dev])", "(in_others.depth_m > r0.depth_m[others_dev])",
      (f"{T_LM}::test_occlusion_masks_front_and_back",), "occlusion depth test reversed (behind occludes)"),
    # -- iterpose viz end to end --------------------------------------------------------------------------------
    M("viz_bgr", "viz/overlay.py",
      "cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)", "image_rgb",
      (f"{T_VIZ}::test_contour_pixels_lie_on_the_outline[refined]",), "PNG written without RGB -> BGR"),
    M("viz_R_transposed", "viz/dataset.py",
      "Rt_mm_to_T_co(results.R[rows], results.t_mm[rows])",
      "Rt_mm_to_T_co(results.R[rows].transpose(0, 2, 1), results.t_mm[rows])",
      (f"{T_VIZ}::test_contour_pixels_lie_on_the_outline[refined]",), "results drawn with R transposed"),
    M("viz_t_cm", "viz/dataset.py",
      "Rt_mm_to_T_co(results.R[rows], results.t_mm[rows])", "Rt_mm_to_T_co(results.R[rows], results.t_mm[rows] / 10)",
      (f"{T_VIZ}::test_contour_pixels_lie_on_the_outline[refined]",), "results' t read in the wrong unit (cm)"),
    M("viz_init_rows", "viz/dataset.py",
      "Rt_mm_to_T_co(init.R[irows], init.t_mm[irows])", "Rt_mm_to_T_co(results.R[rows], results.t_mm[rows])",
      (f"{T_VIZ}::test_contour_pixels_lie_on_the_outline[init]",), "initial poses drawn from the results' rows"),
    M("viz_filled", "viz/overlay.py",
      "tuple(int(c) for c in layer.color), layer.thickness, cv2.LINE_AA)",
      "tuple(int(c) for c in layer.color), -1, cv2.LINE_AA)",
      (f"{T_VIZ}::test_contour_pixels_lie_on_the_outline[gt]",), "silhouettes filled instead of outlined"),
    # -- synthetic colour interpolation: the same mistake in the kernel and in its NumPy reference ---------------
    M("interp_half_pixel", "data/synth_render.py",
      "y = (i + y0 - cy) / fy", "y = (i + 0.5 + y0 - cy) / fy",
      (f"{T_INTERP}::test_interpolated_positions_are_ray_triangle_intersections[numba]",
       f"{T_INTERP}::test_interpolated_positions_are_ray_triangle_intersections[reference]"),
      "pixel centres at (j + 0.5, i + 0.5) in both the kernel and the reference",
      blind=(f"{T_SYNTH}::test_interpolation_kernel_matches_numpy_reference_on_asymmetric_triangles",),
      extra=(("x = (j + x0 - cx) / fx", "x = (j + 0.5 + x0 - cx) / fx"),
             ("d = np.stack([(j + offset[0] - K[0, 2]) / K[0, 0], (i + offset[1] - K[1, 2]) / K[1, 1],",
              "d = np.stack([(j + 0.5 + offset[0] - K[0, 2]) / K[0, 0], (i + 0.5 + offset[1] - K[1, 2]) / K[1, 1],"))),
    M("interp_bary_swapped", "data/synth_render.py",
      "out[i, j, k] = l0 * colors[a, k] + l1 * colors[b, k] + l2 * colors[c, k]",
      "out[i, j, k] = l0 * colors[a, k] + l2 * colors[b, k] + l1 * colors[c, k]",
      (f"{T_INTERP}::test_interpolated_positions_are_ray_triangle_intersections[numba]",
       f"{T_INTERP}::test_interpolated_positions_are_ray_triangle_intersections[reference]"),
      "barycentric weights of vertices b and c swapped in both the kernel and the reference",
      blind=(f"{T_SYNTH}::test_interpolation_kernel_matches_numpy_reference_on_asymmetric_triangles",),
      extra=(("l1[:, None] * c[tri[:, 1]] + l2[:, None] * c[tri[:, 2]]",
              "l2[:, None] * c[tri[:, 1]] + l1[:, None] * c[tri[:, 2]]"),)),
    M("interp_offset_ignored", "data/synth_render.py",
      "float(K[1, 2]), float(offset[0]),\n                   float(offset[1]), out)",
      "float(K[1, 2]), 0.0,\n                   0.0, out)",
      (f"{T_INTERP}::test_crop_window_and_affine_colours[numba]",
       f"{T_INTERP}::test_crop_window_and_affine_colours[reference]"),
      "crop offset ignored in both the kernel and the reference",
      extra=(("d = np.stack([(j + offset[0] - K[0, 2]) / K[0, 0], (i + offset[1] - K[1, 2]) / K[1, 1],",
              "d = np.stack([(j - K[0, 2]) / K[0, 0], (i - K[1, 2]) / K[1, 1],"),)),
]


def _copy_src(dst: Path) -> None:
    shutil.copytree(ROOT / "src", dst / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


def _run(tests, src: Path) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header", *tests]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def _first_failure(out: str) -> str:
    e_lines = [re.sub(r"\s+", " ", line[1:].strip()) for line in out.splitlines() if line.startswith("E ")]
    e_lines = [x for x in e_lines if x and x not in ("AssertionError:", "AssertionError")]
    if e_lines:
        return e_lines[0][:110]
    for line in out.splitlines():
        if line.startswith("FAILED") or line.startswith("ERROR"):
            return line[:140]
    return out.strip().splitlines()[-1][:140] if out.strip() else ""


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or m.name in argv]
    rows, bad = [], 0
    with tempfile.TemporaryDirectory(prefix="iterpose-mut-") as tmp:
        base = Path(tmp) / "base"
        _copy_src(base)
        probe = subprocess.run([sys.executable, "-c", "import iterpose; print(iterpose.__file__)"], cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=str(base / "src")), capture_output=True, text=True)
        if not probe.stdout.startswith(str(base)):
            print(f"the copy of src/ is not the one imported: {probe.stdout} {probe.stderr}")
            return 2
        for m in chosen:
            code, out = _run(m.tests, base / "src")
            if code != 0:
                rows.append((m, "BASELINE FAILS", _first_failure(out)))
                bad += 1
                continue
            work = Path(tmp) / m.name
            _copy_src(work)
            f = work / "src" / "iterpose" / m.path
            text = f.read_text()
            missing = [old for old, _ in ((m.old, m.new), *m.extra) if text.count(old) != 1]
            if missing:
                rows.append((m, "SNIPPET NOT FOUND", f"{missing[0][:60]!r}: {text.count(missing[0])} in {m.path}"))
                bad += 1
                continue
            for old, new in ((m.old, m.new), *m.extra):
                text = text.replace(old, new)
            f.write_text(text)
            # each test on its own must fail
            results = [_run([t], work / "src") for t in m.tests]
            caught = all(code != 0 for code, _ in results)
            msgs = [_first_failure(out) if code else "passed" for code, out in results]
            for t in m.blind:
                code, _ = _run([t], work / "src")
                msgs.append(f"(pre-existing {t.split('::')[-1]}: {'still passes' if code == 0 else 'fails'})")
            rows.append((m, "caught" if caught else "NOT CAUGHT", " / ".join(msgs)))
            bad += not caught
            shutil.rmtree(work)
    print("| mutation | deliberate break | tests | result | failure seen |")
    print("|---|---|---|---|---|")
    for m, result, msg in rows:
        tests = "<br>".join(t.split("::")[-1] if "::" in t else t for t in m.tests)
        msg = msg.replace("|", "\\|")
        print(f"| {m.name} | {m.what} (`{m.path}`) | {tests} | {result} | `{msg}` |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
