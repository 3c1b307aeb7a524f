"""The generic training loop of the learned refiners (one file, readable in one sitting).

``train(task, config, run_dir)`` optimises ``task``'s model on its on-the-fly batches and writes to ``run_dir``:

- ``config.yaml``: the whole :class:`~iterpose.train.config.TrainConfig` (written at the start);
- ``last.pt``: the training state (weights, Adam, LR schedule, step, config, wall time and CPU time of all
  processes so far), written atomically every
  ``checkpoint_every_s`` seconds, at the end and when the run is interrupted (Ctrl-C, SIGTERM): a stopped run loses
  at most the steps since the last write;
- ``final.pt``: the weights file of the finished run (what :func:`iterpose.load_refiner` reads);
- ``metrics.jsonl``: one line per ``log_every`` steps (loss terms, errors, learning rate, samples/s), and
  TensorBoard event files in ``tb/``.

``resume=True`` continues from ``last.pt`` up to ``config.steps``; batches are a pure function of ``(seed, step,
rank)`` and the optimiser state is restored, so on the CPU with the same thread count the weights are bit-identical
to an uninterrupted run's. The saved config must equal the given one (``steps`` aside), else an error lists the
differing keys.

Several processes (``torchrun --nproc_per_node N``): ``torch.distributed`` is initialised from the environment
(gloo on the CPU, NCCL on CUDA); every process builds the same model from the same seed, draws its own batches, and
the gradients are averaged with one ``all_reduce`` per step before the (identical) optimiser steps — what
``DistributedDataParallel`` does, without its forward wrapper, which the unrolled LM's Python control flow and
objects absent from some batches would otherwise need special handling for. Only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import yaml

from iterpose.errors import DataFormatError, InvalidInputError
from iterpose.refiners.checkpoint import save_checkpoint_atomic
from iterpose.train.config import TrainConfig, config_to_dict

__all__ = ["train", "export_weights", "TrainResult", "read_train_checkpoint", "TRAIN_FORMAT_VERSION"]

TRAIN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did. ``steps``: the step reached; ``wall_s``: this call's seconds; ``total_wall_s``: all
    calls of the run together; ``samples_per_s``: training objects per second in this call (all ranks)."""

    steps: int
    last_path: Path
    final_path: Path | None
    wall_s: float
    total_wall_s: float
    samples_per_s: float


def read_train_checkpoint(path: Path) -> dict:
    """Read a ``last.pt`` (DataFormatError naming the file when it is damaged)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise DataFormatError(f"training checkpoint {path} is damaged ({type(exc).__name__}: {str(exc)[:200]}); "
                              f"delete it to start again.") from None
    if not isinstance(ckpt, dict) or "optimizer" not in ckpt or "weights" not in ckpt:
        raise DataFormatError(f"{path} is not an iterpose training checkpoint (last.pt).")
    return ckpt


def _lr_factor(step: int, config: TrainConfig) -> float:
    o = config.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    span = max(config.steps - o.warmup_steps, 1)
    progress = min((step - o.warmup_steps) / span, 1.0)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _config_diff(a: dict, b: dict, path: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        p = f"{path}.{k}" if path else k
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _config_diff(a[k], b[k], p)
        elif a.get(k) != b.get(k):
            out.append(f"{p}: {a.get(k)!r} (run) vs {b.get(k)!r} (now)")
    return out


class _Distributed:
    """Rank, world size and gradient averaging (a single process when torchrun's variables are absent)."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world > 1
        if self.active:
            import torch.distributed as dist  # noqa: PLC0415

            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.dist = dist

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        if not self.active:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def barrier(self) -> None:
        if self.active:
            self.dist.barrier()

    def close(self) -> None:
        if self.active and self.dist.is_initialized():
            self.dist.destroy_process_group()


class _Clock:
    """Wall and CPU seconds of the run: those of earlier calls (from ``last.pt``) plus this call's."""

    def __init__(self, prior_wall: float, prior_cpu: float, world: int) -> None:
        self.prior_wall, self.prior_cpu, self.world = prior_wall, prior_cpu, world
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()

    def call_s(self) -> float:
        return time.perf_counter() - self.t0

    def wall_s(self) -> float:
        return self.prior_wall + self.call_s()

    def cpu_s(self) -> float:
        """All processes' CPU time (this process's times the number of processes)."""
        return self.prior_cpu + (time.process_time() - self.cpu0) * self.world


class _RunLog:
    """Rank 0's outputs besides checkpoints: ``metrics.jsonl`` (lines past the resumed step dropped: they were
    written after the last checkpoint and will be written again), TensorBoard, the progress bar."""

    def __init__(self, run_dir: Path, config: TrainConfig, start: int, progress: bool) -> None:
        path = run_dir / "metrics.jsonl"
        kept = []
        if path.exists():
            kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= start]
        path.write_text("".join(ln + "\n" for ln in kept))
        self.file = path.open("a")
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 (tensorboard is slow to import)

        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start if start else None)
        self.bar = None
        if progress:
            from tqdm import tqdm  # noqa: PLC0415

            self.bar = tqdm(total=config.steps, initial=start, desc=f"train {config.method}", unit="step",
                            dynamic_ncols=True)

    def step(self, stats: dict) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{stats['loss']:.4f}", err=f"{stats.get('err_final', 0):.3f}")

    def record(self, rec: dict) -> None:
        self.file.write(json.dumps(rec) + "\n")
        self.file.flush()
        for k, v in rec.items():
            if k != "step":
                self.writer.add_scalar(f"train/{k}", v, rec["step"])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.writer.close()
        self.file.close()


def _with_defaults(saved: dict, config: TrainConfig) -> dict:
    """A saved config dict with the keys added to the configs since it was written, at their defaults (the explicit
    migration before the strict comparison: a setting that did not exist then behaved as its default)."""
    from iterpose.train.config import merge_config_dicts  # noqa: PLC0415

    return merge_config_dicts(config_to_dict(TrainConfig(model=type(config.model)())), saved)


def _checked_resume(run_dir: Path, config: TrainConfig, resume: bool) -> dict | None:
    """The run's ``last.pt`` when resuming (same method, same config but ``steps``), else None; errors for a
    directory that already holds a run without ``resume`` or holds none with it."""
    last_path = run_dir / "last.pt"
    if not resume:
        if last_path.exists():
            raise InvalidInputError(f"{run_dir} already holds a training run (last.pt); use --resume to continue it "
                                    f"or another --out.")
        return None
    if not last_path.is_file():
        raise InvalidInputError(f"--resume: {run_dir} has no last.pt to resume from; start without --resume.")
    ckpt = read_train_checkpoint(last_path)
    if ckpt["method"] != config.method:
        raise InvalidInputError(f"--resume: {run_dir} is a {ckpt['method']!r} run, not {config.method!r}.")
    saved = _with_defaults(ckpt["config"], config)
    diff = _config_diff({k: v for k, v in saved.items() if k != "steps"},
                        {k: v for k, v in config_to_dict(config).items() if k != "steps"})
    if diff:
        raise InvalidInputError(f"--resume: {run_dir} was trained with another config; differing keys: "
                                f"{'; '.join(diff[:8])}. Resume with the run's config.yaml.")
    return ckpt


def train(task_cls, objects: dict, config: TrainConfig, run_dir: str | Path, *, resume: bool = False,
          device: str = "cpu", progress: bool = True, init_weights: str | Path | None = None) -> TrainResult:
    """Train ``task_cls``'s model (e.g. :class:`iterpose.train.repose_task.ReposeTask`) on ``objects``.

    ``init_weights``: a weights file (``final.pt``, ``weights/lmo-repose.pt``) whose model (same method, same model
    config) the new run starts from instead of a fresh initialisation (the optimiser and the step count start
    anew). The model config may differ only in the fields its class lists in ``INIT_CHANGEABLE`` (DeepIM: test-time
    settings, the zoom, the input focus and the training-only heads); a changed field in its
    ``INIT_OPTIONAL_WEIGHTS`` adds or drops the weights under that prefix (added ones start fresh). Ignored when
    resuming.

    Raises:
        InvalidInputError: ``run_dir`` already holds a run and ``resume`` is False; ``resume`` on a directory
            without ``last.pt`` or of another method or config.
        DataFormatError: a damaged ``last.pt``.
    """
    run_dir = Path(run_dir)
    dev = torch.device(device)
    dist = _Distributed(dev)
    if dev.type == "cuda" and dist.active:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    last_path, final_path = run_dir / "last.pt", run_dir / "final.pt"
    cfg_dict = config_to_dict(config)
    ckpt = _checked_resume(run_dir, config, resume)
    if dist.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg_dict, sort_keys=False))

    task = task_cls(objects, config, dist.world)
    model = task.build_model()
    if init_weights is not None and ckpt is None:
        _load_init_weights(model, init_weights, config, task)
    model = model.to(dev)
    groups = task.param_groups(model)
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.Adam(groups, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, config))
    start, prior_wall, prior_cpu = 0, 0.0, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["weights"], strict=True)
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start, prior_wall = int(ckpt["step"]), float(ckpt["wall_s"])
        prior_cpu = float(ckpt.get("cpu_s", 0.0))  # absent in checkpoints written before it was recorded
        torch.set_rng_state(ckpt["torch_rng"])
    log = _RunLog(run_dir, config, start, progress) if dist.rank == 0 else None
    clock = _Clock(prior_wall, prior_cpu, dist.world)
    state = {"step": start}

    def save_last() -> None:
        if dist.rank != 0:
            return
        save_checkpoint_atomic({
            "format": "iterpose-train", "format_version": TRAIN_FORMAT_VERSION, "method": config.method,
            "config": cfg_dict, "step": state["step"],
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
            "wall_s": clock.wall_s(), "cpu_s": clock.cpu_s()}, last_path)

    def on_sigterm(signum, frame):  # a scheduler's stop: save like Ctrl-C
        raise KeyboardInterrupt

    old_handler = signal.signal(signal.SIGTERM, on_sigterm) if _main_thread() else None
    amp = config.amp and dev.type == "cuda"
    last_save = time.perf_counter()
    samples = window_samples = 0
    window_t = time.perf_counter()
    try:
        model.train()
        for step in range(start, config.steps):
            batch = task.make_batch(step, dist.rank).to(dev)
            loss, stats = task.loss(model, batch, step, dist.rank, amp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            dist.average_gradients(params)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
            if torch.isfinite(grad_norm):
                opt.step()
            sched.step()
            state["step"] = step + 1
            n_obj = int(stats.get("objects", config.batch_size)) * dist.world
            samples += n_obj
            window_samples += n_obj
            if log is not None:
                log.step(stats)
                if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
                    now = time.perf_counter()
                    log.record({"step": step + 1, **stats, "lr": opt.param_groups[0]["lr"],
                                "grad_norm": float(grad_norm),
                                "samples_per_s": window_samples / max(now - window_t, 1e-9),
                                "wall_s": clock.wall_s(), "cpu_s": clock.cpu_s()})
                    window_t, window_samples = now, 0
            if time.perf_counter() - last_save >= config.checkpoint_every_s:
                save_last()
                last_save = time.perf_counter()
        save_last()
        if dist.rank == 0:
            save_checkpoint_atomic(task.export(model), final_path)
    except KeyboardInterrupt:
        save_last()
        raise
    finally:
        if log is not None:
            log.close()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
        dist.barrier()
        dist.close()
    wall = clock.call_s()
    return TrainResult(steps=state["step"], last_path=last_path, final_path=final_path if dist.rank == 0 else None,
                       wall_s=wall, total_wall_s=clock.wall_s(), samples_per_s=samples / max(wall, 1e-9))


def _load_init_weights(model: torch.nn.Module, path: str | Path, config: TrainConfig, task=None) -> None:
    from iterpose.refiners.checkpoint import read_refiner_checkpoint  # noqa: PLC0415

    ckpt = read_refiner_checkpoint(path)
    if ckpt["method"] != config.method and hasattr(task, "init_from"):
        task.init_from(model, ckpt, str(path))  # a task that can start from another method's model
        return
    if ckpt["method"] != config.method:
        raise InvalidInputError(f"--init-weights {path} holds a {ckpt['method']!r} model, not {config.method!r}.")
    saved = _with_defaults({"model": ckpt["config"]}, config)["model"]
    now = config_to_dict(config.model)
    changeable = getattr(type(config.model), "INIT_CHANGEABLE", ())
    diff = _config_diff({**saved, **{k: now.get(k) for k in changeable}}, now)
    if diff:
        raise InvalidInputError(f"--init-weights {path} was trained with another model config: {'; '.join(diff[:8])}.")
    # a changed field that adds or drops a module (its weights under a prefix): those keys may be missing or extra
    optional = tuple(prefix for field, prefix in getattr(type(config.model), "INIT_OPTIONAL_WEIGHTS", {}).items()
                     if saved.get(field) != now.get(field))
    try:
        missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=not optional)
    except RuntimeError as exc:
        raise InvalidInputError(f"--init-weights {path} does not fit this model (other objects?): "
                                f"{str(exc).splitlines()[0][:300]}") from None
    other = [k for k in missing + unexpected if not k.startswith(optional)]
    if other:
        raise InvalidInputError(f"--init-weights {path} does not fit this model (other objects?): {other[:5]}.")


def export_weights(task_cls, objects: dict, run_dir: str | Path, out_path: str | Path,
                   iterations: int | None = None) -> int:
    """Write the weights file of a run's ``last.pt`` (e.g. of a run that is still going or was stopped) to
    ``out_path``, atomically; returns the step it holds. The run's own config is used, except that ``iterations``
    (when given) becomes the refiner's default number of test-time iterations (a choice made on validation images
    after training; the run directory is not changed)."""
    from iterpose.train.config import config_from_dict  # noqa: PLC0415

    last = Path(run_dir) / "last.pt"
    if not last.is_file():
        raise InvalidInputError(f"--export: {run_dir} has no last.pt.")
    ckpt = read_train_checkpoint(last)
    if ckpt["method"] != task_cls.method:
        raise InvalidInputError(f"--export: {run_dir} is a {ckpt['method']!r} run, not {task_cls.method!r}.")
    config = config_from_dict(ckpt["config"], task_cls.model_config_cls)
    if iterations is not None:
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise InvalidInputError(f"--export --iterations must be a positive integer, got {iterations!r}.")
        if not hasattr(config.model, "iterations"):
            raise InvalidInputError(f"--export --iterations: a {task_cls.method!r} model does not iterate; drop "
                                    f"--iterations.")
        config = replace(config, model=replace(config.model, iterations=iterations))
    task = task_cls(objects, config)
    model = task.build_model()
    model.load_state_dict(ckpt["weights"], strict=True)
    save_checkpoint_atomic(task.export(model), out_path)
    return int(ckpt["step"])


def _main_thread() -> bool:
    import threading  # noqa: PLC0415

    return threading.current_thread() is threading.main_thread()
