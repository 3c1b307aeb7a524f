"""Validation of a BOP dataset folder, reported as a list of :class:`~iterpose.mesh.checks.Finding`.

Reads the files with plain ``json`` and ``pathlib`` (independent of :mod:`iterpose.data.bop`, so it can diagnose a
folder that reader would refuse). Checks: ``camera.json``; ``models/`` with ``models_info.json`` and every mesh;
``models_eval/``; the split folder and its scenes; ``scene_camera.json`` intrinsics; ``scene_gt.json`` poses and
object ids; ``scene_gt_info.json`` consistency; that the images exist (listed, not decoded); the targets file.
``depth/`` and ``mask*/`` folders are optional: their absence is an info, not an error.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np

from iterpose.mesh.checks import Finding, check_models_dir

__all__ = ["check_dataset", "check_camera_matrix", "MAX_SIMILAR"]

MAX_SIMILAR = 5
"""At most this many findings of one kind are listed per file; the rest are counted in one extra line."""

_INT_KEY_RE = re.compile(r"-?[0-9]+")  # an image id key int() accepts (unlike "--1" or "²", which fool isdigit)
_IMAGE_DIRS = ("rgb", "gray")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class _Report:
    """Collects findings, listing at most :data:`MAX_SIMILAR` per (file, kind) and counting the rest."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self._counts: Counter = Counter()
        self._levels: dict = {}

    def add(self, level: str, where: str, message: str, kind: tuple | None = None) -> None:
        if kind is not None:
            self._counts[kind] += 1
            self._levels[kind] = level
            if self._counts[kind] > MAX_SIMILAR:
                return
        self.findings.append(Finding(level, where, message))

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    def done(self) -> list[Finding]:
        for kind, n in self._counts.items():
            if n > MAX_SIMILAR:
                self.findings.append(
                    Finding(self._levels[kind], kind[0], f"... and {n - MAX_SIMILAR} more like the above ({kind[1]})")
                )
        return self.findings


def _load_json(path: Path, rep: _Report, where: str):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        rep.add("error", where, f"not valid JSON ({exc}); fix or regenerate the file")
        return None


def _numbers(value, n: int) -> np.ndarray | None:
    if not isinstance(value, list) or len(value) != n:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    arr = np.array(value, dtype=np.float64)
    return arr if np.isfinite(arr).all() else None


def check_camera_matrix(values, image_size: tuple[int, int] | None = None) -> list[str]:
    """Problems of a BOP ``cam_K`` (9 row-major floats, pixels, OpenCV convention) as messages; empty when valid.

    Valid: 9 finite numbers, ``fx > 0``, ``fy > 0``, ``K[1,0] == 0``, bottom row ``0 0 1``, and, when
    ``image_size = (width, height)`` is known, the principal point inside the image
    (:func:`iterpose.geometry.camera.principal_point_in_image`: ``-0.5 < cx < width - 0.5``, likewise ``cy``, the
    check ``iterpose refine`` makes). A non-zero skew ``K[0,1]`` is allowed (reported by the caller if wanted).
    """
    k = _numbers(values, 9)
    if k is None:
        return [f"expected 9 finite numbers (row-major 3x3, pixels), got {values!r:.100}"]
    K = k.reshape(3, 3)
    problems = []
    if not K[0, 0] > 0 or not K[1, 1] > 0:
        problems.append(f"focal lengths must be > 0, got fx={K[0, 0]:g}, fy={K[1, 1]:g}")
    if K[1, 0] != 0 or not np.allclose(K[2], [0, 0, 1], rtol=0, atol=1e-9):
        problems.append(f"not a camera matrix: K[1,0] must be 0 and the bottom row 0 0 1, got {K[1:].tolist()}")
    if image_size is not None and not problems:
        w, h = image_size
        from iterpose.geometry.camera import principal_point_in_image  # noqa: PLC0415 (torch, only with a size)

        if not principal_point_in_image(K, w, h):
            problems.append(
                f"principal point (cx={K[0, 2]:g}, cy={K[1, 2]:g}) is outside the {w}x{h} image; is K for "
                f"another resolution?"
            )
    return problems


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG header, without decoding; ``None`` for other files."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    return None


def _check_camera_json(root: Path, rep: _Report) -> tuple[int, int] | None:
    cams = sorted(root.glob("camera*.json"))
    if not cams:
        rep.add("info", str(root), "no camera.json (BOP's simulation parameters; per-image K is in scene_camera.json)")
        return None
    size = None
    for path in cams:
        where = path.name
        cam = _load_json(path, rep, where)
        if cam is None:
            continue
        if not isinstance(cam, dict):
            rep.add("error", where, "expected a JSON object with fx, fy, cx, cy, width, height")
            continue
        missing = [k for k in ("fx", "fy", "cx", "cy", "width", "height") if k not in cam]
        if missing:
            rep.add("error", where, f"missing keys {missing}")
            continue
        try:
            w, h = int(cam["width"]), int(cam["height"])
            K = [cam["fx"], 0.0, cam["cx"], 0.0, cam["fy"], cam["cy"], 0.0, 0.0, 1.0]
        except (TypeError, ValueError):
            rep.add("error", where, "width and height must be integers")
            continue
        for msg in check_camera_matrix(K, (w, h)):
            rep.add("error", where, msg)
        if size is None and w > 0 and h > 0:
            size = (w, h)
    return size


def _check_models(root: Path, rep: _Report, unit: str, check_meshes: bool) -> set[int]:
    """Models folders; returns the object ids that have a model."""
    model_dirs = sorted(
        p for p in root.iterdir() if p.is_dir() and (p.name == "models" or p.name.startswith("models_"))
    )
    render_dirs = [p for p in model_dirs if p.name != "models_eval"]
    if not render_dirs:
        rep.add("error", str(root), "no models/ folder (BOP: models/obj_000001.ply, ... and models/models_info.json)")
    ids: set[int] = set()
    for d in model_dirs:
        purpose = "eval" if d.name == "models_eval" else "render"
        if check_meshes:
            findings, found = check_models_dir(d, unit=unit, purpose=purpose, require_info=True, label=d.name)
            rep.extend(findings)
        else:
            from iterpose.mesh.checks import mesh_files

            found = set(mesh_files(d))
        if purpose == "render":
            ids |= found
    if render_dirs and not (root / "models_eval").is_dir():
        rep.add("warning", str(root), "no models_eval/ folder: BOP evaluation (ADD, MSSD, MSPD) uses its vertices")
    return ids


def _check_scene_camera(path: Path, rel: str, rep: _Report, size) -> set[int] | None:
    content = _load_json(path, rep, rel)
    if content is None:
        return None
    if not isinstance(content, dict):
        rep.add("error", rel, "expected a JSON object keyed by image id")
        return None
    ids = set()
    for key, cam in content.items():
        where = f"{rel}[{key!r}]"
        if not _INT_KEY_RE.fullmatch(key):
            rep.add("error", where, "key is not an integer image id", kind=(rel, "bad key"))
            continue
        ids.add(int(key))
        if not isinstance(cam, dict):
            rep.add("error", where, "expected an object with cam_K", kind=(rel, "bad entry"))
            continue
        if "cam_K" not in cam:
            if "cam_model" in cam:
                rep.add(
                    "info",
                    where,
                    "cam_model (not a pinhole cam_K): intrinsics not checked",
                    kind=(rel, "cam_model"),
                )
            else:
                rep.add("error", where, "missing 'cam_K' (9 row-major floats)", kind=(rel, "no cam_K"))
            continue
        for msg in check_camera_matrix(cam["cam_K"], size):
            rep.add("error", f"{where}.cam_K", msg, kind=(rel, "bad cam_K"))
        if "depth_scale" in cam:
            ds = cam["depth_scale"]
            if not isinstance(ds, (int, float)) or isinstance(ds, bool) or not math.isfinite(ds) or ds <= 0:
                rep.add("error", f"{where}.depth_scale", f"must be a number > 0, got {ds!r}", kind=(rel, "depth_scale"))
    return ids


def _check_instance(inst, where: str, rel: str, rep: _Report, model_ids: set[int]) -> int | None:
    """One ``scene_gt`` entry; returns its obj_id when readable."""
    if not isinstance(inst, dict):
        rep.add("error", where, "expected an object with obj_id, cam_R_m2c, cam_t_m2c", kind=(rel, "bad entry"))
        return None
    oid = inst.get("obj_id")
    if not isinstance(oid, int) or isinstance(oid, bool):
        rep.add("error", where, f"obj_id must be an integer, got {oid!r}", kind=(rel, "obj_id"))
        oid = None
    elif model_ids and oid not in model_ids:
        rep.add(
            "error",
            where,
            f"obj_id {oid} has no model in models/ (ids: {sorted(model_ids)})",
            kind=(rel, "no model"),
        )
    R = _numbers(inst.get("cam_R_m2c"), 9)
    t = _numbers(inst.get("cam_t_m2c"), 3)
    if R is None:
        rep.add(
            "error",
            f"{where}.cam_R_m2c",
            f"expected 9 finite numbers, got {inst.get('cam_R_m2c')!r:.80}",
            kind=(rel, "R"),
        )
    if t is None:
        rep.add(
            "error",
            f"{where}.cam_t_m2c",
            f"expected 3 finite numbers (mm), got {inst.get('cam_t_m2c')!r:.80}",
            kind=(rel, "t"),
        )
    if R is None or t is None or (t == -1).all():  # BOP placeholder for fully occluded instances
        return oid
    R = R.reshape(3, 3)
    orth = float(np.abs(R @ R.T - np.eye(3)).max())
    if orth > 0.1 or np.linalg.det(R) < 0:
        rep.add(
            "error",
            f"{where}.cam_R_m2c",
            f"not a rotation (|R R^T - I| = {orth:.3g}, det = {np.linalg.det(R):.3g})",
            kind=(rel, "not rotation"),
        )
    elif orth > 1e-2:
        rep.add(
            "warning",
            f"{where}.cam_R_m2c",
            f"only roughly a rotation (|R R^T - I| = {orth:.3g})",
            kind=(rel, "rough rotation"),
        )
    if t[2] <= 0:
        rep.add("error", f"{where}.cam_t_m2c", f"object behind the camera (z = {t[2]:g} mm)", kind=(rel, "behind"))
    elif np.linalg.norm(t) < 10:
        rep.add(
            "warning", f"{where}.cam_t_m2c", f"|t| = {np.linalg.norm(t):.3g} mm is tiny: is it in metres? BOP uses mm",
            kind=(rel, "t unit"),
        )
    return oid


def _check_scene(scene: Path, split: str, rep: _Report, size, model_ids: set[int]) -> dict:
    """One scene folder; returns ``{"images": set(im_id), "gt": {im_id: Counter(obj_id)} | None, "extras": set}``."""
    rel = f"{split}/{scene.name}"
    out: dict = {"images": set(), "gt": None, "extras": set()}
    img_dir = next((scene / d for d in _IMAGE_DIRS if (scene / d).is_dir()), None)
    image_ids: set[int] = set()
    if img_dir is None:
        rep.add("error", rel, "no rgb/ (or gray/) image folder")
    else:
        for p in img_dir.iterdir():
            if p.suffix.lower() in _IMAGE_SUFFIXES and re.fullmatch(r"[0-9]+", p.stem):
                image_ids.add(int(p.stem))
        first = next((p for p in sorted(img_dir.iterdir()) if p.suffix.lower() == ".png"), None)
        im_size = _png_size(first) if first is not None else None
        if im_size is not None and size is not None and tuple(im_size) != tuple(size):
            rep.add(
                "warning",
                f"{rel}/{img_dir.name}/{first.name}",
                f"image is {im_size[0]}x{im_size[1]} but camera.json says {size[0]}x{size[1]}",
            )
        size = size or im_size
    out["extras"] = {d for d in ("depth", "mask", "mask_visib") if (scene / d).is_dir()}
    cam_ids = None
    if not (scene / "scene_camera.json").is_file():
        rep.add("error", f"{rel}/scene_camera.json", "missing: per-image intrinsics cam_K are needed")
    else:
        cam_ids = _check_scene_camera(scene / "scene_camera.json", f"{rel}/scene_camera.json", rep, size)
    gt_rel = f"{rel}/scene_gt.json"
    gt, gt_len = None, {}
    if not (scene / "scene_gt.json").is_file():
        rep.add("warning", gt_rel, "missing: no ground-truth poses, so this scene cannot be evaluated")
    else:
        content = _load_json(scene / "scene_gt.json", rep, gt_rel)
        if isinstance(content, dict):
            gt = {}
            for key, insts in content.items():
                if not _INT_KEY_RE.fullmatch(key) or not isinstance(insts, list):
                    rep.add(
                        "error",
                        f"{gt_rel}[{key!r}]",
                        "expected an integer image id mapping to a list of instances",
                        kind=(gt_rel, "bad key"),
                    )
                    continue
                gt[int(key)] = Counter(
                    oid for i, inst in enumerate(insts)
                    if (oid := _check_instance(inst, f"{gt_rel}[{key!r}][{i}]", gt_rel, rep, model_ids)) is not None
                )
                gt_len[int(key)] = len(insts)
        elif content is not None:
            rep.add("error", gt_rel, "expected a JSON object keyed by image id")
    info_rel = f"{rel}/scene_gt_info.json"
    if gt is not None and (scene / "scene_gt_info.json").is_file():
        info = _load_json(scene / "scene_gt_info.json", rep, info_rel)
        if isinstance(info, dict):
            info_ids = {int(k) for k in info if _INT_KEY_RE.fullmatch(k)}
            if info_ids != set(gt):
                diff = sorted(set(gt) ^ info_ids)
                rep.add("error", info_rel, f"image ids differ from scene_gt.json (e.g. {diff[:5]}); regenerate it")
            for k, v in info.items():
                if _INT_KEY_RE.fullmatch(k) and int(k) in gt and (not isinstance(v, list) or len(v) != gt_len[int(k)]):
                    n = len(v) if isinstance(v, list) else "no list"
                    rep.add(
                        "error",
                        f"{info_rel}[{k!r}]",
                        f"{n} entries but scene_gt.json has {gt_len[int(k)]}; they must align by gt_id",
                        kind=(info_rel, "length"),
                    )
    listed = set(cam_ids or ()) | set(gt or ())
    if cam_ids is not None and gt is not None and (only_gt := sorted(set(gt) - cam_ids)):
        rep.add("error", f"{rel}/scene_camera.json", f"no cam_K for images {only_gt[:5]} that have ground truth")
    if img_dir is not None:
        for im_id in sorted(listed - image_ids):
            rep.add(
                "error", f"{rel}/{img_dir.name}/{im_id:06d}.png", "image missing (listed in scene_camera/scene_gt)",
                kind=(rel, "missing image"),
            )
    out["images"] = image_ids & listed if listed else image_ids
    out["gt"] = gt
    return out


def _check_targets(root: Path, split: str, scenes: dict[int, dict], model_ids: set[int], rep: _Report) -> None:
    files = sorted(root.glob(f"{split}_targets_bop*.json"))
    if not files:
        if split == "test":
            rep.add("warning", str(root), "no test_targets_bop19.json: BOP evaluation needs the list of targets")
        return
    for path in files:
        rel = path.name
        content = _load_json(path, rep, rel)
        if content is None:
            continue
        if not isinstance(content, list):
            rep.add("error", rel, "expected a JSON list of {scene_id, im_id, obj_id, inst_count}")
            continue
        bop24 = "bop24" in path.name
        for i, t in enumerate(content):
            where = f"{rel}[{i}]"
            keys = ("scene_id", "im_id") if bop24 else ("scene_id", "im_id", "obj_id", "inst_count")
            if not isinstance(t, dict) or not all(isinstance(t.get(k), int) for k in keys):
                rep.add("error", where, f"expected integer keys {list(keys)}, got {t!r:.100}", kind=(rel, "bad entry"))
                continue
            sid, iid = t["scene_id"], t["im_id"]
            if sid not in scenes:
                rep.add("error", where, f"scene {sid:06d} is not in {split}/", kind=(rel, "no scene"))
                continue
            if iid not in scenes[sid]["images"]:
                rep.add("error", where, f"image {split}/{sid:06d}/rgb/{iid:06d} does not exist", kind=(rel, "no image"))
                continue
            if bop24:
                continue
            oid, n = t["obj_id"], t["inst_count"]
            if model_ids and oid not in model_ids:
                rep.add("error", where, f"obj_id {oid} has no model", kind=(rel, "no model"))
            if n < 1:
                rep.add("error", where, f"inst_count must be >= 1, got {n}", kind=(rel, "inst_count"))
            gt = scenes[sid]["gt"]
            if gt is not None and gt.get(iid, Counter())[oid] < n:
                rep.add(
                    "error", where,
                    f"inst_count {n} but scene_gt.json has {gt.get(iid, Counter())[oid]} instances of obj {oid} "
                    f"in image {iid}",
                    kind=(rel, "gt count"),
                )


def check_dataset(root: str | Path, split: str = "test", unit: str = "mm", check_meshes: bool = True) -> list[Finding]:
    """Check a BOP dataset folder without raising.

    Args:
        root: the dataset folder (holding ``models/``, ``<split>/``, ``camera.json``, ``test_targets_bop19.json``).
        split: the split folder to check, e.g. "test", "train_pbr", "test_primesense".
        unit: unit of the model files ("mm" in BOP).
        check_meshes: also load and check every mesh (the slowest part, a few seconds for LM-O).

    Returns:
        Findings (errors, warnings, infos); empty when all is well. At most :data:`MAX_SIMILAR` findings of one
        kind are listed per file, then one line counts the rest.
    """
    root = Path(root)
    rep = _Report()
    if not root.is_dir():
        return [Finding("error", str(root), "dataset folder does not exist")]
    size = _check_camera_json(root, rep)
    model_ids = _check_models(root, rep, unit, check_meshes)
    split_dir = root / split
    scenes: dict[int, dict] = {}
    if not split_dir.is_dir():
        available = sorted(
            p.name for p in root.iterdir() if p.is_dir() and any(c.is_dir() and c.name.isdigit() for c in p.iterdir())
        )
        rep.add("error", f"{split}/", f"split folder does not exist; folders with scenes: {available or 'none'}")
    else:
        scene_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and re.fullmatch(r"[0-9]+", p.name))
        if not scene_dirs:
            rep.add("error", f"{split}/", "no scene folders (6-digit names such as 000002/)")
        for scene in scene_dirs:
            scenes[int(scene.name)] = _check_scene(scene, split, rep, size, model_ids)
        if scenes:
            for extra, why in (("depth", "VSD and depth-based refinement"), ("mask_visib", "mask-based metrics")):
                if not any(extra in s["extras"] for s in scenes.values()):
                    rep.add("info", f"{split}/", f"no {extra}/ folders: {why} unavailable (optional)")
    _check_targets(root, split, scenes, model_ids, rep)
    return rep.done()
