"""``iterpose refine DATASET INIT_CSV --out OUT_CSV``: refine every estimate of a BOP results CSV.

Reads the initial poses, refines each image's estimates together (:func:`iterpose.refiners.dataset_refine.
refine_results`), and writes a BOP results CSV with the same rows in the same order (refined R and t, the
refiner's score, the per-image time), atomically: on an error no output file is left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run", "REFINE_METHODS"]

REFINE_METHODS = ("rgb-lm", "repose", "deepim", "deepim+repose", "deepim+rgb-lm")
"""``--method`` choices: :data:`iterpose.refiners.registry.METHODS`, spelled out so that building the parser does
not import torch (a test keeps the two equal)."""


def refine_method(text: str) -> str:
    """argparse type of ``--method``: one of :data:`REFINE_METHODS`, or two or more of them joined by commas (an
    ensemble: each runs from the same initial poses and the best-scored result is kept)."""
    members = [m.strip() for m in text.split(",")]
    if any(m not in REFINE_METHODS for m in members) or len(set(members)) != len(members):
        raise argparse.ArgumentTypeError(
            f"{text!r}: choose one of {', '.join(REFINE_METHODS)}, or two or more different ones joined by commas "
            f"(an ensemble, e.g. rgb-lm,deepim,deepim+rgb-lm)")
    return ",".join(members)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "refine",
        help="refine the poses of a BOP results CSV (rgb-lm, repose, deepim, deepim+repose, deepim+rgb-lm, or "
             "an ensemble of them)",
        description="Refine every estimate of a BOP19 results CSV on a BOP dataset and write a results CSV with "
                    "the same rows (refined R and t, score, per-image time).",
    )
    p.add_argument("dataset", type=Path, help="BOP dataset root, e.g. data/lmo")
    p.add_argument("init_csv", type=Path, help="initial estimates, BOP19 results CSV")
    p.add_argument("--out", type=Path, required=True, help="output results CSV")
    p.add_argument("--method", default="rgb-lm", type=refine_method, metavar="METHOD",
                   help="refiner: " + ", ".join(REFINE_METHODS) + " (deepim+repose, deepim+rgb-lm: DeepIM, then the "
                        "second from its result), or an ensemble: several joined by commas, each run from the same "
                        "initial poses, the result RGB-LM's score rates best kept (e.g. rgb-lm,deepim,deepim+rgb-lm)")
    p.add_argument("--weights", type=Path, action="append", default=None, metavar="FILE",
                   help="checkpoint of a learned refiner; for deepim+repose give --weights twice (one file per stage, "
                        "any order); for an ensemble one file per learned method it uses")
    p.add_argument("--iterations", type=int, default=None, help="iterations (default: the method's)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="torch device (default cpu)")
    p.add_argument("--hypotheses", type=int, default=1, metavar="H",
                   help="refine each initial pose and H-1 rotated copies of it, keep the result whose outline best "
                        "matches the image, or with --scorer the one predicted closest to the truth (about H times "
                        "slower; for starts within ~10° of the truth it makes results worse; default 1)")
    p.add_argument("--hypothesis-angle", dest="hypothesis_angle", type=float, default=20.0, metavar="DEG",
                   help="rotation of each extra hypothesis, degrees (default 20)")
    p.add_argument("--scorer", type=Path, default=None, metavar="FILE",
                   help="with --hypotheses: a pose-scorer weights file (iterpose train --method scorer, e.g. "
                        "weights/lmo-scorer.pt) that chooses among the hypotheses")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and numba (default: theirs); 1 is fastest on a busy machine")
    p.add_argument("--viz", type=Path, default=None, metavar="DIR", help="write per-image overlays to DIR")
    p.add_argument("--bop-pixel-shift", dest="bop_pixel_shift", action=argparse.BooleanOptionalAction, default=None,
                   help="refine with cx, cy shifted by -0.5 px, BOP's pixel-centre convention (default: on, except "
                        "for datasets written by `iterpose synth`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from iterpose.cli._common import apply_threads, check_device  # noqa: PLC0415
    from iterpose.data import BopDataset, read_results_csv, write_results_csv  # noqa: PLC0415
    from iterpose.errors import InvalidInputError  # noqa: PLC0415
    from iterpose.mesh import load_objects  # noqa: PLC0415
    from iterpose.refiners import make_refiner  # noqa: PLC0415
    from iterpose.refiners.registry import check_method_and_weights  # noqa: PLC0415
    from iterpose.refiners.scorer import read_scorer_checkpoint  # noqa: PLC0415
    from iterpose.refiners.dataset_refine import check_refine_inputs, refine_results  # noqa: PLC0415

    if args.iterations is not None and args.iterations < 0:
        raise InvalidInputError(f"--iterations must be >= 0, got {args.iterations}.")
    if args.hypotheses < 1:
        raise InvalidInputError(f"--hypotheses must be >= 1, got {args.hypotheses}.")
    if not 0 < args.hypothesis_angle <= 90:
        raise InvalidInputError(f"--hypothesis-angle must be in (0, 90] degrees, got {args.hypothesis_angle}.")
    apply_threads(args.threads)
    check_device(args.device)
    out = Path(args.out)
    if out.resolve() == Path(args.init_csv).resolve():
        raise InvalidInputError(f"--out {out} is the input CSV; write to another file.")
    out.parent.mkdir(parents=True, exist_ok=True)
    # fails fast (before reading the dataset) on a method not available, missing or misplaced weights, a damaged
    # weights file or weights of another method; the registry is checked below, with the models
    check_method_and_weights(args.method, args.weights)
    if args.scorer is not None:
        if args.hypotheses < 2:
            raise InvalidInputError("--scorer chooses among hypotheses: add --hypotheses H (H >= 2, e.g. 7).")
        read_scorer_checkpoint(args.scorer)
    dataset = BopDataset(args.dataset, split=args.split)
    init = read_results_csv(args.init_csv)
    needed = sorted(set(init.obj_id.tolist()))
    models_dir = dataset.models_dir
    present = [i for i in needed if (models_dir / f"obj_{i:06d}.ply").is_file()]
    check_refine_inputs(dataset, init, present, what=f"{args.init_csv}")
    objects = load_objects(models_dir, obj_ids=present) if present else {}
    refiner = make_refiner(args.method, objects, weights=args.weights, iterations=args.iterations,
                           device=args.device, hypotheses=args.hypotheses, hypothesis_angle_deg=args.hypothesis_angle,
                           scorer=args.scorer)
    on_image = None if args.viz is None else _overlay_writer(Path(args.viz), refiner.objects)
    result = refine_results(dataset, init, refiner, device=args.device, iterations=args.iterations,
                            progress=not args.no_progress, on_image=on_image, bop_pixel_shift=args.bop_pixel_shift)
    write_results_csv(out, result.table)
    print(result.summary.format())
    for s, m, msg in result.failures:
        print(f"  failed: scene {s} image {m}: {msg}", file=sys.stderr)
    print(f"results written to {out}")
    return 0


def _overlay_writer(viz_dir: Path, objects):
    """The ``on_image`` callback of ``--viz``: ``<viz_dir>/<scene>_<im>.png``, initial poses red, refined blue."""
    from iterpose.viz import refinement_overlay, save_png  # noqa: PLC0415 (viz is only needed with --viz)

    viz_dir.mkdir(parents=True, exist_ok=True)

    def write(refined) -> None:
        models = [objects[int(i)] for i in refined.object_ids.tolist()]
        picture = refinement_overlay(refined.image.cpu(), refined.K.cpu(), models, refined.T_init.cpu(),
                                     refined.output.poses.detach().cpu(), None)
        save_png(viz_dir / f"{refined.scene_id:06d}_{refined.im_id:06d}.png", picture)

    return write
