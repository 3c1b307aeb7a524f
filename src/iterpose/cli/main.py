"""The ``iterpose`` command: parses arguments and hands over to one module per verb.

Each verb lives in ``iterpose/cli/<verb>_cmd.py`` and exposes ``add_parser(subparsers)`` (which registers its
sub-parser and sets ``func``) — this module only collects them. Errors derived from
:class:`iterpose.errors.IterposeError` are printed as one line, without a traceback, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from iterpose.errors import IterposeError

__all__ = ["main", "build_parser"]

VERB_MODULES = ("demo", "check", "eval", "viz", "synth", "refine", "train", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iterpose", description="6D object pose refinement by iterative render-and-compare."
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in VERB_MODULES:
        importlib.import_module(f"iterpose.cli.{name}_cmd").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IterposeError as exc:
        if args.debug:
            raise
        print(f"iterpose {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"iterpose {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
