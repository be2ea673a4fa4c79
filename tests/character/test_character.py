"""machlib.character: assembly around a head, GLB/OBJ/zip export, posing."""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
import pytest

from machlib.animation import ARKIT_BLENDSHAPES
from machlib.assets import make_bust, make_glasses
from machlib.character import (
    build_character, character_glb, posed_parts, skin_tone_albedo, write_bundle, write_character_obj,
)
from machlib.export import read_glb, validate_gltf
from machlib.geometry import default_template, template_albedo
from webtools import khronos_reports, khronos_summary, khronos_validator  # noqa: F401

IDX = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}


@pytest.fixture(scope="module")
def character():
    t = default_template()
    rng = np.random.default_rng(0)
    roots = np.asarray(t.mesh.vertices)[np.asarray(t.mesh.vertices)[:, 1] > 0.09][:40]
    hair = roots[:, None, :] + np.linspace(0, 1, 8)[None, :, None] * (rng.normal(size=(40, 1, 3)) * 0.01 + [0, 0.02, 0])
    glasses = make_glasses("round", color="black", template=t.mesh)
    return build_character(t.mesh, template_albedo(256), template=t, hair=hair, iris_color="green", glasses=glasses,
                           detail_height=_relief(t))


def _relief(t, R=256):
    """A 0.3 mm relief, continuous on the head (a function of the surface point), as a fit's detail."""
    from machlib.geometry import encode, uv_raster

    p = np.asarray(encode(np.asarray(t.mesh.vertices, np.float32), uv_raster(t.mesh, R)))
    return (3e-4 * np.sin(300 * p[..., 0]) * np.sin(300 * p[..., 1])).astype(np.float32)


@pytest.fixture(scope="module")
def glb(character):
    return character_glb(character)


def test_parts_and_rig(character):
    from machlib.human import BUST_JOINTS

    names = [p.name for p in character.parts]
    for n in ("head", "sclera_L", "iris_R", "pupil_L", "cornea_R", "upper_teeth", "lower_teeth", "upper_gums",
              "lower_gums", "tongue", "eyelashes", "frame", "lenses"):
        assert n in names, n
    assert [j.name for j in character.joints] == list(BUST_JOINTS)  # MakeHuman's bones, names kept
    head = character.part("head")
    J = len(character.joints)
    assert head.morphs.shape == (52, head.mesh.num_vertices, 3) and head.skin.shape[1] == J
    np.testing.assert_allclose(head.skin.sum(1), 1.0, atol=1e-5)
    assert (np.count_nonzero(head.skin, axis=1) <= 4).all()
    # the jaw bone carries the chin, the head bone the crown
    v = np.asarray(head.mesh.vertices)
    jaw, top = [j.name for j in character.joints].index("jaw"), [j.name for j in character.joints].index("head")
    lm = default_template().landmark_positions()
    assert head.skin[np.argmin(np.linalg.norm(v - lm[152], axis=1)), jaw] > 0.5
    assert head.skin[np.argmax(v[:, 1]), top] > 0.9
    iris = character.part("iris_L")
    # the iris is textured (fibres, limbal ring): its colour is the texture's, under a white factor
    color = np.asarray(iris.texture, np.float64).reshape(-1, 3).mean(0) * np.asarray(iris.base_color[:3])
    assert color[1] > color[0] and color[1] > color[2]  # green
    with pytest.raises(KeyError, match="no part"):
        character.part("wings")


def test_posing_moves_the_right_parts(character):
    w = np.zeros(52)
    w[IDX["jawOpen"]] = 1.0
    posed = {p.name: p for p in posed_parts(character, w)}
    rest = {p.name: p for p in posed_parts(character, None)}

    def shift(name):
        return np.abs(np.asarray(posed[name].mesh.vertices) - np.asarray(rest[name].mesh.vertices)).max()

    # the jaw opens the skin and carries the lower teeth and the tongue with it
    assert shift("lower_teeth") > 0.01 and shift("tongue") > 0.01 and shift("head") > 0.01
    assert shift("upper_teeth") == 0 and shift("frame") == 0
    w = np.zeros(52)
    w[IDX["eyeLookUpLeft"]] = 1.0
    posed = {p.name: p for p in posed_parts(character, w)}
    moved = np.abs(np.asarray(posed["iris_L"].mesh.vertices) - np.asarray(rest["iris_L"].mesh.vertices)).max()
    still = np.abs(np.asarray(posed["iris_R"].mesh.vertices) - np.asarray(rest["iris_R"].mesh.vertices)).max()
    assert moved > 1e-3 and still == 0  # only the left eye turns
    with pytest.raises((ValueError, TypeError), match="52"):
        posed_parts(character, np.zeros(3))


def test_glb_structure_and_determinism(character, glb):
    assert validate_gltf(glb) == []
    assert character_glb(character) == glb
    doc = read_glb(glb)["json"]
    meshes = {m["name"]: m for m in doc["meshes"]}
    assert meshes["head"]["extras"]["targetNames"] == list(ARKIT_BLENDSHAPES)
    assert len(meshes["head"]["primitives"][0]["targets"]) == 52
    nodes = {n.get("name"): n for n in doc["nodes"]}
    assert [doc["nodes"][j]["name"] for j in doc["skins"][0]["joints"]] == [j.name for j in character.joints]
    assert "rotation" in nodes["jaw"]  # MakeHuman's bone frames, not translation-only joints
    head_joint = [i for i, n in enumerate(doc["nodes"]) if n.get("name") == "head"][0]
    hair = [i for i, n in enumerate(doc["nodes"]) if n.get("name") == "hair" and "mesh" in n][0]
    assert hair in doc["nodes"][head_joint]["children"]
    hair_prim = doc["meshes"][nodes["hair"]["mesh"]]["primitives"][0]
    assert hair_prim["mode"] == 4 and "NORMAL" in hair_prim["attributes"]  # ribbons, not 1-px LINES
    hair_mat = doc["materials"][hair_prim["material"]]
    assert hair_mat["doubleSided"] is True
    # morph targets: sparse (only moving vertices), with normal deltas
    targets = meshes["head"]["primitives"][0]["targets"]
    assert all("NORMAL" in t for t in targets)
    blink = targets[list(ARKIT_BLENDSHAPES).index("eyeBlinkLeft")]
    acc = doc["accessors"][blink["POSITION"]]
    assert "bufferView" not in acc and 0 < acc["sparse"]["count"] < acc["count"] // 4
    decoded = read_glb(glb)["accessors"][blink["POSITION"]]
    head = character.part("head")
    _, _, _, src = head.mesh.split()
    want = np.asarray(head.morphs, np.float32)[list(ARKIT_BLENDSHAPES).index("eyeBlinkLeft")][src]
    np.testing.assert_allclose(decoded, np.where(np.abs(want).max(1, keepdims=True) >= 1e-6, want, 0), atol=0)
    head_mat = doc["materials"][meshes["head"]["primitives"][0]["material"]]
    pbr = head_mat["pbrMetallicRoughness"]
    assert "baseColorTexture" in pbr and "metallicRoughnessTexture" in pbr and "normalTexture" in head_mat
    # specular by region (KHR_materials_specular): the alpha of the metallic-roughness image
    spec = head_mat["extensions"]["KHR_materials_specular"]
    assert "KHR_materials_specular" in doc["extensionsUsed"]
    assert spec["specularTexture"]["index"] == pbr["metallicRoughnessTexture"]["index"]
    png = Image.open(io.BytesIO(read_glb(glb)["images"][doc["textures"][spec["specularTexture"]["index"]]["source"]]))
    rgba = np.asarray(png)
    assert png.mode == "RGBA" and rgba[..., 2].max() == 0  # B: not metal
    head = character.part("head")
    np.testing.assert_array_equal(rgba[..., 1], (head.roughness_map * 255 + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(rgba[..., 3], (head.specular_map * 255 + 0.5).astype(np.uint8))
    assert "TANGENT" in meshes["head"]["primitives"][0]["attributes"]
    lens = doc["materials"][meshes["lenses"]["primitives"][0]["material"]]
    assert lens["alphaMode"] == "BLEND"


def test_hair_colours_andscalp_tint(character, glb):
    """The GLB's hair carries root-to-tip colours, and the scalp under the roots is tinted
    towards the hair colour (no bare skin between strands) while the face is not."""
    from machlib.character._assemble import _as_float_image
    from machlib.hair import scalp_tint

    doc = read_glb(glb)
    nodes = {n.get("name"): n for n in doc["json"]["nodes"]}
    prim = doc["json"]["meshes"][nodes["hair"]["mesh"]]["primitives"][0]
    col = np.asarray(doc["accessors"][prim["attributes"]["COLOR_0"]], np.float64)
    col = col / 255.0 if col.max() > 1.0 else col
    per = col.reshape(len(character.hair), -1, 2, col.shape[-1])[..., :3].sum(-1)  # (S, P, 2)
    assert (per[:, -1] > per[:, 0] * 1.3).all()  # tips lighter than roots
    assert np.ptp(per[:, -1, 0]) > 0  # strands differ
    base = _as_float_image(template_albedo(256), "albedo")[..., :3]
    tex = character.part("head").texture[..., :3]
    changed = np.abs(tex - base).max(-1) > 0.05
    assert 0.0 < changed.mean() < 0.1  # the crown only
    assert tex[changed].mean() < base[changed].mean() - 0.1  # darker, towards the dark hair
    t = default_template()
    np.testing.assert_array_equal(scalp_tint(base, t.mesh, None, (0.05, 0.03, 0.02)), base.astype(np.float32))
    # a beard is exported like the hair: its own node of coloured ribbons under the head joint
    import dataclasses

    from machlib.character._assemble import _character_strands

    chin = np.asarray(t.landmark_positions())[152]
    beard = chin[None, None] + np.linspace(0, 1, 5)[None, :, None] * np.array([0.0, -0.02, 0.004])
    beard = beard + np.random.default_rng(1).normal(size=(30, 1, 3)) * 0.003
    bearded = dataclasses.replace(character, beard=beard.astype(np.float32))
    out = character_glb(bearded)
    assert validate_gltf(out) == []
    bdoc = read_glb(out)["json"]
    names = [n.get("name") for n in bdoc["nodes"]]
    assert "beard" in names and "hair" in names
    both = _character_strands(bearded)
    assert both.points.shape == (len(character.hair) + 30, character.hair.shape[1], 3)
    # strands of their own shades (the photo's, make_character): the GLB, the renderers' strands and
    # the strand files carry them; the beard keeps the hair colour
    S = len(character.hair)
    shades = np.where((np.arange(S) % 2 == 0)[:, None], [0.5, 0.1, 0.05], [0.05, 0.1, 0.5]).astype(np.float32)
    shaded = dataclasses.replace(bearded, hair_colors=shades)
    sdoc = read_glb(character_glb(shaded))
    snodes = {n.get("name"): n for n in sdoc["json"]["nodes"]}
    sprim = sdoc["json"]["meshes"][snodes["hair"]["mesh"]]["primitives"][0]
    scol = np.asarray(sdoc["accessors"][sprim["attributes"]["COLOR_0"]], np.float64)
    scol = scol.reshape(S, -1, scol.shape[-1])
    assert (scol[0::2, :, 0] > scol[0::2, :, 2]).all() and (scol[1::2, :, 2] > scol[1::2, :, 0]).all()
    strands = _character_strands(shaded)
    np.testing.assert_array_equal(strands.color[:S], shades)
    np.testing.assert_allclose(strands.color[S:], np.broadcast_to(character.hair_color, (30, 3)), rtol=1e-6)
    np.testing.assert_allclose(character.strand_colors(), np.broadcast_to(character.hair_color, (S, 3)), rtol=1e-6)


def test_procedural_head_character():
    """The procedural head keeps its own assembly: a parted mouth, landmark-placed blendshapes and
    six translation-only joints."""
    from machlib.geometry import procedural_template

    t = procedural_template()
    ch = build_character(t.mesh, template_albedo(128, template=t), template=t, iris_color="blue")
    assert [j.name for j in ch.joints] == ["root", "neck", "head", "jaw", "eye_R", "eye_L"]
    assert ch.part("head").mesh.num_faces < t.mesh.num_faces  # the lips are parted
    assert {"sclera", "iris", "mouth_bag", "upper_teeth", "eyelashes"} <= {p.name for p in ch.parts}
    assert validate_gltf(character_glb(ch)) == []
    # the texture stage's own roughness and specular maps (texture_portrait(sheen=True)) replace the defaults
    rough, spec = np.full((64, 64), 0.5, np.float32), np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    head = build_character(t.mesh, template_albedo(128, template=t), template=t, pbr_maps=(rough, spec)).part("head")
    np.testing.assert_array_equal(head.roughness_map, rough)
    np.testing.assert_array_equal(head.specular_map, spec)


def test_glb_passes_the_khronos_validator(khronos_validator, glb, tmp_path):  # noqa: F811
    report = khronos_reports(khronos_validator, {"character": glb}, tmp_path)["character"]
    errors = [m for m in report["issues"]["messages"] if m["severity"] <= 1]
    assert not errors, khronos_summary(report)


def test_obj_and_bundle(character, tmp_path):
    files = write_character_obj(tmp_path, character)
    mtl = (tmp_path / "avatar.mtl").read_text()
    assert "map_Bump -bm 1.000 avatar_normal.png" in mtl and "map_Pr avatar_roughness.png" in mtl
    assert "map_Ks avatar_specular.png" in mtl
    assert Image.open(tmp_path / "avatar_roughness.png").mode == "L"  # data, not colour
    assert Image.open(tmp_path / "avatar_specular.png").mode == "L"
    assert {"avatar.obj", "avatar.mtl", "avatar_albedo.png", "avatar_normal.png", "avatar_roughness.png"} <= set(files)
    obj = (tmp_path / "avatar.obj").read_text()
    assert obj.count("\no ") + obj.startswith("o ") == len(character.parts)
    n_v = sum(p.mesh.num_vertices for p in character.parts)
    assert obj.count("\nv ") == n_v
    faces = [line for line in obj.splitlines() if line.startswith("f ")]
    top = max(int(c.split("/")[0]) for line in faces for c in line.split()[1:])
    assert top == n_v
    mtl = (tmp_path / "avatar.mtl").read_text()
    assert "map_Kd avatar_albedo.png" in mtl and mtl.count("newmtl") == len(character.parts)
    write_bundle(tmp_path / "a.zip", tmp_path, files)
    write_bundle(tmp_path / "b.zip", tmp_path, files)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO((tmp_path / "a.zip").read_bytes())) as z:
        assert sorted(z.namelist()) == sorted(files)
    for bad in ("../x", "/etc/passwd", "a b.png", "", "x/../y"):
        with pytest.raises((ValueError, TypeError), match="unsafe"):
            write_bundle(tmp_path / "c.zip", tmp_path, [bad])
    with pytest.raises((ValueError, TypeError), match="not a file"):
        write_bundle(tmp_path / "c.zip", tmp_path, ["missing.png"])


def test_skin_tone_recolours_skin():
    alb = template_albedo(128)
    light, dark = skin_tone_albedo(alb, "very light"), skin_tone_albedo(alb, "dark")
    assert light.mean() > dark.mean() + 0.2
    with pytest.raises((ValueError, TypeError), match="skin tone"):
        skin_tone_albedo(alb, "green")


def test_bust_skin_takes_the_neck_colour_and_long_hair_rests_on_it():
    """The bust's skin is the neck's colour. Hair hanging straight down from the sides of the
    head into the bust is draped over it: outside, roots and segment lengths kept."""
    from machlib.geometry import procedural_template
    from machlib.hair import body_sdf, sdf_lookup

    t = procedural_template()
    dark = skin_tone_albedo(template_albedo(128, template=t), "dark", template=t)
    bust = make_bust("t-shirt", template=t.mesh)
    v = np.asarray(t.mesh.vertices)
    side = v[(np.abs(v[:, 0]) > 0.5 * np.abs(v[:, 0]).max()) & (v[:, 1] > np.median(v[:, 1]))][::7][:24]
    hair = (side[:, None, :] + np.linspace(0.0, 0.35, 12)[None, :, None] * [0.0, -1.0, 0.0]).astype(np.float32)
    hair[:, 1:, 0] += np.sign(hair[:, :1, 0]) * 0.01  # clear of the head
    sdf = body_sdf([p.mesh for p in bust.parts])
    assert np.asarray(sdf_lookup(sdf, hair.reshape(-1, 3))).min() < -0.02  # through the shoulders
    ch = build_character(t.mesh, dark, template=t, bust=bust, hair=hair)
    skin = np.asarray(ch.part("skin").base_color[:3])
    assert skin.max() < 0.1 and skin[0] > skin[2]  # dark, warm (linear RGB), like the head's neck
    assert ch.part("garment").skin is not None  # the bust is skinned to root and neck
    assert np.asarray(sdf_lookup(sdf, ch.hair.reshape(-1, 3))).min() > 0.001
    np.testing.assert_array_equal(ch.hair[:, 0], hair[:, 0])
    seg = lambda p: np.linalg.norm(np.diff(np.asarray(p, np.float64), axis=1), axis=2)  # noqa: E731
    np.testing.assert_allclose(seg(ch.hair), seg(hair), atol=1e-5)


def test_build_character_bad_input():
    t = default_template()
    with pytest.raises((ValueError, TypeError), match="vertices"):
        build_character(default_template().mesh.__class__(np.zeros((3, 3)), np.array([[0, 1, 2]]),
                                                          np.zeros((3, 2)), np.array([[0, 1, 2]])),
                        template_albedo(64), template=t)
    with pytest.raises((ValueError, TypeError), match="hair"):
        build_character(t.mesh, template_albedo(64), template=t, hair=np.zeros((3, 3)))
    with pytest.raises((ValueError, TypeError), match="hair_colors"):
        build_character(t.mesh, template_albedo(64), template=t, hair=np.zeros((3, 4, 3)), hair_colors=np.ones((2, 3)))
    with pytest.raises((ValueError, TypeError), match="normal_detail"):
        build_character(t.mesh, template_albedo(64), template=t, normal_detail="bumps")
    with pytest.raises((ValueError, TypeError), match="pbr_maps"):
        build_character(t.mesh, template_albedo(64), template=t, pbr_maps=(np.zeros((8, 8)), np.zeros((4, 4))))
    with pytest.raises((ValueError, TypeError), match="detail_height"):
        build_character(t.mesh, template_albedo(64), template=t, detail_height=np.full((16, 8), np.nan))


def character_bones(glb):
    doc = read_glb(glb)["json"]
    return doc["skins"][0]["joints"]


def test_blender_imports_the_glb(glb, tmp_path):
    """Blender's own glTF importer: the 52 shape keys move vertices, the armature deforms the head,
    and the hair renders (Cycles) — it is triangles, not loose edges."""
    probe = subprocess.run([sys.executable, "-c", "import bpy"], capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        pytest.skip("Blender's Python module (bpy) is not installed: pip install bpy (it matches one Python version)")
    path = tmp_path / "avatar.glb"
    path.write_bytes(glb)
    script = Path(__file__).with_name("blender_check.py")
    proc = subprocess.run([sys.executable, str(script), str(path), str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("BLENDER_CHECK ")][-1]
    got = json.loads(line[len("BLENDER_CHECK "):])
    assert got["shape_keys"] == 52
    assert got["moves"]["jawOpen"] > 0.01 and got["moves"]["eyeBlinkLeft"] > 0.002
    assert got["armature_move"] > 0.01 and got["bones"] == len(character_bones(glb))
    assert got["maps"]["normal_map"] and got["maps"]["roughness"] and got["maps"]["specular"]
    assert got["maps"]["colorspaces"].count("Non-Color") >= 2  # the normal and roughness/specular maps are data
    assert got["hair_type"] == "MESH" and got["hair_polygons"] > 0 and got["hair_pixels"] * 96 * 96 > 20  # 40 thin strands: a few dozen pixels
