"""Refinement speed on one synthetic image (``iterpose bench``): full :meth:`Refiner.refine` calls, timed per part.

For each object count ``n``, :func:`bench_refiner` renders ONE image (640 x 480, LM-O intrinsics by default) holding
``n`` of the given objects (the first ``n`` by id, cycling through them when ``n`` exceeds their number) at random
visible poses with iterpose's synthetic scene generator (no distractors, no occluders), perturbs the ground-truth
poses a little (:data:`INIT_NOISE`, seeded) and refines all ``n`` objects together with the refiner's default
iterations — everything a user's call costs, the feature network of a learned method included. ``warmup`` untimed
calls (numba compilation, allocator and cache warm-up) precede ``repeats`` timed ones; the figures are medians.

Components of one call (from :class:`~iterpose.refiners.base.RefineTimings`): ``features`` (the network: RePOSE's
image feature network; DeepIM's whole network on the zoomed pairs, every iteration), ``render`` (rendering inside
the iterations), ``lm`` (residuals, Jacobians, normal equations and the LM solves; 0 for DeepIM) and ``other`` (the
rest of the wall time: input checks, crops and zoom, histograms, accept test, scores). On CUDA each call is
bracketed by ``torch.cuda.synchronize``; the components are the refiner's own clocks, so on CUDA they show where the
host waited rather than where the GPU worked. Medians are taken per column, so the components of a row need not add
up exactly to its ``ms_per_image``.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.data.synth import LMO_K, SynthConfig, generate_prepared, prepare_objects, scene_rng
from iterpose.errors import InvalidInputError
from iterpose.refiners.base import Refiner, RefineStatus

__all__ = ["INIT_NOISE", "BenchConfig", "BenchRow", "BenchResult", "bench_refiner", "machine_info"]

INIT_NOISE = PerturbConfig(rot_std_deg=5.0, trans_std_m=(0.005, 0.005, 0.02), max_rot_deg=15.0)
"""Noise of the initial poses: ground truth perturbed by 5° per Euler angle and 5 / 5 / 20 mm (camera x, y, z)."""

_SCENE_TRIES = 20  # scenes drawn per count before giving up on placing n visible objects


@dataclass(frozen=True)
class BenchConfig:
    """What :func:`bench_refiner` measures (checked when built: :class:`~iterpose.errors.InvalidInputError`).

    Attributes:
        counts: object counts per image, each >= 1 (one image per count).
        repeats: timed calls per count (>= 1); the figures are their medians.
        warmup: untimed calls per count before them (>= 0).
        seed: seed of the scenes and of the initial-pose noise.
        height, width: image size in pixels (640 x 480 for LM-O).
        K: 9 row-major intrinsics in pixels (default LM-O's).
        distance_m: (min, max) camera depth of the objects, metres.
        init_noise: noise of the initial poses around the ground truth.
    """

    counts: tuple[int, ...] = (1, 2, 4, 8)
    repeats: int = 10
    warmup: int = 2
    seed: int = 0
    height: int = 480
    width: int = 640
    K: tuple[float, ...] = LMO_K
    distance_m: tuple[float, float] = (0.5, 1.2)
    init_noise: PerturbConfig = INIT_NOISE

    def __post_init__(self) -> None:
        c = self.counts
        if not (isinstance(c, tuple) and c and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                                                   for n in c)):
            raise InvalidInputError(f"BenchConfig.counts: expected a non-empty tuple of ints >= 1 (objects per "
                                    f"image), got {c!r}.")
        if len(set(c)) != len(c):
            raise InvalidInputError(f"BenchConfig.counts: each count once, got {c!r}.")
        for name, lo in (("repeats", 1), ("warmup", 0), ("seed", 0)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
                raise InvalidInputError(f"BenchConfig.{name}: expected an int >= {lo}, got {v!r}.")
        # the scene settings are checked by SynthConfig
        self.synth_config(1)

    def synth_config(self, n: int) -> SynthConfig:
        """The scene generator's settings for an image of ``n`` objects (no clutter; each object's centre projects at
        least 48 px inside the image, less in small images)."""
        return SynthConfig(height=self.height, width=self.width, K=tuple(self.K), objects_per_image=(n, n),
                           distance_m=tuple(self.distance_m), margin_px=min(48.0, min(self.height, self.width) / 4),
                           distractors=(0, 0), occluders=(0, 0), min_visib_fract=0.3)


@dataclass(frozen=True)
class BenchRow:
    """Timings of one object count (milliseconds per image, medians over the timed calls).

    Attributes:
        n_objects: objects in the image (all refined in one call).
        obj_ids: the object id of each of them.
        ms_per_image: wall time of a whole :meth:`Refiner.refine` call.
        min_ms_per_image: the fastest timed call (on a shared machine, the least disturbed one).
        features_ms, render_ms, lm_ms, other_ms: the parts (see the module docstring).
        refined: objects whose pose went through the refiner in the last call (not passed through as invalid).
    """

    n_objects: int
    obj_ids: tuple[int, ...]
    ms_per_image: float
    min_ms_per_image: float
    features_ms: float
    render_ms: float
    lm_ms: float
    other_ms: float
    refined: int


@dataclass(frozen=True)
class BenchResult:
    """What :func:`bench_refiner` measured.

    Attributes:
        method: the refiner's method name. device: where it ran (``"cpu"``, ``"cuda"``, ...).
        iterations: iterations per call (the refiner's default). image_size: ``(height, width)`` pixels.
        rows: one :class:`BenchRow` per object count, in the order asked.
        repeats, warmup, seed, init_noise: as in :class:`BenchConfig`. threads: torch's CPU threads during the run.
        machine: :func:`machine_info` plus the load averages at the start and the end.
    """

    method: str
    device: str
    iterations: int
    image_size: tuple[int, int]
    rows: tuple[BenchRow, ...]
    repeats: int
    warmup: int
    seed: int
    init_noise: PerturbConfig
    threads: int
    machine: Mapping[str, object]

    def to_dict(self) -> dict:
        """The JSON document of ``iterpose bench --json`` (counts as string keys, milliseconds rounded to 0.01)."""
        r2 = lambda x: round(float(x), 2)  # noqa: E731
        return {
            "method": self.method,
            "device": self.device,
            "iterations": self.iterations,
            "image_size": list(self.image_size),
            "ms_per_image": {str(r.n_objects): r2(r.ms_per_image) for r in self.rows},
            "components_ms": {str(r.n_objects): {"features": r2(r.features_ms), "render": r2(r.render_ms),
                                                 "lm": r2(r.lm_ms), "other": r2(r.other_ms)} for r in self.rows},
            "min_ms_per_image": {str(r.n_objects): r2(r.min_ms_per_image) for r in self.rows},
            "obj_ids": {str(r.n_objects): list(r.obj_ids) for r in self.rows},
            "refined": {str(r.n_objects): r.refined for r in self.rows},
            "repeats": self.repeats,
            "warmup": self.warmup,
            "seed": self.seed,
            "threads": self.threads,
            "init_noise": {"rot_std_deg": self.init_noise.rot_std_deg,
                           "trans_std_m": list(self.init_noise.trans_std_m),
                           "max_rot_deg": self.init_noise.max_rot_deg},
            "timing_note": "medians per column over the timed calls after warm-up; features/render/lm are the "
                           "refiner's own clocks, other = wall time minus them",
            "machine": dict(self.machine),
        }

    def format_table(self) -> str:
        """A plain-text table: one line per object count, milliseconds per image and per component."""
        head = ("objects", "ms/image", "features", "render", "LM", "other")
        lines = [f"{self.method} on {self.device}, {self.iterations} iterations, {self.image_size[1]}x"
                 f"{self.image_size[0]} image, {self.threads} thread(s), median of {self.repeats} after "
                 f"{self.warmup} warm-up",
                 "  ".join(f"{h:>9}" for h in head)]
        for r in self.rows:
            vals = (r.ms_per_image, r.features_ms, r.render_ms, r.lm_ms, r.other_ms)
            lines.append(f"{r.n_objects:>9}  " + "  ".join(f"{v:>9.1f}" for v in vals))
        return "\n".join(lines)


def machine_info(device: str = "cpu") -> dict:
    """Platform, CPU, library versions, thread counts and (on CUDA) the GPU: for benchmark JSON files."""
    import numba  # noqa: PLC0415

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "numba": numba.__version__,
            "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
            "numba_threads": numba.get_num_threads()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _scene(meshes, config: BenchConfig, n: int):
    """One image of ``n`` visible objects (all of ``meshes``, in random places); redrawn when the generator had to
    drop some (crowded layouts)."""
    synth = config.synth_config(n)
    for k in range(_SCENE_TRIES):
        scene = generate_prepared(meshes, synth, scene_rng(config.seed, 1000 * n + k))
        if scene.num_instances == n:
            return scene
    raise InvalidInputError(f"bench: could not place {n} visible objects in one {config.width}x{config.height} "
                            f"image ({_SCENE_TRIES} layouts tried); ask for fewer objects per image.")


def bench_refiner(refiner: Refiner, objects: Mapping[int, object], config: BenchConfig = BenchConfig(), *,
                  method: str | None = None, device: str | torch.device = "cpu") -> BenchResult:
    """Time full refinements of one synthetic image per object count.

    Args:
        refiner: the refiner to time (its network, if any, already on ``device``); it must know every object.
        objects: ``{obj_id: ObjectModel}`` the scenes are made of (metres); the first ``n`` by id appear in the
            image of ``n`` objects, cycling when ``n`` exceeds their number.
        config: counts, repeats, warm-up, seed and scene settings.
        method: name recorded in the result (default: the refiner's class name).
        device: torch device of the images and poses.

    Returns:
        :class:`BenchResult`.

    Raises:
        InvalidInputError: no objects, objects the refiner does not know, a bad config, or an image that cannot
            hold ``n`` visible objects.
    """
    if not isinstance(config, BenchConfig):
        raise InvalidInputError(f"bench_refiner: config must be a BenchConfig, got {type(config).__name__}.")
    if not objects:
        raise InvalidInputError("bench_refiner: objects is empty; give at least one ObjectModel.")
    unknown = sorted(int(k) for k in objects if int(k) not in refiner.objects)
    if unknown:
        raise InvalidInputError(f"bench_refiner: objects {unknown} are not objects of the refiner (it knows "
                                f"{sorted(int(k) for k in refiner.objects)}).")
    device = torch.device(device)
    cuda = device.type == "cuda"
    ids = sorted(int(k) for k in objects)
    load_start = _load_average()
    rows = []
    for n in config.counts:
        chosen = [objects[ids[i % len(ids)]] for i in range(n)]
        scene = _scene(prepare_objects(chosen), config, n)
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + n)
        init = perturb_poses(scene.T_co, config.init_noise, gen).to(device)
        images = scene.rgb.contiguous()[None].to(device)
        K = scene.K[None].to(device)
        obj_ids = scene.obj_ids.to(device)
        image_index = torch.zeros(n, dtype=torch.int64, device=device)
        wall, feat, rend, lm, other = [], [], [], [], []
        out = None
        for call in range(config.warmup + config.repeats):
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            out = refiner.refine(images, K, obj_ids, init, image_index)
            if cuda:
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            if call < config.warmup:
                continue
            t = out.timings
            parts = (t.features_s, t.render_s, t.terms_s + t.solve_s)
            wall.append(dt)
            feat.append(parts[0])
            rend.append(parts[1])
            lm.append(parts[2])
            other.append(max(dt - sum(parts), 0.0))
        med = lambda xs: 1000.0 * statistics.median(xs)  # noqa: E731
        refined = sum(1 for s in out.status.tolist() if RefineStatus(s).went_through)
        rows.append(BenchRow(n_objects=n, obj_ids=tuple(int(i) for i in scene.obj_ids.tolist()),
                             ms_per_image=med(wall), min_ms_per_image=1000.0 * min(wall), features_ms=med(feat),
                             render_ms=med(rend), lm_ms=med(lm), other_ms=med(other), refined=refined))
    machine = machine_info(str(device))
    machine["load_average_start"] = load_start
    machine["load_average_end"] = _load_average()
    return BenchResult(method=method or type(refiner).__name__, device=str(device),
                       iterations=int(refiner.default_iterations), image_size=(config.height, config.width),
                       rows=tuple(rows), repeats=config.repeats, warmup=config.warmup, seed=config.seed,
                       init_noise=config.init_noise, threads=torch.get_num_threads(), machine=machine)
