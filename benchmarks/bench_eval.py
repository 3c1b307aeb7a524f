"""Median wall time of iterpose.metrics.evaluate() on the LM-O dev CSVs; writes benchmarks/results/eval.json.

Usage: PYTHONPATH=src python benchmarks/bench_eval.py [--repeats 3]  (needs ../shared/data; VSD excluded: no depth)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from iterpose.metrics.evaluate import evaluate

DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
BOP_TOOLKIT_S = 31.0  # bop_toolkit, 1 worker, 2 cores, 7 error types, same machine class (from the task brief)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                       "python": platform.python_version()}, "repeats": args.repeats, "runs": {}}
    for name in ("kpt_lmo-test.csv", "perturbed_lmo-test.csv"):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            rep = evaluate(DATA / "lmo", DATA / "lmo-init" / name, progress=False)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        out["runs"][name] = {"median_s": med, "times_s": times, "speedup_vs_bop_toolkit": BOP_TOOLKIT_S / med,
                             "recall": dict(rep.recall)}
        print(f"{name}: median {med:.2f} s over {args.repeats} runs ({BOP_TOOLKIT_S / med:.1f}x bop_toolkit)")
    path = Path(__file__).parent / "results" / "eval.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
