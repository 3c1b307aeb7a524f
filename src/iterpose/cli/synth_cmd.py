"""``iterpose synth --objects DIR --out DIR --images N``: write a synthetic BOP dataset (resumable).

See :mod:`iterpose.data.synth_writer` for the layout and the resume rule, and
:class:`iterpose.data.synth.SynthConfig` for what is random.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

__all__ = ["add_parser", "run", "load_synth_objects"]


def load_synth_objects(spec: str, unit: str = "mm") -> tuple[list, dict | None]:
    """The objects named by ``--objects``: ``"example"`` (the bundled example object, id 1) or a folder of
    ``obj_<id>`` meshes. Returns ``(objects, model_files)``; ``model_files`` maps ids to the files to copy
    verbatim (only for millimetre files, BOP's unit), else ``None`` (the writer writes PLYs in mm).

    Raises:
        MissingFileError: the folder does not exist or holds no ``obj_<id>`` mesh.
    """
    from iterpose.mesh import example_object, load_objects
    from iterpose.mesh.io import mesh_files_by_id

    if spec == "example":
        return [example_object(1)], None
    folder = Path(spec)
    objects = load_objects(folder, unit=unit)
    files = None
    if unit == "mm":
        files = {oid: paths[0] for oid, paths in mesh_files_by_id(folder).items() if oid in objects}
        if any(p.suffix.lower() != ".ply" for p in files.values()):
            files = None  # BOP models are PLY: re-write the others
    return list(objects.values()), files


def run(args: argparse.Namespace) -> int:
    from iterpose.data.synth import LMO_K, SynthConfig
    from iterpose.data.synth_config import LMO_HEIGHT, LMO_WIDTH
    from iterpose.data.synth_writer import write_synth_dataset
    from iterpose.errors import InvalidInputError

    if args.images < 1:
        raise InvalidInputError(f"--images must be >= 1, got {args.images}")
    objects, files = load_synth_objects(args.objects, args.unit)
    K = tuple(LMO_K)
    if (args.width, args.height) != (LMO_WIDTH, LMO_HEIGHT):  # the LM-O camera zoomed to the requested size
        import torch  # noqa: PLC0415

        from iterpose.geometry.camera import zoom_K  # noqa: PLC0415

        whole_image = torch.tensor([0.0, 0.0, LMO_WIDTH, LMO_HEIGHT], dtype=torch.float64)
        K_lmo = torch.tensor(LMO_K, dtype=torch.float64).reshape(3, 3)
        K = tuple(zoom_K(K_lmo, whole_image, (args.height, args.width)).reshape(9).tolist())
    fields = {"height": args.height, "width": args.width, "K": K, "viewpoint": args.viewpoint}
    if args.objects_per_image is not None:
        fields["objects_per_image"] = tuple(args.objects_per_image)
    if args.distance is not None:
        fields["distance_m"] = tuple(args.distance)
    if args.distractors is not None:
        fields["distractors"] = tuple(args.distractors)
    if args.occluders is not None:
        fields["occluders"] = tuple(args.occluders)
    if args.object_distractors is not None:
        fields["object_distractors"] = tuple(args.object_distractors)
    if args.specular is not None:
        fields["specular"] = tuple(args.specular)
    if args.shadow_prob is not None:
        fields["shadow_prob"] = args.shadow_prob
    if args.background is not None:
        fields["background"] = args.background
    config = dataclasses.replace(SynthConfig(), **fields)
    report = write_synth_dataset(objects, args.out, args.images, config, seed=args.seed, split=args.split,
                                 scene_id=args.scene_id, progress=not args.no_progress, model_files=files,
                                 workers=args.workers)
    rate = report.n_written / report.seconds if report.seconds > 0 else 0.0
    print(f"wrote {report.n_written} image(s), kept {report.n_skipped} finished one(s): {report.n_images} images, "
          f"{report.n_instances} instances, {report.n_targets} targets in {report.out_dir} "
          f"({report.seconds:.1f} s, {rate:.1f} images/s)")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth",
        help="write a synthetic BOP dataset (rgb, depth, masks, GT) from object meshes",
        description="Render random scenes of the given objects (random poses in view, lighting, backgrounds, "
        "distractors, occluders, noise) and write them as a BOP dataset that `iterpose check` and `iterpose eval` "
        "accept. Re-running with the same arguments resumes: finished images are kept, not rewritten.",
    )
    p.add_argument("--objects", required=True, help="folder of obj_<id> meshes (BOP models/), or 'example'")
    p.add_argument("--out", required=True, type=Path, help="output dataset folder")
    p.add_argument("--images", required=True, type=int, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="image k uses seed + k (default 0)")
    p.add_argument("--split", default="test", help="split folder name (default: test)")
    p.add_argument("--scene-id", type=int, default=0, help="scene folder id (default 0)")
    p.add_argument("--objects-per-image", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                   help="target objects per image (default 1 3)")
    p.add_argument("--distance", type=float, nargs=2, metavar=("MIN_M", "MAX_M"), default=None,
                   help="camera depth of the objects in metres (default 0.5 1.5)")
    p.add_argument("--distractors", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                   help="random distractor shapes per image (default 0 3)")
    p.add_argument("--occluders", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                   help="occluding shapes per image (default 0 1)")
    p.add_argument("--object-distractors", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                   help="recoloured copies of the models as clutter, per image (default 0 0)")
    p.add_argument("--specular", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                   help="strength of a white highlight on every mesh (default 0 0: matte)")
    p.add_argument("--shadow-prob", type=float, default=None,
                   help="probability of soft drop shadows around the objects in an image (default 0)")
    p.add_argument("--viewpoint", choices=("uniform", "upper_hemisphere"), default="uniform",
                   help="viewpoint distribution (default uniform)")
    p.add_argument("--background", default=None,
                   help="procedural, clutter, photo (clutter toned like an indoor photograph) or a folder of "
                        "background images (default: procedural)")
    p.add_argument("--width", type=int, default=640, help="image width (default 640; K is LM-O's, scaled)")
    p.add_argument("--height", type=int, default=480, help="image height (default 480)")
    p.add_argument("--unit", choices=("mm", "cm", "m"), default="mm", help="unit of the mesh files (BOP: mm)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes generating images in parallel, 1 thread each (default 1; 2 on 2 cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p
