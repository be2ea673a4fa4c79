"""glTF 2.0 / GLB writer: round trips through read_glb, the in-repo validator on good and broken
files, and the official Khronos validator (npm ``gltf-validator``) on the sample files."""

from __future__ import annotations

import io
import json
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import uv_sphere
from webtools import KHRONOS_VERSION, khronos_reports, khronos_summary, khronos_validator  # noqa: F401
from machlib import vertex_normals
from machlib.animation import ARKIT_BLENDSHAPES
from machlib.export._gltf import (
    GltfBuilder,
    Lines,
    Triangles,
    encode_png,
    read_glb,
    validate_gltf,
    vertex_tangents,
)
from machlib.hair import RaggedStrands, strands_to_gltf_lines


# ---------------------------------------------------------------------------------------------
# sample assets


def _head_arrays():
    m = uv_sphere(16, 10, 0.1)
    pos, uv, faces, src = m.split()
    nrm = np.asarray(vertex_normals(np.asarray(m.vertices), np.asarray(m.faces)))[src]
    return pos.astype(np.float32), uv, faces, nrm


def _blendshapes(pos):
    """52 smooth, distinct deltas (a bump around a different direction per shape)."""
    t = np.arange(len(ARKIT_BLENDSHAPES))
    centres = np.stack([np.cos(t * 2.4), np.sin(t * 1.3), np.cos(t * 0.7)], 1)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    unit = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    falloff = np.exp(-8.0 * (1.0 - unit @ centres.T)).T  # (52, N)
    tp = (0.01 * falloff[:, :, None] * unit[None]).astype(np.float32)
    tn = (0.05 * falloff[:, :, None] * np.roll(unit, 1, axis=1)[None]).astype(np.float32)
    return tp, tn


def _skin_weights(pos):
    y = pos[:, 1] / 0.1  # -1 (chin) .. 1 (crown)
    w = np.stack([np.clip(-y, 0, 1), np.ones_like(y), np.clip(y - 0.3, 0, 1)], 1)
    return np.tile([0, 1, 2], (len(pos), 1)), w


def _textures():
    rng = np.random.default_rng(0)
    albedo = (rng.random((16, 32, 3)) * 255).astype(np.uint8)
    normal = np.broadcast_to(np.array([128, 128, 255], np.uint8), (8, 8, 3)).copy()
    mr = np.zeros((8, 8, 3), np.uint8)
    mr[..., 1] = 150  # roughness in G
    return albedo, normal, mr


def _strands():
    rng = np.random.default_rng(1)
    strands = [np.cumsum(rng.normal(scale=0.01, size=(n, 3)), 0) + [0, 0.1, 0] for n in (5, 1, 8, 3)]
    return RaggedStrands.from_list(strands)


def build_avatar(**overrides) -> tuple[bytes, dict]:
    """A head with 52 ARKit morph targets, a 3-joint skin, a textured PBR material and hair lines."""
    pos, uv, faces, nrm = _head_arrays()
    tp, tn = _blendshapes(pos)
    joints, weights = _skin_weights(pos)
    albedo, normal, mr = _textures()
    b = GltfBuilder(generator="machlib test")
    skin_mat = b.add_material(name="skin", base_color_texture=albedo, normal_texture=normal,
                              metallic_roughness_texture=mr, roughness=0.6)
    hair_mat = b.add_material(name="hair", base_color=(1.0, 1.0, 1.0, 1.0), roughness=0.4)
    neck = b.add_node(name="neck", translation=(0.0, -0.12, 0.0))
    head = b.add_node(name="head", parent=neck, translation=(0.0, 0.12, 0.0))
    jaw = b.add_node(name="jaw", parent=head, translation=(0.0, -0.03, 0.02),
                     rotation=(0.0871557, 0.0, 0.0, 0.9961947))
    skin = b.add_skin([neck, head, jaw], name="rig", skeleton=neck)
    tri = Triangles(pos, faces, normals=nrm, uv=uv, tangents=vertex_tangents(pos, nrm, uv, faces),
                    joints=joints, weights=weights, target_positions=tp, target_normals=tn,
                    material=skin_mat)
    head_mesh = b.add_mesh([tri], name="head", target_names=ARKIT_BLENDSHAPES)
    b.add_node(name="head_mesh", mesh=head_mesh, skin=skin)
    hp, hidx = strands_to_gltf_lines(_strands())
    colors = np.tile(np.array([[90, 60, 30]], np.uint8), (len(hp), 1))  # uint8 VEC3: needs byteStride 4
    lines = Lines(hp, hidx, colors=colors, material=hair_mat)
    strip = Lines(hp[:5], mode="line_strip", colors=np.full((5, 4), 0.5, np.float32), material=hair_mat)
    b.add_node(name="hair", mesh=b.add_mesh([lines, strip], name="hair"), parent=head)
    arrays = dict(pos=pos, uv=uv, faces=faces, nrm=nrm, tp=tp, tn=tn, joints=joints, weights=weights,
                  albedo=albedo, hair_pos=hp, hair_idx=hidx, hair_colors=colors)
    return b.to_glb(), arrays


@pytest.fixture(scope="module")
def avatar():
    return build_avatar()


# ---------------------------------------------------------------------------------------------
# helpers: repack a modified JSON / BIN into a GLB


def _chunks(glb: bytes) -> tuple[dict, bytearray]:
    (jlen,) = struct.unpack("<I", glb[12:16])
    doc = json.loads(glb[20:20 + jlen])
    (blen,) = struct.unpack("<I", glb[20 + jlen:24 + jlen])
    return doc, bytearray(glb[28 + jlen:28 + jlen + blen])


def _pack(doc: dict, binary: bytes) -> bytes:
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    binary = bytes(binary) + b"\0" * (-len(binary) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def _write_accessor(doc, binary, i, values):
    """Overwrite accessor ``i``'s data (tightly packed views only) with ``values``."""
    acc = doc["accessors"][i]
    view = doc["bufferViews"][acc["bufferView"]]
    data = np.ascontiguousarray(values).tobytes()
    assert "byteStride" not in view and len(data) <= view["byteLength"]
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    binary[start:start + len(data)] = data


# ---------------------------------------------------------------------------------------------
# round trips


def test_avatar_round_trip(avatar):
    glb, a = avatar
    r = read_glb(glb)
    doc, acc = r["json"], r["accessors"]
    assert doc["asset"] == {"version": "2.0", "generator": "machlib test"}
    head = doc["meshes"][0]
    prim = head["primitives"][0]
    attrs = prim["attributes"]
    np.testing.assert_array_equal(acc[attrs["POSITION"]], a["pos"])
    np.testing.assert_allclose(acc[attrs["NORMAL"]], a["nrm"], atol=1e-6)
    np.testing.assert_array_equal(acc[attrs["TEXCOORD_0"]], a["uv"].astype(np.float32))  # no v flip
    np.testing.assert_array_equal(acc[prim["indices"]], a["faces"].reshape(-1))
    assert doc["accessors"][prim["indices"]]["componentType"] == 5123  # uint16 for a small mesh
    assert doc["accessors"][attrs["POSITION"]]["min"] == a["pos"].min(0).tolist()
    assert doc["accessors"][attrs["POSITION"]]["max"] == a["pos"].max(0).tolist()
    # 52 ARKit morph targets
    assert head["extras"]["targetNames"] == list(ARKIT_BLENDSHAPES)
    assert head["weights"] == [0.0] * 52 and len(prim["targets"]) == 52
    for t in (0, 17, 51):
        np.testing.assert_array_equal(acc[prim["targets"][t]["POSITION"]], a["tp"][t])
        np.testing.assert_array_equal(acc[prim["targets"][t]["NORMAL"]], a["tn"][t])
    # skin: weights normalised, order of the 4 strongest
    w = acc[attrs["WEIGHTS_0"]].astype(np.float64)
    j = acc[attrs["JOINTS_0"]]
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-7)
    dense = np.zeros((len(w), 3))
    np.add.at(dense, (np.arange(len(w))[:, None], j.astype(np.int64)), w)  # unused slots: joint 0, weight 0
    want = a["weights"] / a["weights"].sum(1, keepdims=True)
    np.testing.assert_allclose(dense, want, atol=1e-6)
    # tangents: unit, orthogonal to the normals, w = ±1
    tan = acc[attrs["TANGENT"]].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(tan[:, :3], axis=1), 1.0, atol=1e-6)
    assert np.abs(np.sum(tan[:, :3] * a["nrm"], 1)).max() < 1e-5 and set(tan[:, 3]) <= {-1.0, 1.0}
    # hair
    hair = doc["meshes"][1]["primitives"]
    assert [p["mode"] for p in hair] == [1, 3]
    np.testing.assert_array_equal(acc[hair[0]["attributes"]["POSITION"]], a["hair_pos"])
    np.testing.assert_array_equal(acc[hair[0]["indices"]], a["hair_idx"])
    np.testing.assert_array_equal(acc[hair[0]["attributes"]["COLOR_0"]], a["hair_colors"])
    color = doc["accessors"][hair[0]["attributes"]["COLOR_0"]]
    assert color["normalized"] and doc["bufferViews"][color["bufferView"]]["byteStride"] == 4
    assert "indices" not in hair[1]


def test_skin_hierarchy_and_inverse_bind_matrices(avatar):
    glb, _ = avatar
    r = read_glb(glb)
    doc = r["json"]
    nodes = doc["nodes"]
    assert [n["name"] for n in nodes] == ["neck", "head", "jaw", "head_mesh", "hair"]
    assert nodes[0]["children"] == [1] and nodes[1]["children"] == [2, 4]
    assert doc["scenes"] == [{"nodes": [0, 3]}] and doc["scene"] == 0
    skin = doc["skins"][0]
    assert skin["joints"] == [0, 1, 2] and skin["skeleton"] == 0 and nodes[3]["skin"] == 0
    ibm = r["accessors"][skin["inverseBindMatrices"]]
    assert ibm.shape == (3, 4, 4)
    b = GltfBuilder(generator="x")
    n0 = b.add_node(translation=(0.0, -0.12, 0.0))
    n1 = b.add_node(parent=n0, translation=(0.0, 0.12, 0.0))
    n2 = b.add_node(parent=n1, translation=(0.0, -0.03, 0.02), rotation=(0.0871557, 0.0, 0.0, 0.9961947))
    for k, n in enumerate((n0, n1, n2)):
        np.testing.assert_allclose(ibm[k] @ b.world_matrix(n), np.eye(4), atol=1e-6)
    # column-major on disk: the translation of neck's IBM (+0.12 in y) sits at elements 12..14
    doc2, binary = _chunks(glb)
    view = doc2["bufferViews"][doc2["accessors"][skin["inverseBindMatrices"]]["bufferView"]]
    first = np.frombuffer(bytes(binary[view["byteOffset"]:view["byteOffset"] + 64]), "<f4")
    np.testing.assert_allclose(first[12:15], [0.0, 0.12, 0.0], atol=1e-7)


def test_textures_embedded_as_png(avatar):
    glb, a = avatar
    r = read_glb(glb)
    doc = r["json"]
    mat = doc["materials"][0]
    pbr = mat["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == 0.0 and pbr["roughnessFactor"] == 0.6
    assert {"baseColorTexture", "metallicRoughnessTexture"} <= set(pbr) and "normalTexture" in mat
    img = doc["textures"][pbr["baseColorTexture"]["index"]]["source"]
    assert doc["images"][img]["mimeType"] == "image/png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r["images"][img]))), a["albedo"])
    assert len(doc["images"]) == 3
    # the same texture twice is stored once
    b = GltfBuilder(generator="x")
    b.add_material(base_color_texture=a["albedo"])
    b.add_material(base_color_texture=a["albedo"].copy(), alpha_mode="MASK", alpha_cutoff=0.3, double_sided=True)
    doc = b.to_json()
    assert len(doc["images"]) == 1 and len(doc["textures"]) == 1
    assert doc["materials"][1]["alphaMode"] == "MASK" and doc["materials"][1]["alphaCutoff"] == 0.3
    assert doc["materials"][1]["doubleSided"] is True


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_png_decodes_with_pillow(channels):
    img = (np.random.default_rng(channels).random((7, 5, channels)) * 255).astype(np.uint8)
    png = encode_png(img)
    back = np.asarray(Image.open(io.BytesIO(png)))
    np.testing.assert_array_equal(back.reshape(img.shape), img)
    assert png == encode_png(img.copy())  # deterministic


def test_output_is_deterministic():
    assert build_avatar()[0] == build_avatar()[0]


def test_uint32_indices_for_large_meshes():
    n = 70_000
    pos = np.random.default_rng(0).random((n, 3)).astype(np.float32)
    faces = np.array([[0, 1, n - 1]])
    b = GltfBuilder(generator="x")
    b.add_node(mesh=b.add_mesh([Triangles(pos, faces)]))
    glb = b.to_glb()
    r = read_glb(glb)
    idx = r["json"]["meshes"][0]["primitives"][0]["indices"]
    assert r["json"]["accessors"][idx]["componentType"] == 5125
    assert r["accessors"][idx].tolist() == [0, 1, n - 1]
    assert validate_gltf(glb) == []


def test_skin_weights_keep_four_strongest_and_merge_duplicates():
    pos = np.zeros((2, 3))
    pos[1, 0] = 1.0
    joints = [[0, 1, 2, 3, 4, 5], [2, 2, 1, 0, 0, 0]]
    weights = [[0.1, 0.5, 0.2, 0.05, 0.3, 0.0], [0.25, 0.25, 0.3, 0.0, 0.0, 0.0]]
    t = Triangles(pos[[0, 1, 1]], [[0, 1, 2]], joints=np.array(joints)[[0, 1, 1]],
                  weights=np.array(weights)[[0, 1, 1]])
    assert sorted(zip(t.joints[0].tolist(), np.round(t.weights[0].astype(float), 6).tolist())) == \
        [(0, 0.090909), (1, 0.454545), (2, 0.181818), (4, 0.272727)]
    assert sorted(zip(t.joints[1].tolist(), np.round(t.weights[1].astype(float), 6).tolist())) == \
        [(0, 0.0), (0, 0.0), (1, 0.375), (2, 0.625)]
    assert np.abs(t.weights.astype(np.float64).sum(1) - 1).max() < 6e-8


def test_vertex_tangents_follow_uv_and_handedness():
    p = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    n = np.tile([0.0, 0, 1], (3, 1))
    idx = [[0, 1, 2]]
    t = vertex_tangents(p, n, [[0, 1], [1, 1], [0, 0]], idx)
    np.testing.assert_allclose(t, np.tile([1.0, 0, 0, 1], (3, 1)), atol=1e-7)
    mirrored = vertex_tangents(p, n, [[1, 1], [0, 1], [1, 0]], idx)  # u runs the other way
    np.testing.assert_allclose(mirrored, np.tile([-1.0, 0, 0, -1], (3, 1)), atol=1e-7)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 40), f=st.integers(1, 30), seed=st.integers(0, 2**16), targets=st.integers(0, 3))
def test_random_round_trip(n, f, seed, targets):
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(n, 3)).astype(np.float32)
    faces = rng.integers(0, n, size=(f, 3))
    uv = rng.random((n, 2)).astype(np.float32)
    col = rng.random((n, 4)).astype(np.float32)
    tp = rng.normal(size=(targets, n, 3)).astype(np.float32) if targets else None
    b = GltfBuilder(generator="x")
    m = b.add_mesh([Triangles(pos, faces, uv=uv, colors=col, target_positions=tp)], weights=np.full(targets, 0.5) if targets else None)
    b.add_node(mesh=m)
    glb = b.to_glb()
    assert validate_gltf(glb) == []
    r = read_glb(glb)
    at = r["json"]["meshes"][0]["primitives"][0]["attributes"]
    np.testing.assert_array_equal(r["accessors"][at["POSITION"]], pos)
    np.testing.assert_array_equal(r["accessors"][at["TEXCOORD_0"]], uv)
    np.testing.assert_array_equal(r["accessors"][at["COLOR_0"]], col)
    np.testing.assert_array_equal(r["accessors"][r["json"]["meshes"][0]["primitives"][0]["indices"]], faces.reshape(-1))
    if targets:
        assert r["json"]["meshes"][0]["weights"] == [0.5] * targets


# ---------------------------------------------------------------------------------------------
# bad input


def _tri(**kw):
    return Triangles(np.eye(3), np.array([[0, 1, 2]]), **kw)


@pytest.mark.parametrize("make, match", [
    (lambda: Triangles(np.array([[0, 0, np.nan], [1, 0, 0], [0, 1, 0]]), [[0, 1, 2]]), "NaN"),
    (lambda: Triangles(np.eye(3), [[0, 1, 3]]), "out of range"),
    (lambda: Triangles(np.eye(3), [[0, 1, -1]]), "out of range"),
    (lambda: Triangles(np.eye(3)[:, :2], [[0, 1, 2]]), r"shape \(\.\.\., 3\)"),
    (lambda: _tri(uv=np.zeros((4, 2))), "4 rows but there are 3 vertices"),
    (lambda: _tri(normals=np.zeros((3, 3))), "zero-length"),
    (lambda: _tri(colors=np.full((3, 3), 2.0)), r"\[0, 1\]"),
    (lambda: _tri(joints=np.zeros((3, 1), int)), "give both"),
    (lambda: _tri(joints=np.zeros((3, 2), int), weights=np.zeros((3, 2))), "all-zero skin weights"),
    (lambda: _tri(joints=np.zeros((3, 2), int), weights=-np.ones((3, 2))), ">= 0"),
    (lambda: _tri(target_positions=np.zeros((2, 4, 3))), r"expected \(T, 3, 3\)"),
    (lambda: _tri(normals=np.eye(3), target_positions=np.zeros((2, 3, 3)), target_normals=np.zeros((1, 3, 3))),
     "target_normals has shape"),
    (lambda: _tri(target_positions=np.zeros((1, 3, 3)), target_normals=np.zeros((1, 3, 3))), "need base normals"),
    (lambda: _tri(tangents=np.tile([1.0, 0, 0, 0.5], (3, 1))), "handedness"),
    (lambda: Lines(np.zeros((3, 3))), "even number"),
    (lambda: Lines(np.zeros((3, 3)), [0], mode="line_strip"), "at least 2"),
])
def test_bad_primitives_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_builder_calls_raise():
    b = GltfBuilder(generator="x")
    with pytest.raises(ValueError, match="52 target_names for 1 morph targets"):
        b.add_mesh([_tri(target_positions=np.zeros((1, 3, 3)))], target_names=ARKIT_BLENDSHAPES)
    with pytest.raises(ValueError, match="unique"):
        b.add_mesh([_tri(target_positions=np.zeros((2, 3, 3)))], target_names=["a", "a"])
    with pytest.raises(ValueError, match="same number of morph targets"):
        b.add_mesh([_tri(target_positions=np.zeros((2, 3, 3))), Lines(np.zeros((2, 3)))])
    with pytest.raises(ValueError, match="material 0 does not exist"):
        b.add_mesh([_tri(material=0)])
    with pytest.raises(ValueError, match="base_color"):
        b.add_material(base_color=(1.0, 2.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="bad signature"):
        b.add_material(base_color_texture=b"not a png")
    with pytest.raises(ValueError, match="parent 5 does not exist"):
        b.add_node(parent=5)
    skinned = b.add_mesh([_tri(joints=[[0], [1], [3]], weights=np.ones((3, 1)))])
    with pytest.raises(ValueError, match="give its node a skin"):
        b.add_node(mesh=skinned)
    j = b.add_node(name="j")
    s = b.add_skin([j])
    with pytest.raises(ValueError, match="uses joint 3 but skin 0 has 1 joints"):
        b.add_node(mesh=skinned, skin=s)
    with pytest.raises(ValueError, match="unique"):
        b.add_skin([j, j])
    with pytest.raises(ValueError, match="inverse_bind_matrices must have shape"):
        b.add_skin([j], inverse_bind_matrices=np.zeros((2, 4, 4)))


# ---------------------------------------------------------------------------------------------
# the in-repo validator on broken files


def _break(glb, how):
    doc, binary = _chunks(glb)
    prim = doc["meshes"][0]["primitives"][0]
    attrs = prim["attributes"]
    if how == "index_out_of_range":
        n = doc["accessors"][prim["indices"]]["count"]
        vals = read_glb(glb)["accessors"][prim["indices"]].copy()
        vals[5] = 9999
        _write_accessor(doc, binary, prim["indices"], vals.astype(np.uint16))
        assert n == len(vals)
    elif how == "wrong_min":
        doc["accessors"][attrs["POSITION"]]["min"][0] -= 0.5
    elif how == "missing_max":
        del doc["accessors"][prim["targets"][3]["POSITION"]]["max"]
    elif how == "target_names":
        doc["meshes"][0]["extras"]["targetNames"].pop()
    elif how == "mesh_weights":
        doc["meshes"][0]["weights"].append(0.0)
    elif how == "target_count_mismatch":
        doc["meshes"][1]["primitives"][0]["targets"] = [{"POSITION": attrs["POSITION"]}]
    elif how == "target_attribute_mismatch":
        del prim["targets"][7]["NORMAL"]
    elif how == "bad_weights":
        w = read_glb(glb)["accessors"][attrs["WEIGHTS_0"]].copy()
        w[10] *= 0.5
        _write_accessor(doc, binary, attrs["WEIGHTS_0"], w)
    elif how == "joint_out_of_range":
        j = read_glb(glb)["accessors"][attrs["JOINTS_0"]].copy()
        j[3, 0] = 7
        _write_accessor(doc, binary, attrs["JOINTS_0"], j)
    elif how == "ibm_count":
        doc["skins"][0]["joints"].pop()
    elif how == "bad_png":
        view = doc["bufferViews"][doc["images"][0]["bufferView"]]
        binary[view["byteOffset"] + 40] ^= 0xFF
    elif how == "view_past_buffer":
        doc["bufferViews"][0]["byteLength"] += len(binary)
    elif how == "color_not_normalized":
        del doc["accessors"][doc["meshes"][1]["primitives"][0]["attributes"]["COLOR_0"]]["normalized"]
    elif how == "normal_type":
        doc["accessors"][attrs["NORMAL"]]["type"] = "VEC4"
    elif how == "material_index":
        prim["material"] = 9
    elif how == "scene_not_root":
        doc["scenes"][0]["nodes"].append(2)
    elif how == "non_unit_rotation":
        doc["nodes"][2]["rotation"] = [0.5, 0.0, 0.0, 0.5]
    else:
        raise AssertionError(how)
    return _pack(doc, binary)


BREAKS = {
    "index_out_of_range": "indices: index 9999 out of range",
    "wrong_min": r"\.min: .* does not match the data",
    "missing_max": r"targets\[3\]\.POSITION: POSITION accessor needs min and max",
    "target_names": "extras.targetNames: 51 names for 52 morph targets",
    "mesh_weights": "weights: 53 weights for 52 morph targets",
    "target_count_mismatch": r"meshes\[1\]: primitives have different numbers of morph targets",
    "target_attribute_mismatch": r"targets\[7\]: attributes",
    "bad_weights": "WEIGHTS_0: 1 vertices have weights not summing to 1",
    "joint_out_of_range": r"JOINTS_0: joint 7 out of range for skin 0 \(3 joints\)",
    "ibm_count": "inverseBindMatrices: 3 matrices for 2 joints",
    "bad_png": "bad CRC",
    "view_past_buffer": r"bufferViews\[0\]: range .* exceeds buffer 0",
    "color_not_normalized": r"COLOR_0: componentType 5121 with normalized=False not allowed",
    "normal_type": "NORMAL: type VEC4 not allowed",
    "material_index": r"material: index 9 out of range for materials \(2 items\)",
    "scene_not_root": "node 2 is not a root",
    "non_unit_rotation": r"nodes\[2\]\.rotation: must be a unit quaternion",
}


def test_validate_passes_good_file(avatar):
    assert validate_gltf(avatar[0]) == []
    assert validate_gltf(_pack(*_chunks(avatar[0]))) == []  # the repacking helper itself is neutral


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_validate_names_the_problem(avatar, how):
    problems = validate_gltf(_break(avatar[0], how))
    assert problems, how
    assert any(re.search(BREAKS[how], p) for p in problems), problems


def test_validate_glb_container_problems(avatar):
    glb = avatar[0]
    assert validate_gltf(b"GLTF" + glb[4:]) == ["GLB: bad magic (not 'glTF')"]
    assert "GLB: header length" in validate_gltf(glb[:8] + struct.pack("<I", len(glb) + 4) + glb[12:])[0]
    truncated = validate_gltf(glb[:-8])
    assert any("runs past the end" in p for p in truncated)
    doc, binary = _chunks(glb)
    js = json.dumps(doc).encode()
    js += b" " * ((2 - len(js)) % 4)  # JSON chunk length 2 (mod 4)
    odd = struct.pack("<II", len(js), 0x4E4F534A) + js
    bad = struct.pack("<III", 0x46546C67, 2, 12 + len(odd)) + odd
    assert any("not a multiple of 4" in p for p in validate_gltf(bad))
    with pytest.raises(ValueError, match="read_glb: GLB: bad magic"):
        read_glb(b"GLTF" + glb[4:])


# ---------------------------------------------------------------------------------------------
# the official Khronos validator


def test_khronos_validator_accepts_sample_files(khronos_validator, avatar, tmp_path):
    minimal = GltfBuilder(generator="x")
    minimal.add_node(mesh=minimal.add_mesh([Triangles(np.eye(3), [[0, 1, 2]])]))
    reports = khronos_reports(khronos_validator, {"avatar": avatar[0], "minimal": minimal.to_glb()}, tmp_path)
    for name, report in reports.items():
        assert report["validatorVersion"] == KHRONOS_VERSION
        assert report["issues"]["numErrors"] == 0, f"{name}: {khronos_summary(report)}"
        # the avatar is also free of warnings (tangents are given for its normal map)
        assert report["issues"]["numWarnings"] == 0, f"{name}: {khronos_summary(report)}"


def test_khronos_validator_agrees_on_broken_files(khronos_validator, avatar, tmp_path):
    hows = ["index_out_of_range", "wrong_min", "bad_weights", "joint_out_of_range", "target_names",
            "ibm_count", "mesh_weights"]
    broken = {how: _break(avatar[0], how) for how in hows}
    reports = khronos_reports(khronos_validator, broken, tmp_path)
    for how, report in reports.items():
        issues = report["issues"]
        if how == "target_names":  # extras are free-form to the spec; only our check knows the rule
            continue
        assert issues["numErrors"] > 0, f"{how}: Khronos found no error\n{khronos_summary(report)}"
