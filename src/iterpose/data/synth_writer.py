"""Writing a synthetic BOP dataset (what ``iterpose synth`` does), resumable.

Layout written under ``out_dir`` (BOP format, millimetres at the boundary)::

    camera.json                      fx fy cx cy width height, depth_scale
    models/obj_<id>.ply              the input meshes (copied, or written by save_ply: ASCII, mm, normals, colours)
    models/models_info.json          diameters, boxes, symmetries (mm)
    models_eval/                     the same files (evaluation uses their vertices)
    <split>_targets_bop19.json       instances with visib_fract >= 0.1, counted per (image, object)
    <split>/<scene>/rgb/<im>.png     8-bit RGB
    <split>/<scene>/depth/<im>.png   16-bit depth, value x depth_scale = mm (default depth_scale 0.1: 0.1 mm steps,
                                     up to 6.55 m)
    <split>/<scene>/mask/<im>_<gt>.png, mask_visib/<im>_<gt>.png
    <split>/<scene>/scene_camera.json, scene_gt.json, scene_gt_info.json
    <split>/<scene>/.synth/<im>.json per-image sidecar: GT entries, settings fingerprint (written last)

Resume: image ``k`` is generated from ``scene_rng(seed, k)`` alone. An image whose sidecar exists (it is written
after the image's PNGs, all written atomically) and whose files all exist is skipped: its files are not rewritten
and its GT comes from the sidecar. The three scene JSON files and the targets file are rewritten every
``flush_every`` images and at the end, so an interrupted run leaves a readable dataset of the images done so far
and a resumed run ends byte-identical to an uninterrupted one. A sidecar written with other settings (seed,
config, objects) is an error: the output folder belongs to another run.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iterpose.data.bop_writer import (
    atomic_write_bytes,
    save_camera,
    save_depth_mm,
    save_json,
    save_mask,
    save_rgb,
    save_scene_camera,
    save_scene_gt,
    save_scene_gt_info,
    save_targets,
)
from iterpose.data.synth import SynthConfig, SynthScene, generate_prepared, prepare_objects, scene_rng
from iterpose.data.units import T_co_to_Rt_mm, mm_from_m
from iterpose.errors import DataFormatError, InvalidInputError
from iterpose.mesh.io import save_ply  # noqa: F401 (its home is mesh.io; importable here as before)
from iterpose.mesh.model import ObjectModel
from iterpose.mesh.models_info import compute_model_info, save_models_info

__all__ = ["DEPTH_SCALE", "TARGET_MIN_VISIB", "SynthWriteReport", "write_models", "write_synth_dataset"]

DEPTH_SCALE = 0.1
"""Millimetres per stored depth unit: 0.1 mm resolution, 6.5535 m maximum."""

TARGET_MIN_VISIB = 0.1
"""BOP19: an instance is a target when at least this fraction of it is visible."""

_SIDECAR_VERSION = 2  # 2: BOP boxes without +1, cam_K = the float64 K the images were rendered with


@dataclass(frozen=True)
class SynthWriteReport:
    """What :func:`write_synth_dataset` did.

    Attributes:
        out_dir: the dataset root. n_images: images in the dataset. n_written: images generated and written by
        this call. n_skipped: images found complete and kept. n_instances: GT instances in all images.
        n_targets: BOP19 targets (instances with visib_fract >= 0.1). seconds: wall time of the call.
    """

    out_dir: Path
    n_images: int
    n_written: int
    n_skipped: int
    n_instances: int
    n_targets: int
    seconds: float


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


def write_models(out_dir, objects: Sequence[ObjectModel], model_files: Mapping[int, Path] | None = None) -> None:
    """Write ``models/`` and ``models_eval/`` (meshes + ``models_info.json``) under ``out_dir``.

    Args:
        out_dir: dataset root. objects: the models (unique ``obj_id``).
        model_files: optional ``{obj_id: mesh file}`` (BOP mm PLYs) copied verbatim instead of re-writing the
            mesh with :func:`save_ply`.

    Files whose content would not change are left untouched (a resumed run does not rewrite them).
    """
    out_dir = Path(out_dir)
    infos = {m.obj_id: compute_model_info(m) for m in objects}
    for sub in ("models", "models_eval"):
        d = out_dir / sub
        d.mkdir(parents=True, exist_ok=True)
        for m in objects:
            src = None if model_files is None else model_files.get(m.obj_id)
            if src is not None:
                dest = d / f"obj_{m.obj_id:06d}{Path(src).suffix.lower()}"
                _write_if_changed(dest, Path(src).read_bytes())
            else:
                with tempfile.TemporaryDirectory(dir=d) as tmp:
                    p = save_ply(Path(tmp) / "m.ply", m)
                    _write_if_changed(d / f"obj_{m.obj_id:06d}.ply", p.read_bytes())
        with tempfile.TemporaryDirectory(dir=d) as tmp:
            save_models_info(Path(tmp) / "models_info.json", infos)
            _write_if_changed(d / "models_info.json", (Path(tmp) / "models_info.json").read_bytes())


def _fingerprint(objects: Sequence[ObjectModel], config: SynthConfig, seed: int, depth_scale: float) -> str:
    content = {"config": config.to_dict(), "seed": int(seed), "depth_scale": depth_scale,
               "objects": [[m.obj_id, m.mesh_hash()] for m in objects], "version": _SIDECAR_VERSION}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _entries(scene: SynthScene, K: np.ndarray, depth_scale: float) -> tuple[dict, list, list]:
    # K: the float64 config K the scene was rendered with (scene.K is its float32 copy), as in camera.json
    cam = {"cam_K": np.asarray(K, np.float64).reshape(-1).tolist(), "depth_scale": depth_scale}
    R, t = T_co_to_Rt_mm(scene.T_co.double().numpy())
    gt, info = [], []
    for k in range(scene.num_instances):
        gt.append({"cam_R_m2c": R[k].reshape(-1).tolist(), "cam_t_m2c": t[k].reshape(-1).tolist(),
                   "obj_id": int(scene.obj_ids[k])})
        px_all = int(scene.px_count_all[k])
        info.append({"bbox_obj": [int(v) for v in scene.bbox_obj[k]],
                     "bbox_visib": [int(v) for v in scene.bbox_visib[k]],
                     "px_count_all": px_all, "px_count_valid": px_all, "px_count_visib": int(scene.px_count_visib[k]),
                     "visib_fract": float(scene.visib_fract[k])})
    return cam, gt, info


def _image_files(scene_dir: Path, im_id: int, n_inst: int) -> list[Path]:
    files = [scene_dir / "rgb" / f"{im_id:06d}.png", scene_dir / "depth" / f"{im_id:06d}.png"]
    for g in range(n_inst):
        name = f"{im_id:06d}_{g:06d}.png"
        files += [scene_dir / "mask" / name, scene_dir / "mask_visib" / name]
    return files


def _load_sidecar(path: Path, fingerprint: str) -> dict | None:
    """The sidecar of a finished image, ``None`` if absent; an error if it belongs to another run."""
    if not path.is_file():
        return None
    try:
        side = json.loads(path.read_text())
        fp = side["fingerprint"]
        side["scene_camera"], side["scene_gt"], side["scene_gt_info"]  # noqa: B018 (presence check)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        return None  # damaged: regenerate the image
    if fp != fingerprint:
        raise InvalidInputError(
            f"write_synth_dataset: {path} was written by a run with other settings (seed, config or objects "
            f"differ: fingerprint {fp} != {fingerprint}); use a new output folder or delete this one")
    return side


def _write_image(scene: SynthScene, scene_dir: Path, im_id: int, depth_scale: float) -> None:
    for g in range(scene.num_instances):
        save_mask(scene_dir / "mask" / f"{im_id:06d}_{g:06d}.png", scene.mask_full[g].numpy())
        save_mask(scene_dir / "mask_visib" / f"{im_id:06d}_{g:06d}.png", scene.mask_visible[g].numpy())
    save_depth_mm(scene_dir / "depth" / f"{im_id:06d}.png", mm_from_m(scene.depth_m.double().numpy()), depth_scale)
    rgb = np.round(scene.rgb.permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
    save_rgb(scene_dir / "rgb" / f"{im_id:06d}.png", rgb)


def _produce(meshes, config: SynthConfig, seed: int, im_id: int, scene_dir: Path, depth_scale: float, fp: str
             ) -> dict:
    """Generate image ``im_id``, write its PNGs, then its sidecar (last); return the sidecar as read back."""
    scene = generate_prepared(meshes, config, scene_rng(seed, im_id))
    _write_image(scene, scene_dir, im_id, depth_scale)
    cam, gt, info = _entries(scene, config.K_matrix, depth_scale)
    side_path = scene_dir / ".synth" / f"{im_id:06d}.json"
    save_json(side_path, {"fingerprint": fp, "scene_camera": cam, "scene_gt": gt, "scene_gt_info": info})
    return json.loads(side_path.read_text())  # the same values a resumed run reads back


_WORKER: dict = {}


def _worker_init(objects, config, seed, scene_dir, depth_scale, fp) -> None:
    import numba
    import torch

    torch.set_num_threads(1)  # one image per process: processes, not threads, share the cores
    numba.set_num_threads(1)
    _WORKER.update(meshes=prepare_objects(objects), args=(config, seed), rest=(scene_dir, depth_scale, fp))


def _worker_produce(im_id: int) -> tuple[int, dict]:
    config, seed = _WORKER["args"]
    scene_dir, depth_scale, fp = _WORKER["rest"]
    return im_id, _produce(_WORKER["meshes"], config, seed, im_id, scene_dir, depth_scale, fp)


def _flush(root: Path, scene_dir: Path, split: str, scene_id: int, done: dict[int, dict]) -> int:
    ids = sorted(done)
    save_scene_camera(scene_dir / "scene_camera.json", {i: done[i]["scene_camera"] for i in ids})
    save_scene_gt(scene_dir / "scene_gt.json", {i: done[i]["scene_gt"] for i in ids})
    save_scene_gt_info(scene_dir / "scene_gt_info.json", {i: done[i]["scene_gt_info"] for i in ids})
    targets = []
    for i in ids:
        count = Counter(g["obj_id"] for g, info in zip(done[i]["scene_gt"], done[i]["scene_gt_info"])
                        if info["visib_fract"] >= TARGET_MIN_VISIB)
        targets += [{"im_id": i, "inst_count": c, "obj_id": o, "scene_id": scene_id} for o, c in sorted(count.items())]
    save_targets(root / f"{split}_targets_bop19.json", targets)
    return len(targets)


def write_synth_dataset(objects: Sequence[ObjectModel] | Mapping[int, ObjectModel], out_dir, n_images: int,
                        config: SynthConfig = SynthConfig(), seed: int = 0, split: str = "test", scene_id: int = 0,
                        progress: bool = True, flush_every: int = 50, depth_scale: float = DEPTH_SCALE,
                        model_files: Mapping[int, Path] | None = None, stop_after: int | None = None,
                        workers: int = 1) -> SynthWriteReport:
    """Generate ``n_images`` synthetic images and write them as a BOP dataset (see the module docstring).

    Args:
        objects: target models with unique ``obj_id`` (a sequence or the dict of ``load_objects``).
        out_dir: dataset root (created). n_images: images 0 .. n_images-1.
        config: scene settings. seed: image ``k`` uses ``scene_rng(seed, k)``.
        split, scene_id: where the images go: ``out_dir/<split>/<scene_id:06d>/``.
        progress: show a tqdm progress bar on stderr. flush_every: rewrite the scene JSON files this often.
        depth_scale: mm per stored depth unit. model_files: ``{obj_id: file}`` to copy as the models.
        stop_after: stop after writing this many new images (tests use it to simulate an interruption).
        workers: processes generating and writing images in parallel (``forkserver`` start, 1 thread each);
            1 = in this process. The output does not depend on it.

    Returns:
        :class:`SynthWriteReport`.

    Raises:
        InvalidInputError: bad counts, duplicate object ids, depth that cannot fit 16 bits with ``depth_scale``,
            a folder written with other settings.
    """
    start = time.perf_counter()
    if isinstance(objects, Mapping):
        objects = list(objects.values())
    meshes = prepare_objects(objects)
    _check_write_args(objects, meshes, n_images, workers, flush_every, config, depth_scale, split)
    root = Path(out_dir)
    scene_dir = root / split / f"{int(scene_id):06d}"
    for folder in ("rgb", "depth", "mask", "mask_visib", ".synth"):
        (scene_dir / folder).mkdir(parents=True, exist_ok=True)
    write_models(root, objects, model_files)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        save_camera(Path(tmp) / "camera.json", config.K_matrix, config.width, config.height, depth_scale)
        _write_if_changed(root / "camera.json", (Path(tmp) / "camera.json").read_bytes())
    fp = _fingerprint(objects, config, seed, depth_scale)
    done, todo = _finished_images(scene_dir, n_images, fp)
    skipped = len(done)
    if stop_after is not None:
        todo = todo[:max(0, int(stop_after))]

    from tqdm import tqdm

    bar = tqdm(total=n_images, initial=skipped, disable=not progress, desc="iterpose synth", unit="img")
    written = 0
    images = _produce_images(objects, meshes, config, seed, scene_dir, depth_scale, fp, todo, workers)
    try:
        for im_id, side in images:
            done[im_id] = side
            written += 1
            bar.update(1)
            if written % flush_every == 0:
                _flush(root, scene_dir, split, int(scene_id), done)
    finally:
        images.close()  # shuts the worker pool down now, also on an error
        bar.close()
        if done:
            n_targets = _flush(root, scene_dir, split, int(scene_id), done)
    if not done:
        raise DataFormatError(f"write_synth_dataset: no image was written to {scene_dir}")
    return SynthWriteReport(out_dir=root, n_images=len(done), n_written=written, n_skipped=skipped,
                            n_instances=sum(len(d["scene_gt"]) for d in done.values()), n_targets=n_targets,
                            seconds=time.perf_counter() - start)


def _check_write_args(objects, meshes, n_images, workers, flush_every, config: SynthConfig, depth_scale: float,
                      split: str) -> None:
    """Raise :class:`InvalidInputError` for the bad arguments of :func:`write_synth_dataset`."""
    ids = [m.obj_id for m in objects]
    if len(set(ids)) != len(ids):
        raise InvalidInputError(f"write_synth_dataset: object ids must be unique in a BOP dataset, got {ids}")
    if not isinstance(n_images, int) or isinstance(n_images, bool) or n_images < 1:
        raise InvalidInputError(f"write_synth_dataset: n_images must be an int >= 1, got {n_images!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise InvalidInputError(f"write_synth_dataset: workers must be an int >= 1, got {workers!r}")
    if not isinstance(flush_every, int) or flush_every < 1:
        raise InvalidInputError(f"write_synth_dataset: flush_every must be an int >= 1, got {flush_every!r}")
    far_mm = mm_from_m(config.distance_m[1] + 2 * max(m.radius for m in meshes))
    if not depth_scale > 0 or far_mm / depth_scale > 65535:
        raise InvalidInputError(
            f"write_synth_dataset: depth up to ~{far_mm:.0f} mm does not fit a 16-bit PNG with depth_scale "
            f"{depth_scale} (max {65535 * depth_scale:.0f} mm); use a larger depth_scale or a smaller distance_m")
    if not split or "/" in split or split.startswith("."):
        raise InvalidInputError(f"write_synth_dataset: split must be a plain folder name such as 'test', got {split!r}")


def _finished_images(scene_dir: Path, n_images: int, fp: str) -> tuple[dict[int, dict], list[int]]:
    """``({im_id: sidecar} of the images already written with these settings, [im_ids still to write])``."""
    done: dict[int, dict] = {}
    todo = []
    for im_id in range(n_images):
        side = _load_sidecar(scene_dir / ".synth" / f"{im_id:06d}.json", fp)
        if side is not None and all(p.is_file() for p in _image_files(scene_dir, im_id, len(side["scene_gt"]))):
            done[im_id] = side
        else:
            todo.append(im_id)
    return done, todo


def _produce_images(objects, meshes, config: SynthConfig, seed: int, scene_dir: Path, depth_scale: float, fp: str,
                    todo: list[int], workers: int):
    """Yield ``(im_id, sidecar)`` of each image of ``todo`` once written: in this process, or in ``workers``
    processes (``forkserver``, in ``todo`` order either way)."""
    if workers == 1 or len(todo) <= 1:
        for im_id in todo:
            yield im_id, _produce(meshes, config, seed, im_id, scene_dir, depth_scale, fp)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("forkserver"),
                               initializer=_worker_init,
                               initargs=(list(objects), config, seed, scene_dir, depth_scale, fp))
    try:
        yield from pool.map(_worker_produce, todo)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
