"""Small settings shared by the synthetic-data tests: 160 x 120 images, two example objects, 0.4-0.8 m."""

from __future__ import annotations

import dataclasses

from iterpose.data.synth import SynthConfig
from iterpose.mesh import example_object

H, W = 120, 160
K_SMALL = (200.0, 0.0, 79.5, 0.0, 210.0, 59.5, 0.0, 0.0, 1.0)


def small_config(**changes) -> SynthConfig:
    base = SynthConfig(height=H, width=W, K=K_SMALL, distance_m=(0.4, 0.8), objects_per_image=(1, 3), margin_px=8.0,
                       crop_hw=(48, 64))
    return dataclasses.replace(base, **changes)


def two_objects():
    """Two objects with distinct ids (the example object, and the example object shrunk to 70 %)."""
    a = example_object(1)
    b = example_object(7)
    b = dataclasses.replace(b, vertices=b.vertices * 0.7, diameter_m=b.diameter_m * 0.7, name="example_small")
    return [a, b]


# ---------------------------------------------------------------------------------------------------------------
# SynthConfig validation (the helpers above are imported by the other test_synth*.py modules)

import pytest  # noqa: E402

from iterpose.errors import InvalidInputError, MissingFileError  # noqa: E402


def test_defaults_are_lmo_like():
    import iterpose.data

    assert iterpose.data.SynthConfig is SynthConfig and "generate_scene" in iterpose.data.__all__
    cfg = SynthConfig()
    assert (cfg.height, cfg.width) == (480, 640)
    assert cfg.distance_m == (0.5, 1.5)
    assert cfg.K_matrix[0, 0] == pytest.approx(572.4114) and cfg.K_matrix[1, 2] == pytest.approx(242.04899)
    d = cfg.to_dict()
    assert d["perturb"]["rot_std_deg"] == 15.0 and d["K"][0] == pytest.approx(572.4114)


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("distance_m", (1.5, 0.5), "SynthConfig.distance_m"),
        ("objects_per_image", (0, 2), "SynthConfig.objects_per_image"),
        ("objects_per_image", (1.0, 2), "ints"),
        ("K", (100.0, 0, 50, 0, -100.0, 50, 0, 0, 1), "SynthConfig.K"),
        ("viewpoint", "top", "'upper_hemisphere'"),
        ("min_visib_fract", 1.5, "SynthConfig.min_visib_fract"),
        ("crop_hw", (48,), "SynthConfig.crop_hw"),
        ("margin_px", 70.0, "SynthConfig.margin_px"),
        ("max_tries", 0, "SynthConfig.max_tries"),
    ],
)
def test_bad_fields_name_the_field(field, value, fragment):
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        small_config(**{field: value})


def test_background_folder_missing_or_empty(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        small_config(background=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(MissingFileError, match="holds no image"):
        small_config(background=str(tmp_path / "empty"))
