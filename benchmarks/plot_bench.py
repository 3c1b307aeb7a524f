"""Time per image against the number of objects, one line per method, from ``iterpose bench --json`` files.

Usage::

    python benchmarks/plot_bench.py benchmarks/results/bench_rgb_lm.json benchmarks/results/bench_repose.json \
        --out benchmarks/bench_objects.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("benchmarks/bench_objects.png"))
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    devices = set()
    for f in args.files:
        d = json.loads(f.read_text())
        n = sorted(int(k) for k in d["ms_per_image"])
        ax.plot(n, [d["ms_per_image"][str(k)] for k in n], "o-", label=f"{d['method']} ({d['iterations']} it.)")
        devices.add(f"{d['device']}, {d.get('threads', '?')} thread(s)")
    ax.set_xlabel("objects in the 640x480 image")
    ax.set_ylabel("ms per image (median)")
    ax.set_xticks([1, 2, 4, 8])
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("full refinement time vs objects (" + "; ".join(sorted(devices)) + ")")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
