"""``iterpose viz``: argument errors are one-line messages (exit 2), not tracebacks."""

from __future__ import annotations

from iterpose.cli.main import main


def test_bad_image_ids_give_one_line_error(tmp_path, capsys):
    code = main(["viz", str(tmp_path), str(tmp_path / "res.csv"), "--out", str(tmp_path / "o"), "--images", "3,x"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("iterpose viz: error: --images must be comma-separated integer image ids")
    assert "'3,x'" in err and "Traceback" not in err
