"""`machlib fit`: outputs on the bundled portrait; bad input → one-line error, exit 2, OUT untouched."""

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from machlib.cli import _OUTPUT_FILES, main


def _png_with_size(path, width, height):
    """A valid-header PNG claiming width × height, without allocating the pixels."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8  # after the signature: length(4) 'IHDR'(4) data(13) crc(4)
    struct.pack_into(">II", data, ihdr + 8, width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4 : ihdr + 8 + 13])) & 0xFFFFFFFF
    struct.pack_into(">I", data, ihdr + 8 + 13, crc)
    path.write_bytes(bytes(data))


def _bad_inputs(tmp):
    portrait = np.asarray(__import__("machlib").default_portrait())
    cases = {}
    cases["missing"] = (tmp / "nope.jpg", "does not exist")
    t = tmp / "notes.txt"
    t.write_text("hello, not an image\n")
    cases["text"] = (t, "not an image")
    j = tmp / "full.jpg"
    Image.fromarray(portrait).save(j, quality=90)
    cut = tmp / "truncated.jpg"
    cut.write_bytes(j.read_bytes()[: len(j.read_bytes()) // 2])
    cases["truncated"] = (cut, "truncated")
    g = tmp / "gray.png"
    Image.fromarray(portrait).convert("L").save(g)
    cases["grayscale"] = (g, "grayscale")
    a = tmp / "rgba.png"
    Image.fromarray(portrait).convert("RGBA").save(a)
    cases["rgba"] = (a, "alpha")
    s16 = tmp / "deep.png"
    Image.fromarray((np.asarray(Image.fromarray(portrait).convert("L"), np.uint16) * 257)).save(s16)
    cases["16bit"] = (s16, "16-bit")
    tiny = tmp / "tiny.png"
    Image.new("RGB", (1, 1), (200, 150, 120)).save(tiny)
    cases["1x1"] = (tiny, "too small")
    huge = tmp / "huge.png"
    _png_with_size(huge, 20000, 20000)
    cases["20000x20000"] = (huge, "too large")
    blank = tmp / "blank.png"
    Image.new("RGB", (256, 256), (120, 160, 200)).save(blank)
    cases["no face"] = (blank, "no face")
    return cases


@pytest.mark.parametrize(
    "case", ["missing", "text", "truncated", "grayscale", "rgba", "16bit", "1x1", "20000x20000", "no face"]
)
def test_bad_input_clear_error_nothing_written(tmp_path, capsys, case):
    path, expected = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    code = main(["fit", str(path), "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("machlib: error:"), err
    assert expected in err[0].lower(), err[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def test_bad_flags(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fit", "-o", str(out), "--template", "x.obj", "-q"]) == 2
    assert "--landmarks" in capsys.readouterr().err
    assert main(["fit", "-o", str(out), "--steps", "0", "-q"]) == 2
    assert main(["fit", "-o", str(out), "--resolution", "100", "-q"]) == 2
    assert not out.exists()


def test_failure_leaves_existing_out_as_it_was(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (128, 128), (10, 10, 10)).save(blank)
    assert main(["fit", str(blank), "-o", str(out), "-q"]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_console_script_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "machlib.cli", "fit", str(tmp_path / "missing.png"), "-o",
                        str(tmp_path / "o"), "-q"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("machlib: error:") and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_fit_default_portrait_writes_everything(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fit", "-o", str(out), "-q"]) == 0
    names = {p.name for p in out.iterdir()}
    for n in ("head.glb", "head.obj", "camera.json", "overlay.png", "report.json", "preview.png"):
        assert n in names, n
    assert names <= set(_OUTPUT_FILES["fit"]), names - set(_OUTPUT_FILES["fit"])  # checked before the run
    report = json.loads((out / "report.json").read_text())
    rp = report["landmarks"]["reprojection_px"]
    assert set(rp) >= {"mean", "median", "max"}
    assert rp["mean"] < 1.0 and rp["median"] < 0.6  # the lids and inner lips follow the facial actions (max larger)
    human = report["human"]  # the two stages of the human template's fit
    assert human["stage1"]["reprojection_px"]["mean"] > rp["mean"]
    # no prompt: gender and age are the landmarks' shape values, not reported as a reading
    assert human["stage1"]["held"] == [] and human["stage1"]["gender"] is None and human["stage1"]["age_years"] is None
    assert 0.0 <= human["stage1"]["phenotype"]["gender"] <= 1.0
    assert human["stage2"]["self_intersections"] == 0 and human["stage2"]["max_spike_mm"] < 2.0
    for k in ("landmarks", "template", "compile", "fit", "export"):
        assert report["timings"][k] >= 0.0
    cam = json.loads((out / "camera.json").read_text())
    assert len(cam["rotation_matrix"]) == 3 and cam["image_size"] == [512, 600]
    overlay = Image.open(out / "overlay.png")
    assert overlay.size == (1024, 1200) and overlay.mode == "RGB"  # drawn at 2× for small portraits
    # GLB loads back with the same geometry
    from machlib import load_mesh

    m = load_mesh(out / "head.glb")
    m2 = load_mesh(out / "head.obj")
    assert m.num_faces == m2.num_faces
    np.testing.assert_allclose(np.sort(np.asarray(m.vertices), 0), np.sort(np.asarray(m2.vertices), 0), atol=1e-5)
    # a second run into the same folder replaces the files, deterministically
    first = (out / "head.obj").read_bytes()
    assert main(["fit", "-o", str(out), "-q"]) == 0
    assert (out / "head.obj").read_bytes() == first


@pytest.mark.slow
def test_fit_with_user_template(tmp_path, capsys):
    """A user template (OBJ + JSON landmark table) goes through the same code path."""
    from machlib import save_obj
    from machlib.geometry import default_template

    t = default_template()
    save_obj(tmp_path / "head.obj", t.mesh)
    table = {"num_landmarks": 478, "symmetric": True,
             "landmarks": [{"index": k, "uv": [float(u), float(v)]} for k, (u, v) in enumerate(t.landmark_uv)]}
    (tmp_path / "table.json").write_text(json.dumps(table))
    out = tmp_path / "out"
    code = main(["fit", "-o", str(out), "-q", "--template", str(tmp_path / "head.obj"),
                 "--landmarks", str(tmp_path / "table.json"), "--steps", "150", "--resolution", "128"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["fit"]["template"] == "head"
    assert report["landmarks"]["reprojection_px"]["mean"] < 1.5
    assert report["fit"]["vertices"] == t.mesh.num_vertices


def test_out_is_a_file_fails_fast(tmp_path, capsys):
    out = tmp_path / "outfile"
    out.write_text("not a folder")
    assert main(["fit", "-o", str(out), "-q"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert out.read_text() == "not a folder"


def test_atomic_output_dir_respects_umask(tmp_path):
    import os

    from machlib.pipeline import atomic_output_dir

    umask = os.umask(0o022)
    try:
        with atomic_output_dir(tmp_path / "o") as tmp:
            (tmp / "a.txt").write_text("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "o").stat().st_mode & 0o777 == 0o755
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.tmp")]


# --------------------------------------------------------------------------------------------
# machlib texture


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--levels", "128,32"], "--levels"),
        (["--levels", "32,32"], "increase"),
        (["--levels", "32,abc"], "comma-separated integers"),
        (["--levels", ""], "comma-separated integers"),
        (["--levels", "32,8192"], "at most 4096"),
        (["--texture-steps", "0"], "steps"),
        (["--lipstick", "2"], "--lipstick"),
        (["--blush", "-0.1"], "--blush"),
        (["--eye-shadow", "nan"], "--eye-shadow"),
        (["--delighter", "no/such/weights.safetensors"], "--delighter"),
        (["--delighter", ":junk.json:"], "--delighter"),
        ([":missing:"], "does not exist"),
    ],
    ids=["levels-decreasing", "levels-repeated", "levels-non-numeric", "levels-empty", "levels-too-fine",
         "texture-steps-0", "lipstick-2", "blush-negative", "eye-shadow-nan", "delighter-missing", "flax-delighter-corrupt",
         "missing-image"],
)
def test_texture_bad_input_clear_error_nothing_written(tmp_path, capsys, flags, expected):
    flags = [str(tmp_path / "nope.jpg") if f == ":missing:" else f for f in flags]
    if ":junk.json:" in flags:
        (tmp_path / "junk.json").write_text('{"format": "machlib-flax-delighter/1", "config": {}}')
        flags = [str(tmp_path / "junk.json") if f == ":junk.json:" else f for f in flags]
    out = tmp_path / "out"
    code = main(["texture", *flags, "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("machlib: error:"), err
    assert expected in err[0], err[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def test_texture_bad_input_leaves_existing_out_as_it_was(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for flags in (["--lipstick", "2"], ["--levels", "64,16"], [str(tmp_path / "missing.png")]):
        assert main(["texture", *flags, "-o", str(out), "-q"]) == 2, flags
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"], flags
        assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_texture_default_portrait_writes_everything(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["texture", "-o", str(out), "-q", "--levels", "32,128", "--texture-steps", "20"])
    assert code == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    expected = {"albedo.png", "texture_raw.png", "shading.png", "masks.png", "head.glb", "render_input_view.png",
                "relit.png", "camera.json", "report.json"}
    assert expected <= names, expected - names
    assert names <= set(_OUTPUT_FILES["texture"]), names - set(_OUTPUT_FILES["texture"])  # checked before the run
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]
    portrait = np.asarray(__import__("machlib").default_portrait())
    h, w = portrait.shape[:2]
    # the completed albedo at the finest level: RGB, no black texels
    albedo = Image.open(out / "albedo.png")
    assert albedo.size == (128, 128) and albedo.mode == "RGB"
    a = np.asarray(albedo).astype(int)
    assert a.max(-1).min() >= 8
    # the raw texture: RGBA, alpha = the seen weight (some texels seen, most of the head not)
    raw = Image.open(out / "texture_raw.png")
    assert raw.size == (128, 128) and raw.mode == "RGBA"
    seen = np.asarray(raw)[..., 3]
    assert 0.05 < (seen > 127).mean() < 0.6
    for name in ("shading.png", "masks.png"):
        img = Image.open(out / name)
        assert img.size == (128, 128) and img.mode == "RGB", name
    # the albedo under the estimated lighting in the fitted camera: the portrait's size, alpha =
    # coverage of the head (background 0, the head's interior 255)
    render = Image.open(out / "render_input_view.png")
    assert render.size == (w, h) and render.mode == "RGBA"
    alpha = np.asarray(render)[..., 3]
    assert (alpha == 0).any() and (alpha == 255).any()
    assert 0.05 < (alpha == 255).mean() < 0.9
    assert alpha[h // 2, w // 2] == 255 and alpha[0, 0] == 0
    relit = Image.open(out / "relit.png")
    assert relit.mode == "RGB" and relit.size[0] > relit.size[1] > 0
    cam = json.loads((out / "camera.json").read_text())
    assert cam["image_size"] == [w, h] and len(cam["rotation_matrix"]) == 3
    # the GLB carries the albedo
    from machlib import load_mesh

    mesh = load_mesh(out / "head.glb")
    assert mesh.num_faces > 1000
    report = json.loads((out / "report.json").read_text())
    assert report["stage"] == "texture"
    tex = report["texture"]
    assert tex["resolution"] == 128 and tex["delighter"] == "sh"
    for k in ("rasterize", "compile", "level_32", "level_128", "visibility", "delight", "complete", "render"):
        assert tex["timings"][k] >= 0.0, k
    for k in ("landmarks", "template", "compile", "fit", "export"):
        assert report["timings"][k] >= 0.0, k
    q = tex["quality"]
    for kind in ("raw", "relit_albedo", "relit_albedo_diffuse"):
        assert np.isfinite(q[kind]["face_psnr_db"]) and np.isfinite(q[kind]["face_ssim"]), kind
        assert 0.0 < q[kind]["face_ssim"] <= 1.0, kind
    assert q["raw"]["face_psnr_db"] > 20.0
    # relit = diffuse + the GLB material's specular lobe, its light's irradiance fitted (>= 0) to the photo
    assert q["specular"]["irradiance"] >= 0.0 and len(q["specular"]["light_direction"]) == 3
    assert q["relit_albedo"]["face_psnr_db"] > q["relit_albedo_diffuse"]["face_psnr_db"] - 0.05
    assert q["relit_albedo"]["face_psnr_db"] > 12.0
    assert 0.0 < q["seen_texel_fraction"] < 1.0 and np.isfinite(q["ita_degrees"])
    assert np.shape(tex["lighting_sh"]) == (9, 3)


# --------------------------------------------------------------------------------------------
# machlib hair


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--style", "mohawk"], "unknown hairstyle"),
        (["--style", "no/such/file.data"], "does not exist"),
        (["--color", "plaid"], "unknown hair colour"),
        (["--strands", "0"], "--strands"),
        (["--points", "1"], "--points"),
        (["--guides", "-1"], "--guides"),
        (["--style", ":garbage:"], "hair.data"),
        ([":missing:"], "does not exist"),
    ],
    ids=["style-unknown", "style-file-missing", "color-unknown", "strands-0", "points-1", "guides-negative",
         "style-file-malformed", "missing-image"],
)
def test_hair_bad_input_clear_error_nothing_written(tmp_path, capsys, flags, expected):
    garbage = tmp_path / "bad" / "hair.data"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\xff\xff\xff\x7f" + b"\0" * 8)  # claims 2^31 strands
    flags = [str(tmp_path / "nope.jpg") if f == ":missing:" else str(garbage) if f == ":garbage:" else f
             for f in flags]
    out = tmp_path / "out"
    code = main(["hair", *flags, "-o", str(out), "-q", "--steps", "20"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("machlib: error:"), err
    assert expected in err[0], err[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def test_hair_list_styles(capsys):
    assert main(["hair", "--list-styles"]) == 0
    text = capsys.readouterr().out
    for name in ("bob", "afro", "long curly", "bald"):
        assert name in text


@pytest.mark.slow
def test_hair_default_portrait_writes_everything(tmp_path, capsys):
    from machlib.hair import read_hair_data

    out = tmp_path / "out"
    code = main(["hair", "-o", str(out), "-q", "--steps", "60", "--strands", "400", "--points", "16"])
    assert code == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    expected = {"hair.data", "hair.usda", "hair_preview.png", "hair_input_view.png", "hair_mask.png", "head.glb",
                "camera.json", "report.json"}
    assert expected <= names, expected - names
    assert names <= set(_OUTPUT_FILES["hair"]), names - set(_OUTPUT_FILES["hair"])  # checked before the run
    report = json.loads((out / "report.json").read_text())
    hr = report["hair"]
    assert hr["mode"] == "image" and hr["points_per_strand"] == 16
    assert hr["strands"] == 400 and 0.0 <= hr["removed_fraction"] < 1.0  # as many as asked, after clean-up
    assert hr["grown"] > 400 and sum(hr["removed"].values()) == round(hr["removed_fraction"] * hr["grown"])
    # the choice: silhouette score + 0.25 x agreement with the photo's reading, explained
    ranking = hr["choice"]["ranking"]
    assert ranking[0]["style"] == hr["style"] and {r["style"] for r in ranking} == {m["style"] for m in hr["matches"]}
    assert all(r["total"] == pytest.approx(r["silhouette"] + 0.25 * r["agreement"], abs=2e-3) for r in ranking)
    assert [r["total"] for r in ranking] == sorted((r["total"] for r in ranking), reverse=True)
    assert len(ranking[0]["reasons"]) == 3 and hr["choice"]["summary"].startswith(hr["style"])
    assert set(hr["choice"]["adjusted"]) <= {"bangs", "sweep", "parting"}  # the photo's fringe and parting
    reading = report["hair_reading"]
    assert reading["hairstyle"] == hr["style"] and reading["details"]["length"] == "short"  # under her cap
    assert reading["bangs"] in ("none", "straight", "side-swept") and len(reading["details"]["reasons"]) == 5
    assert set(hr["timings"]) >= {"hair mask", "orientation", "match", "grow", "cleanup"}
    strands = read_hair_data(out / "hair.data")
    assert strands.num_strands == hr["strands"]
    text = (out / "hair.usda").read_text()
    assert "BasisCurves" in text
    preview = Image.open(out / "hair_preview.png")
    assert preview.size[0] == 3 * preview.size[1]
    # try-on of a library style, with a named colour: every strand keeps its 16 points
    out2 = tmp_path / "tryon"
    code = main(["hair", "-o", str(out2), "-q", "--steps", "60", "--strands", "300", "--points", "16",
                 "--style", "bob", "--color", "red", "--guides", "50"])
    assert code == 0, capsys.readouterr().err
    hr2 = json.loads((out2 / "report.json").read_text())["hair"]
    assert hr2["mode"] == "style" and hr2["style"] == "bob" and hr2["color"]["name"] == "red"
    assert hr2["strands"] == 300
    # and a strand file written by the first run, tried on again (template space assumed)
    out3 = tmp_path / "file"
    assert main(["hair", "-o", str(out3), "-q", "--steps", "60", "--points", "16",
                 "--style", str(out2 / "hair.data")]) == 0
    assert json.loads((out3 / "report.json").read_text())["hair"]["mode"] == "file"


# --------------------------------------------------------------------------------------------
# machlib attributes


def test_attributes_prints_json_and_writes_clues(tmp_path, capsys):
    clues = tmp_path / "clues"
    code = main(["attributes", "A middle-aged man with sword-like eyebrows, no glasses and short black hair",
                 "--clues", str(clues), "--size", "128"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["attributes"]["gender"] == "male" and out["attributes"]["glasses"] == "none"
    assert out["attributes"]["hair_color"] == "black" and "eyebrow:sword-like" in out["tags"]
    for name in ("openpose", "canny"):
        img = Image.open(clues / f"{name}.png")
        assert img.size == (128, 128)
        assert np.asarray(img).max() == 255


@pytest.mark.parametrize("argv, expected", [(["attributes", "  "], "empty"),
                                            (["attributes", "a woman", "--size", "8"], "--size")])
def test_attributes_bad_input(tmp_path, capsys, argv, expected):
    assert main(argv + ["--clues", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "c").exists()


def test_match_ranks_builtin_assets(capsys):
    assert main(["match", "big curly afro", "--kind", "hairstyle", "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["id"] for m in out][0] == "afro" and len(out) == 2
    assert out[0]["score"] >= out[1]["score"]


@pytest.mark.parametrize("argv, expected", [(["match", " "], "empty"), (["match", "bob", "--kind", "hat"], "--kind"),
                                            (["match", "bob", "-k", "0"], "-k"),
                                            (["match", "bob", "--manifest", "no/such.json"], "does not exist")])
def test_match_bad_input(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_make_progress_bar_never_goes_back_when_stages_interleave():
    """make's texture and hair stages run side by side and both name their steps: the bar shows
    the latest step's name and the furthest point reached."""
    import io

    from rich.console import Console

    from machlib.cli import _MAKE_STAGES, _Progress

    console = Console(file=io.StringIO(), force_terminal=True)
    with _Progress(console, _MAKE_STAGES) as progress:
        seen = []
        for stage in ("fit", "hair mask", "head sdf", "texture: rasterize", "match", "texture: complete", "grow"):
            progress(stage)
            task = progress._bar.tasks[0]
            seen.append(task.completed)
            assert task.description == stage
    assert seen == sorted(seen) and seen[2] == seen[3] > seen[1]  # "texture: rasterize" after "head sdf": held
