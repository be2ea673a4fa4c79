"""Fuzzing machlib's file readers (issue 18): meshes (OBJ text, GLB and glTF through
:func:`~machlib.export.load_mesh`, :func:`~machlib.export.read_glb` and
:func:`~machlib.export.validate_gltf`) and strand files (USC-HairSalon ``.data`` and Cem
Yuksel's ``.hair``). Whatever the bytes, a reader returns a valid result or raises machlib's own
:class:`~machlib.InputError` with a one-line message; the validator returns a list of problems
and never raises.

Inputs are valid files written by machlib and then damaged: bytes flipped, cut or appended, a
header count replaced by a hostile value, or plain random bytes. Each reader gets 10 × the
profile's ``max_examples`` (1,000 in CI, 10,000 with ``--hypothesis-profile nightly``).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from helpers import small_mesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machlib import InputError
from machlib.export import (
    glb_bytes,
    load_mesh,
    read_cem_hair,
    read_glb,
    read_hair_data,
    save_obj,
    validate_gltf,
    write_cem_hair,
    write_hair_data,
)
from machlib.hair import RaggedStrands

FUZZ = settings(max_examples=10 * settings.default.max_examples, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_HOSTILE_U32 = st.sampled_from([0, 1, 2, 3, 7, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1])


def _damage(data: bytes):
    """A strategy of damaged copies of ``data``."""
    n = len(data)
    flips = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
        lambda edits: _apply(data, edits))
    cut = st.integers(0, n - 1).map(lambda k: data[:k])
    grow = st.binary(min_size=1, max_size=64).map(lambda extra: data + extra)
    words = st.tuples(st.integers(0, max(0, min(n, 64) - 4) // 4), _HOSTILE_U32).map(
        lambda kw: data[: 4 * kw[0]] + struct.pack("<I", kw[1]) + data[4 * kw[0] + 4:])
    return st.one_of(flips, cut, grow, words, st.binary(max_size=256))


def _apply(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for i, v in edits:
        b[i] = v
    return bytes(b)


def _one_line(err: InputError) -> None:
    msg = str(err)
    assert msg and "\n" not in msg and len(msg) < 1000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_files")
    mesh = small_mesh()
    save_obj(root / "mesh.obj", mesh)
    rng = np.random.default_rng(0)
    strands = RaggedStrands.from_list([rng.normal(size=(k, 3)).astype(np.float32) * 0.1 for k in (1, 3, 5)])
    write_hair_data(root / "hair.data", strands)
    write_cem_hair(root / "hair.hair", strands)
    return _Files({"root": root, "obj": (root / "mesh.obj").read_text(), "glb": glb_bytes(mesh),
                   "data": (root / "hair.data").read_bytes(), "hair": (root / "hair.hair").read_bytes()})


class _Files(dict):
    """The valid files; a short repr keeps hypothesis's failure reports readable."""

    def __repr__(self) -> str:
        return "<valid files>"


_OBJ_LINES = st.one_of(
    st.sampled_from(["v 0 0 0", "v 1e400 0 0", "v nan nan nan", "vt 0.5 0.5", "vt 0.5", "f 1/1 2/2 3/3",
                     "f 1/1 2/2", "f 0/0 1/1 2/2", "f -1/-1 -2/-2 -3/-3", "f 99999999999999999999/1 2/2 3/3",
                     "f 1 2 3", "f 1// 2// 3//", "mtllib x.mtl", "usemtl a", "# c", "", "o x", "s off"]),
    st.text(max_size=30),
)


@FUZZ
@given(data=st.data())
def test_obj_reader_fuzz(files, data, tmp_path_factory):
    good = files["obj"].splitlines()
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(good)), _OBJ_LINES), max_size=6))
    lines = list(good)
    for at, line in edits:
        lines.insert(at, line)
    if data.draw(st.booleans()):
        lines = lines[: data.draw(st.integers(0, len(lines)))]
    path = files["root"] / "fuzz.obj"
    path.write_text("\n".join(lines), errors="surrogatepass")
    try:
        mesh = load_mesh(path)
    except InputError as e:
        _one_line(e)
        return
    v = np.asarray(mesh.vertices)
    assert v.ndim == 2 and v.shape[1] == 3 and np.asarray(mesh.faces).max() < len(v)


@FUZZ
@given(data=st.data())
def test_glb_readers_fuzz(files, data):
    blob = data.draw(_damage(files["glb"]))
    problems = validate_gltf(blob)  # never raises
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    try:
        doc = read_glb(blob)
    except InputError as e:
        _one_line(e)
        return
    assert isinstance(doc, dict)


@FUZZ
@given(data=st.data())
def test_load_mesh_glb_fuzz(files, data):
    path = files["root"] / "fuzz.glb"
    path.write_bytes(data.draw(_damage(files["glb"])))
    try:
        mesh = load_mesh(path)
    except InputError as e:
        _one_line(e)
        return
    v = np.asarray(mesh.vertices)
    assert np.isfinite(v).all() and np.asarray(mesh.faces).max() < len(v)


@FUZZ
@pytest.mark.parametrize("fmt, reader", [("data", read_hair_data), ("hair", read_cem_hair)])
@given(data=st.data())
def test_strand_file_readers_fuzz(files, fmt, reader, data):
    path = files["root"] / f"fuzz.{fmt}"
    path.write_bytes(data.draw(_damage(files[fmt])))
    try:
        r = reader(path)
    except InputError as e:
        _one_line(e)
        return
    assert np.isfinite(np.asarray(r.points)).all() and int(np.asarray(r.counts).sum()) == len(r.points)
