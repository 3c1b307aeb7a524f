"""iterpose.mesh.io: load_mesh, load_points_mm, load_objects."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from iterpose.errors import DataFormatError, InvalidInputError, MeshError, MissingFileError, UnitError
from iterpose.mesh import ModelInfo, load_mesh, load_objects, load_points_mm, pts_diameter, save_models_info


def brute_diameter(p: np.ndarray) -> float:
    p = np.asarray(p, np.float64)
    return float(np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1).max()))


# ------------------------------------------------------------------------------------------------ load_mesh: PLY


def test_ascii_ply_with_colours_and_normals(tet_ascii, tet):
    obj = load_mesh(tet_ascii)
    assert obj.obj_id == 7 and obj.name == "obj_000007" and obj.source == str(tet_ascii)
    assert obj.vertices.dtype == torch.float32 and obj.vertices.shape == (4, 3)
    np.testing.assert_allclose(obj.vertices.numpy(), tet.v_mm * 1e-3, rtol=1e-6, atol=1e-9)
    assert obj.faces.dtype == torch.int64
    np.testing.assert_array_equal(obj.faces.numpy(), tet.f)
    assert obj.vertex_colors.dtype == torch.float32
    np.testing.assert_allclose(obj.vertex_colors.numpy(), tet.rgb / 255.0, atol=1e-7)
    n = tet.normals / np.linalg.norm(tet.normals, axis=1, keepdims=True)
    np.testing.assert_allclose(obj.vertex_normals.numpy(), n, atol=1e-6)
    assert obj.diameter_m == pytest.approx(brute_diameter(tet.v_mm) * 1e-3, rel=1e-6)
    assert obj.symmetries_discrete.shape == (0, 4, 4) and obj.symmetries_continuous == ()


def test_binary_ply_without_colours_or_normals(tet_binary, tet):
    obj = load_mesh(tet_binary, name="tet")
    assert obj.obj_id == 3 and obj.name == "tet"
    np.testing.assert_allclose(obj.vertices.numpy(), tet.v_mm.astype(np.float32) * 1e-3, rtol=1e-6)
    np.testing.assert_array_equal(obj.faces.numpy(), tet.f)
    assert obj.vertex_colors is None and obj.vertex_normals is None


def test_binary_ply_colours_alpha_dropped(tmp_path, tet):
    p = tet.write_ply(tmp_path / "obj_000001.ply", tet.v_mm, tet.f, binary=True, rgb=tet.rgb, alpha=True)
    obj = load_mesh(p)
    assert obj.vertex_colors.shape == (4, 3)
    np.testing.assert_allclose(obj.vertex_colors.numpy(), tet.rgb / 255.0, atol=1e-7)


@pytest.mark.parametrize("unit,scale", [("mm", 1e-3), ("cm", 1e-2)])
def test_unit_conversion(tmp_path, tet, unit, scale):
    p = tet.write_ply(tmp_path / "m.ply", tet.v_mm, tet.f)
    obj = load_mesh(p, obj_id=2, unit=unit)
    np.testing.assert_allclose(obj.vertices.numpy(), tet.v_mm * scale, rtol=1e-6)
    assert obj.diameter_m == pytest.approx(brute_diameter(tet.v_mm) * scale, rel=1e-6)


def test_metres_file_declared_mm_is_a_unit_error(tmp_path, tet):
    v_m = tet.v_mm / 1000.0  # a 5 cm object written in metres
    p = tet.write_ply(tmp_path / "obj_000001.ply", v_m, tet.f)
    with pytest.raises(UnitError) as exc:
        load_mesh(p, unit="mm")
    msg = str(exc.value)
    assert msg.startswith("obj_000001.ply: diameter is 0.0487 mm with unit='mm'")
    assert "the file is probably in metres — pass unit='m'" in msg
    assert load_mesh(p, unit="m").diameter_m == pytest.approx(brute_diameter(v_m), rel=1e-6)


def test_mm_file_declared_m_is_a_unit_error(tet_binary):
    with pytest.raises(UnitError, match=r"diameter is 48.7 m with unit='m'.*millimetres — pass unit='mm'"):
        load_mesh(tet_binary, unit="m")


def test_unknown_unit(tet_binary):
    with pytest.raises(InvalidInputError, match=r"unit='inch' is not one of \['cm', 'm', 'mm'\]"):
        load_mesh(tet_binary, unit="inch")


def test_obj_id_needed_when_name_has_none(tmp_path, tet):
    p = tet.write_ply(tmp_path / "duck.ply", tet.v_mm, tet.f)
    with pytest.raises(InvalidInputError, match=r"'duck.ply'.*pass obj_id="):
        load_mesh(p)
    assert load_mesh(p, obj_id=42).obj_id == 42


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="obj_000001.ply: file does not exist"):
        load_mesh(tmp_path / "obj_000001.ply")


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01 garbage",
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1 2\n",
    ],
    ids=["garbage", "missing-props"],
)
def test_corrupt_ply_names_the_file(tmp_path, content):
    p = tmp_path / "obj_000004.ply"
    p.write_bytes(content)
    with pytest.raises(DataFormatError) as exc:
        load_mesh(p)
    assert str(p) in str(exc.value) and "corrupt or not a valid PLY mesh" in str(exc.value)


def test_truncated_binary_ply(tmp_path, tet_binary):
    p = tmp_path / "obj_000005.ply"
    p.write_bytes(tet_binary.read_bytes()[:-30])
    with pytest.raises(DataFormatError, match=str(p)):
        load_mesh(p)


def test_unsupported_suffix(tmp_path):
    p = tmp_path / "obj_000001.xyz"
    p.write_text("1 2 3\n")
    with pytest.raises(DataFormatError, match=r"unsupported file type '.xyz'"):
        load_mesh(p)


def test_nan_vertex(tmp_path, tet):
    v = tet.v_mm.copy()
    v[2, 1] = np.nan
    p = tet.write_ply(tmp_path / "obj_000001.ply", v, tet.f, binary=True)
    with pytest.raises(MeshError, match=r"1 of 4 vertices are NaN or inf \(first at index 2\)"):
        load_mesh(p)


def test_no_faces(tmp_path, tet):
    p = tet.write_ply(tmp_path / "obj_000001.ply", tet.v_mm, np.zeros((0, 3), int))
    with pytest.raises(MeshError, match="no faces"):
        load_mesh(p)


def test_all_faces_degenerate(tmp_path, tet):
    v = np.array([[0.0, 0, 0], [10, 0, 0], [20, 0, 0], [30, 0, 0]])  # collinear
    p = tet.write_ply(tmp_path / "obj_000001.ply", v, tet.f)
    with pytest.raises(MeshError, match="all 4 faces are degenerate"):
        load_mesh(p)


def test_face_index_out_of_range(tmp_path, tet):
    f = tet.f.copy()
    f[1, 2] = 9
    p = tet.write_ply(tmp_path / "obj_000001.ply", tet.v_mm, f)
    with pytest.raises((MeshError, DataFormatError), match="obj_000001.ply"):
        load_mesh(p)


# ------------------------------------------------------------------------------------------------ load_mesh: other


def test_obj_with_normals(tmp_path):
    p = tmp_path / "part.obj"
    p.write_text(
        "v 0 0 0\nv 40 0 0\nv 0 30 0\nv 0 0 20\n"
        "vn 0 0 -1\nvn 0 0 -1\nvn 0 0 -1\nvn 0 0 1\n"
        "f 1//1 3//3 2//2\nf 1//1 2//2 4//4\nf 2//2 3//3 4//4\nf 1//1 4//4 3//3\n"
    )
    obj = load_mesh(p, obj_id=1)
    np.testing.assert_allclose(obj.vertices.numpy()[1], [0.04, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(obj.vertex_normals.numpy()[3], [0, 0, 1])
    assert obj.vertex_colors is None
    assert obj.diameter_m == pytest.approx(0.05, rel=1e-6)


def test_textured_obj_gives_vertex_colours(tmp_path):
    from PIL import Image

    im = np.zeros((4, 4, 3), np.uint8)
    im[:, :2] = [255, 0, 0]
    im[:, 2:] = [0, 0, 255]
    Image.fromarray(im).save(tmp_path / "tex.png")
    (tmp_path / "tex.mtl").write_text("newmtl m\nmap_Kd tex.png\n")
    p = tmp_path / "obj_000002.obj"
    p.write_text(
        "mtllib tex.mtl\nusemtl m\nv 0 0 0\nv 50 0 0\nv 0 50 0\nvt 0.1 0.5\nvt 0.9 0.5\nvt 0.1 0.9\nf 1/1 2/2 3/3\n"
    )
    obj = load_mesh(p)
    np.testing.assert_allclose(obj.vertex_colors.numpy(), [[1, 0, 0], [0, 0, 1], [1, 0, 0]], atol=1e-6)


def test_ascii_stl(tmp_path):
    p = tmp_path / "obj_000009.stl"
    p.write_text(
        "solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 60 0 0\nvertex 0 80 0\nendloop\nendfacet\n"
        "endsolid t\n"
    )
    obj = load_mesh(p)
    assert obj.obj_id == 9 and obj.num_faces == 1 and obj.vertex_colors is None and obj.vertex_normals is None
    assert obj.diameter_m == pytest.approx(0.1, rel=1e-6)


# ------------------------------------------------------------------------------------------------ load_points_mm


def bop_load_ply_pts(path):
    """The vertex loop of bop_toolkit ``inout.load_ply`` (readline/split/float, struct.unpack), as the oracle."""
    fmts = {"float": ("f", 4), "double": ("d", 8), "int": ("i", 4), "uchar": ("B", 1)}
    with open(path, "rb") as f:
        props, n, binary, in_vertex = [], 0, False, False
        while True:
            line = f.readline().decode("utf8").rstrip("\n").rstrip("\r")
            if line.startswith("element vertex"):
                n, in_vertex = int(line.split()[-1]), True
            elif line.startswith("element"):
                in_vertex = False
            elif line.startswith("property") and in_vertex:
                props.append((line.split()[-1], line.split()[-2]))
            elif line.startswith("format") and "binary" in line:
                binary = True
            elif line.startswith("end_header"):
                break
        pts = np.zeros((n, 3), np.float64)
        for i in range(n):
            vals = {}
            if binary:
                for name, typ in props:
                    vals[name] = struct.unpack(fmts[typ][0], f.read(fmts[typ][1]))[0]
            else:
                elems = f.readline().decode("utf8").rstrip("\n").rstrip("\r").split()
                vals = {name: elems[k] for k, (name, _) in enumerate(props)}
            pts[i] = [float(vals["x"]), float(vals["y"]), float(vals["z"])]
    return pts


def test_points_ascii_parsed_as_float64_text(tmp_path, tet):
    text = ["0.1 -0.2 0.3 1 0 0 9 9 9", "40.123456789 0 0 1 0 0 1 2 3", "0 25.3 1e-3 0 1 0 4 5 6",
            "3.7 5.1 31.9 0 0 1 7 8 9"]  # fmt: skip
    p = tet.write_ply(tmp_path / "a.ply", tet.v_mm, tet.f, rgb=tet.rgb, normals=tet.normals, vertex_text=text)
    pts = load_points_mm(p)
    assert pts.dtype == np.float64 and pts.shape == (4, 3)
    assert pts[0, 0] == 0.1 and pts[0, 0] != float(np.float32(0.1))  # not through float32
    assert pts[1, 0] == 40.123456789
    np.testing.assert_array_equal(pts, bop_load_ply_pts(p))


def test_points_binary_bit_exact(tmp_path, tet):
    rng = np.random.default_rng(0)
    v = rng.normal(scale=50, size=(57, 3))
    f = np.array([[0, 1, 2]])
    p = tet.write_ply(tmp_path / "b.ply", v, f, binary=True, rgb=np.zeros((57, 3), np.uint8), alpha=True,
                      normals=v)  # fmt: skip
    pts = load_points_mm(p)
    np.testing.assert_array_equal(pts, v.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(pts, bop_load_ply_pts(p))


def test_points_errors(tmp_path):
    with pytest.raises(MissingFileError):
        load_points_mm(tmp_path / "nope.ply")
    p = tmp_path / "bad.ply"
    p.write_text("solid x\n")
    with pytest.raises(DataFormatError, match=r"bad.ply: not a PLY file"):
        load_points_mm(p)
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nproperty float y\n"
                  b"property float z\nend_header\n" + b"\0" * 20)  # fmt: skip
    with pytest.raises(DataFormatError, match="truncated"):
        load_points_mm(p)


# ------------------------------------------------------------------------------------------------ load_objects


def _models_folder(tmp_path, tet, with_info=True):
    d = tmp_path / "models"
    d.mkdir()
    tet.write_ply(d / "obj_000001.ply", tet.v_mm, tet.f, rgb=tet.rgb)
    tet.write_ply(d / "obj_000007.ply", tet.v_mm * 2, tet.f, binary=True)
    (d / "readme.txt").write_text("not a mesh")
    if with_info:
        sym = np.eye(4)
        sym[:3, :3] = np.diag([-1.0, -1.0, 1.0])
        sym[:3, 3] = [1.0, 2.0, 3.0]
        save_models_info(
            d / "models_info.json",
            {
                1: ModelInfo(diameter_mm=51.0),
                7: ModelInfo(
                    diameter_mm=102.5,
                    symmetries_discrete=sym[None],
                    symmetries_continuous=(((0.0, 0.0, 2.0), (0.0, 0.0, 10.0)),),
                ),
            },
        )
    return d


def test_load_objects_uses_models_info(tmp_path, tet):
    objs = load_objects(_models_folder(tmp_path, tet))
    assert list(objs) == [1, 7]
    assert objs[1].diameter_m == pytest.approx(0.051) and objs[7].diameter_m == pytest.approx(0.1025)
    assert objs[1].vertex_colors is not None and objs[7].vertex_colors is None
    s = objs[7].symmetries_discrete
    assert s.dtype == torch.float64 and s.shape == (1, 4, 4)
    np.testing.assert_allclose(s[0, :3, 3].numpy(), [0.001, 0.002, 0.003])
    np.testing.assert_allclose(s[0, :3, :3].numpy(), np.diag([-1.0, -1.0, 1.0]))
    (c,) = objs[7].symmetries_continuous
    assert c.axis == (0.0, 0.0, 1.0) and c.offset_m == pytest.approx((0.0, 0.0, 0.01))
    assert objs[7].is_symmetric and not objs[1].is_symmetric


def test_load_objects_without_info_computes_diameter(tmp_path, tet):
    objs = load_objects(_models_folder(tmp_path, tet, with_info=False), obj_ids=[7])
    assert list(objs) == [7]
    assert objs[7].diameter_m == pytest.approx(2e-3 * brute_diameter(tet.v_mm), rel=1e-6)


def test_load_objects_errors(tmp_path, tet):
    d = _models_folder(tmp_path, tet)
    with pytest.raises(MissingFileError, match=r"no mesh for obj_id \[3\].*available ids: \[1, 7\]"):
        load_objects(d, obj_ids=[1, 3])
    info = json.loads((d / "models_info.json").read_text())
    del info["7"]
    (d / "models_info.json").write_text(json.dumps(info))
    with pytest.raises(DataFormatError, match=r"models_info.json has no entry for obj_id \[7\]"):
        load_objects(d)
    with pytest.raises(MissingFileError, match="no mesh named obj_<id>"):
        load_objects(tmp_path)  # only a models/ sub-folder there
    with pytest.raises(MissingFileError, match="does not exist"):
        load_objects(tmp_path / "nope")


# ------------------------------------------------------------------------------------------------ real LM-O data


def test_lmo_load_objects_and_eval_points(lmo_dir):
    infos = json.loads((lmo_dir / "models" / "models_info.json").read_text())
    objs = load_objects(lmo_dir / "models")
    assert sorted(objs) == [1, 5, 6, 8, 9, 10, 11, 12]
    for oid, obj in objs.items():
        assert obj.diameter_m == pytest.approx(infos[str(oid)]["diameter"] / 1000.0, rel=1e-12)
        assert obj.vertex_colors is not None and obj.vertex_normals is not None
    assert objs[1].num_vertices == 5841 and objs[5].num_vertices == 22831
    assert [o for o, obj in objs.items() if obj.is_symmetric] == [10, 11]
    np.testing.assert_allclose(
        objs[10].symmetries_discrete[0, 0].numpy(), [-0.999964, -0.00333777, -0.0077452, 0.232611e-3], rtol=1e-6
    )
    ascii_pts = load_points_mm(lmo_dir / "models" / "obj_000001.ply")
    np.testing.assert_array_equal(ascii_pts, bop_load_ply_pts(lmo_dir / "models" / "obj_000001.ply"))
    assert round(pts_diameter(ascii_pts), 3) == infos["1"]["diameter"] == 102.099
    pts = load_points_mm(lmo_dir / "models_eval" / "obj_000001.ply")
    np.testing.assert_array_equal(pts, bop_load_ply_pts(lmo_dir / "models_eval" / "obj_000001.ply"))
    assert pts.shape == (2825, 3) and pts.dtype == np.float64
    np.testing.assert_array_equal(pts.astype(np.float32).astype(np.float64), pts)  # binary float32 widened
