"""Speed of BOP19 evaluation on the LM-O dev CSVs; writes benchmarks/results/eval.json.

Measures, with medians over ``--repeats`` runs (the machine may be shared: baseline and current are interleaved in
the same process so that they see the same load):

* ``evaluate()`` wall time per CSV (current code), and optionally the same for a baseline revision of
  ``src/iterpose/metrics/evaluate.py`` (``--baseline-rev``, loaded from git; it uses the current lower layers);
* ``iterpose eval DATASET CSV --no-progress`` wall time (a fresh process each run, imports included), and the
  ratio of both medians to bop_toolkit's 31 s for the same 7 error types;
* the cold-start cost of the CLI alone (``import iterpose.cli.main`` + building the parser + importing
  ``iterpose.metrics.evaluate``, a fresh process) and whether that imports torch (it must not);
* with ``--verify``: every ADI value of the model-frame route against bop's per-pair route (proper rotations, all
  objects), every 0.1 d decision of the fast ADI, and the recalls of baseline vs current.

Usage: PYTHONPATH=src python benchmarks/bench_eval.py [--repeats 5] [--baseline-rev 3016338] [--verify]
[--cli-baseline-rev 91664a1]
(needs ../shared/data; VSD is not measured: LM-O dev data has no depth).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from iterpose.metrics.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))
CSVS = ("kpt_lmo-test.csv", "perturbed_lmo-test.csv")
BOP_TOOLKIT_S = 31.0  # bop_toolkit, 1 worker, 2 cores, 7 error types, same machine class (from the task brief)


def _baseline(rev: str):
    """``evaluate`` of ``src/iterpose/metrics/evaluate.py`` at git revision ``rev``."""
    src = subprocess.run(["git", "show", f"{rev}:src/iterpose/metrics/evaluate.py"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "evaluate_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("evaluate_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_baseline"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod.evaluate


def _extract_src(rev: str) -> Path:
    """The ``src`` folder of git revision ``rev``, extracted to a temporary folder."""
    dest = Path(tempfile.mkdtemp(prefix="iterpose-src-"))
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def _cli_once(csv: Path, src: Path = REPO / "src") -> float:
    exe = shutil.which("iterpose", path=str(Path(sys.executable).parent)) or "iterpose"
    env = dict(os.environ, PYTHONPATH=str(src))
    t0 = time.perf_counter()
    subprocess.run([exe, "eval", str(DATA / "lmo"), str(csv), "--no-progress"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


_COLD_START = (
    "import sys, time; t0 = time.perf_counter(); import iterpose.cli.main as m; m.build_parser(); "
    "import iterpose.metrics.evaluate; print(time.perf_counter() - t0, 'torch' in sys.modules)"
)


def _cold_start(repeats: int) -> dict:
    """Import + parser time of the CLI's eval path in a fresh process (measured inside it), median of runs."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    times, torch_loaded = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _COLD_START], check=True, env=env, capture_output=True, text=True)
        t, has_torch = out.stdout.split()
        times.append(float(t))
        torch_loaded.append(has_torch == "True")
    return {"median_s": statistics.median(times), "times_s": times, "imports_torch": any(torch_loaded)}


def _verify() -> dict:
    """ADI of every (estimate, valid GT) pair within the sphere shortcut, all objects, both CSVs."""
    from iterpose.data.results_csv import read_results_csv
    from iterpose.mesh import load_points_mm
    from iterpose.metrics import adi_fast as af
    from iterpose.metrics import pose_error as pe

    lmo = DATA / "lmo"
    info = json.loads((lmo / "models_eval" / "models_info.json").read_text())
    scene_gt = json.loads((lmo / "test" / "000002" / "scene_gt.json").read_text())
    out = {}
    for name in CSVS:
        table = read_results_csv(DATA / "lmo-init" / name)
        max_rel, n_pairs, n_proper, n_wrong = 0.0, 0, 0, 0
        for obj in sorted(set(np.asarray(table.obj_id).tolist())):
            pts = load_points_mm(lmo / "models_eval" / f"obj_{obj:06d}.ply")
            diameter = float(info[str(obj)]["diameter"])
            rows = []
            for i in np.nonzero(np.asarray(table.obj_id) == obj)[0]:
                for g in scene_gt.get(str(int(table.im_id[i])), []):
                    if g["obj_id"] == obj and np.linalg.norm(np.asarray(table.t_mm[i]) - g["cam_t_m2c"]) < diameter:
                        rows.append((np.asarray(table.R[i], float), np.asarray(table.t_mm[i], float),
                                     np.reshape(g["cam_R_m2c"], (3, 3)), np.asarray(g["cam_t_m2c"], float)))
            if not rows:
                continue
            R_e, t_e, R_g, t_g = (np.stack(x) for x in zip(*rows))
            ref = pe.adi_many(R_e, t_e, R_g, t_g, pts)
            index = af.build_adi_index(pts, diameter)
            s = np.linalg.svd(R_e, compute_uv=False)
            proper = s[:, 0] / s[:, 2] - 1 <= 1e-12
            if proper.any():
                v = af.adi_model_frame(index, R_e[proper], t_e[proper], R_g[proper], t_g[proper])
                max_rel = max(max_rel, float(np.max(np.abs(v - ref[proper]) / ref[proper])))
            th = 0.1 * diameter
            dec, _ = af.adi_for_matching(index, R_e, t_e, R_g, t_g, th, upper_bound=pe.add_many(R_e, t_e, R_g, t_g, pts))
            n_wrong += int(np.sum((dec < th) != (ref < th)))
            n_pairs += len(ref)
            n_proper += int(proper.sum())
        out[name] = {"pairs": n_pairs, "proper_rotation_pairs": n_proper,
                     "adi_model_frame_max_rel_diff": max_rel, "adi_decisions_differing": n_wrong}
        print(f"verify {name}: {n_pairs} pairs, model-frame max rel diff {max_rel:.2e} on {n_proper} proper, "
              f"{n_wrong} differing 0.1d decisions")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-rev", default=None, help="git revision of metrics/evaluate.py to compare with")
    ap.add_argument("--cli-repeats", type=int, default=5)
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--cli-baseline-rev", default=None,
                    help="git revision whose `src` tree's `iterpose eval` wall time is measured interleaved with the "
                         "current one (extracted to a temporary folder with `git archive`)")
    args = ap.parse_args()
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                       "python": platform.python_version(), "load_avg_start": os.getloadavg()},
           "repeats": args.repeats, "note": "shared machine: compare numbers of the same run only", "runs": {}}
    base = _baseline(args.baseline_rev) if args.baseline_rev else None
    base_src = _extract_src(args.cli_baseline_rev) if args.cli_baseline_rev else None
    for name in CSVS:
        csv = DATA / "lmo-init" / name
        times, base_times = [], []
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            rep = evaluate(DATA / "lmo", csv, progress=False)
            times.append(time.perf_counter() - t0)
            if base is not None:
                t0 = time.perf_counter()
                base_rep = base(DATA / "lmo", csv, progress=False)
                base_times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        run = {"evaluate_median_s": med, "evaluate_times_s": times, "speedup_vs_bop_toolkit": BOP_TOOLKIT_S / med,
               "recall": dict(rep.recall), "load_avg_before": load_before}
        msg = f"{name}: evaluate() median {med:.2f} s"
        if base is not None:
            bmed = statistics.median(base_times)
            run.update(baseline_rev=args.baseline_rev, baseline_median_s=bmed, baseline_times_s=base_times,
                       speedup_vs_baseline=bmed / med, recall_equal_to_baseline=dict(base_rep.recall) == dict(rep.recall),
                       tp_counts_equal_to_baseline=dict(base_rep.tp_counts) == dict(rep.tp_counts))
            msg += f", baseline {bmed:.2f} s ({bmed / med:.1f}x), same recalls: {run['recall_equal_to_baseline']}"
        cli, cli_base = [], []
        for _ in range(args.cli_repeats):
            cli.append(_cli_once(csv))
            if base_src is not None:
                cli_base.append(_cli_once(csv, base_src))
        if cli_base:
            run.update(cli_baseline_rev=args.cli_baseline_rev, cli_baseline_median_s=statistics.median(cli_base),
                       cli_baseline_times_s=cli_base)
            msg += f"; baseline CLI median {statistics.median(cli_base):.2f} s"
        cli_med = statistics.median(cli)
        run.update(cli_median_s=cli_med, cli_times_s=cli, cli_speedup_vs_bop_toolkit=BOP_TOOLKIT_S / cli_med,
                   load_avg_after=os.getloadavg())
        msg += f"; `iterpose eval` median {cli_med:.2f} s ({BOP_TOOLKIT_S / cli_med:.1f}x bop_toolkit's 31 s)"
        out["runs"][name] = run
        print(msg)
    out["cli_cold_start"] = _cold_start(args.cli_repeats)
    print(f"CLI cold start (imports + parser) median {out['cli_cold_start']['median_s']:.2f} s, torch imported: "
          f"{out['cli_cold_start']['imports_torch']}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    out["machine"]["import_torch_s"] = time.perf_counter() - t0
    if args.verify:
        out["verify"] = _verify()
    out["machine"]["load_avg_end"] = os.getloadavg()
    path = Path(__file__).parent / "results" / "eval.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
