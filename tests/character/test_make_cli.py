"""``machlib make`` end to end (bundled portrait; prompt without weights), bad input, and the real
avatar in the browser viewer."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from machlib.animation import ARKIT_BLENDSHAPES
from machlib._errors import InputError
from machlib.cli import main
from machlib.export import read_glb, validate_gltf
from webtools import Chromium, chromium_path, khronos_reports, khronos_summary, khronos_validator  # noqa: F401

FILES = {"avatar.glb", "avatar.zip", "avatar.obj", "avatar.mtl", "avatar_albedo.png", "avatar_normal.png",
         "avatar_roughness.png", "avatar_specular.png", "albedo.png", "hair.data", "hair.usda", "preview_front.png",
         "preview_three_quarter.png", "preview_profile.png", "preview_back.png", "turntable.png",
         "expressions.png", "relit.png", "report.json"}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The README's main job, made small: the bundled portrait with the default prompt."""
    out = tmp_path_factory.mktemp("make") / "out"
    status = main(["make", "-o", str(out), "--strands", "400", "--preview-size", "128", "-q",
                   "--expression", "happiness=0.6"])
    assert status == 0
    return out


@pytest.mark.slow
def test_make_writes_the_complete_character(made):
    names = {p.name for p in made.iterdir()}
    assert FILES | {"render_input_view.png"} <= names
    from machlib.cli import _OUTPUT_FILES

    assert names <= set(_OUTPUT_FILES["make"]), names - set(_OUTPUT_FILES["make"])  # checked before the run
    report = json.loads((made / "report.json").read_text())
    assert report["mode"] == "image" and report["attributes"]["glasses"] == "cat-eye"
    assert report["assets"]["garment"]["type"] == "suit" and report["assets"]["glasses"]["color"] == "brown"
    assert report["iris_color"] == "blue" and report["hair"]["strands"] == 400
    assert report["expression"]["mouthSmileLeft"] > 0
    assert report["landmark_residual_px"]["median"] < 5 and report["face_metrics"]["raw"]["face_psnr_db"] > 25
    for stage in ("fit.fit", "texture.complete", "hair.grow", "assemble", "export", "previews", "make"):
        assert report["timings"][stage] >= 0
    from PIL import Image

    view = np.asarray(Image.open(made / "render_input_view.png"))
    assert view.shape == (600, 512, 4)  # RGBA at the bundled portrait's resolution
    cover = view[..., 3] > 0
    assert 0.2 < cover.mean() < 0.95 and cover[300, 256]  # the face is in the middle, as in the photo
    glb = (made / "avatar.glb").read_bytes()
    assert validate_gltf(glb) == []
    doc = read_glb(glb)["json"]
    head = [m for m in doc["meshes"] if m["name"] == "head"][0]
    assert head["extras"]["targetNames"] == list(ARKIT_BLENDSHAPES)
    assert {"frame", "lenses", "garment", "sclera_L", "upper_teeth", "tongue", "eyelashes", "hair"} <= {
        m["name"] for m in doc["meshes"]}
    with zipfile.ZipFile(io.BytesIO((made / "avatar.zip").read_bytes())) as z:
        listed = set(z.namelist())
        assert listed == names - {"avatar.zip"}
        assert all(not n.startswith("/") and ".." not in n for n in listed)
    for png in ("preview_front.png", "expressions.png", "relit.png", "turntable.png"):
        img = np.asarray(Image.open(made / png))
        assert img.std() > 10, png  # not blank


@pytest.mark.slow
def test_made_report_says_where_each_attribute_came_from(made):
    """The bundled portrait with the default prompt: the prompt sets glasses and gender, the photo
    the beard (none) and the skin tone; the photo's own glasses reading is in the evidence."""
    report = json.loads((made / "report.json").read_text())
    src = report["attribute_sources"]
    assert src["glasses"] == src["gender"] == src["age_group"] == "prompt"
    assert src["beard"] == src["moustache"] == src["skin_tone"] == "photo"
    from machlib.text import VOCABULARY

    assert report["attributes"]["beard"] == "none" and report["attributes"]["skin_tone"] in VOCABULARY["skin_tone"]
    assert -90 < report["attribute_evidence"]["skin_tone"]["ita_degrees"] < 90
    assert report["attribute_evidence"]["glasses"]["score"] > 0.5  # Grace Hopper wears glasses


@pytest.mark.slow
def test_made_avatar_passes_the_khronos_validator(khronos_validator, made, tmp_path):  # noqa: F811
    report = khronos_reports(khronos_validator, {"avatar": (made / "avatar.glb").read_bytes()}, tmp_path)["avatar"]
    errors = [m for m in report["issues"]["messages"] if m["severity"] <= 1]
    assert not errors, khronos_summary(report)


@pytest.mark.slow
def test_made_avatar_in_the_viewer(made, tmp_path):
    """three.js (headless Chromium, software WebGL) draws the real avatar; hair toggles; jaw opens."""
    from machlib.viewer import build_viewer, serve_viewer

    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium not installed (apt-get install chromium): browser check skipped")
    build_viewer(made)
    srv, url = serve_viewer(made)
    browser = Chromium(exe, tmp_path / "profile")
    try:
        full = browser.screenshot(url + "?panel=0").astype(int)
        bald = browser.screenshot(url + "?panel=0&hair=0").astype(int)
        jaw = browser.screenshot(url + "?panel=0&hair=0&morph=jawOpen:1").astype(int)
    finally:
        browser.close()
        srv.shutdown()
        srv.server_close()
    bg = np.median(np.concatenate([full[:8, :8].reshape(-1, 3), full[:8, -8:].reshape(-1, 3)]), 0)
    model = np.abs(full - bg).max(-1) > 12
    assert 0.05 < model.mean() < 0.9  # the avatar fills a good part of the canvas
    skin = (full[..., 0] > full[..., 2] + 20) & (full[..., 0] > 90) & model
    assert skin.mean() > 0.005  # skin-coloured face pixels
    assert (np.abs(full - bald).max(-1) > 20).mean() > 0.002  # the hair toggle hides the hair
    changed = np.abs(jaw - bald).max(-1) > 20
    assert changed.sum() > 100  # the jaw opens


def test_make_from_prompt_without_weights(tmp_path, capsys, monkeypatch):
    """Text only, no diffusion weights: a notice, then the template shaped and dressed by the prompt."""
    for var in ("MACHLIB_SD_MODEL", "MACHLIB_CONTROLNET_OPENPOSE", "MACHLIB_CONTROLNET_CANNY", "MACHLIB_DIFFUSION_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "out"
    status = main(["make", "--prompt", "a young Black man with a round face, green eyes, a short afro and "
                   "round glasses, wearing a red hoodie", "-o", str(out), "--strands", "200", "--preview-size", "96"])
    assert status == 0
    assert "notice" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "template" and report["notices"]
    assert report["iris_color"] == "green" and report["assets"]["hairstyle"]["style"] == "afro"
    assert report["assets"]["glasses"]["style"] == "round" and report["assets"]["garment"]["type"] == "hoodie"
    assert report["assets"]["garment"]["color"] == "red"
    # no fitted geometry, so no detail for a normal map: none is written, and the MTL names none
    names = {p.name for p in out.iterdir()}
    assert FILES - {"avatar_normal.png"} <= names and "avatar_normal.png" not in names
    assert "map_Bump" not in (out / "avatar.mtl").read_text()
    assert not (out / "render_input_view.png").exists()
    from PIL import Image

    albedo = np.asarray(Image.open(out / "albedo.png")).astype(float)
    assert albedo.mean() < 110  # dark skin tone: the stated ancestry's, the prompt naming no tone
    assert report["attributes"]["ancestry"] == "african"
    assert report["assets"]["skin"]["tone"] == "dark" and report["assets"]["skin"]["tone_source"] == "ancestry"
    assert report["human"]["phenotype"]["african"] == 1.0 and report["human"]["set_by_attributes"]["african"]
    assert report["assets"]["skin"]["brows"] == "black"  # the hair's default colour for him
    # the prompt describes the human: a young man with a round face
    assert report["body"]["extent"] == "bust" and 1.5 < report["body"]["height_m"] < 2.0


def test_make_full_body_from_a_prompt(monkeypatch):
    """--body full: the whole human, dressed, skinned to all 163 of MakeHuman's bones."""
    from machlib.character import make_character
    from machlib.export import read_glb, validate_gltf
    from machlib.character import character_glb

    for var in ("MACHLIB_SD_MODEL", "MACHLIB_CONTROLNET_OPENPOSE", "MACHLIB_CONTROLNET_CANNY", "MACHLIB_DIFFUSION_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    r = make_character(prompt="an elderly heavy woman in a blue dress", body="full", n_strands=100, n_points=8,
                       guides=None)
    ch = r.character
    assert len(ch.joints) == 163
    names = {p.name for p in ch.parts}
    assert {"head", "skin", "garment", "shoes"} <= names
    figure = np.concatenate([np.asarray(ch.part(n).mesh.vertices) for n in ("head", "skin")])
    assert 1.4 < np.ptp(figure[:, 1]) < 1.9  # a whole figure, crown to soles
    glb = character_glb(ch)
    assert validate_gltf(glb) == []
    doc = read_glb(glb)["json"]
    assert len(doc["skins"][0]["joints"]) == 163


@pytest.mark.parametrize("args, message", [
    (["--image", "/no/such/photo.png"], "photo.png"),
    (["--expression", "happiness=2"], "happiness"),
    (["--expression", "joy=1"], "joy"),
    (["--hair", "mohawk"], "mohawk"),
    (["--prompt", "  "], "empty"),
    (["--strands", "0"], "strands"),
    (["--classifier", "/no/such/clip"], "classifier"),
    (["--delighter", "/no/such/delighter.json"], "--delighter"),
])
def test_make_bad_input_leaves_out_untouched(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["make", "-o", str(out), "-q"] + args) == 2
    err = capsys.readouterr().err
    assert "machlib: error" in err and message in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_make_refuses_a_file_as_output(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["make", "-o", str(f), "-q"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert Path(f).read_text() == "x"


def test_make_character_rejects_an_unknown_delighter_in_every_mode():
    from machlib.character import make_character

    for kw in ({"prompt": "a woman"}, {"image": np.zeros((64, 64, 3), np.uint8)}):
        with pytest.raises(InputError, match="delighter"):
            make_character(delighter="shh", **kw)


def test_skin_tone_hair_colour_and_a_short_afro_from_the_words():
    from machlib.character._make import _hair_color_name, _sized_style, _skin_tone_of
    from machlib.hair import HAIR_STYLES
    from machlib.text import FaceAttributes as A

    assert _skin_tone_of(A(ancestry="african")) == ("dark", "ancestry")
    assert _skin_tone_of(A(ancestry="african", skin_tone="brown")) == ("brown", "prompt")  # a stated tone wins
    assert _skin_tone_of(A(gender="male")) == ("light", "default")
    assert _hair_color_name(A(ancestry="east asian")) == "black" and _hair_color_name(A()) == "brown"
    assert _hair_color_name(A(ancestry="african", age_group="elderly")) == "gray"
    assert _hair_color_name(A(ancestry="african", hair_color="red")) == "red"
    afro = HAIR_STYLES["afro"]
    short = _sized_style(afro, "short")
    assert short.length < 0.6 * afro.length and short.max_radius < afro.max_radius and short.curl == "coily"
    assert _sized_style(afro, None) is afro and _sized_style(HAIR_STYLES["bob"], "short") is HAIR_STYLES["bob"]
