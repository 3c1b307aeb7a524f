"""``iterpose demo``: the example object in a synthetic scene; see :mod:`iterpose.demo`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="render the example object, perturb its pose, show the errors and an overlay")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the scene and the perturbation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from iterpose.demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0
