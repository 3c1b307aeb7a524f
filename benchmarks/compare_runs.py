"""Two training runs of the same seed and batch settings compared at equal steps (their batches are identical:
a batch is a pure function of seed, step and rank), e.g. an ablation arm against the main run.

Usage::

    python benchmarks/compare_runs.py RUN_A RUN_B [--window 500] [--json OUT]

Prints, per window of steps both runs have logged, the mean training error before and after refinement (ADD(-S)
in diameters) and recall@0.1d after, for each run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _rows(run: Path) -> dict[int, dict]:
    return {r["step"]: r for r in (json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()
                                   if ln.strip())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--window", type=int, default=500, help="steps per window")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    a, b = _rows(args.run_a), _rows(args.run_b)
    common = sorted(set(a) & set(b))
    if not common:
        print("no common steps", file=sys.stderr)
        return 1
    out = []
    print(f"{'steps':>13} | {args.run_a.name}: init -> final (recall) | {args.run_b.name}: init -> final (recall)")
    for start in range(0, common[-1], args.window):
        steps = [s for s in common if start < s <= start + args.window]
        if not steps:
            continue
        m = {}
        for name, rows in (("a", a), ("b", b)):
            m[name] = {k: sum(rows[s][k] for s in steps) / len(steps) for k in ("err_init", "err_final",
                                                                               "recall_final")}
        out.append({"steps": [steps[0], steps[-1]], "points": len(steps), args.run_a.name: m["a"],
                    args.run_b.name: m["b"]})
        print(f"{steps[0]:>6}-{steps[-1]:<6} | {m['a']['err_init']:.4f} -> {m['a']['err_final']:.4f} "
              f"({m['a']['recall_final']:.3f}) | {m['b']['err_init']:.4f} -> {m['b']['err_final']:.4f} "
              f"({m['b']['recall_final']:.3f})")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
