"""``iterpose viz``: overlay pictures of a results CSV (and optionally the initial poses and GT) per image."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "viz",
        help="draw model contours at the poses of a results CSV (blue), its initial poses (red) and GT (green)",
    )
    p.add_argument("dataset", help="BOP dataset root")
    p.add_argument("results", help="BOP results CSV with the poses to draw (e.g. refined)")
    p.add_argument("--out", required=True, help="output folder for PNGs")
    p.add_argument("--init", help="optional CSV of initial poses, drawn in red")
    p.add_argument("--split", default="test")
    p.add_argument("--no-gt", action="store_true", help="do not draw ground-truth contours")
    p.add_argument("--max-images", type=int, default=20, help="at most this many images (default 20)")
    p.add_argument("--images", help="comma-separated image ids to draw (default: the first --max-images)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from iterpose.errors import InvalidInputError
    from iterpose.viz.dataset import draw_results

    im_ids = None
    if args.images is not None:
        try:
            im_ids = [int(x) for x in args.images.split(",") if x.strip()]
        except ValueError:
            raise InvalidInputError(
                f"--images must be comma-separated integer image ids (e.g. 3,17,42), got {args.images!r}"
            ) from None
    paths = draw_results(
        args.dataset, args.results, args.out, init_csv=args.init, split=args.split, draw_gt=not args.no_gt,
        max_images=args.max_images, im_ids=im_ids,
    )
    print(f"wrote {len(paths)} pictures to {Path(args.out)}")
    return 0
