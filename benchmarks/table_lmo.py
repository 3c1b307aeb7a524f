"""One markdown table of several refiners on the LM-O dev images, from ``bench_refine_lmo.py`` /
``bench_rgb_lm_lmo.py`` result files: overall recalls, time, and ADD(-S)@0.1d per object.

Usage::

    python benchmarks/table_lmo.py RGB-LM=benchmarks/results/rgb_lm_lmo.json \
        RePOSE=benchmarks/results/repose_lmo.json DeepIM=benchmarks/results/deepim_lmo.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = ("ad_0.1d", "proj_5px", "ar_mssd", "ar_mspd")
NAMES = {1: "ape", 5: "can", 6: "cat", 8: "driller", 9: "duck", 10: "eggbox", 11: "glue", 12: "holepuncher"}


def _time(entry: dict) -> str:
    """Median time per refined object (RGB-LM's file: its own median; the others: image time / objects)."""
    t = entry["time_per_object_s"]
    t = t["median"] if isinstance(t, dict) else t
    return f"{1000 * t:.0f} ms/object"


def main() -> int:
    runs = dict(a.split("=", 1) for a in sys.argv[1:])
    data = {name: json.loads(Path(f).read_text()) for name, f in runs.items()}
    for init in ("kpt", "perturbed"):
        first = next(iter(data.values()))["inits"][init]["before"]
        print(f"\n**{init}** (initial: " + ", ".join(f"{k} {first['recall'][k]:.4f}" for k in KEYS) + ")\n")
        print("| method | " + " | ".join(KEYS) + " | time |")
        print("|---|" + "---|" * (len(KEYS) + 1))
        for name, d in data.items():
            e = d["inits"][init]
            print(f"| {name} | " + " | ".join(f"{e['after']['recall'][k]:.4f}" for k in KEYS) + f" | {_time(e)} |")
        objs = sorted(int(o) for o in first["per_object"])
        print("\nADD(-S)@0.1d per object:\n")
        print("| method | " + " | ".join(NAMES.get(o, str(o)) for o in objs) + " |")
        print("|---|" + "---|" * len(objs))
        print("| initial | " + " | ".join(f"{first['per_object'][str(o)]['ad_0.1d']:.3f}" for o in objs) + " |")
        for name, d in data.items():
            po = d["inits"][init]["after"]["per_object"]
            print(f"| {name} | " + " | ".join(f"{po[str(o)]['ad_0.1d']:.3f}" for o in objs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
