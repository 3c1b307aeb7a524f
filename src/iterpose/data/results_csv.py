"""BOP19 results CSV (6D localisation): read, write, and parse the file name, exactly like bop_toolkit.

Format (``inout.load_bop_results`` / ``save_bop_results``)::

    scene_id,im_id,obj_id,score,R,t,time
    2,3,1,1.0,0.875 0.478 ... -0.845,161.68 -113.74 1112.83,1.0

- the header line is optional; every other line has exactly 7 comma-separated fields;
- ``R``: 9 space-separated numbers, row-major, model -> camera; ``t``: 3 numbers in **millimetres**;
- ``time``: seconds for the whole image, the same (within 0.001) on every row of one image; -1 = unknown.

Floats are parsed as Python floats (correctly rounded float64), so values are bit-identical to
bop_toolkit's; the writer uses ``str(float)`` (shortest repr), so a write -> read round trip is bit-exact.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from iterpose.data.bop_writer import atomic_write_text
from iterpose.data.units import MM_PER_M, Rt_mm_to_T_co
from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError, ShapeError

__all__ = [
    "RESULTS_HEADER",
    "ResultRow",
    "ResultsTable",
    "read_results_csv",
    "write_results_csv",
    "ResultFilename",
    "parse_result_filename",
]

RESULTS_COLUMNS = ("scene_id", "im_id", "obj_id", "score", "R", "t", "time")
RESULTS_HEADER = ",".join(RESULTS_COLUMNS)
"""``"scene_id,im_id,obj_id,score,R,t,time"``."""

TIME_TOLERANCE_S = 0.001
"""Rows of one image must report times within this of the image's first row (bop ``check_consistent_timings``)."""


@dataclass(frozen=True, eq=False)
class ResultRow:
    """One estimate (one CSV line).

    Attributes:
        scene_id, im_id, obj_id: identifiers.
        score: confidence, higher = better (float).
        R: ``[3, 3]`` float64 model -> camera rotation. t_mm: ``[3]`` float64 translation in millimetres.
        time_s: seconds spent on the whole image (-1 = unknown).
    """

    scene_id: int
    im_id: int
    obj_id: int
    score: float
    R: np.ndarray
    t_mm: np.ndarray
    time_s: float

    @property
    def is_placeholder(self) -> bool:
        """Score 0, identity rotation and zero translation: a "no estimate" row some methods emit."""
        return self.score == 0.0 and bool(np.all(self.R == np.eye(3))) and bool(np.all(self.t_mm == 0.0))

    def T_co(self) -> np.ndarray:
        """``[4, 4]`` float64 object-to-camera transform in metres."""
        return Rt_mm_to_T_co(self.R, self.t_mm)


def _frozen_array(x, dtype, shape_tail: tuple, name: str, n: Optional[int]) -> np.ndarray:
    a = np.array(x, dtype=dtype, copy=True)
    if a.ndim != 1 + len(shape_tail) or a.shape[1:] != shape_tail or (n is not None and a.shape[0] != n):
        want = "[" + ", ".join(["N"] + [str(s) for s in shape_tail]) + "]"
        raise ShapeError(
            f"ResultsTable.{name} must be {want}" + (f" with N = {n}" if n is not None else "")
            + f", got shape {tuple(a.shape)}"
        )
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ResultsTable:
    """Pose estimates as columns (N rows). Arrays are copied on construction and read-only.

    Attributes:
        scene_id, im_id, obj_id: ``[N]`` int64.
        score: ``[N]`` float64.
        R: ``[N, 3, 3]`` float64 model -> camera rotations.
        t_mm: ``[N, 3]`` float64 translations in millimetres.
        time_s: ``[N]`` float64 seconds per image (-1 = unknown).

    Construction checks shapes; values are checked by :func:`read_results_csv` / :func:`write_results_csv`.
    """

    scene_id: np.ndarray
    im_id: np.ndarray
    obj_id: np.ndarray
    score: np.ndarray
    R: np.ndarray
    t_mm: np.ndarray
    time_s: np.ndarray

    def __post_init__(self) -> None:
        n = np.asarray(self.scene_id).shape[0] if np.asarray(self.scene_id).ndim == 1 else None
        specs = [
            ("scene_id", np.int64, ()), ("im_id", np.int64, ()), ("obj_id", np.int64, ()),
            ("score", np.float64, ()), ("R", np.float64, (3, 3)), ("t_mm", np.float64, (3,)),
            ("time_s", np.float64, ()),
        ]
        for name, dtype, tail in specs:
            object.__setattr__(self, name, _frozen_array(getattr(self, name), dtype, tail, name, n))

    def __len__(self) -> int:
        return int(self.scene_id.shape[0])

    def __iter__(self) -> Iterator[ResultRow]:
        return iter(self.rows())

    def row(self, i: int) -> ResultRow:
        """Row ``i`` as a :class:`ResultRow` (arrays are read-only views)."""
        return ResultRow(
            scene_id=int(self.scene_id[i]), im_id=int(self.im_id[i]), obj_id=int(self.obj_id[i]),
            score=float(self.score[i]), R=self.R[i], t_mm=self.t_mm[i], time_s=float(self.time_s[i]),
        )

    def rows(self) -> list[ResultRow]:
        """All rows, in file order."""
        return [self.row(i) for i in range(len(self))]

    @classmethod
    def from_rows(cls, rows: Iterable[ResultRow]) -> "ResultsTable":
        """Stack :class:`ResultRow` objects (or anything with the same attributes) into a table."""
        rows = list(rows)
        if not rows:
            return cls.empty()
        return cls(
            scene_id=[r.scene_id for r in rows], im_id=[r.im_id for r in rows], obj_id=[r.obj_id for r in rows],
            score=[r.score for r in rows], R=np.stack([np.asarray(r.R, np.float64).reshape(3, 3) for r in rows]),
            t_mm=np.stack([np.asarray(r.t_mm, np.float64).reshape(3) for r in rows]),
            time_s=[r.time_s for r in rows],
        )

    @classmethod
    def empty(cls) -> "ResultsTable":
        """A table with no rows."""
        z = np.zeros(0)
        return cls(z, z, z, z, np.zeros((0, 3, 3)), np.zeros((0, 3)), z)

    @classmethod
    def from_T_co(cls, scene_id, im_id, obj_id, score, T_co, time_s) -> "ResultsTable":
        """Build a table from iterpose poses.

        Args:
            scene_id, im_id, obj_id: ``[N]`` integers. score: ``[N]`` floats. time_s: ``[N]`` or a scalar (s).
            T_co: ``[N, 4, 4]`` object-to-camera transforms, translation in **metres** (numpy or CPU tensor).
        """
        T = np.asarray(T_co, dtype=np.float64)
        if T.ndim != 3 or T.shape[1:] != (4, 4):
            raise ShapeError(f"ResultsTable.from_T_co: T_co must be [N, 4, 4], got shape {tuple(T.shape)}")
        n = T.shape[0]
        time_s = np.broadcast_to(np.asarray(time_s, np.float64), (n,))
        return cls(scene_id, im_id, obj_id, score, T[:, :3, :3], T[:, :3, 3] * MM_PER_M, time_s)

    def T_co(self) -> np.ndarray:
        """``[N, 4, 4]`` float64 object-to-camera transforms, translation in metres."""
        return Rt_mm_to_T_co(self.R, self.t_mm)

    def placeholder_mask(self) -> np.ndarray:
        """bool ``[N]``: rows with score 0, identity R and zero t (kept by the reader, valid BOP input)."""
        return (
            (self.score == 0.0)
            & np.all(self.R == np.eye(3), axis=(1, 2))
            & np.all(self.t_mm == 0.0, axis=1)
        )

    def take(self, index) -> "ResultsTable":
        """A new table with the rows selected by ``index`` (int array or bool mask ``[N]``)."""
        idx = np.asarray(index)
        return ResultsTable(
            self.scene_id[idx], self.im_id[idx], self.obj_id[idx], self.score[idx], self.R[idx],
            self.t_mm[idx], self.time_s[idx],
        )


# ----------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------


def _check_header(fields: list[str], path: Path) -> None:
    names = [f.strip() for f in fields]
    if names == list(RESULTS_COLUMNS):
        return
    missing = [c for c in RESULTS_COLUMNS if c not in names]
    extra = [c for c in names if c not in RESULTS_COLUMNS]
    detail = []
    if missing:
        detail.append(f"missing column(s) {','.join(missing)}")
    if extra:
        detail.append(f"unexpected column(s) {','.join(extra)}")
    if not detail:
        detail.append(f"columns in the wrong order ({','.join(names)})")
    raise DataFormatError(f"{path} line 1: bad header: {'; '.join(detail)}; expected exactly {RESULTS_HEADER}")


def _parse_float(s: str, what: str, path: Path, line_no: int) -> float:
    try:
        return float(s)
    except ValueError:
        raise DataFormatError(f"{path} line {line_no}: {what} is not a number: {s.strip()!r}") from None


def _parse_int(s: str, what: str, path: Path, line_no: int) -> int:
    try:
        return int(s)
    except ValueError:
        raise DataFormatError(f"{path} line {line_no}: {what} is not an integer: {s.strip()!r}") from None


def _locate_bad_value(rows: list[list[str]], line_nos: list[int], path: Path) -> None:
    """Slow path: find the first unparsable value and raise a DataFormatError naming its line."""
    for f, ln in zip(rows, line_nos):
        for k, name in enumerate(("scene_id", "im_id", "obj_id")):
            _parse_int(f[k], name, path, ln)
        _parse_float(f[3], "score", path, ln)
        for x in f[4].split():
            _parse_float(x, "a value of R", path, ln)
        for x in f[5].split():
            _parse_float(x, "a value of t", path, ln)
        _parse_float(f[6], "time", path, ln)
    raise DataFormatError(f"{path}: a value could not be parsed")  # pragma: no cover - defensive


def read_results_csv(path, *, check_timings: bool = True) -> ResultsTable:
    """Read a BOP19 results CSV.

    Args:
        path: the ``.csv`` file.
        check_timings: raise when rows of one image report different times (bop ``check_consistent_timings``).

    Returns:
        A :class:`ResultsTable` in file order; placeholder rows (score 0, identity R, t 0) are kept.

    Raises:
        MissingFileError: the file does not exist.
        DataFormatError: a bad header, a line without 7 fields, R not 9 numbers, t not 3, a non-number,
            NaN/inf in R or t, NaN score or time, or inconsistent times of one image. The message names the
            file and the line (1-based, header included).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"results CSV not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path} is not UTF-8 text: {e}") from e
    lines = text.removeprefix("\ufeff").splitlines()  # a UTF-8 byte-order mark (spreadsheet export) is ignored
    while lines and not lines[-1].strip():
        lines.pop()

    start = 0
    if lines:
        first = lines[0].split(",")
        if first and first[0].strip() and not first[0].strip().lstrip("+-").isdigit():
            _check_header(first, path)
            start = 1
    body = lines[start:]
    rows = [ln.split(",") for ln in body]
    line_nos = range(start + 1, start + 1 + len(body))
    bad = next((i for i, f in enumerate(rows) if len(f) != 7), None)
    if bad is not None:
        raise DataFormatError(
            f"{path} line {line_nos[bad]}: expected 7 fields {RESULTS_HEADER}, got {len(rows[bad])}"
        )
    if not rows:
        return ResultsTable.empty()

    cols = list(zip(*rows))
    R_parts = [s.split() for s in cols[4]]
    t_parts = [s.split() for s in cols[5]]
    for parts, n, name in ((R_parts, 9, "R"), (t_parts, 3, "t")):
        bad = next((i for i, p in enumerate(parts) if len(p) != n), None)
        if bad is not None:
            raise DataFormatError(
                f"{path} line {line_nos[bad]}: {name} has {len(parts[bad])} numbers, expected {n}"
                + (" (row-major 3x3, space-separated)" if name == "R" else " (millimetres, space-separated)")
            )
    try:
        ids = [np.array([int(s) for s in cols[k]], dtype=np.int64) for k in range(3)]
        score = np.array([float(s) for s in cols[3]], dtype=np.float64)
        R = np.array([float(s) for s in itertools.chain.from_iterable(R_parts)], dtype=np.float64)
        t = np.array([float(s) for s in itertools.chain.from_iterable(t_parts)], dtype=np.float64)
        time_s = np.array([float(s) for s in cols[6]], dtype=np.float64)
    except (ValueError, OverflowError):
        _locate_bad_value(rows, list(line_nos), path)
        raise  # pragma: no cover - _locate_bad_value always raises
    R = R.reshape(-1, 3, 3)
    t = t.reshape(-1, 3)

    for arr, name in ((R.reshape(len(rows), -1), "R"), (t, "t")):
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            i = int(np.argmin(finite))
            raise DataFormatError(f"{path} line {line_nos[i]}: {name} contains NaN or inf: {rows[i][4 if name == 'R' else 5]!r}")
    for arr, name in ((score, "score"), (time_s, "time")):
        nan = np.isnan(arr)
        if nan.any():
            i = int(np.argmax(nan))
            raise DataFormatError(f"{path} line {line_nos[i]}: {name} is NaN")

    table = ResultsTable(ids[0], ids[1], ids[2], score, R, t, time_s)
    if check_timings:
        i = _first_inconsistent_time(table)
        if i is not None:
            raise DataFormatError(
                f"{path} line {line_nos[i]}: the running time for scene {int(table.scene_id[i])} and image "
                f"{int(table.im_id[i])} ({float(table.time_s[i])!r} s) differs by more than {TIME_TOLERANCE_S} s from an "
                "earlier row of the same image; time is per image and must be the same on all its rows"
            )
    return table


def _first_inconsistent_time(table: ResultsTable) -> Optional[int]:
    """Index of the first row whose time differs by > 0.001 s from the first row of its image, or None."""
    if len(table) == 0:
        return None
    keys = np.stack([table.scene_id, table.im_id], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    bad = np.abs(table.time_s[first][inverse] - table.time_s) > TIME_TOLERANCE_S
    return int(np.argmax(bad)) if bad.any() else None


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------


def format_results_csv(table: ResultsTable, header: bool = True) -> str:
    """The CSV text of a table, formatted like bop_toolkit's ``save_bop_results`` (``str(float)``, ``"\\n"``
    between lines, no trailing newline)."""
    if not isinstance(table, ResultsTable):
        raise InvalidInputError(f"write_results_csv: table must be a ResultsTable, got {type(table).__name__}")
    for arr, name in ((table.R.reshape(len(table), -1), "R"), (table.t_mm, "t_mm")):
        finite = np.isfinite(arr).all(axis=1) if len(table) else np.ones(0, bool)
        if not finite.all():
            i = int(np.argmin(finite))
            raise InvalidInputError(f"write_results_csv: row {i} has NaN or inf in {name}; refusing to write it")
    for arr, name in ((table.score, "score"), (table.time_s, "time_s")):
        if np.isnan(arr).any():
            raise InvalidInputError(f"write_results_csv: row {int(np.argmax(np.isnan(arr)))} has a NaN {name}")
    lines = [RESULTS_HEADER] if header else []
    sid, iid, oid = table.scene_id.tolist(), table.im_id.tolist(), table.obj_id.tolist()
    score, time_s = table.score.tolist(), table.time_s.tolist()
    R, t = table.R.reshape(-1, 9).tolist(), table.t_mm.tolist()
    for i in range(len(table)):
        lines.append(
            f"{sid[i]},{iid[i]},{oid[i]},{score[i]},{' '.join(map(str, R[i]))},{' '.join(map(str, t[i]))},{time_s[i]}"
        )
    return "\n".join(lines)


def write_results_csv(path, table: ResultsTable, header: bool = True) -> Path:
    """Write a table as a BOP19 results CSV, atomically (a temporary file in the same folder, then
    ``os.replace``): on any error no file (and no partial file) is left at ``path``.

    Args:
        path: destination ``.csv``; its folder must exist.
        table: the estimates (R row-major, t in mm).
        header: write the ``scene_id,im_id,obj_id,score,R,t,time`` line (bop_toolkit always does).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InvalidInputError: NaN/inf in R or t, NaN score/time, or not a ResultsTable.
        MissingFileError: the destination folder does not exist.
    """
    text = format_results_csv(table, header=header)
    path = Path(path)
    atomic_write_text(path, text)
    return path


# ----------------------------------------------------------------------------------------------------------------
# File names
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultFilename:
    """Parts of a BOP result file name ``METHOD_DATASET-SPLIT[-SPLITTYPE][_ID].EXT``."""

    result_name: str
    method: str
    dataset: str
    split: str
    split_type: Optional[str]
    ext: str
    optional_id: Optional[str] = None


def parse_result_filename(name) -> ResultFilename:
    """Split a BOP result file name like bop_toolkit's ``inout.parse_result_filename``.

    The base name is cut at the first ``.`` (``ext`` = the rest, e.g. ``"csv"``), then at ``_``: part 0 is the
    method, part 1 ``DATASET-SPLIT[-SPLITTYPE]``, part 2 (optional) an id. So METHOD must not contain ``_`` and
    DATASET must not contain ``-``.

    Example:
        >>> p = parse_result_filename("/x/mymethod_tless-test-primesense.csv")
        >>> (p.method, p.dataset, p.split, p.split_type, p.ext)
        ('mymethod', 'tless', 'test', 'primesense', 'csv')

    Raises:
        DataFormatError: the name does not follow the pattern.
    """
    base = os.path.basename(str(name))
    parts = base.split(".")
    result_name, ext = parts[0], ".".join(parts[1:])
    info = result_name.split("_")
    ds = info[1].split("-") if len(info) > 1 else []
    if len(info) < 2 or len(ds) < 2 or not info[0] or not ds[0] or not ds[1]:
        raise DataFormatError(
            f"result file name {base!r} does not follow METHOD_DATASET-SPLIT[-SPLITTYPE][_ID].csv "
            "(e.g. 'mymethod_lmo-test.csv'); METHOD must not contain '_' and DATASET must not contain '-'"
        )
    return ResultFilename(
        result_name=result_name, method=info[0], dataset=ds[0], split=ds[1],
        split_type=ds[2] if len(ds) > 2 else None, ext=ext,
        optional_id=info[2] if len(info) > 2 else None,
    )
