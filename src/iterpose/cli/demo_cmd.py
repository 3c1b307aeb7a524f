"""``iterpose demo``: perturb, refine with RGB-LM and RePOSE, print errors, draw pictures; see :mod:`iterpose.demo`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="refine a perturbed pose of the example object (or one image of your BOP data) and show the result",
    )
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--seed", type=int, default=0, help="synthetic mode: seed of the scene and the perturbation")
    p.add_argument("--dataset", help="a BOP dataset root: run the demo on one of its images instead")
    p.add_argument("--init", help="with --dataset: BOP results CSV with the initial poses")
    p.add_argument("--image", type=int, help="with --dataset: image id (default: the first one in --init)")
    p.add_argument("--split", default="test", help="with --dataset: split folder (default: test)")
    p.add_argument("--weights", action="append", default=None, metavar="FILE",
                   help="synthetic mode: weights of a learned refiner (repose or deepim) for the example object, "
                        "repeatable (default: weights/example-repose.pt and example-deepim.pt of a source checkout); "
                        "each result goes to OUT/METHOD/")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from iterpose.errors import InvalidInputError

    if (args.dataset is None) != (args.init is None):
        raise InvalidInputError("iterpose demo: --dataset and --init go together (a BOP dataset and its initial poses)")
    if args.dataset is not None:
        from iterpose.demo import run_dataset_demo

        result = run_dataset_demo(args.dataset, args.init, args.out, im_id=args.image, split=args.split)
    else:
        from pathlib import Path

        from iterpose.demo import default_demo_weights, run_demo
        from iterpose.refiners.checkpoint import read_refiner_checkpoint

        result = run_demo(args.out, seed=args.seed)
        weights = args.weights if args.weights is not None else default_demo_weights()
        for path in weights:
            print(result.format())
            print()
            method = read_refiner_checkpoint(path)["method"]
            result = run_demo(Path(args.out) / method, seed=args.seed, method=method, weights=path)
        if not weights:
            print("(learned refiners: no weights/example-repose.pt or example-deepim.pt here; pass --weights FILE "
                  "to compare)")
    print(result.format())
    return 0
