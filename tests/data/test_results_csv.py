"""BOP results CSV: bit-exact round trip, bop_toolkit's line format, one exact error per malformed case."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iterpose.data import (
    RESULTS_HEADER,
    ResultRow,
    ResultsTable,
    parse_result_filename,
    read_results_csv,
    write_results_csv,
)
from iterpose.data.results_csv import format_results_csv
from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError, ShapeError

# The first GT row of LM-O (scene 2, image 3, obj 1), as the reference doc prints it.
LINE = ("2,3,1,1.0,0.87547542 0.47867615 -0.06858282 0.3746311 -0.76110463 -0.52974822 -0.30574968 "
        "0.43803819 -0.84552592,161.68945982 -113.74032768 1112.83112737,1.0")
GOOD_R = "1.0 0.0 0.0 0.0 1.0 0.0 0.0 0.0 1.0"


def _random_table(n: int, seed: int = 0) -> ResultsTable:
    rng = np.random.default_rng(seed)
    # awkward floats: random mantissas over many exponents, subnormals, -0.0, exact integers
    R = rng.standard_normal((n, 3, 3)) * 10.0 ** rng.integers(-12, 3, (n, 3, 3))
    R.flat[:4] = [5e-324, -0.0, 1e-310, 0.1 + 0.2]
    t = rng.standard_normal((n, 3)) * 10.0 ** rng.integers(-3, 5, (n, 3))
    t[0] = [0.0, -1e300, 123456789.0]
    im = np.repeat(np.arange(n // 2 + 1), 2)[:n]
    time_s = rng.uniform(0, 3, n // 2 + 1)[im]
    return ResultsTable(
        scene_id=np.full(n, 48), im_id=im, obj_id=rng.integers(1, 22, n), score=rng.uniform(-1, 1, n), R=R,
        t_mm=t, time_s=time_s,
    )


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def test_round_trip_is_bit_exact(tmp_path):
    table = _random_table(101)
    path = write_results_csv(tmp_path / "m_ycbv-test.csv", table)
    back = read_results_csv(path)
    assert len(back) == 101
    for name in ("scene_id", "im_id", "obj_id", "score", "R", "t_mm", "time_s"):
        assert _bits_equal(getattr(back, name), getattr(table, name)), name
    assert back.scene_id.dtype == np.int64 and back.R.dtype == np.float64


def test_line_format_matches_bop_toolkit(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text(RESULTS_HEADER + "\n" + LINE)
    table = read_results_csv(p)
    assert table.R[0, 1, 0] == 0.3746311 and table.t_mm[0].tolist() == [161.68945982, -113.74032768, 1112.83112737]
    # bop_toolkit's save_bop_results: header, str() floats, "\n" between lines, no trailing newline
    assert format_results_csv(table) == RESULTS_HEADER + "\n" + LINE
    write_results_csv(tmp_path / "b.csv", table)
    assert (tmp_path / "b.csv").read_bytes() == p.read_bytes()


def test_header_optional_crlf_trailing_newline(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes((LINE + "\r\n" + LINE.replace("2,3,1,", "2,4,5,") + "\r\n").encode())
    table = read_results_csv(p)
    assert table.im_id.tolist() == [3, 4] and table.obj_id.tolist() == [1, 5]
    assert table.time_s.tolist() == [1.0, 1.0]
    p.write_text("\ufeff" + RESULTS_HEADER + "\n" + LINE + "\n")
    assert read_results_csv(p).im_id.tolist() == [3]
    p.write_text(RESULTS_HEADER)
    assert len(read_results_csv(p)) == 0
    p.write_text("")
    assert len(read_results_csv(p)) == 0


def test_placeholders_are_kept(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("\n".join([RESULTS_HEADER, LINE, f"2,3,10,0,{GOOD_R},0.0 0.0 0.0,1.0",
                            f"2,3,11,0.5,{GOOD_R},0.0 0.0 0.0,1.0"]))
    table = read_results_csv(p)
    assert len(table) == 3
    assert table.placeholder_mask().tolist() == [False, True, False]
    assert [r.is_placeholder for r in table] == [False, True, False]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("2,3,1,1.0,{R},1 2 3", r"line 3: expected 7 fields scene_id,im_id,obj_id,score,R,t,time, got 6"),
        ("2,3,1,1.0,{R},1 2 3,1.0,7", r"line 3: expected 7 fields .*, got 8"),
        ("2,3,1,1.0,1 0 0 0 1 0 0 0,1 2 3,1.0", r"line 3: R has 8 numbers, expected 9"),
        ("2,3,1,1.0,{R},1 2,1.0", r"line 3: t has 2 numbers, expected 3"),
        ("2,3,1,high,{R},1 2 3,1.0", r"line 3: score is not a number: 'high'"),
        ("2,3.5,1,1.0,{R},1 2 3,1.0", r"line 3: im_id is not an integer: '3.5'"),
        ("2,3,1,1.0,1 0 0 0 1 0 0 0 x,1 2 3,1.0", r"line 3: a value of R is not a number: 'x'"),
        ("2,3,1,1.0,{R},1 2 three,1.0", r"line 3: a value of t is not a number: 'three'"),
        ("2,3,1,1.0,1 0 0 0 nan 0 0 0 1,1 2 3,1.0", r"line 3: R contains NaN or inf"),
        ("2,3,1,1.0,{R},1 inf 3,1.0", r"line 3: t contains NaN or inf"),
        ("2,3,1,nan,{R},1 2 3,1.0", r"line 3: score is NaN"),
        ("2,3,1,1.0,{R},1 2 3,", r"line 3: time is not a number: ''"),
        ("2,3,1,1.0,{R},1 2 3,1.002", r"line 3: the running time for scene 2 and image 3 \(1\.002 s\) differs"),
        ("", r"line 3: expected 7 fields .*, got 1"),
    ],
)
def test_malformed_lines_name_the_line(tmp_path, bad_line, message):
    p = tmp_path / "results.csv"
    p.write_text("\n".join([RESULTS_HEADER, LINE, bad_line.format(R=GOOD_R), LINE]))
    with pytest.raises(DataFormatError, match=r"results\.csv " + message):
        read_results_csv(p)


def test_time_tolerance_is_bops(tmp_path):
    p = tmp_path / "a.csv"
    # 0.0009 s apart: accepted (bop: abs(first - t) > 0.001 fails); other images may differ freely
    p.write_text("\n".join([LINE, LINE.replace(",1.0", ",1.0009"), LINE.replace("2,3,1,", "2,4,1,")[:-3] + "7.5"]))
    assert read_results_csv(p).time_s.tolist() == [1.0, 1.0009, 7.5]
    p.write_text("\n".join([LINE, LINE.replace("2,3,1,", "2,3,5,")[:-3] + "-1"]))
    with pytest.raises(DataFormatError, match="line 2: the running time for scene 2 and image 3"):
        read_results_csv(p)
    assert read_results_csv(p, check_timings=False).time_s.tolist() == [1.0, -1.0]


@pytest.mark.parametrize(
    "header, message",
    [
        ("scene_id,im_id,obj_id,score,R,t", r"line 1: bad header: missing column\(s\) time"),
        ("scene_id,im_id,obj_id,score,R,t,time,extra", r"line 1: bad header: unexpected column\(s\) extra"),
        ("scene_id,im_id,object,score,R,t,time", r"missing column\(s\) obj_id; unexpected column\(s\) object"),
        ("im_id,scene_id,obj_id,score,R,t,time", r"columns in the wrong order"),
    ],
)
def test_bad_header(tmp_path, header, message):
    p = tmp_path / "results.csv"
    p.write_text(header + "\n" + LINE)
    with pytest.raises(DataFormatError, match=message):
        read_results_csv(p)


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match=r"results CSV not found: .*nope\.csv"):
        read_results_csv(tmp_path / "nope.csv")


def test_write_is_atomic(tmp_path, monkeypatch):
    good = _random_table(4)
    path = tmp_path / "r.csv"
    # NaN refused before anything is written
    R = good.R.copy()
    R[2, 1, 1] = np.nan
    bad = ResultsTable(good.scene_id, good.im_id, good.obj_id, good.score, R, good.t_mm, good.time_s)
    with pytest.raises(InvalidInputError, match="row 2 has NaN or inf in R"):
        write_results_csv(path, bad)
    assert os.listdir(tmp_path) == []
    # a failure at the final rename keeps the previous file intact and leaves no temporary file
    write_results_csv(path, good)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_results_csv(path, _random_table(6, seed=1))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.csv"]
    with pytest.raises(MissingFileError, match="does not exist"):
        write_results_csv(tmp_path / "sub" / "r.csv", good)


def test_table_helpers():
    table = _random_table(5)
    rows = table.rows()
    assert isinstance(rows[0], ResultRow) and len(rows) == 5
    again = ResultsTable.from_rows(rows)
    assert all(_bits_equal(getattr(again, k), getattr(table, k)) for k in ("R", "t_mm", "score", "im_id"))
    sub = table.take(np.array([False, True, False, True, False]))
    assert sub.obj_id.tolist() == table.obj_id[[1, 3]].tolist()
    T = table.T_co()
    assert T.shape == (5, 4, 4) and np.array_equal(T[:, :3, 3], table.t_mm / 1000.0)
    from_T = ResultsTable.from_T_co(table.scene_id, table.im_id, table.obj_id, table.score, T, -1)
    assert np.allclose(from_T.t_mm, table.t_mm, rtol=1e-15, atol=0) and from_T.time_s.tolist() == [-1.0] * 5
    with pytest.raises(ValueError):
        table.R[0, 0, 0] = 1.0  # read-only
    with pytest.raises(ShapeError, match=r"ResultsTable.t_mm must be \[N, 3\] with N = 5, got shape \(5, 4\)"):
        ResultsTable(table.scene_id, table.im_id, table.obj_id, table.score, table.R, np.zeros((5, 4)),
                     table.time_s)
    assert len(ResultsTable.from_rows([])) == 0


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mymethod_lmo-test.csv", ("mymethod_lmo-test", "mymethod", "lmo", "test", None, "csv", None)),
        ("/a/b/mymethod_tless-test-primesense.csv",
         ("mymethod_tless-test-primesense", "mymethod", "tless", "test", "primesense", "csv", None)),
        ("cnos-fastsammegapose_lmo-test_16ab01bd-f020.csv",
         ("cnos-fastsammegapose_lmo-test_16ab01bd-f020", "cnos-fastsammegapose", "lmo", "test", None, "csv",
          "16ab01bd-f020")),
        ("x_ycbv-test.json.gz", ("x_ycbv-test", "x", "ycbv", "test", None, "json.gz", None)),
    ],
)
def test_parse_result_filename(name, expected):
    p = parse_result_filename(name)
    assert (p.result_name, p.method, p.dataset, p.split, p.split_type, p.ext, p.optional_id) == expected


@pytest.mark.parametrize("name", ["results.csv", "method_lmo.csv", "_lmo-test.csv", "m_-test.csv"])
def test_parse_result_filename_rejects(name):
    with pytest.raises(DataFormatError, match="METHOD_DATASET-SPLIT"):
        parse_result_filename(name)


_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    n_images=st.integers(1, 4),
    rows=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 30), _finite, st.lists(_finite, min_size=12, max_size=12)),
        min_size=1, max_size=12,
    ),
    times=st.lists(st.one_of(st.just(-1.0), st.floats(0, 1e4)), min_size=4, max_size=4),
)
def test_round_trip_property(n_images, rows, times):
    """Any finite float64 survives write -> read bit for bit (str() is the shortest round-tripping repr)."""
    im = np.array([r[0] % n_images for r in rows])
    nums = np.array([r[3] for r in rows], dtype=np.float64)
    table = ResultsTable(
        scene_id=np.full(len(rows), 1), im_id=im, obj_id=[r[1] for r in rows], score=[r[2] for r in rows],
        R=nums[:, :9].reshape(-1, 3, 3), t_mm=nums[:, 9:], time_s=np.array(times)[im],
    )
    with tempfile.TemporaryDirectory() as d:
        back = read_results_csv(write_results_csv(Path(d) / "r.csv", table))
    for name in ("scene_id", "im_id", "obj_id", "score", "R", "t_mm", "time_s"):
        assert _bits_equal(getattr(back, name), getattr(table, name)), name
