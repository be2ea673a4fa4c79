"""Procedural glasses and busts with garments (machlib.assets._procedural)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from helpers import signed_volume
from jaxtyping import TypeCheckError

from machlib import InputError
from machlib.assets import builtin_manifest, load_manifest
from machlib.assets._procedural import (
    GARMENT_TYPES,
    GLASSES_STYLES,
    make_bust,
    make_glasses,
    write_accessory_library,
)
from machlib.geometry import default_template
from machlib.hair import sdf_lookup

SMALL = {"cols": 32, "rows": 12}


@functools.lru_cache(maxsize=None)
def _head_sdf():
    from machlib.assets._procedural import _head_info

    sdf = _head_info(default_template())[1]  # the grid the generator used, built once
    assert sdf.spacing == 0.003
    return sdf


@functools.lru_cache(maxsize=None)
def _glasses(style, color=None):
    return make_glasses(style, color=color)


@functools.lru_cache(maxsize=None)
def _bust(garment, color=None):
    return make_bust(garment, color=color, **SMALL)


def _sdf(points):
    return np.asarray(sdf_lookup(_head_sdf(), np.asarray(points, dtype=np.float32)))


def _check_mesh(mesh):
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    uv, fuv = np.asarray(mesh.uv), np.asarray(mesh.faces_uv)
    assert np.isfinite(v).all() and np.isfinite(uv).all()
    assert uv.min() >= 0 and uv.max() <= 1
    assert f.min() >= 0 and f.max() < len(v) and fuv.max() < len(uv)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    assert (np.linalg.norm(np.cross(b - a, c - a), axis=1) > 0).mean() > 0.98


def _components(f, n):
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, c in f:
        for x, y in ((a, b), (b, c)):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[rx] = ry
    roots = np.array([find(i) for i in range(n)])
    return [np.where(roots[f[:, 0]] == r)[0] for r in np.unique(roots[f[:, 0]])]


def _assert_closed_outward(mesh, weld=False):
    """Every connected piece is closed (each directed edge once, reversed once) and has a
    positive signed volume (outward faces); ``weld`` merges coincident vertices first (the
    skin's top cap has its own copy of the neck ring, for crisp normals)."""
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if weld:
        _, first, inv = np.unique(np.round(v, 9), axis=0, return_index=True, return_inverse=True)
        f = first[inv.reshape(-1)][f]
    for comp in _components(f, len(v)):
        ff = f[comp]
        e = np.concatenate([ff[:, [0, 1]], ff[:, [1, 2]], ff[:, [2, 0]]])
        fwd = {tuple(x) for x in e}
        assert len(fwd) == len(e), "a directed edge appears twice (inconsistent orientation)"
        assert all((b, a) in fwd for a, b in fwd), "an open edge"
        assert signed_volume(v, ff) > 0


@pytest.mark.parametrize("style", [s for s in GLASSES_STYLES if s not in ("present", "rectangular")])
def test_glasses_build_fit_and_clear_the_head(style):
    g = _glasses(style)
    lm = default_template().landmark_positions()
    frame, lenses = g.part("frame").mesh, g.part("lenses").mesh
    for m in (frame, lenses):
        _check_mesh(m)
        _assert_closed_outward(m)
    fv, lv = np.asarray(frame.vertices), np.asarray(lenses.vertices)
    # outside the head, with a few millimetres in front of the face
    assert _sdf(fv).min() > 0.0005
    front = lv
    assert _sdf(front).min() > 0.002
    assert (lv[:, 2] > lm[468][2] + 0.005).all()
    # symmetric about x = 0
    mirrored = fv * [-1, 1, 1]
    from scipy.spatial import cKDTree

    assert cKDTree(fv).query(mirrored)[0].max() < 1e-6
    # lenses centred on the pupils (x, y) within a few millimetres
    for side, k in ((1, 473), (-1, 468)):
        half = lv[lv[:, 0] * side > 0]
        centre = 0.5 * (half.min(0) + half.max(0))
        assert np.abs(centre[:2] - lm[k][:2]).max() < 0.005, (style, centre, lm[k])
    # temples reach back to the ears (behind the face-oval points at the ears)
    assert fv[:, 2].min() < lm[356][2] - 0.02
    tip = fv[np.argmin(fv[:, 2])]
    assert abs(abs(tip[0]) - 0.075) < 0.015


def test_glasses_ids_colours_determinism_and_errors():
    ids = {a.id for a in builtin_manifest().of_kind("glasses")}
    made = {_glasses(s).id for s in ("round", "rectangular", "aviator", "cat-eye")}
    assert made == ids
    red = _glasses("round", "red")
    assert red.base_color == red.part("frame").base_color and red.base_color[0] > 0.5 > red.base_color[2]
    assert _glasses("aviator").alpha > 0.5 > _glasses("round").alpha
    again = make_glasses("round", color="red")
    np.testing.assert_array_equal(np.asarray(again.mesh.vertices), np.asarray(red.mesh.vertices))
    with pytest.raises((ValueError, TypeError), match="round.*aviator"):
        make_glasses("monocle")
    with pytest.raises((ValueError, TypeError), match="tortoiseshell"):
        make_glasses("round", color="plaid")


@pytest.mark.parametrize("garment", GARMENT_TYPES)
def test_bust_and_garment(garment):
    b = _bust(garment)
    skin, cloth = b.part("skin").mesh, b.part("garment").mesh
    for p in b.parts:
        _check_mesh(p.mesh)
        _assert_closed_outward(p.mesh, weld=p.name == "skin")
    sv, gv = np.asarray(skin.vertices), np.asarray(cloth.vertices)
    # the top ring sits on the template neck
    top = sv[np.abs(sv[:, 1] - sv[:, 1].max()) < 1e-9]
    top = top[np.linalg.norm(top - top.mean(0), axis=1) > 0.01]  # not the cap's centre
    assert len(top) >= SMALL["cols"]
    assert np.abs(_sdf(top)).max() < 0.002
    # the garment is outside the skin: every garment vertex is farther from the ray origin
    # than the skin along its own direction (checked with the skin's signed distance)
    from machlib.assets._procedural import _body_geom, _body_sdf

    g = _body_geom(default_template())
    d = np.asarray(_body_sdf(np.asarray(gv, np.float32), g))
    assert d.min() > 0.0003, (garment, d.min())
    # symmetric about x = 0
    from scipy.spatial import cKDTree

    assert cKDTree(gv).query(gv * [-1, 1, 1])[0].max() < 2e-3


def test_bust_ids_colours_and_errors():
    ids = {a.id for a in builtin_manifest().of_kind("garment")}
    assert {_bust(gt).id for gt in ("t-shirt", "hoodie", "suit", "dress", "sweater")} == ids
    navy = _bust("t-shirt", "navy")
    assert navy.base_color == navy.part("garment").base_color == (0.04, 0.06, 0.2)
    assert _bust("suit").part("shirt") and _bust("suit").part("tie")
    with pytest.raises((ValueError, TypeError), match="t-shirt.*hoodie"):
        make_bust("kimono")
    with pytest.raises((ValueError, TypeError), match="navy"):
        make_bust("t-shirt", color="plaid")


def test_write_library_matches_the_manifest(tmp_path, monkeypatch):
    import machlib.assets._procedural as proc

    monkeypatch.setattr(proc, "make_bust", lambda garment, **kw: _bust(garment))
    monkeypatch.setattr(proc, "make_glasses", lambda style, **kw: _glasses(style))
    written = write_accessory_library(tmp_path)
    m = load_manifest(tmp_path / "assets.json")
    for a in m.of_kind("glasses") + m.of_kind("garment"):
        p = m.resolve(a)
        assert p in [w.resolve() for w in written]
        assert p.read_bytes()[:4] == b"glTF"
    import trimesh

    scene = trimesh.load(m.resolve("glasses_round"), force="scene")
    assert len(scene.geometry) == 2


def test_glasses_take_a_given_head_sdf():
    """The caller's signed distance grid of the head (e.g. the hair stage's) is used as computed."""
    from machlib.hair import head_sdf_grid

    head = default_template().mesh
    sdf = head_sdf_grid(head, spacing=0.003)  # what make_glasses would compute
    given = make_glasses("round", template=head, head_sdf=sdf)
    own = make_glasses("round", template=head)
    np.testing.assert_allclose(np.asarray(given.part("frame").mesh.vertices), np.asarray(own.part("frame").mesh.vertices))
    with pytest.raises((InputError, TypeCheckError), match="head_sdf"):
        make_glasses("round", template=head, head_sdf="not a grid")


def test_a_cat_eye_frame_is_heavy_on_top_and_swept_up_at_the_outer_corner():
    # a uniform 6 mm rim read as a square frame on the bundled portrait (her frames are thin
    # below, heavy along the top and the upswept wing)
    from machlib.assets._procedural import _outline, _rim_widths

    q, sq = _outline("cat-eye"), _outline("square")
    w = np.asarray(_rim_widths("cat-eye", q, 0.003))
    top, bottom = q[:, 1] > 0.8 * q[:, 1].max(), q[:, 1] < 0.8 * q[:, 1].min()
    assert w[top].min() > 2.5 * w[bottom].max()
    assert np.ndim(_rim_widths("square", sq, 0.003)) == 0  # the others stay uniform
    outer_top = q[np.argmax(q[:, 0] + q[:, 1])]
    assert outer_top[1] > 1.15 * sq[:, 1].max()  # the wing rises above a square lens's top


@pytest.mark.parametrize("style", ["cat-eye", "round", "square"])
def test_glasses_sit_where_a_photo_shows_them(style):
    """``lens=(drop, height)``: the frame's middle lies ``drop`` pupil distances below the pupils
    (or higher, where the lenses would meet the nose's flanks or the cheeks) and it is ``height``
    tall across its outer edges (within the 0.8-1.35 scale it may take), clear of the skin."""
    lm = np.asarray(default_template().landmark_positions())
    ipd = float(np.linalg.norm(lm[473] - lm[468]))
    pupil_y = 0.5 * (lm[473][1] + lm[468][1])

    def span(g):  # the front of the frame (rims and bridge), in pupil distances below the pupils
        fv = np.asarray(g.part("frame").mesh.vertices)
        front = fv[fv[:, 2] > fv[:, 2].max() - 0.012]
        return (pupil_y - front[:, 1].max()) / ipd, (pupil_y - front[:, 1].min()) / ipd

    top0, bottom0 = span(make_glasses(style))
    for drop, height in ((0.15, 0.7), (0.0, 0.55), (0.1, 0.6), (0.3, 0.8)):
        g = make_glasses(style, lens=(drop, height))
        top, bottom = span(g)
        middle = 0.5 * (top + bottom)
        assert middle < drop + 0.03, (style, drop, top, bottom)  # never lower than asked
        if style == "round" and drop <= 0.15:  # a small round lens fits wherever the photo puts it
            assert abs(middle - drop) < 0.03, (style, drop, top, bottom)
        want = np.clip(height, 0.8 * (bottom0 - top0), 1.35 * (bottom0 - top0))
        assert abs((bottom - top) - want) < 0.06, (style, height, bottom - top, bottom0 - top0)
        _check_mesh(g.part("frame").mesh)
        _assert_closed_outward(g.part("frame").mesh)
        assert _sdf(np.asarray(g.part("frame").mesh.vertices)).min() >= 0.0005  # clear of the face
        assert _sdf(np.asarray(g.part("lenses").mesh.vertices)).min() >= 0.002
    # large frames seen hanging low (the bundled portrait's) come out lower than the style's own
    top, bottom = span(make_glasses(style, lens=(0.15, 0.7)))
    assert 0.5 * (top + bottom) > 0.5 * (top0 + bottom0) + 0.08
    for bad in ((0.5, 0.6), (0.1, 0.2), (0.1,), "low"):
        with pytest.raises((InputError, TypeCheckError), match="lens"):
            make_glasses(style, lens=bad)
