"""Hostile input through every command's CLI entry, in-process (issue 18).

Every case is generated here (no stored files) and must end the same way: exit status 2, one
line ``machlib: error: ...`` naming the problem, and the working folder exactly as it was (no
output, no temporary folder, no lock file). The checks all run before any landmark detection or
fitting, so each case takes milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import threading
import zlib

import numpy as np
import pytest
from helpers import small_mesh
from PIL import Image

from machlib import save_obj
from machlib.cli import main


def _snapshot(root) -> dict:
    """Every entry under ``root`` (not following links): kind, and content hash for files."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    snap[p] = ("file", hashlib.sha256(f.read()).hexdigest(), stat.S_IMODE(st.st_mode))
            elif stat.S_ISLNK(st.st_mode):
                snap[p] = ("link", os.readlink(p))
            else:
                snap[p] = ("dir" if stat.S_ISDIR(st.st_mode) else "other", stat.S_IMODE(st.st_mode))
    return snap


def _refused(root, argv, capsys, *needles):
    """Run ``machlib argv``: exit 2, one ``machlib: error:`` line holding every needle, root unchanged."""
    before = _snapshot(root)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("machlib: error: "), err
    for needle in needles:
        assert needle in err[0], err[0]
    assert _snapshot(root) == before
    return err[0]


def _png_claiming(path, width, height):
    """A valid-header PNG that claims width × height without holding the pixels."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------
# flags: ranges stated in --help, argparse errors in one line


@pytest.mark.parametrize("argv, needle", [
    (["fit", "--steps", "1e20"], "--steps"),
    (["fit", "--steps", "1000000000"], "--steps"),
    (["fit", "--steps", "0"], "--steps"),
    (["fit", "--resolution", "1048576"], "--resolution"),
    (["fit", "--fov", "nan"], "--fov"),
    (["fit", "--fov", "inf"], "--fov"),
    (["texture", "--texture-steps", "1000000000"], "--texture-steps"),
    (["texture", "--levels", "32,128,1048576"], "--levels"),
    (["texture", "--lipstick", "nan"], "--lipstick"),
    (["hair", "--strands", "1000000000"], "--strands"),
    (["hair", "--points", "100000"], "--points"),
    (["hair", "--seed", "-1"], "--seed"),
    (["hair", "--seed", str(2**70)], "--seed"),
    (["make", "--strands", "0"], "--strands"),
    (["make", "--preview-size", "1000000"], "--preview-size"),
    (["make", "--size", "1e3"], "--size"),
    (["portrait", "x", "--guidance", "inf"], "--guidance"),
    (["portrait", "x", "--steps", "100000"], "--steps"),
    (["attributes", "x", "--size", "100000"], "--size"),
    (["shape", "x", "--random", "10000000"], "--random"),
    (["match", "x", "-k", "99999999"], "-k"),
    (["view", "o", "--port", "70000"], "--port"),
    (["fit", "--bogus"], "unrecognized arguments"),
    (["fit", "--steps"], "expected one argument"),
    (["create"], "invalid choice"),
    ([], "required"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_flags_out_of_range_are_one_line(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    _refused(tmp_path, argv, capsys, needle)


def test_help_states_the_limits(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 to 10000" in text and "8 to 1024" in text and "5 to 120" in text
    with pytest.raises(SystemExit):
        main(["hair", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 to 200000" in text and "2 to 1024" in text


# --------------------------------------------------------------------------------------------
# input files: regular files only, checked before they are opened


def test_fifo_as_image_does_not_hang(tmp_path, capsys):
    fifo = tmp_path / "portrait.jpg"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock():  # should the FIFO ever be opened for reading, end the read after a while
        if not done.wait(30):
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)

    threading.Thread(target=unblock, daemon=True).start()
    try:
        for cmd in ("fit", "texture", "hair"):
            _refused(tmp_path, [cmd, fifo, "-o", tmp_path / "out", "-q"], capsys, "FIFO")
        _refused(tmp_path, ["make", "--image", fifo, "-o", tmp_path / "out", "-q"], capsys, "FIFO")
    finally:
        done.set()


@pytest.mark.parametrize("flag", ["--template", "--landmarks"])
def test_template_files_must_be_regular(tmp_path, capsys, flag):
    mesh = tmp_path / "head.obj"
    save_obj(mesh, small_mesh())
    table = tmp_path / "table.json"
    table.write_text("{}")
    os.mkfifo(tmp_path / "fifo")
    args = {"--template": mesh, "--landmarks": table, flag: tmp_path / "fifo"}
    _refused(tmp_path, ["fit", "-o", tmp_path / "out", "-q", *[x for kv in args.items() for x in kv]], capsys,
             flag, "FIFO")


def test_directory_as_landmark_table(tmp_path, capsys):
    mesh = tmp_path / "head.obj"
    save_obj(mesh, small_mesh())
    (tmp_path / "table.json").mkdir()
    _refused(tmp_path, ["fit", "-o", tmp_path / "out", "-q", "--template", mesh, "--landmarks",
                        tmp_path / "table.json"], capsys, "--landmarks", "not a regular file")


# --------------------------------------------------------------------------------------------
# the output folder: checked with a real temporary file before any work


def _out_cases(tmp_path):
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "afile").write_text("x")
    return {
        "loop": (tmp_path / "loop_a", "symbolic link loop"),
        "loop-parent": (tmp_path / "loop_a" / "out", "symbolic link loop"),
        "dangling": (tmp_path / "dangling", "dangling symbolic link"),
        "under-file": (tmp_path / "afile" / "out", "which is a file"),
        "is-file": (tmp_path / "afile", "not a folder"),
        "long-name": (tmp_path / ("n" * 300), "too long"),
        "unwritable-place": ("/proc/self/machlib-out", "cannot be written"),
    }


@pytest.mark.parametrize("case", ["loop", "loop-parent", "dangling", "under-file", "is-file", "long-name",
                                  "unwritable-place"])
@pytest.mark.parametrize("cmd", ["fit", "texture", "hair", "make", "portrait", "attributes"])
def test_bad_output_folder_fails_before_any_work(tmp_path, capsys, monkeypatch, cmd, case):
    out, needle = _out_cases(tmp_path)[case]
    monkeypatch.chdir(tmp_path)
    argv = {"portrait": ["portrait", "a man", "-o", out], "attributes": ["attributes", "a man", "--clues", out],
            "make": ["make", "-o", out, "-q"]}.get(cmd, [cmd, "-o", out, "-q"])
    _refused(tmp_path, argv, capsys, needle)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_parent(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _refused(tmp_path, ["fit", "-o", ro / "out", "-q"], capsys, "cannot be written", "permission denied")
        _refused(tmp_path, ["attributes", "a man", "--clues", ro / "clues"], capsys, "cannot be written")
    finally:
        ro.chmod(0o755)


def test_a_folder_named_like_a_result_fails_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("head.obj", "head.glb", "camera.json"):
        (out / name).write_text("old " + name)
    (out / "report.json").mkdir()
    _refused(tmp_path, ["fit", "-o", out, "-q"], capsys, "report.json is a folder")


def test_output_in_use_by_another_run(tmp_path, capsys):
    """A second run on the same OUT fails at once with a clear message (here: another thread)."""
    from machlib._validate import output_lock

    out = tmp_path / "out"
    held, release = threading.Event(), threading.Event()

    def other_run():
        with output_lock(out):
            held.set()
            release.wait(30)

    t = threading.Thread(target=other_run)
    t.start()
    try:
        assert held.wait(10)
        _refused(tmp_path, ["fit", "-o", out, "-q"], capsys, "being written by another")
        alias = tmp_path.parent / f"{tmp_path.name}-alias"  # the same folder under another name
        alias.symlink_to(tmp_path)
        try:
            _refused(tmp_path, ["fit", "-o", alias / "out", "-q"], capsys, "being written by another")
        finally:
            alias.unlink()
    finally:
        release.set()
        t.join()
    assert not (tmp_path / ".out.lock").exists() and not out.exists()


# --------------------------------------------------------------------------------------------
# user templates and landmark tables


def _template_files(tmp_path, table=None, mesh_text=None):
    mesh = tmp_path / "head.obj"
    save_obj(mesh, small_mesh())
    if mesh_text is not None:
        mesh.write_text(mesh_text(mesh.read_text()))
    path = tmp_path / "table.json"
    good = {"num_landmarks": 478, "landmarks": [{"index": k, "uv": [0.3 + 0.05 * k, 0.5]} for k in range(8)]}
    path.write_text(table(good) if callable(table) else json.dumps(good))
    return ["--template", mesh, "--landmarks", path]


def _nan_every_tenth_vertex(text):
    lines, k = [], 0
    for line in text.splitlines():
        if line.startswith("v "):
            line = "v nan nan nan" if k % 10 == 0 else line
            k += 1
        lines.append(line)
    return "\n".join(lines) + "\n"


def _one_triangle(text):
    return "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n"


def _with(entry_json: str):
    """A table whose first entry is replaced by raw JSON text (for values json.dumps cannot make)."""
    def make(good):
        rest = ", ".join(json.dumps(e) for e in good["landmarks"][1:])
        return f'{{"num_landmarks": 478, "landmarks": [{entry_json}, {rest}]}}'
    return make


@pytest.mark.parametrize("mesh_text, table, needle", [
    (_nan_every_tenth_vertex, None, "not finite"),
    (_one_triangle, None, "at least 4 faces"),
    (None, _with('{"index": 1e400, "uv": [0.5, 0.5]}'), "index must be an integer"),
    (None, _with('{"index": 3.5, "uv": [0.5, 0.5]}'), "index must be an integer"),
    (None, _with('{"index": 1, "uv": [NaN, 0.5]}'), "outside [0, 1]"),
    (None, _with('{"index": 1, "vertex": 1e30}'), "vertex must be an integer"),
    (None, _with('[1, 2]'), "must be an object"),
    (None, lambda g: json.dumps({**g, "num_landmarks": "abc"}), "'num_landmarks'"),
    (None, lambda g: json.dumps({**g, "num_landmarks": 10**13}), "'num_landmarks'"),
    (None, lambda g: json.dumps({**g, "num_landmarks": -5}), "'num_landmarks'"),
    (None, lambda g: json.dumps({**g, "symmetric": "yes"}), "'symmetric'"),
    (None, lambda g: json.dumps({**g, "regions": ["face.png"]}), "'regions' must be an object"),
    (None, lambda g: json.dumps({**g, "regions": {"face": 7}}), "must be an image path"),
    (None, lambda g: "[" * 100_000, "not valid JSON"),
    (None, lambda g: "\xff\xfe garbage", "not valid JSON"),
], ids=["nan-vertices", "one-triangle", "index-1e400", "index-float", "uv-nan", "vertex-1e30", "entry-list",
        "num-abc", "num-1e13", "num-negative", "symmetric-string", "regions-list", "region-number", "deep-nesting",
        "not-utf8"])
def test_bad_template_or_table(tmp_path, capsys, mesh_text, table, needle):
    flags = _template_files(tmp_path, table, mesh_text)
    _refused(tmp_path, ["fit", "-o", tmp_path / "out", "-q", *flags], capsys, needle)


def test_region_image_bomb(tmp_path, capsys):
    _png_claiming(tmp_path / "face.png", 20000, 20000)
    flags = _template_files(tmp_path, lambda g: json.dumps({**g, "regions": {"face": "face.png"}}))
    _refused(tmp_path, ["fit", "-o", tmp_path / "out", "-q", *flags], capsys, "too large")


def test_region_image_fifo(tmp_path, capsys):
    os.mkfifo(tmp_path / "face.png")
    flags = _template_files(tmp_path, lambda g: json.dumps({**g, "regions": {"face": "face.png"}}))
    _refused(tmp_path, ["fit", "-o", tmp_path / "out", "-q", *flags], capsys, "not a regular file")


# --------------------------------------------------------------------------------------------
# model paths and strand files: checked before the fit


def test_model_paths_are_checked_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("MACHLIB_LLM", "MACHLIB_DIFFUSION_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    _refused(tmp_path, ["make", "--prompt", "a man", "--weights-config", "nope.toml", "-o", "out", "-q"], capsys,
             "--weights-config", "does not exist")
    _refused(tmp_path, ["portrait", "a man", "--weights-config", "nope.toml", "-o", "out"], capsys, "--weights-config")
    (tmp_path / "folder.toml").mkdir()
    _refused(tmp_path, ["portrait", "a man", "--weights-config", "folder.toml", "-o", "out"], capsys,
             "not a regular file")
    _refused(tmp_path, ["portrait", "a man", "--sd-model", "nope", "-o", "out"], capsys, "--sd-model")
    _refused(tmp_path, ["attributes", "a man", "--parser", "llm", "--llm", "nope"], capsys, "--llm", "does not exist")
    _refused(tmp_path, ["shape", "a man", "--clip", "nope"], capsys, "--clip", "does not exist")
    _refused(tmp_path, ["texture", "--delighter", "nope.safetensors", "-o", "out", "-q"], capsys, "--delighter")


def test_delighter_pickle_named_safetensors(tmp_path, capsys):
    import pickle

    bad = tmp_path / "delight.safetensors"
    bad.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    _refused(tmp_path, ["texture", "--delighter", bad, "-o", tmp_path / "out", "-q"], capsys,
             "--delighter", "not a valid safetensors file")


def test_zero_strand_style_file(tmp_path, capsys):
    none = tmp_path / "none.data"
    none.write_bytes(struct.pack("<i", 0))
    roots = tmp_path / "roots.data"  # three bare roots: one point each
    roots.write_bytes(struct.pack("<i", 3) + b"".join(struct.pack("<i3f", 1, 0.0, 0.1 * k, 0.0) for k in range(3)))
    for f in (none, roots):
        _refused(tmp_path, ["hair", "--style", f, "-o", tmp_path / "out", "-q"], capsys, "no strand with two")


def test_manifest_with_a_list_as_id(tmp_path, capsys):
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"version": 1, "assets": [{"id": ["a"], "kind": "hairstyle", "label": "x",
                                                       "path": "a.data"}]}))
    _refused(tmp_path, ["match", "bob", "--manifest", m], capsys, "'id' must be a string")
    os.mkfifo(tmp_path / "fifo.json")
    _refused(tmp_path, ["match", "bob", "--manifest", tmp_path / "fifo.json"], capsys, "FIFO")


def test_view_names_the_real_command(tmp_path, capsys):
    err = _refused(tmp_path, ["view", tmp_path / "nowhere"], capsys, "machlib make")
    assert "machlib create" not in err
    (tmp_path / "empty").mkdir()
    err = _refused(tmp_path, ["view", tmp_path / "empty"], capsys, "machlib make")
    assert "machlib create" not in err


# --------------------------------------------------------------------------------------------
# atomic results and no NaN out of a stage (library level)


def test_atomic_output_checks_every_destination_before_the_first_rename(tmp_path):
    from machlib import InputError
    from machlib.pipeline import atomic_output_dir

    out = tmp_path / "out"
    out.mkdir()
    for name in ("head.obj", "camera.json", "keep.txt"):
        (out / name).write_text("old " + name)
    os.mkdir(out / "report.json")
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match="report.json is a folder"), atomic_output_dir(out) as tmp:
        for name in ("head.obj", "camera.json", "preview.png", "report.json"):
            (tmp / name).write_text("new")
    assert _snapshot(tmp_path) == before


def test_atomic_output_rolls_back_a_failed_rename(tmp_path, monkeypatch):
    from machlib.pipeline import atomic_output_dir

    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (out / name).write_text("old " + name)
    before = _snapshot(tmp_path)
    real, calls = os.replace, []

    def failing(src, dst):  # the fifth rename (the third file's) fails
        calls.append(dst)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    with pytest.raises(OSError, match="No space"), atomic_output_dir(out) as tmp:
        for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
            (tmp / name).write_text("new")
        monkeypatch.setattr(os, "replace", failing)
    monkeypatch.setattr(os, "replace", real)
    assert _snapshot(tmp_path) == before


def test_a_nan_fit_is_refused_and_names_the_stage(monkeypatch):
    import types

    from machlib import InputError, default_portrait, pipeline
    from machlib.geometry import Landmarks, Template

    image = default_portrait()

    def detector(img, *, strict=False):
        rng = np.random.default_rng(0)
        pts = rng.uniform(100, 400, (478, 2)).astype(np.float32)
        return Landmarks(pts, np.zeros(478, np.float32), np.ones(478, np.float32),
                         np.array([100, 100, 400, 400], np.float32))

    verts = np.zeros((10, 3), np.float32)
    verts[3] = np.nan
    cam = types.SimpleNamespace(rotation=np.zeros(3), translation=np.zeros(3), focal=np.ones(2))
    result = types.SimpleNamespace(mesh=types.SimpleNamespace(vertices=verts), residuals=np.zeros((478, 2)),
                                   camera=cam, compile_seconds=0.0, fit_seconds=0.0)
    monkeypatch.setattr(pipeline, "fit_landmarks", lambda *a, **k: result)
    template = Template(small_mesh(), np.full((478, 2), 0.5), np.ones(478, bool), False, {}, "tiny")
    with pytest.raises(InputError, match="fit stage produced non-finite values .* vertices"):
        pipeline.fit_portrait(image, template=template, detector=detector)


def test_output_locked_by_another_process(tmp_path, capsys):
    """The lock is the kernel's: a second process on the same OUT is refused too, and the lock goes
    with the process that held it."""
    import subprocess
    import sys

    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from machlib._validate import output_lock\n"
                                f"with output_lock({str(out)!r}):\n    print('held', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        err = _refused(tmp_path, ["attributes", "a man", "--clues", out], capsys, "being written by another")
        assert f"process {holder.pid}" in err
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert main(["attributes", "a man", "--clues", str(out)]) == 0  # free again
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["canny.png", "openpose.png"]
    assert not (tmp_path / ".out.lock").exists()


def test_strict_refuses_two_different_faces_side_by_side(tmp_path, capsys):
    """The bundled portrait next to skimage's astronaut: MediaPipe's whole-image pass sees one."""
    from skimage import data

    from machlib import default_portrait

    left, right = default_portrait(), data.astronaut()
    height = max(left.shape[0], right.shape[0])
    pair = tmp_path / "pair.png"
    Image.fromarray(np.concatenate([np.pad(a, ((0, height - a.shape[0]), (0, 0), (0, 0)), constant_values=128)
                                    for a in (left, right)], 1)).save(pair)
    _refused(tmp_path, ["fit", pair, "--strict", "-o", tmp_path / "out", "-q"], capsys, "2 faces", "strict")
    single = tmp_path / "single.png"
    Image.fromarray(right).save(single)
    from machlib.geometry import detect_landmarks

    detect_landmarks(np.asarray(Image.open(single)), strict=True)  # one face stays accepted


def test_template_with_collapsed_uvs(tmp_path, capsys):
    """Every texture coordinate at one point: the UV chart covers no texel, so the fit cannot
    sample the surface (this used to be a ValueError traceback from inside the fit)."""
    def collapse(text):
        return "\n".join("vt 0.5 0.5" if line.startswith("vt ") else line for line in text.splitlines()) + "\n"

    flags = _template_files(tmp_path, None, collapse)
    _refused(tmp_path, ["fit", "-o", tmp_path / "out", "-q", *flags], capsys, "texture coordinates cannot be used")
