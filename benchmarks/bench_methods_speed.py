"""Time per image against the number of objects for several refiners, in one process on the same machine.

Each method is timed with :func:`iterpose.refiners.bench.bench_refiner` (the code behind ``iterpose bench``: one
640x480 image of N LM-O objects, medians after warm-up) on the same scenes; the methods take turns, ``--rounds``
times, and the medians over rounds are reported, so that a load change on a shared machine hits every method alike.
Writes one ``iterpose bench``-format JSON per method (``benchmarks/results/bench_<method>[_<tag>].json``), a summary
with the ratios to the first method, and the plot.

Usage::

    PYTHONPATH=src python benchmarks/bench_methods_speed.py --methods rgb-lm repose deepim \
        --weights repose=weights/lmo-repose.pt deepim=weights/lmo-deepim.pt --threads 2 \
        --out benchmarks/bench_objects.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rgb_lm_synthetic import lmo_objects  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=["rgb-lm", "repose", "deepim"])
    p.add_argument("--weights", nargs="*", default=[],
                   help="METHOD=FILE for the learned methods (a cascade takes its stages' files)")
    p.add_argument("--counts", default="1,2,4,8")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--out", type=Path, default=Path("benchmarks/bench_objects.png"))
    args = p.parse_args()
    objects = lmo_objects()
    if objects is None:
        return 0
    import torch

    from iterpose.cli._common import apply_threads
    from iterpose.refiners import make_refiner
    from iterpose.refiners.bench import BenchConfig, bench_refiner
    from iterpose.refiners.registry import learned_methods

    apply_threads(args.threads)
    weights = dict(w.split("=", 1) for w in args.weights)
    config = BenchConfig(counts=tuple(int(c) for c in args.counts.split(",")), repeats=args.repeats)
    stage_files = {m: [weights[s] for s in learned_methods(m) if s in weights] or None for m in args.methods}
    refiners = {m: make_refiner(m, objects, weights=stage_files[m]) for m in args.methods}
    runs: dict[str, list] = {m: [] for m in args.methods}
    for r in range(args.rounds):
        for m, refiner in refiners.items():
            res = bench_refiner(refiner, objects, config, method=m)
            runs[m].append(res)
            print(f"round {r + 1} {m}: " + ", ".join(f"{row.n_objects}: {row.ms_per_image:.0f} ms" for row in res.rows),
                  flush=True)
    summary = {"threads": torch.get_num_threads(), "rounds": args.rounds, "repeats": args.repeats, "methods": {}}
    files = []
    for m, results in runs.items():
        rows = [dataclasses.replace(row, **{k: statistics.median(getattr(res.rows[i], k) for res in results)
                                            for k in ("ms_per_image", "features_ms", "render_ms", "lm_ms",
                                                      "other_ms")})
                for i, row in enumerate(results[0].rows)]
        merged = dataclasses.replace(results[-1], rows=tuple(rows))
        d = merged.to_dict()
        d["rounds"] = args.rounds
        stem = m.replace("-", "_").replace(",", "_or_")
        path = Path("benchmarks/results") / f"bench_{stem}{'_' + args.tag if args.tag else ''}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(d, indent=2))
        files.append(path)
        summary["methods"][m] = {"ms_per_image": d["ms_per_image"], "iterations": d["iterations"],
                                 "weights": stage_files[m]}
        print(merged.format_table())
    base = args.methods[0]
    for m in args.methods:
        summary["methods"][m]["ratio_to_" + base] = {
            n: round(ms / summary["methods"][base]["ms_per_image"][n], 3)
            for n, ms in summary["methods"][m]["ms_per_image"].items()}
    if "repose" in runs and "deepim" in runs:
        summary["deepim_over_repose"] = {n: round(summary["methods"]["deepim"]["ms_per_image"][n] / ms, 3)
                                         for n, ms in summary["methods"]["repose"]["ms_per_image"].items()}
    out_json = Path("benchmarks/results") / f"bench_methods{'_' + args.tag if args.tag else ''}.json"
    out_json.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    import subprocess

    subprocess.run([sys.executable, str(Path(__file__).with_name("plot_bench.py")), *map(str, files), "--out",
                    str(args.out)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
