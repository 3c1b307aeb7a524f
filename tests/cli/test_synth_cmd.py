"""`iterpose synth`: writes a dataset that `iterpose check` accepts; resumes; one-line errors on bad input."""

from __future__ import annotations

import json

import pytest

import iterpose.cli.main as cli_main
from iterpose.cli.main import main
from iterpose.data import BopDataset

SMALL = ["--width", "160", "--height", "120", "--distance", "0.3", "0.6", "--no-progress"]


@pytest.fixture(autouse=True)
def _verbs(monkeypatch):
    """Only the verbs these tests use, so they do not depend on the others."""
    monkeypatch.setattr(cli_main, "VERB_MODULES", ("synth", "check"))


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_example_object_dataset_passes_check_and_resumes(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--objects", "example", "--out", str(out), "--images", "3", "--seed", "5", *SMALL]) == 0
    said = capsys.readouterr().out
    assert "wrote 3 image(s), kept 0" in said
    cam = json.loads((out / "camera.json").read_text())
    assert (cam["width"], cam["height"], cam["depth_scale"]) == (160, 120, 0.1)
    assert cam["fx"] == pytest.approx(572.4114 * 160 / 640)
    assert (out / "models" / "obj_000001.ply").read_text().startswith("ply\nformat ascii 1.0")
    assert main(["check", str(out)]) == 0
    assert "OK:" in capsys.readouterr().out
    assert main(["synth", "--objects", "example", "--out", str(out), "--images", "4", "--seed", "5", *SMALL]) == 0
    assert "wrote 1 image(s), kept 3" in capsys.readouterr().out
    assert BopDataset(out).image_ids(0) == [0, 1, 2, 3]


def test_models_folder_is_copied_verbatim(tmp_path, capsys):
    first = tmp_path / "a"
    assert main(["synth", "--objects", "example", "--out", str(first), "--images", "1", *SMALL]) == 0
    second = tmp_path / "b"
    argv = ["synth", "--objects", str(first / "models"), "--out", str(second), "--images", "1",
            "--objects-per-image", "1", "1", "--split", "train", *SMALL]
    assert main(argv) == 0
    ply = "obj_000001.ply"
    assert (second / "models" / ply).read_bytes() == (first / "models" / ply).read_bytes()
    assert (second / "train" / "000000" / "rgb" / "000000.png").is_file()
    assert (second / "train_targets_bop19.json").is_file()


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _one_line_error(capsys, ["synth", "--objects", str(empty), "--out", str(tmp_path / "o"), "--images", "1"])
    assert "iterpose synth: error:" in err and "no mesh named obj_" in err
    err = _one_line_error(capsys, ["synth", "--objects", "example", "--out", str(tmp_path / "o"), "--images", "1",
                                   "--background", str(tmp_path / "nope"), *SMALL])
    assert "background folder" in err and "does not exist" in err
    err = _one_line_error(capsys, ["synth", "--objects", "example", "--out", str(tmp_path / "o"), "--images", "0"])
    assert "--images must be >= 1" in err
    err = _one_line_error(capsys, ["synth", "--objects", "example", "--out", str(tmp_path / "o"), "--images", "1",
                                   *SMALL, "--distance", "2", "1"])
    assert "SynthConfig.distance_m" in err
    err = _one_line_error(capsys, ["synth", "--objects", "example", "--out", str(tmp_path / "o"), "--images", "1",
                                   *SMALL, "--specular", "0.5", "0.1"])
    assert "SynthConfig.specular" in err
    err = _one_line_error(capsys, ["synth", "--objects", "example", "--out", str(tmp_path / "o"), "--images", "1",
                                   *SMALL, "--shadow-prob", "2"])
    assert "SynthConfig.shadow_prob" in err


def test_realism_options_reach_the_images(tmp_path, capsys):
    """--object-distractors, --specular and --shadow-prob change the pictures, not the targets' ground truth."""
    plain, rich = tmp_path / "plain", tmp_path / "rich"
    common = ["--objects", "example", "--images", "2", "--seed", "3", "--objects-per-image", "1", "1",
              "--distractors", "0", "0", "--occluders", "0", "0", *SMALL]
    assert main(["synth", "--out", str(plain), *common]) == 0
    assert main(["synth", "--out", str(rich), *common, "--object-distractors", "2", "2", "--specular", "0.4", "0.4",
                 "--shadow-prob", "1"]) == 0
    assert main(["check", str(rich)]) == 0
    capsys.readouterr()
    a, b = BopDataset(plain), BopDataset(rich)
    assert a.scene_gt(0)[0][0].R.tolist() == b.scene_gt(0)[0][0].R.tolist()
    assert (a.load_rgb(0, 0) != b.load_rgb(0, 0)).any()
