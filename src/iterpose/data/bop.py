"""Reading a BOP-format dataset (scene-wise layout): cameras, ground truth, GT info, targets, images.

Layout (see ``docs/bop_datasets_format.md`` of bop_toolkit)::

    ROOT/                             # e.g. .../lmo; ROOT's folder name is the dataset name
      camera[_TYPE].json
      test_targets_bop19.json
      models/, models_eval/           # obj_XXXXXX.ply (mm)
      SPLIT[_TYPE]/XXXXXX/            # 6-digit scene id
        scene_camera.json, scene_gt.json, scene_gt_info.json
        rgb/IMID.png|jpg (gray/IMID.tif), depth/IMID.png, mask[_visib]/IMID_GTID.png

Values keep BOP's units here (millimetres, float64, exactly as the JSON parser returns them, so evaluation can
be bit-exact with bop_toolkit). Convert a pose to iterpose's convention with :func:`gt_T_co` (``T_co``
``[4, 4]`` float64, metres) or :func:`iterpose.data.units.Rt_mm_to_T_co`.

The reader is lazy: nothing is read until asked, and each parsed JSON file is cached on the instance.
Returned arrays are read-only; returned dicts/lists are fresh copies, so a caller cannot change the cache.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from iterpose.data.images import read_mask, read_rgb_uint8, read_uint16
from iterpose.data.units import Rt_mm_to_T_co
from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError

__all__ = [
    "CameraInfo",
    "GtInstance",
    "GtInfo",
    "Target",
    "BopDataset",
    "gt_T_co",
    "load_json",
]

_SCENE_DIR_RE = re.compile(r"^\d{6}$")
_INT_KEY_RE = re.compile(r"-?[0-9]+")  # what int() accepts as a JSON image id ("--1" and "²" are not)


# ----------------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class CameraInfo:
    """One image's camera, from ``scene_camera.json``.

    Attributes:
        K: ``[3, 3]`` float64 intrinsics in pixels (``cam_K``), OpenCV convention; read-only.
        depth_scale: depth PNG value x ``depth_scale`` = millimetres; ``None`` when the file has no entry.
        R_w2c: ``[3, 3]`` float64 world -> camera rotation (``cam_R_w2c``) or ``None``.
        t_w2c_mm: ``[3]`` float64 world -> camera translation in mm (``cam_t_w2c``) or ``None``.
    """

    K: np.ndarray
    depth_scale: Optional[float] = None
    R_w2c: Optional[np.ndarray] = None
    t_w2c_mm: Optional[np.ndarray] = None


@dataclass(frozen=True, eq=False)
class GtInstance:
    """One ground-truth object instance, from ``scene_gt.json``.

    Attributes:
        obj_id: object id (``obj_id``).
        R: ``[3, 3]`` float64 model -> camera rotation (``cam_R_m2c``, row-major in the file); read-only.
        t_mm: ``[3]`` float64 model -> camera translation in millimetres (``cam_t_m2c``); read-only.
        gt_id: index of the instance in the image's list (the ``gt_id`` of mask file names and GT info).
        is_placeholder: ``True`` when ``cam_t_m2c`` is all -1, BOP's marker of an instance without a pose
            (bop_toolkit's ``parse_gt_poses_from_scene_im`` skips those); kept so ``gt_id`` stays aligned.
    """

    obj_id: int
    R: np.ndarray
    t_mm: np.ndarray
    gt_id: int
    is_placeholder: bool = False


@dataclass(frozen=True)
class GtInfo:
    """Visibility statistics of one GT instance, from ``scene_gt_info.json`` (same order as ``scene_gt``).

    Attributes:
        bbox_obj: ``(x, y, w, h)`` pixels of the full silhouette (``w = xmax - xmin``, no +1; may leave the
            image; ``(-1, -1, -1, -1)`` when nothing is visible).
        bbox_visib: ``(x, y, w, h)`` of the visible part.
        px_count_all: pixels of the full silhouette, including the part outside the image.
        px_count_valid: in-image silhouette pixels with a valid depth measurement.
        px_count_visib: visible silhouette pixels.
        visib_fract: ``px_count_visib / px_count_all`` (0 when ``px_count_all`` is 0).
    """

    bbox_obj: tuple[int, int, int, int]
    bbox_visib: tuple[int, int, int, int]
    px_count_all: int
    px_count_valid: int
    px_count_visib: int
    visib_fract: float


@dataclass(frozen=True)
class Target:
    """One evaluation target, from ``test_targets_bop19.json``: ``inst_count`` instances of ``obj_id`` to find
    in image ``im_id`` of scene ``scene_id``."""

    scene_id: int
    im_id: int
    obj_id: int
    inst_count: int


def gt_T_co(inst: GtInstance) -> np.ndarray:
    """Pose of a GT instance in iterpose's convention: ``T_co`` ``[4, 4]`` float64, translation in metres."""
    return Rt_mm_to_T_co(inst.R, inst.t_mm)


# ----------------------------------------------------------------------------------------------------------------
# JSON helpers
# ----------------------------------------------------------------------------------------------------------------


def load_json(path, what: str) -> Any:
    """Parse a JSON file with the standard library (floats as Python float, exactly like bop_toolkit).

    Args:
        path: the file.
        what: a description used in error messages (e.g. ``"scene GT of scene 2"``).

    Raises:
        MissingFileError: the file does not exist. DataFormatError: it is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path} ({what}) is not valid JSON: {e}") from e
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path} ({what}) is not UTF-8 text: {e}") from e


def _int_keyed(content: Any, path: Path, what: str) -> dict[int, Any]:
    if not isinstance(content, dict):
        raise DataFormatError(f"{path}: {what} must be a JSON object keyed by image id, got {type(content).__name__}")
    out: dict[int, Any] = {}
    for k, v in content.items():
        if not _INT_KEY_RE.fullmatch(k):
            raise DataFormatError(f"{path}: key {k!r} is not an integer image id")
        out[int(k)] = v
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _numbers(entry: dict, key: str, n: int, where: str, required: bool = True) -> Optional[np.ndarray]:
    """``entry[key]`` as a read-only float64 array of ``n`` numbers; ``where`` prefixes error messages."""
    if key not in entry:
        if required:
            raise DataFormatError(f"{where}: missing key {key!r}")
        return None
    v = entry[key]
    if not isinstance(v, list):
        raise DataFormatError(f"{where}: {key} must be a list of {n} numbers, got {type(v).__name__}")
    if len(v) != n:
        raise DataFormatError(f"{where}: {key} has {len(v)} numbers, expected {n}")
    if not all(_is_number(x) for x in v):
        bad = next(x for x in v if not _is_number(x))
        raise DataFormatError(f"{where}: {key} contains a non-number {bad!r}")
    return _readonly(np.array(v, dtype=np.float64))


def _int_field(entry: dict, key: str, where: str) -> int:
    if key not in entry:
        raise DataFormatError(f"{where}: missing key {key!r}")
    v = entry[key]
    if not _is_int(v):
        raise DataFormatError(f"{where}: {key} must be an integer, got {v!r}")
    return v


def _bbox(entry: dict, key: str, where: str) -> tuple[int, int, int, int]:
    v = entry.get(key)
    if key not in entry:
        raise DataFormatError(f"{where}: missing key {key!r}")
    if not isinstance(v, list) or len(v) != 4 or not all(_is_int(x) for x in v):
        raise DataFormatError(f"{where}: {key} must be 4 integers [x, y, w, h], got {v!r}")
    return (v[0], v[1], v[2], v[3])


# ----------------------------------------------------------------------------------------------------------------
# Parsers of the three per-scene files (pure functions of the JSON content, testable alone)
# ----------------------------------------------------------------------------------------------------------------


def parse_scene_camera(content: Any, path: Path) -> dict[int, CameraInfo]:
    """``scene_camera.json`` content -> ``{im_id: CameraInfo}``; ``path`` is used in error messages."""
    out: dict[int, CameraInfo] = {}
    for im_id, entry in sorted(_int_keyed(content, path, "scene_camera").items()):
        where = f"{path} image {im_id}"
        if not isinstance(entry, dict):
            raise DataFormatError(f"{where}: expected an object with cam_K, got {type(entry).__name__}")
        if "cam_model" in entry:
            raise DataFormatError(
                f"{where}: 'cam_model' (BOP24 non-pinhole camera) is not supported; iterpose needs a pinhole 'cam_K'"
            )
        K = _numbers(entry, "cam_K", 9, where).reshape(3, 3)
        ds = entry.get("depth_scale")
        if ds is not None and not (_is_number(ds) and ds > 0 and math.isfinite(ds)):
            raise DataFormatError(f"{where}: depth_scale must be a positive number, got {ds!r}")
        R = _numbers(entry, "cam_R_w2c", 9, where, required=False)
        t = _numbers(entry, "cam_t_w2c", 3, where, required=False)
        out[im_id] = CameraInfo(
            K=_readonly(K),
            depth_scale=None if ds is None else float(ds),
            R_w2c=None if R is None else _readonly(R.reshape(3, 3)),
            t_w2c_mm=t,
        )
    return out


def parse_scene_gt(content: Any, path: Path) -> dict[int, list[GtInstance]]:
    """``scene_gt.json`` content -> ``{im_id: [GtInstance, ...]}`` in ``gt_id`` order."""
    out: dict[int, list[GtInstance]] = {}
    for im_id, insts in sorted(_int_keyed(content, path, "scene_gt").items()):
        if not isinstance(insts, list):
            raise DataFormatError(f"{path} image {im_id}: expected a list of instances, got {type(insts).__name__}")
        lst = []
        for gt_id, entry in enumerate(insts):
            where = f"{path} image {im_id} instance {gt_id}"
            if not isinstance(entry, dict):
                raise DataFormatError(f"{where}: expected an object, got {type(entry).__name__}")
            obj_id = _int_field(entry, "obj_id", where)
            R = _numbers(entry, "cam_R_m2c", 9, where)
            t = _numbers(entry, "cam_t_m2c", 3, where)
            lst.append(
                GtInstance(
                    obj_id=obj_id,
                    R=_readonly(R.reshape(3, 3)),
                    t_mm=t,
                    gt_id=gt_id,
                    is_placeholder=bool(np.all(t == -1.0)),
                )
            )
        out[im_id] = lst
    return out


_GT_INFO_INTS = ("px_count_all", "px_count_valid", "px_count_visib")


def parse_scene_gt_info(content: Any, path: Path) -> dict[int, list[GtInfo]]:
    """``scene_gt_info.json`` content -> ``{im_id: [GtInfo, ...]}`` in ``gt_id`` order."""
    out: dict[int, list[GtInfo]] = {}
    for im_id, infos in sorted(_int_keyed(content, path, "scene_gt_info").items()):
        if not isinstance(infos, list):
            raise DataFormatError(f"{path} image {im_id}: expected a list of instances, got {type(infos).__name__}")
        lst = []
        for gt_id, entry in enumerate(infos):
            where = f"{path} image {im_id} instance {gt_id}"
            if not isinstance(entry, dict):
                raise DataFormatError(f"{where}: expected an object, got {type(entry).__name__}")
            counts = {k: _int_field(entry, k, where) for k in _GT_INFO_INTS}
            if "visib_fract" not in entry:
                raise DataFormatError(f"{where}: missing key 'visib_fract'")
            vf = entry["visib_fract"]
            if not _is_number(vf):
                raise DataFormatError(f"{where}: visib_fract must be a number, got {vf!r}")
            lst.append(
                GtInfo(
                    bbox_obj=_bbox(entry, "bbox_obj", where),
                    bbox_visib=_bbox(entry, "bbox_visib", where),
                    visib_fract=float(vf),
                    **counts,
                )
            )
        out[im_id] = lst
    return out


def parse_targets(content: Any, path: Path) -> list[Target]:
    """``test_targets_bop19.json`` content (a JSON list) -> ``[Target, ...]`` in file order."""
    if not isinstance(content, list):
        raise DataFormatError(f"{path}: targets must be a JSON list, got {type(content).__name__}")
    out = []
    for i, entry in enumerate(content):
        where = f"{path} entry {i}"
        if not isinstance(entry, dict):
            raise DataFormatError(f"{where}: expected an object, got {type(entry).__name__}")
        vals = {k: _int_field(entry, k, where) for k in ("scene_id", "im_id", "obj_id", "inst_count")}
        out.append(Target(**vals))
    return out


# ----------------------------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------------------------


class BopDataset:
    """Lazy, read-only view of one split of a BOP dataset.

    Args:
        root: dataset folder (e.g. ``.../lmo``); its folder name is :attr:`name`.
        split: ``"test"``, ``"train_pbr"``, ``"val"``, ...
        split_type: optional suffix, e.g. ``"primesense"`` -> folder ``test_primesense``.

    Raises:
        MissingFileError: ``root`` is not a folder.

    Attributes are read-only; parsed JSON is cached per instance (the dataset files are assumed not to change
    while it is in use).
    """

    __slots__ = ("_root", "_split", "_split_type", "_cache")

    def __init__(self, root, split: str = "test", split_type: Optional[str] = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise MissingFileError(f"BopDataset: dataset folder not found: {root}")
        if not isinstance(split, str) or not split:
            raise InvalidInputError(f"BopDataset: split must be a non-empty string such as 'test', got {split!r}")
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_split", split)
        object.__setattr__(self, "_split_type", split_type)
        object.__setattr__(self, "_cache", {})

    def __setattr__(self, name, value):
        raise AttributeError(f"BopDataset is read-only: cannot set {name!r}; create a new BopDataset instead")

    def __reduce__(self):
        # picklable (e.g. for DataLoader workers); the copy starts with an empty cache
        return (BopDataset, (self._root, self._split, self._split_type))

    def __repr__(self) -> str:
        return f"BopDataset(root={str(self._root)!r}, split={self._split!r}, split_type={self._split_type!r})"

    # -- paths -----------------------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The dataset folder."""
        return self._root

    @property
    def name(self) -> str:
        """Dataset name = folder name of :attr:`root` (e.g. ``"lmo"``)."""
        return self._root.resolve().name

    @property
    def split(self) -> str:
        return self._split

    @property
    def split_type(self) -> Optional[str]:
        return self._split_type

    @property
    def split_dir(self) -> Path:
        """``root / split`` or ``root / f"{split}_{split_type}"`` (may not exist; :attr:`scene_ids` checks)."""
        sub = self._split if not self._split_type else f"{self._split}_{self._split_type}"
        return self._root / sub

    def scene_dir(self, scene_id: int) -> Path:
        """``split_dir / f"{scene_id:06d}"``; raises MissingFileError when the folder does not exist."""
        d = self.split_dir / f"{int(scene_id):06d}"
        if not d.is_dir():
            raise MissingFileError(
                f"scene {scene_id} not found: {d} is not a folder (scenes present: {self.scene_ids})"
            )
        return d

    @property
    def scene_ids(self) -> list[int]:
        """Sorted ids of the 6-digit scene folders in :attr:`split_dir`."""
        if "scene_ids" not in self._cache:
            d = self.split_dir
            if not d.is_dir():
                raise MissingFileError(
                    f"split folder not found: {d} (dataset {self._root}, split {self._split!r}, "
                    f"split_type {self._split_type!r}); check the split name"
                )
            ids = sorted(int(p.name) for p in d.iterdir() if p.is_dir() and _SCENE_DIR_RE.match(p.name))
            self._cache["scene_ids"] = ids
        return list(self._cache["scene_ids"])

    @property
    def models_dir(self) -> Path:
        """``root/models`` (T-LESS: ``models_cad`` when ``models`` is absent)."""
        for sub in ("models", "models_cad"):
            d = self._root / sub
            if d.is_dir():
                return d
        raise MissingFileError(f"models folder not found: {self._root / 'models'}")

    @property
    def models_eval_dir(self) -> Path:
        """``root/models_eval`` (the point sets BOP evaluates on); falls back to :attr:`models_dir` with a
        ``UserWarning`` when absent (errors then differ from the official ones)."""
        d = self._root / "models_eval"
        if d.is_dir():
            return d
        fallback = self.models_dir
        warnings.warn(
            f"{d} not found; using {fallback} for evaluation. BOP evaluates on models_eval, so metric values "
            "may differ from bop_toolkit's",
            UserWarning,
            stacklevel=2,
        )
        return fallback

    # -- camera.json -------------------------------------------------------------------------------------------

    @property
    def camera_path(self) -> Optional[Path]:
        """``camera_{split_type}.json`` if present, else ``camera.json``, else the only ``camera_*.json``;
        ``None`` when there is none."""
        names = ([f"camera_{self._split_type}.json"] if self._split_type else []) + ["camera.json"]
        for n in names:
            if (self._root / n).is_file():
                return self._root / n
        others = sorted(self._root.glob("camera_*.json"))
        return others[0] if len(others) == 1 else None

    @property
    def camera(self) -> Optional[dict]:
        """The ``camera*.json`` dict (``fx, fy, cx, cy, width, height[, depth_scale]``) or ``None``."""
        if "camera" not in self._cache:
            p = self.camera_path
            content = None if p is None else load_json(p, "dataset camera file")
            if content is not None:
                if not isinstance(content, dict):
                    raise DataFormatError(f"{p}: expected a JSON object with fx, fy, cx, cy, width, height")
                missing = [k for k in ("fx", "fy", "cx", "cy", "width", "height") if k not in content]
                if missing:
                    raise DataFormatError(f"{p}: missing keys {missing}")
            self._cache["camera"] = content
        c = self._cache["camera"]
        return None if c is None else dict(c)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels: from the camera file, else from the first image of the first scene."""
        cam = self.camera
        if cam is not None:
            return (int(cam["width"]), int(cam["height"]))
        sid = self.scene_ids[0] if self.scene_ids else None
        if sid is None:
            raise MissingFileError(f"image_size: no camera file in {self._root} and no scene in {self.split_dir}")
        im = self.load_rgb(sid, self.image_ids(sid)[0])
        return (im.shape[1], im.shape[0])

    # -- per-scene JSON ----------------------------------------------------------------------------------------

    def _scene_json(self, scene_id: int, filename: str, parser, what: str):
        key = (filename, int(scene_id))
        if key not in self._cache:
            path = self.scene_dir(scene_id) / filename
            self._cache[key] = parser(load_json(path, f"{what} of scene {scene_id}"), path)
        return self._cache[key]

    def scene_camera(self, scene_id: int) -> dict[int, CameraInfo]:
        """``{im_id: CameraInfo}`` from ``scene_camera.json`` (sorted by image id)."""
        return dict(self._scene_json(scene_id, "scene_camera.json", parse_scene_camera, "camera parameters"))

    def scene_gt(self, scene_id: int) -> dict[int, list[GtInstance]]:
        """``{im_id: [GtInstance, ...]}`` from ``scene_gt.json``; list index = ``gt_id``; placeholders
        (``cam_t_m2c`` all -1) are kept with ``is_placeholder=True``."""
        d = self._scene_json(scene_id, "scene_gt.json", parse_scene_gt, "ground-truth poses")
        return {k: list(v) for k, v in d.items()}

    def scene_gt_info(self, scene_id: int) -> dict[int, list[GtInfo]]:
        """``{im_id: [GtInfo, ...]}`` from ``scene_gt_info.json``, same order as :meth:`scene_gt`."""
        d = self._scene_json(scene_id, "scene_gt_info.json", parse_scene_gt_info, "ground-truth info")
        return {k: list(v) for k, v in d.items()}

    def has_scene_gt(self, scene_id: int) -> bool:
        """Whether the scene has a ``scene_gt.json`` (test splits of some datasets do not publish GT)."""
        return (self.scene_dir(scene_id) / "scene_gt.json").is_file()

    def image_ids(self, scene_id: int) -> list[int]:
        """Sorted image ids of a scene (the keys of ``scene_camera.json``)."""
        return list(self._scene_json(scene_id, "scene_camera.json", parse_scene_camera, "camera parameters"))

    def camera_K(self, scene_id: int, im_id: int) -> np.ndarray:
        """``[3, 3]`` float64 intrinsics of one image (read-only)."""
        cams = self._scene_json(scene_id, "scene_camera.json", parse_scene_camera, "camera parameters")
        if im_id not in cams:
            raise DataFormatError(
                f"{self.scene_dir(scene_id) / 'scene_camera.json'}: no entry for image {im_id}"
            )
        return cams[im_id].K

    # -- targets -----------------------------------------------------------------------------------------------

    def targets(self, filename: str = "test_targets_bop19.json") -> list[Target]:
        """Evaluation targets from ``root / filename`` (file order)."""
        key = ("targets", filename)
        if key not in self._cache:
            path = self._root / filename
            self._cache[key] = parse_targets(load_json(path, "evaluation targets file"), path)
        return list(self._cache[key])

    # -- images --------------------------------------------------------------------------------------------------

    def _find(self, scene_id: int, candidates: list[tuple[str, str]], stem: str, what: str) -> Path:
        d = self.scene_dir(scene_id)
        tried = []
        for sub, ext in candidates:
            p = d / sub / f"{stem}{ext}"
            if p.is_file():
                return p
            tried.append(str(p))
        raise MissingFileError(f"{what} not found; tried: {', '.join(tried)}")

    def rgb_path(self, scene_id: int, im_id: int) -> Path:
        """Path of the colour image: ``rgb/IMID.png`` or ``.jpg`` (or ``gray/IMID.tif|png`` for ITODD)."""
        cands = [("rgb", ".png"), ("rgb", ".jpg"), ("rgb", ".jpeg"), ("gray", ".tif"), ("gray", ".png")]
        return self._find(scene_id, cands, f"{int(im_id):06d}", f"RGB image of scene {scene_id} image {im_id}")

    def load_rgb(self, scene_id: int, im_id: int) -> np.ndarray:
        """uint8 ``[H, W, 3]`` RGB image (gray images are replicated to 3 channels)."""
        return read_rgb_uint8(self.rgb_path(scene_id, im_id), f"RGB image of scene {scene_id} image {im_id}")

    @property
    def has_depth(self) -> bool:
        """``True`` when every scene has a non-empty ``depth/`` folder."""
        ids = self.scene_ids
        if not ids:
            return False
        for sid in ids:
            d = self.split_dir / f"{sid:06d}" / "depth"
            if not d.is_dir() or next(d.iterdir(), None) is None:
                return False
        return True

    def depth_path(self, scene_id: int, im_id: int) -> Path:
        """Path of the depth image ``depth/IMID.png`` (or ``.tif``); MissingFileError when absent."""
        return self._find(
            scene_id, [("depth", ".png"), ("depth", ".tif")], f"{int(im_id):06d}",
            f"depth image of scene {scene_id} image {im_id} (this dataset may have no depth)",
        )

    def depth_scale(self, scene_id: int, im_id: int) -> float:
        """Depth scale of an image: ``scene_camera.json``'s ``depth_scale``, else the camera file's."""
        cams = self._scene_json(scene_id, "scene_camera.json", parse_scene_camera, "camera parameters")
        cam = cams.get(int(im_id))
        if cam is not None and cam.depth_scale is not None:
            return cam.depth_scale
        c = self.camera
        if c is not None and "depth_scale" in c:
            return float(c["depth_scale"])
        raise DataFormatError(
            f"no depth_scale for scene {scene_id} image {im_id}: neither "
            f"{self.scene_dir(scene_id) / 'scene_camera.json'} nor the camera file give one"
        )

    def load_depth_mm(self, scene_id: int, im_id: int) -> np.ndarray:
        """float32 ``[H, W]`` depth in millimetres (stored value x depth_scale, computed in float32 like
        bop_toolkit); 0 = no measurement. MissingFileError when the image has no depth file."""
        path = self.depth_path(scene_id, im_id)
        depth = read_uint16(path, f"depth image of scene {scene_id} image {im_id}").astype(np.float32)
        depth *= self.depth_scale(scene_id, im_id)
        return depth

    def mask_path(self, scene_id: int, im_id: int, gt_id: int) -> Path:
        """Path of the full-silhouette mask ``mask/IMID_GTID.png``."""
        return self._find(
            scene_id, [("mask", ".png")], f"{int(im_id):06d}_{int(gt_id):06d}",
            f"mask of scene {scene_id} image {im_id} gt {gt_id}",
        )

    def mask_visib_path(self, scene_id: int, im_id: int, gt_id: int) -> Path:
        """Path of the visible-part mask ``mask_visib/IMID_GTID.png``."""
        return self._find(
            scene_id, [("mask_visib", ".png")], f"{int(im_id):06d}_{int(gt_id):06d}",
            f"visible mask of scene {scene_id} image {im_id} gt {gt_id}",
        )

    def load_mask(self, scene_id: int, im_id: int, gt_id: int) -> np.ndarray:
        """bool ``[H, W]`` full silhouette of GT instance ``gt_id``."""
        return read_mask(self.mask_path(scene_id, im_id, gt_id), "mask")

    def load_mask_visib(self, scene_id: int, im_id: int, gt_id: int) -> np.ndarray:
        """bool ``[H, W]`` visible part of GT instance ``gt_id``."""
        return read_mask(self.mask_visib_path(scene_id, im_id, gt_id), "visible mask")
