"""``iterpose train --method repose|deepim --objects DIR|example --out RUN_DIR``: train a learned refiner on synthetic
images of the objects (see :mod:`iterpose.train.trainer` for what RUN_DIR receives)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

__all__ = ["add_parser", "run", "load_training_objects"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a learned refiner (repose, deepim) on synthetic images of your objects",
        description="Train a learned refiner on on-the-fly synthetic scenes of the objects, with perturbed initial "
                    "poses. Writes RUN_DIR/config.yaml, last.pt (every few minutes; --resume continues from it), "
                    "final.pt (the weights for `iterpose refine --weights`), metrics.jsonl and TensorBoard logs. "
                    "Several processes: torchrun --standalone --nproc_per_node N -m iterpose train ...")
    p.add_argument("--method", required=True, choices=("repose", "deepim", "scorer"),
                   help="what to train: a refiner (repose, deepim) or the hypothesis scorer (scorer)")
    p.add_argument("--objects", required=True,
                   help="a BOP models folder (obj_XXXXXX.ply + models_info.json) or 'example' (the bundled object)")
    p.add_argument("--unit", default="mm", choices=("mm", "cm", "m"), help="unit of the model files (default mm)")
    p.add_argument("--out", type=Path, required=True, help="run directory (created)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML file with settings to change (any subset of config.yaml's keys)")
    p.add_argument("--steps", type=int, default=None, help="total steps (overrides the config)")
    p.add_argument("--seed", type=int, default=None, help="seed (overrides the config)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="torch device (default cpu)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--init-weights", type=Path, default=None, metavar="FILE",
                   help="start a new run from this weights file's model (same method and model config, except "
                        "DeepIM's zoom_margin, focus_px, aux_heads and test-time settings), e.g. to continue "
                        "training on a fresh machine from committed weights")
    p.add_argument("--export", type=Path, default=None, metavar="FILE",
                   help="do not train: write the weights file of --out's last.pt (a running or stopped run) to FILE")
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help="with --export: the default number of refinement iterations written into the weights file "
                        "(choose it on validation images; default: the run's)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and numba (default: theirs; 1 is fastest on a busy machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def load_training_objects(spec: str, unit: str = "mm") -> dict:
    """``{obj_id: ObjectModel}`` from a models folder, or ``{1: example_object()}`` for ``"example"``."""
    if spec == "example":
        from iterpose.mesh import example_object  # noqa: PLC0415

        return {1: example_object()}
    from iterpose.mesh import load_objects  # noqa: PLC0415

    return load_objects(spec, unit=unit)


def run(args: argparse.Namespace) -> int:
    from iterpose.cli._common import apply_threads, check_device  # noqa: PLC0415


    from iterpose.errors import InvalidInputError  # noqa: PLC0415
    from iterpose.train import task_class  # noqa: PLC0415
    from iterpose.train.config import TrainConfig, config_from_dict, load_config_file  # noqa: PLC0415
    from iterpose.train.trainer import export_weights, read_train_checkpoint, train  # noqa: PLC0415

    apply_threads(args.threads)
    check_device(args.device)
    task_cls = task_class(args.method)
    if args.export is not None:
        step = export_weights(task_cls, load_training_objects(args.objects, args.unit), args.out, args.export,
                              iterations=args.iterations)
        print(f"weights of {args.out} at step {step} written to {args.export}")
        return 0
    if args.iterations is not None:
        raise InvalidInputError("--iterations goes with --export (test-time iterations of the weights file); "
                                "to train with more unrolled iterations set loss.iterations in --config.")
    base = TrainConfig(method=args.method, model=task_cls.model_config_cls())
    last = args.out / "last.pt"
    if args.resume and last.is_file():  # the run's own config is the base; --config may only repeat it
        saved = read_train_checkpoint(last)["config"]
        if saved.get("method") != args.method:
            raise InvalidInputError(f"--resume: {args.out} is a {saved.get('method')!r} run, not {args.method!r}.")
        base = config_from_dict(saved, task_cls.model_config_cls, base)
    overrides = load_config_file(args.config) if args.config is not None else {}
    overrides.setdefault("method", args.method)
    if overrides["method"] != args.method:
        raise InvalidInputError(f"--config {args.config} sets method {overrides['method']!r} but --method is "
                                f"{args.method!r}.")
    config = config_from_dict(overrides, task_cls.model_config_cls, base)
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    if args.seed is not None:
        config = dataclasses.replace(config, seed=args.seed)
    objects = load_training_objects(args.objects, args.unit)
    result = train(task_cls, objects, config, args.out, resume=args.resume, device=args.device,
                   progress=not args.no_progress, init_weights=args.init_weights)
    if result.final_path is not None:
        print(f"trained {args.method} to step {result.steps} in {result.wall_s:.0f} s ({result.samples_per_s:.1f} "
              f"objects/s; {result.total_wall_s / 3600:.2f} h in all): weights {result.final_path}")
    return 0
