"""Strand containers and strand file I/O: round-trips (hypothesis), hand-built files checked
against the format specifications, malformed files, USD text, glTF line arrays."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from machlib import InputError
from machlib.hair import (
    DEFAULT_HAIR_COLOR,
    DEFAULT_HAIR_WIDTH,
    RaggedStrands,
    Strands,
    read_cem_hair,
    read_hair_data,
    resample_strands,
    strands_from_list,
    strands_to_gltf_lines,
    write_cem_hair,
    write_hair_data,
    write_usd_curves,
)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

coord = st.floats(-2.0, 2.0, allow_nan=False, width=32)


@st.composite
def _ragged_parts(draw, max_strands, max_points, attrs):
    counts = draw(st.lists(st.integers(1, max_points), min_size=0, max_size=max_strands))
    s, n = len(counts), sum(counts)
    pts = draw(hnp.arrays(np.float32, (n, 3), elements=coord))
    color = thickness = None
    if attrs and draw(st.booleans()):
        color = draw(hnp.arrays(np.float32, (s, 3), elements=st.floats(0, 1, width=32)))
    if attrs and draw(st.booleans()):
        thickness = draw(hnp.arrays(np.float32, (s,), elements=st.floats(0, 0.0009765625, width=32)))
    return pts, np.array(counts, np.int64), color, thickness


def ragged(*, max_strands=6, max_points=8, attrs=True):
    """Random strand sets of varying lengths (the container is built outside the strategy)."""
    return _ragged_parts(max_strands, max_points, attrs)


def R(parts) -> RaggedStrands:
    return RaggedStrands(*parts)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("hair_io")


# ---------------------------------------------------------------------------------------------
# containers and resampling


def test_containers_convert_losslessly():
    rng = np.random.default_rng(0)
    s = Strands(rng.normal(size=(4, 6, 3)).astype(np.float32), rng.random((4, 3)).astype(np.float32),
                rng.random(4).astype(np.float32))
    r = s.to_ragged()
    assert r.counts.tolist() == [6] * 4 and r.num_points == 24
    back = r.to_strands()
    np.testing.assert_array_equal(back.points, s.points)
    np.testing.assert_array_equal(back.color, s.color)
    assert len(s.to_list()) == 4 and s.to_list()[2].shape == (6, 3)
    lst = [rng.normal(size=(n, 3)) for n in (1, 3, 7)]
    r = RaggedStrands.from_list(lst)
    assert [a.shape[0] for a in r.to_list()] == [1, 3, 7]
    np.testing.assert_allclose(r.to_list()[2], lst[2].astype(np.float32))
    np.testing.assert_array_equal(r.offsets, [0, 1, 4])
    sel = r.select(np.array([2, 0]))
    assert sel.counts.tolist() == [7, 1]
    np.testing.assert_array_equal(sel.to_list()[0], r.to_list()[2])
    assert r.select(np.asarray(r.counts) > 1).counts.tolist() == [3, 7]


def test_container_validation():
    with pytest.raises((TypeError, ValueError)):
        Strands(np.zeros((2, 3), np.float32))
    with pytest.raises((TypeError, ValueError)):
        Strands(np.zeros((2, 3, 3), np.float32), color=np.zeros((3, 3), np.float32))
    with pytest.raises((TypeError, ValueError), match="sum"):
        RaggedStrands(np.zeros((5, 3), np.float32), np.array([2, 2]))
    with pytest.raises((TypeError, ValueError), match="at least one point"):
        RaggedStrands(np.zeros((2, 3), np.float32), np.array([2, 0]))
    with pytest.raises(ValueError, match="n_points"):
        RaggedStrands.from_list([np.zeros((2, 3)), np.zeros((3, 3))]).to_strands()
    with pytest.raises((TypeError, ValueError)):  # jaxtyping under tests, ValueError in production
        strands_from_list([np.zeros((2, 3)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match=r"strand 1 must have shape \(n >= 1, 3\), got \(0, 3\)"):
        strands_from_list([np.zeros((2, 3)), np.zeros((0, 3))])


def test_resample_is_uniform_in_arc_length_and_keeps_the_ends():
    rng = np.random.default_rng(1)
    lst = [np.cumsum(rng.normal(size=(n, 3)), 0) for n in (2, 5, 40)]
    out = resample_strands(lst, 17)
    assert out.shape == (3, 17, 3) and out.dtype == np.float32
    for a, b in zip(lst, out):
        np.testing.assert_allclose(b[0], a[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(b[-1], a[-1], rtol=0, atol=1e-5)
    # Points on a straight polyline (uneven input spacing) come out evenly spaced.
    line = np.array([[0, 0, 0], [0.1, 0, 0], [0.15, 0, 0], [1.0, 0, 0]])
    np.testing.assert_allclose(resample_strands([line], 11)[0][:, 0], np.linspace(0, 1, 11), atol=1e-6)
    # Along a bent polyline, consecutive output points are equally far along the curve.
    bent = np.array([[0.0, 0, 0], [1, 0, 0], [1, 3, 0]])
    np.testing.assert_allclose(resample_strands([bent], 9)[0, 2], [1.0, 0.0, 0.0], atol=1e-6)


def test_resample_degenerate_strands_repeat_the_root():
    lst = [np.array([[1.0, 2.0, 3.0]]), np.full((4, 3), 5.0), np.array([[0.0, 0, 0], [0, 0, 0], [0, 1, 0]])]
    out = resample_strands(lst, 5)
    np.testing.assert_array_equal(out[0], np.tile([1, 2, 3], (5, 1)))
    np.testing.assert_array_equal(out[1], np.full((5, 3), 5.0))
    np.testing.assert_allclose(out[2][:, 1], np.linspace(0, 1, 5), atol=1e-7)
    assert resample_strands([], 4).shape == (0, 4, 3)
    with pytest.raises(ValueError, match="n_points"):
        resample_strands(lst, 1)
    with pytest.raises(ValueError, match="NaN"):
        resample_strands([np.array([[0.0, np.nan, 0], [1, 1, 1]])], 3)


@SETTINGS
@given(ragged(attrs=False), st.integers(2, 12))
def test_resample_matches_a_per_strand_reference(parts, n):
    r = R(parts)
    for a, b in zip(r.to_list(), resample_strands(r.to_list(), n)):
        a = a.astype(np.float64)
        c = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(a, axis=0), axis=1))])
        if c[-1] == 0:
            np.testing.assert_array_equal(b, np.repeat(a[:1], n, 0).astype(np.float32))
            continue
        t = np.linspace(0, c[-1], n)
        ref = np.stack([np.interp(t, c, a[:, k]) for k in range(3)], 1)
        np.testing.assert_allclose(b, ref, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# USC-HairSalon .data


def _data_bytes(strands: list[np.ndarray]) -> bytes:
    """A .data file built from the layout directly (not with the writer under test)."""
    out = struct.pack("<i", len(strands))
    for s in strands:
        out += struct.pack("<i", len(s)) + np.asarray(s, "<f4").tobytes()
    return out


@SETTINGS
@given(ragged())
def test_data_round_trip(tmp, parts):
    r = R(parts)
    path = tmp / "rt.data"
    write_hair_data(path, r)
    back = read_hair_data(path)
    np.testing.assert_array_equal(back.counts, r.counts)
    np.testing.assert_array_equal(back.points, np.asarray(r.points, np.float32))
    assert back.points.dtype == np.float32 and back.color is None and back.thickness is None
    assert path.read_bytes() == _data_bytes(r.to_list())


def test_data_reads_a_hand_built_file(tmp):
    strands = [np.array([[0.0, 1.7, 0.1]]), np.array([[0.0, 1.7, 0.1], [0.0, 1.6, 0.12], [0.01, 1.5, 0.13]])]
    path = tmp / "hand.data"
    path.write_bytes(_data_bytes(strands))
    r = read_hair_data(path, offset=(0.0, -1.64, 0.0))
    assert r.counts.tolist() == [1, 3]
    np.testing.assert_allclose(r.to_list()[1], strands[1] + [0, -1.64, 0], atol=1e-6)


@SETTINGS
@given(ragged(attrs=False), st.floats(0.001, 100.0), st.sampled_from(["y", "z"]),
       st.tuples(*[st.floats(-2, 2)] * 3))
def test_file_frame_options_round_trip(tmp, parts, scale, up, offset):
    r = R(parts)
    for write, read, name in ((write_hair_data, read_hair_data, "f.data"), (write_cem_hair, read_cem_hair, "f.hair")):
        write(tmp / name, r, scale=scale, offset=offset, up=up)
        back = read(tmp / name, scale=scale, offset=offset, up=up)
        np.testing.assert_allclose(back.points, r.points, rtol=1e-6, atol=1e-5)


def test_z_up_files_map_to_head_space(tmp):
    # In a z-up file, up is +z and the face looks toward −y; in head space they are +y and +z.
    pts = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    (tmp / "z.data").write_bytes(_data_bytes([pts]))
    head = read_hair_data(tmp / "z.data", up="z", scale=0.01).points
    np.testing.assert_allclose(head, [[0, 0.01, 0], [0, 0, 0.01], [0.01, 0, 0]], atol=1e-9)
    write_hair_data(tmp / "z2.data", RaggedStrands(head, np.array([3])), up="z", scale=0.01)
    np.testing.assert_allclose(read_hair_data(tmp / "z2.data").points, pts, atol=1e-6)


@SETTINGS
@given(ragged(max_strands=4, max_points=5, attrs=False), st.data())
def test_data_truncated_anywhere_is_a_clear_error(tmp, parts, data):
    r = R(parts)
    full = _data_bytes(r.to_list())
    cut = data.draw(st.integers(0, len(full) - 1))
    path = tmp / "trunc.data"
    path.write_bytes(full[:cut])
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_hair_data(path)


def test_data_malformed_headers(tmp):
    path = tmp / "bad.data"
    cases = {
        struct.pack("<i", -3): "negative strand count",
        struct.pack("<i", 2**31 - 1) + b"\0" * 16: "claims 2147483647 strands",
        struct.pack("<ii", 1, 2**31 - 1) + b"\0" * 12: "truncated: strand 0",
        struct.pack("<ii", 1, 0): "point count of 0",
        struct.pack("<ii", 1, -5) + b"\0" * 64: "point count of -5",
        _data_bytes([np.zeros((2, 3))]) + b"\0\0\0\0": "4 unexpected bytes",
        _data_bytes([np.array([[0.0, np.nan, 0.0]])]): "NaN",
        b"\1\0": "too short",
    }
    for content, msg in cases.items():
        path.write_bytes(content)
        with pytest.raises(InputError, match=msg) as e:
            read_hair_data(path)
        assert str(path) in str(e.value) and isinstance(e.value, ValueError)


@SETTINGS
@given(st.binary(max_size=64))
def test_data_random_bytes_never_crash(tmp, blob):
    path = tmp / "fuzz.data"
    path.write_bytes(blob)
    try:
        r = read_hair_data(path)
    except InputError:
        return
    assert r.num_points * 12 + r.num_strands * 4 + 4 == len(blob)


# ---------------------------------------------------------------------------------------------
# Cem Yuksel .hair


def _hair_header(num, npts, bits, dseg=0, dthick=1.0, dtransp=0.0, dcolor=(1.0, 1.0, 1.0), info=b"test"):
    return struct.pack("<4sIIIIff3f88s", b"HAIR", num, npts, bits, dseg, dthick, dtransp, *dcolor, info)


@SETTINGS
@given(ragged())
def test_cem_round_trip(tmp, parts):
    r = R(parts)
    path = tmp / "rt.hair"
    write_cem_hair(path, r)
    back = read_cem_hair(path)
    np.testing.assert_array_equal(back.counts, r.counts)
    np.testing.assert_array_equal(back.points, np.asarray(r.points, np.float32))
    want_thick = r.thickness if r.thickness is not None else np.full(r.num_strands, DEFAULT_HAIR_WIDTH)
    want_color = r.color if r.color is not None else np.tile(DEFAULT_HAIR_COLOR, (r.num_strands, 1))
    np.testing.assert_array_equal(back.thickness, np.asarray(want_thick, np.float32))
    np.testing.assert_array_equal(back.color, np.asarray(want_color, np.float32))
    blob = path.read_bytes()
    assert blob[:4] == b"HAIR" and len(blob) >= 128
    assert struct.unpack_from("<II", blob, 4) == (r.num_strands, r.num_points)


def test_cem_reads_a_hand_built_file_with_every_array(tmp):
    # Two strands (1 and 2 segments), every optional array present; values picked per point.
    segs = np.array([1, 2], "<u2")
    pts = np.arange(15, dtype="<f4").reshape(5, 3)
    thick = np.array([0.5, 0.4, 0.7, 0.6, 0.5], "<f4")
    transp = np.zeros(5, "<f4")
    color = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], "<f4")
    blob = _hair_header(2, 5, 31) + b"".join(a.tobytes() for a in (segs, pts, thick, transp, color))
    path = tmp / "hand.hair"
    path.write_bytes(blob)
    r = read_cem_hair(path, scale=0.01)
    assert r.counts.tolist() == [2, 3]
    np.testing.assert_allclose(r.points, pts * 0.01, rtol=1e-6)
    np.testing.assert_allclose(r.thickness, [0.005, 0.007], rtol=1e-6)  # root values, in metres
    np.testing.assert_array_equal(r.color, [[1, 0, 0], [0, 1, 0]])


def test_cem_reads_header_defaults(tmp):
    # No segments, thickness or colour arrays: the header's defaults apply to every strand.
    pts = np.zeros((6, 3), "<f4")
    path = tmp / "defaults.hair"
    path.write_bytes(_hair_header(3, 6, 2, dseg=1, dthick=0.25, dcolor=(0.1, 0.2, 0.3)) + pts.tobytes())
    r = read_cem_hair(path)
    assert r.counts.tolist() == [2, 2, 2]
    np.testing.assert_allclose(r.thickness, [0.25] * 3)
    np.testing.assert_allclose(r.color, [[0.1, 0.2, 0.3]] * 3)


def test_cem_writer_uses_defaults_for_uniform_fields(tmp):
    s = Strands(np.zeros((4, 3, 3), np.float32), np.tile(np.float32([0.2, 0.1, 0.05]), (4, 1)),
                np.full(4, 1e-4, np.float32))
    write_cem_hair(tmp / "u.hair", s, info="uniform")
    blob = (tmp / "u.hair").read_bytes()
    _, num, npts, bits, dseg, dthick = struct.unpack_from("<4sIIIIf", blob)
    assert (num, npts, bits, dseg) == (4, 12, 2, 2) and len(blob) == 128 + 12 * 12
    assert dthick == pytest.approx(1e-4) and blob[40:47] == b"uniform"
    s2 = Strands(s.points, thickness=np.float32([1e-4, 2e-4, 1e-4, 1e-4]))
    write_cem_hair(tmp / "v.hair", s2)
    blob = (tmp / "v.hair").read_bytes()
    assert struct.unpack_from("<I", blob, 12)[0] == 2 | 4 and len(blob) == 128 + 12 * 12 + 4 * 12


@SETTINGS
@given(ragged(max_strands=4, max_points=5), st.data())
def test_cem_truncated_anywhere_is_a_clear_error(tmp, parts, data):
    r = R(parts)
    path = tmp / "trunc.hair"
    write_cem_hair(path, r)
    full = path.read_bytes()
    cut = data.draw(st.integers(0, len(full) - 1))
    path.write_bytes(full[:cut])
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_cem_hair(path)


def test_cem_malformed_headers(tmp):
    path = tmp / "bad.hair"
    pts = np.zeros((2, 3), "<f4").tobytes()
    cases = {
        b"HAIX" + _hair_header(1, 2, 2, dseg=1)[4:] + pts: "signature",
        _hair_header(1, 2, 2 | 64, dseg=1) + pts: "unknown field bits",
        _hair_header(1, 2, 1) + b"\1\0" + pts: "no points array",
        _hair_header(2**32 - 1, 2**32 - 1, 3) + pts: "truncated",
        _hair_header(2**32 - 1, 2, 2, dseg=0) + pts: "add up to",
        _hair_header(1, 2, 3) + b"\5\0" + pts: "add up to",
        _hair_header(1, 2, 2, dseg=1) + pts + b"\0": "1 unexpected bytes",
        _hair_header(1, 2, 2, dseg=1) + np.float32([0, 0, 0, np.inf, 0, 0]).tobytes(): "NaN or infinity",
        b"HAIR": "too short",
    }
    for content, msg in cases.items():
        path.write_bytes(content)
        with pytest.raises(InputError, match=msg) as e:
            read_cem_hair(path)
        assert str(path) in str(e.value)


@SETTINGS
@given(st.binary(max_size=48), st.integers(0, 31), st.integers(0, 4), st.integers(0, 8), st.integers(0, 3))
def test_cem_random_bytes_never_crash(tmp, tail, bits, num, npts, dseg):
    path = tmp / "fuzz.hair"
    path.write_bytes(_hair_header(num, npts, bits, dseg=dseg) + tail)
    try:
        r = read_cem_hair(path)
    except InputError:
        return
    assert r.num_points == npts and r.num_strands == num


def test_cem_writer_limits(tmp):
    with pytest.raises(ValueError, match="65,536"):
        write_cem_hair(tmp / "long.hair", RaggedStrands(np.zeros((65537, 3), np.float32), np.array([65537])))
    with pytest.raises(ValueError, match="87"):
        write_cem_hair(tmp / "info.hair", Strands(np.zeros((1, 2, 3), np.float32)), info="x" * 88)


# ---------------------------------------------------------------------------------------------
# writers refuse non-finite values and write atomically


@pytest.mark.parametrize("write", [write_hair_data, write_cem_hair, write_usd_curves])
def test_writers_reject_nan_and_leave_existing_files_alone(tmp, write):
    path = tmp / f"nan_{write.__name__}"
    path.write_bytes(b"previous")
    pts = np.zeros((2, 3, 3), np.float32)
    pts[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write(path, Strands(pts))
    with pytest.raises(ValueError, match="NaN"):
        write(path, Strands(np.zeros((2, 3, 3), np.float32), thickness=np.float32([1e-4, np.inf])))
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp.iterdir() if p.name.startswith(f".{path.name}")] == []
    write(path, Strands(np.zeros((2, 3, 3), np.float32)))
    assert path.read_bytes() != b"previous"


def test_writers_reject_overflow_in_file_units(tmp):
    with pytest.raises(ValueError, match="overflow"):
        write_hair_data(tmp / "o.data", Strands(np.full((1, 2, 3), 1e30, np.float32)), scale=1e-10)


# ---------------------------------------------------------------------------------------------
# USD


def _usda_arrays(text: str):
    def grab(decl):
        m = re.search(re.escape(decl) + r" = \[(.*?)\]", text, re.S)
        return m.group(1)

    counts = [int(v) for v in re.findall(r"-?\d+", grab("int[] curveVertexCounts"))]
    nums = lambda s: [float(v) for v in re.findall(r"[-+0-9.eE]+", s)]  # noqa: E731
    pts = np.array(nums(grab("point3f[] points")), np.float32).reshape(-1, 3)
    widths = np.array(nums(grab("float[] widths")), np.float32)
    colors = np.array(nums(grab("color3f[] primvars:displayColor")), np.float32).reshape(-1, 3)
    extent = np.array(nums(grab("float3[] extent")), np.float32).reshape(2, 3)
    return counts, pts, widths, colors, extent


@SETTINGS
@given(ragged())
def test_usda_holds_the_strands(tmp, parts):
    r = R(parts)
    path = tmp / "rt.usda"
    write_usd_curves(path, r)
    text = path.read_text()
    assert text.startswith("#usda 1.0\n")
    for line in ('defaultPrim = "hair"', "metersPerUnit = 1", 'upAxis = "Y"', 'def BasisCurves "strands"',
                 'uniform token type = "linear"'):
        assert line in text
    counts, pts, widths, colors, extent = _usda_arrays(text)
    assert counts == np.asarray(r.counts).tolist()
    np.testing.assert_array_equal(pts, np.asarray(r.points, np.float32))  # %.9g round-trips float32
    if r.thickness is not None:
        np.testing.assert_array_equal(widths, r.thickness)
        assert re.search(r'widths = \[.*?\] \(\s*interpolation = "uniform"', text, re.S)
    else:
        np.testing.assert_allclose(widths, [DEFAULT_HAIR_WIDTH])
    if r.color is not None:
        np.testing.assert_array_equal(colors, r.color)
    if r.num_points:
        half = widths.max() / 2
        np.testing.assert_allclose(extent, [pts.min(0) - half, pts.max(0) + half], rtol=1e-6, atol=1e-7)


def test_usda_options(tmp):
    r = RaggedStrands.from_list([np.zeros((2, 3)), np.ones((3, 3))], thickness=np.float32([1e-4, 2e-4]))
    write_usd_curves(tmp / "o.usda", r, width=5e-5, color=(1.0, 0.5, 0.0), name="my_hair")
    text = (tmp / "o.usda").read_text()
    _, _, widths, colors, _ = _usda_arrays(text)
    np.testing.assert_allclose(widths, [5e-5])
    np.testing.assert_allclose(colors, [[1.0, 0.5, 0.0]])
    assert text.count('interpolation = "constant"') == 2 and 'def Xform "my_hair"' in text
    for bad in ("", "1hair", "a b", "hair/x"):
        with pytest.raises(ValueError, match="identifier"):
            write_usd_curves(tmp / "o.usda", r, name=bad)
    with pytest.raises(ValueError, match="width"):
        write_usd_curves(tmp / "o.usda", r, width=-1.0)


def test_usda_opens_in_usd(tmp):
    pxr = pytest.importorskip("pxr")  # usd-core is optional; the text checks above always run
    from pxr import Usd, UsdGeom

    r = RaggedStrands.from_list([np.zeros((2, 3)), np.ones((4, 3))], color=np.float32([[1, 0, 0], [0, 1, 0]]))
    write_usd_curves(tmp / "pxr.usda", r)
    stage = Usd.Stage.Open(str(tmp / "pxr.usda"))
    assert pxr and UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    curves = UsdGeom.BasisCurves(stage.GetPrimAtPath("/hair/strands"))
    assert curves.GetTypeAttr().Get() == UsdGeom.Tokens.linear
    assert list(curves.GetCurveVertexCountsAttr().Get()) == [2, 4]
    np.testing.assert_allclose(np.array(curves.GetPointsAttr().Get()), r.points)
    ext = UsdGeom.Boundable.ComputeExtentFromPlugins(curves, Usd.TimeCode.Default())
    np.testing.assert_allclose(np.array(ext), np.array(curves.GetExtentAttr().Get()), atol=1e-7)


# ---------------------------------------------------------------------------------------------
# glTF lines


@SETTINGS
@given(ragged(attrs=False))
def test_gltf_lines_join_consecutive_points_of_one_strand(parts):
    r = R(parts)
    pos, idx = strands_to_gltf_lines(r)
    counts = np.asarray(r.counts)
    assert pos.dtype == np.float32 and idx.dtype == np.uint32
    np.testing.assert_array_equal(pos, r.points)
    pairs = idx.reshape(-1, 2).astype(np.int64)
    assert len(pairs) == int((counts - 1).sum())
    sid = np.repeat(np.arange(counts.size), counts)
    assert (pairs[:, 1] == pairs[:, 0] + 1).all()
    assert (sid[pairs[:, 0]] == sid[pairs[:, 1]]).all()
    assert len(np.unique(pairs[:, 0])) == len(pairs)


def test_gltf_lines_from_uniform_strands():
    pos, idx = strands_to_gltf_lines(Strands(np.zeros((2, 3, 3), np.float32)))
    assert pos.shape == (6, 3) and idx.tolist() == [0, 1, 1, 2, 3, 4, 4, 5]
