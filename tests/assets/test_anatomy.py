"""Procedural eyes, mouth interior and eyelashes (machlib.assets._anatomy)."""

import numpy as np
import pytest

from machlib.assets._anatomy import eye_placement, make_eyelashes, make_eyes, make_mouth
from machlib.assets._procedural import _head_info, _resolve_template, _sdf, _signed_volume, accessory_glb_bytes
from machlib.export import validate_gltf


@pytest.fixture(scope="module")
def head():
    from machlib.geometry import procedural_template

    # the procedural anatomy belongs to the procedural head (the human's: test_human_anatomy.py)
    t = _resolve_template(procedural_template(), "test")
    lm, sdf, _ = _head_info(t)
    return t, lm, sdf


@pytest.fixture(scope="module")
def eyes(head):
    return make_eyes(template=head[0])


@pytest.fixture(scope="module")
def mouth(head):
    return make_mouth(template=head[0])


@pytest.fixture(scope="module")
def lashes(head):
    return make_eyelashes(template=head[0])


def test_eye_placement_follows_landmarks(head):
    t = head[0]
    p = eye_placement(template=t)
    np.testing.assert_allclose(p.centers, [[-0.031, 0.004, 0.070], [0.031, 0.004, 0.070]], atol=2e-4)
    assert abs(p.radius - 0.0125) < 2e-4
    moved = t.mesh.__class__(np.asarray(t.mesh.vertices) * 1.1 + [0.01, -0.02, 0.005], t.mesh.faces,
                             t.mesh.uv, t.mesh.faces_uv)
    q = eye_placement(template=moved)
    np.testing.assert_allclose(q.centers, p.centers * 1.1 + [0.01, -0.02, 0.005], atol=3e-4)
    assert abs(q.radius - 1.1 * p.radius) < 3e-4


def test_iris_colour(head, eyes):
    blue = make_eyes(iris_color="blue", template=head[0])
    assert eyes.id == "eyes_brown" and blue.id == "eyes_blue"
    assert blue.part("iris").base_color != eyes.part("iris").base_color
    assert blue.part("sclera").base_color == eyes.part("sclera").base_color
    with pytest.raises((ValueError, TypeError), match="iris_color"):
        make_eyes(iris_color="plaid", template=head[0])


def _aperture_mask(lm, pts):
    """Points whose (x, y) lie inside a lid-margin polygon (expanded ~1 mm)."""
    out = np.zeros(len(pts), bool)
    for up, lo in (((33, 246, 161, 160, 159, 158, 157, 173, 133), (155, 154, 153, 145, 144, 163, 7)),
                   ((263, 466, 388, 387, 386, 385, 384, 398, 362), (382, 381, 380, 374, 373, 390, 249))):
        poly = lm[list(up + lo), :2]
        c = poly.mean(0)
        poly = c + (poly - c) * 1.0 + np.sign(poly - c) * 0.001
        out |= _inside(poly, pts[:, :2])
    return out


def _inside(poly, q):
    """Even-odd point-in-polygon test."""
    a, b = poly, np.roll(poly, -1, 0)
    y = q[:, 1:2]
    cross = (a[None, :, 1] > y) != (b[None, :, 1] > y)
    xs = a[None, :, 0] + (y - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1] + 1e-15)
    return (cross & (q[:, 0:1] < xs)).sum(1) % 2 == 1


def test_eyes_stay_under_the_lids(head, eyes):
    _, lm, sdf = head
    for name in ("sclera", "iris"):
        v = np.asarray(eyes.part(name).mesh.vertices)
        d = _sdf(sdf, v)
        assert d.max() < 0.0006, name
        assert (d[~_aperture_mask(lm, v)] < 0.0002).all(), name
        assert (v[:, 0] < 0).sum() == (v[:, 0] > 0).sum()  # both eyes, mirrored
    v = np.asarray(eyes.part("sclera").mesh.vertices)
    assert _signed_volume(v, np.asarray(eyes.part("sclera").mesh.faces)) > 0
    iris = eyes.part("iris").mesh
    f = np.asarray(iris.faces)
    iv = np.asarray(iris.vertices)
    n = np.cross(iv[f[:, 1]] - iv[f[:, 0]], iv[f[:, 2]] - iv[f[:, 0]])
    assert (n[:, 2] > 0).mean() > 0.95  # caps face forwards


def test_mouth_inside_and_split(head, mouth):
    _, lm, sdf = head
    y_lip = 0.5 * (lm[13, 1] + lm[14, 1])
    for p in mouth.parts:
        v = np.asarray(p.mesh.vertices)
        d = _sdf(sdf, v)
        assert d.max() < (-0.0005 if p.name != "mouth_bag" else 0.0), p.name
        vol = _signed_volume(v, np.asarray(p.mesh.faces))
        assert (vol < 0) if p.name == "mouth_bag" else (vol > 0), p.name
        if p.name.startswith("upper"):
            assert v[:, 1].min() > y_lip, p.name
        elif p.name != "mouth_bag":
            assert v[:, 1].max() < y_lip, p.name
    bag = np.asarray(mouth.part("mouth_bag").mesh.vertices)
    teeth = np.concatenate([np.asarray(mouth.part(n).mesh.vertices) for n in ("upper_teeth", "lower_teeth")])
    assert bag[:, 1].max() > teeth[:, 1].max() and bag[:, 1].min() < teeth[:, 1].min()
    assert bag[:, 2].max() > teeth[:, 2].max() > lm[13, 2] - 0.012  # incisors just behind the lips


def test_eyelashes_rooted_and_outside(head, eyes, lashes):
    _, lm, sdf = head
    m = lashes.part("eyelashes").mesh
    v = np.asarray(m.vertices)
    d = _sdf(sdf, v)
    p = eye_placement(template=head[0])
    r = np.min(np.linalg.norm(v[:, None] - p.centers[None], axis=2), 1)
    tips_out = (d > -0.0003) | (r > 1.03 * p.radius)
    assert tips_out.mean() > 0.97
    assert (r > 1.0 * p.radius).all()
    assert np.abs(d).min() < 0.001 and d.max() > 0.005  # rooted on the lid, long enough
    assert _signed_volume(v, np.asarray(m.faces)) > 0
    with pytest.raises((ValueError, TypeError), match="color"):
        make_eyelashes(template=head[0], color="tartan")


def test_deterministic_and_valid_glb(head, eyes, mouth, lashes):
    again = make_eyelashes(template=head[0])
    np.testing.assert_array_equal(again.mesh.vertices, lashes.mesh.vertices)
    for acc in (eyes, mouth, lashes):
        for p in acc.parts:
            uv = np.asarray(p.mesh.uv)
            assert uv.min() >= 0 and uv.max() <= 1
            assert np.asarray(p.mesh.faces_uv).shape == np.asarray(p.mesh.faces).shape
        problems = validate_gltf(accessory_glb_bytes(acc))
        assert not problems, problems
