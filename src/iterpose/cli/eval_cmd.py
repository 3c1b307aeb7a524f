"""``iterpose eval DATASET RESULTS_CSV``: BOP19 evaluation (bop_toolkit-exact), a table on stdout, a JSON report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parser", "run", "format_table"]

_LABELS = {
    "ad_0.1d": "AD@0.1d", "add_0.1d": "ADD@0.1d", "adi_0.1d": "ADI@0.1d", "proj_5px": "Proj@5px",
    "rete_5deg_50mm": "5deg50mm", "ar_mssd": "AR_MSSD", "ar_mspd": "AR_MSPD", "ar_vsd": "AR_VSD", "ar": "AR",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a BOP19 results CSV against a BOP dataset (ADD/ADI/Proj/5deg50mm, AR_MSSD/MSPD[/VSD])",
        description="Evaluate pose estimates with the BOP19 protocol, matching bop_toolkit's numbers.",
    )
    p.add_argument("dataset", type=Path, help="BOP dataset root, e.g. data/lmo")
    p.add_argument("results_csv", type=Path, help="BOP19 results CSV (scene_id,im_id,obj_id,score,R,t,time)")
    p.add_argument("--targets", default="test_targets_bop19.json", help="targets file in the dataset root")
    p.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)
    return p


def format_table(report_json: dict) -> str:
    """Readable table: one row for all targets and one per object, recalls in %."""
    keys = list(report_json["recall"])
    head = f"{'':>10} {'targets':>8} " + " ".join(f"{_LABELS.get(k, k):>9}" for k in keys)
    lines = [head, "-" * len(head)]
    lines.append(f"{'all':>10} {report_json['n_targets']:>8} " + " ".join(f"{100 * report_json['recall'][k]:9.2f}" for k in keys))
    counts = report_json.get("_n_targets_per_object", {})
    for obj, rec in report_json["per_object"].items():
        lines.append(f"{'obj ' + obj:>10} {counts.get(obj, ''):>8} " + " ".join(f"{100 * rec[k]:9.2f}" for k in keys))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from iterpose.metrics.evaluate import evaluate  # noqa: PLC0415 (keep `iterpose --help` fast)

    report = evaluate(
        args.dataset, args.results_csv, targets_filename=args.targets, progress=not args.no_progress, split=args.split
    )
    data = report.to_json_dict()
    shown = dict(data, _n_targets_per_object={str(k): v for k, v in report.n_targets_per_object.items()})
    print(format_table(shown))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"report written to {args.out}")
    return 0
