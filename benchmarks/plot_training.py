"""Loss curve of a training run: ``metrics.jsonl`` -> PNG (moving averages of the loss terms and of the pose error
before / after the unrolled refinement, in object diameters).

Usage::

    python benchmarks/plot_training.py RUN_DIR [--out benchmarks/training_lmo_repose.png] [--window 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--window", type=int, default=50, help="moving-average window, in logged points")
    args = p.parse_args()
    rows = [json.loads(ln) for ln in (args.run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    if not rows:
        print("no metrics yet", file=sys.stderr)
        return 1
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = np.array([r["step"] for r in rows])
    w = max(1, min(args.window, len(rows)))

    def smooth(key: str) -> np.ndarray:
        v = np.array([r[key] for r in rows], dtype=float)
        return np.convolve(v, np.ones(w) / w, mode="valid")

    s = step[w - 1:]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    # pose_loss, feature_loss: RePOSE's terms; flow_loss, mask_loss: DeepIM's aux heads (before their weights)
    for key in ("loss", "pose_loss", "feature_loss", "flow_loss", "mask_loss"):
        if key in rows[0]:
            ax1.plot(s, smooth(key), label=key + (" (unweighted)" if key in ("flow_loss", "mask_loss") else ""))
    ax1.set_xlabel("step")
    ax1.set_yscale("log")
    ax1.set_title(f"training loss (moving average of {w} points)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(s, smooth("err_init"), "k--", label="before refinement")
    ax2.plot(s, smooth("err_final"), label="after the unrolled iterations")
    ax2.set_xlabel("step")
    ax2.set_ylabel("ADD(-S) / diameter (training batches)")
    ax2.set_title("pose error on the training batches")
    ax2.legend()
    ax2.grid(alpha=0.3)
    hours = rows[-1]["wall_s"] / 3600
    fig.suptitle(f"{args.run_dir.name}: {rows[-1]['step']} steps, {hours:.2f} h wall")
    fig.tight_layout()
    out = args.out or args.run_dir / "training.png"
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
