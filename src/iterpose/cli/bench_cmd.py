"""``iterpose bench --method M [--weights FILE] --objects 1,2,4,8 --json OUT``: refinement speed per object count.

For each count, one 640x480 synthetic image holding that many LM-O objects (random visible poses, initial poses =
ground truth + small noise) is refined in full with the method's default iterations; medians over ``--repeats``
calls after ``--warmup`` (see :mod:`iterpose.refiners.bench`). Prints a table and writes the JSON atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from iterpose.errors import InvalidInputError, MissingFileError

__all__ = ["add_parser", "run", "parse_counts", "DEFAULT_MODELS"]

DEFAULT_MODELS = Path("..") / "shared" / "data" / "lmo" / "models"
"""``--models`` when not given, relative to the current directory (used only when it exists)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="time full refinements of one 640x480 image with 1, 2, 4, 8 objects",
        description="Time the full refinement (feature network included, default iterations) of one synthetic "
                    "640x480 image holding N LM-O objects at random visible poses, for each N of --objects; "
                    "initial poses are the ground truth perturbed by 5 deg / 5, 5, 20 mm. Prints a table of "
                    "milliseconds per image and per component and writes them to --json.")
    p.add_argument("--method", required=True, help="refiner: rgb-lm, repose, deepim, deepim+repose or deepim+rgb-lm")
    p.add_argument("--weights", type=Path, action="append", default=None, metavar="FILE",
                   help="weights file of a learned method (twice for deepim+repose: one per learned stage)")
    p.add_argument("--objects", required=True, metavar="N,N,...",
                   help="objects per image, a comma list of positive ints, e.g. 1,2,4,8")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="torch device (default cpu)")
    p.add_argument("--json", type=Path, required=True, metavar="OUT", help="output JSON file (folder created)")
    p.add_argument("--models", default=None, metavar="DIR",
                   help=f"BOP models folder of the objects, or 'example' (the bundled object); default "
                        f"{DEFAULT_MODELS} when it exists. With --weights only the weights' objects are used")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per count (default 10)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls before them (default 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and numba (default: theirs); 1 is steadiest on a busy machine")
    p.add_argument("--seed", type=int, default=None, help="seed of the scenes and the pose noise (default 0)")
    p.set_defaults(func=run)
    return p


def parse_counts(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)``; anything but a comma list of distinct positive ints is an error."""
    parts = [s.strip() for s in str(text).split(",")]
    if not parts or any(not (s.isascii() and s.isdigit()) or int(s) < 1 for s in parts):
        raise InvalidInputError(f"--objects: expected a comma list of positive ints (objects per image), e.g. "
                                f"1,2,4,8; got {text!r}.")
    counts = tuple(int(s) for s in parts)
    if len(set(counts)) != len(counts):
        raise InvalidInputError(f"--objects: each count once, got {text!r}.")
    return counts


def _models_dir(spec: str | None) -> str | Path:
    if spec == "example":
        return spec
    path = Path(spec) if spec is not None else DEFAULT_MODELS
    if not path.is_dir():
        if spec is None:
            raise MissingFileError(f"no --models given and the default models folder {DEFAULT_MODELS} does not exist "
                                   f"here; pass --models DIR (a BOP models folder, e.g. data/lmo/models) or "
                                   f"--models example.")
        raise MissingFileError(f"--models {path}: folder does not exist; pass a BOP models folder (obj_000001.ply, "
                               f"... + models_info.json) or 'example'.")
    return path


def _load_objects(models: str | Path, ids: list[int] | None) -> dict:
    """``{obj_id: ObjectModel}`` of the models folder (only ``ids`` when given, those it has)."""
    if models == "example":
        from iterpose.mesh import example_object  # noqa: PLC0415

        objects = {1: example_object(1)}
    else:
        from iterpose.mesh import load_objects  # noqa: PLC0415

        objects = load_objects(models)
    if ids is not None:
        objects = {k: v for k, v in objects.items() if k in ids}
    return objects


def run(args: argparse.Namespace) -> int:
    from iterpose.refiners.registry import METHODS, ensemble_members  # noqa: PLC0415 (light: no torch yet)

    if args.method not in METHODS and len(ensemble_members(args.method)) == 1:  # (an ensemble's members: checked)
        raise InvalidInputError(f"--method {args.method!r}: unknown method; choose one of {', '.join(METHODS)}, "
                                f"or several joined by commas (an ensemble).")
    counts = parse_counts(args.objects)
    for name in ("repeats", "warmup", "threads", "seed"):
        v = getattr(args, name)
        lo = 1 if name in ("repeats", "threads") else 0
        if v is not None and v < lo:
            raise InvalidInputError(f"--{name} must be >= {lo}, got {v}.")
    models = _models_dir(args.models)

    from iterpose.cli._common import apply_threads, check_device  # noqa: PLC0415
    from iterpose.data.bop_writer import atomic_write_text  # noqa: PLC0415
    from iterpose.refiners import make_refiner  # noqa: PLC0415
    from iterpose.refiners.bench import BenchConfig, bench_refiner  # noqa: PLC0415
    from iterpose.refiners.registry import check_method_and_weights  # noqa: PLC0415

    apply_threads(args.threads)
    check_device(args.device)
    overrides = {k: getattr(args, k) for k in ("repeats", "warmup", "seed") if getattr(args, k) is not None}
    config = dataclasses.replace(BenchConfig(counts=counts), **overrides)
    # fails fast on a method not available, missing weights or weights given to rgb-lm
    ckpts = check_method_and_weights(args.method, args.weights)
    registry = None
    for ckpt, _ in ckpts.values():  # the objects every weights file knows
        ids = {int(e["obj_id"]) for e in ckpt["objects"]}
        registry = ids if registry is None else registry & ids
    registry = None if registry is None else sorted(registry)
    objects = _load_objects(models, registry)
    if not objects:
        weights = ", ".join(map(str, args.weights or []))
        raise InvalidInputError(f"--models {models}: none of the objects of the weights {weights} "
                                f"(ids {registry}) has a model there; pass the models folder they were trained on.")
    refiner = make_refiner(args.method, objects, weights=args.weights, device=args.device)
    result = bench_refiner(refiner, objects, config, method=args.method, device=args.device)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result.to_dict(), indent=2) + "\n")
    print(result.format_table())
    print(f"written to {out}")
    return 0
