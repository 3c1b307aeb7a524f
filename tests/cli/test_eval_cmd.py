"""`iterpose eval`: table, JSON report, and one-line errors (exit 2) on bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import iterpose.cli.main as cli_main
from iterpose.cli.main import main

_spec = importlib.util.spec_from_file_location("tiny_bop_cli", Path(__file__).parents[1] / "metrics" / "tiny_bop.py")
_tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tiny)
I3, _row, make_dataset, make_results = _tiny.I3, _tiny._row, _tiny.make_dataset, _tiny.make_results


@pytest.fixture(autouse=True)
def _only_eval_verb(monkeypatch):
    """Build the real `iterpose` parser with only the `eval` verb, so these tests do not depend on other verbs."""
    monkeypatch.setattr(cli_main, "VERB_MODULES", ("eval",))


def test_eval_writes_json_and_table(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    csv = make_results(tmp_path / "a.csv")
    out = tmp_path / "r" / "report.json"
    assert main(["eval", str(ds), str(csv), "--out", str(out), "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert data["n_targets"] == 3
    assert abs(data["recall"]["add_0.1d"] - 1 / 3) < 1e-12
    table = capsys.readouterr().out
    assert "ADD@0.1d" in table and "obj 1" in table and "33.33" in table


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    bad_cols = tmp_path / "bad.csv"
    bad_cols.write_text("scene_id,im_id,obj_id,score,R,t,time\n1,0,1,0.5,1 0 0 0 1 0 0 0 1,0 0 1000\n")
    assert "iterpose eval: error:" in _one_line_error(capsys, ["eval", str(ds), str(bad_cols), "--no-progress"])
    extra = tmp_path / "extra.csv"
    extra.write_text("scene_id,im_id,obj_id,score,R,t,time\n1,0,1,0.5,1 0 0 0 1 0 0 0 1,0 0 1000,-1,7\n")
    assert "iterpose eval: error:" in _one_line_error(capsys, ["eval", str(ds), str(extra), "--no-progress"])
    unknown = make_results(tmp_path / "u.csv", [_row(1, 0, 42, 0.5, I3, [0.0, 0.0, 1000.0])])
    assert "42" in _one_line_error(capsys, ["eval", str(ds), str(unknown), "--no-progress"])
    (ds / "test" / "000001" / "scene_gt.json").unlink()
    ok = make_results(tmp_path / "ok.csv")
    assert "scene_gt" in _one_line_error(capsys, ["eval", str(ds), str(ok), "--no-progress"])
    assert "not found" in _one_line_error(capsys, ["eval", str(tmp_path / "nope"), str(ok), "--no-progress"])


def test_eval_with_depth_reports_vsd_and_ar(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tiny_bop_depth_cli", Path(__file__).parents[1] / "metrics" / "tiny_bop_depth.py")
    depth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(depth)
    root, _ = depth.make_depth_dataset(tmp_path / "tiny")
    T = depth.T_GT
    csv = depth.write_csv(tmp_path / "m_tiny-test.csv", {0: T, 1: T + [6.0, 0, 0], 2: T + [400.0, 0, 0]})
    out = tmp_path / "report.json"
    assert main(["eval", str(root), str(csv), "--out", str(out), "--no-progress"]) == 0
    rec = json.loads(out.read_text())["recall"]
    assert abs(rec["ar_vsd"] - 0.5) < 1e-12  # hand-derived in tests/metrics/test_vsd_eval.py
    assert abs(rec["ar"] - (rec["ar_vsd"] + rec["ar_mssd"] + rec["ar_mspd"]) / 3) < 1e-15
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split()[-2:] == ["AR_VSD", "AR"]
