"""Beards and moustaches: roots on their zones of the lower face (never on the lips), tips
outside the head, styles that differ in extent and length, attribute mapping, determinism."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from machlib.geometry import default_template
from machlib.hair import (
    BEARD_STYLES,
    beard_roots,
    beard_style_for,
    grow_beard,
    head_sdf_grid,
    sdf_lookup,
)
from machlib.hair._beard import _frame_of

N = 300


@pytest.fixture(scope="module")
def template():
    return default_template()


@pytest.fixture(scope="module")
def sdf(template):
    return head_sdf_grid(template.mesh)


@pytest.fixture(scope="module")
def beards(template, sdf):
    return {name: np.asarray(grow_beard(jax.random.key(0), name, template, n_strands=N, sdf=sdf).points, np.float64)
            for name in BEARD_STYLES}


def test_roots_lie_on_their_zones(template, sdf):
    face = _frame_of(template.mesh, template)
    lip_y = float(np.interp(0.0, face.lip_line[:, 0], face.lip_line[:, 1]))
    nose_y = float(face.alae[:, 1].mean())
    lip = beard_roots(jax.random.key(1), template, 200, zones=("moustache",)).points
    assert ((lip[:, 1] > lip_y - 0.01) & (lip[:, 1] < nose_y)).all()  # between the mouth and the nose
    chin = beard_roots(jax.random.key(1), template, 200, zones=("chin",)).points
    assert (chin[:, 1] < lip_y - 0.004).all() and (np.abs(chin[:, 0]) < 0.025).all()
    jaw = beard_roots(jax.random.key(1), template, 200, zones=("jaw",)).points
    assert np.abs(jaw[:, 0]).max() > 0.05  # out to the sideburns
    for r in (lip, chin, jaw):  # on the skin
        assert np.abs(np.asarray(sdf_lookup(sdf, r))).max() < 1.5e-3
    # never on the lips: no root within 2 mm of the lips' contact line between the mouth corners
    allr = beard_roots(jax.random.key(2), template, 2000).points
    cx = np.abs(face.mouth_corners[:, 0]).max()
    mid = np.abs(allr[:, 0]) < cx - 0.004
    line = np.interp(allr[mid, 0], face.lip_line[:, 0], face.lip_line[:, 1])
    assert (np.abs(allr[mid, 1] - line) > 0.002).all()


@pytest.mark.slow
def test_tips_stay_outside_the_head(beards, sdf):
    for name, pts in beards.items():
        assert pts.shape[0] == N and np.isfinite(pts).all(), name
        assert np.asarray(sdf_lookup(sdf, pts[:, 1:].reshape(-1, 3))).min() > -1e-3, name


@pytest.mark.slow
def test_styles_differ_in_extent_and_length(beards):
    def length(p):
        return np.linalg.norm(np.diff(p, axis=1), axis=2).sum(1).mean()

    def width(p):
        return np.ptp(p[:, 0, 0])

    def low(p):
        return p[:, :, 1].min()

    assert length(beards["stubble"]) < 0.004 < length(beards["short"]) < length(beards["full"])
    assert width(beards["moustache"]) < 0.07 < width(beards["full"])  # lip only vs. ear to ear
    assert width(beards["goatee"]) < width(beards["short"])
    assert low(beards["moustache"]) > low(beards["goatee"]) > low(beards["full"])  # how far down it reaches
    assert length(beards["moustache"]) < 0.013  # a moustache stays short: the lips stay free


@pytest.mark.slow
def test_attribute_mapping_and_determinism(template, sdf, beards):
    assert beard_style_for("full") == "full" and beard_style_for("present", "thin") == "full"
    assert beard_style_for(None, "handlebar") == "moustache" and beard_style_for("stubble", "present") == "stubble"
    assert beard_style_for(None) is None and beard_style_for("none", "none") is None
    with pytest.raises(ValueError, match="beard_style_for"):
        beard_style_for("braided")
    again = np.asarray(grow_beard(jax.random.key(0), "goatee", template, n_strands=N, sdf=sdf).points)
    np.testing.assert_array_equal(again, beards["goatee"])
    with pytest.raises(ValueError, match="grow_beard"):
        grow_beard(jax.random.key(0), "mutton chops", template)
    with pytest.raises(ValueError, match="beard_roots"):
        beard_roots(jax.random.key(0), template, 5, zones=("forehead",))


@pytest.mark.slow
def test_the_manifest_beard_assets_are_built(template, sdf, tmp_path):
    import importlib.util
    from pathlib import Path

    from machlib.assets import builtin_manifest
    from machlib.hair import read_hair_data

    path = Path(__file__).resolve().parents[2] / "scripts" / "make_hair_library.py"
    spec = importlib.util.spec_from_file_location("make_hair_library", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    entries = script.build_beards(tmp_path, template, sdf, size=16, n_strands=30)
    assets = builtin_manifest().of_kind("beard")
    assert {e["id"] for e in entries} == {a.id for a in assets}
    for a in assets:
        strands = read_hair_data(tmp_path / a.path)
        assert strands.num_strands == 30, a.id
        assert (tmp_path / a.path).with_suffix(".png").exists()
