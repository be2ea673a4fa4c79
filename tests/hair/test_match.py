"""Portrait-side hair analysis: hair colour from pixels (:func:`estimate_hair_color`), strand
visibility in a camera (:func:`strand_coverage`), style retrieval against a synthetic portrait made
from a known style (:func:`match_styles`), where hair may be seen (:func:`hair_allowed`), and bad
inputs."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import ndimage

from machlib._image import default_portrait
from machlib._preview import orbit_camera
from machlib.geometry import default_template, detect_landmarks, face_oval
from machlib.hair import (
    HAIR_COLORS,
    HAIR_STYLES,
    HairMask,
    StyleMatch,
    estimate_hair_color,
    grow_style,
    match_styles,
    strand_coverage,
)
from machlib.pipeline import hair_allowed

# match_styles grows n_strands × 24 points: the same shape here shares one compiled integrator
N_STRANDS, N_POINTS, SIZE, SCALE = 400, 24, 128, 2
STYLES = {name: HAIR_STYLES[name] for name in ("bald", "long straight", "buzz cut", "bun")}
# the melanin concentrations HAIR_COLORS' natural entries were made from (machlib/hair/_styles.py)
NATURAL = {"brown": (0.6, 0.0), "blonde": (0.12, 0.05), "red": (0.0, 0.7), "auburn": (0.4, 0.6)}


def _srgb_image(linear, n: int = 16) -> np.ndarray:
    lin = np.asarray(linear, np.float64)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.broadcast_to((srgb * 255 + 0.5).astype(np.uint8), (n, n, 3)).copy()


def _line(start, stop, n: int = 8) -> np.ndarray:
    return np.linspace(np.asarray(start, np.float64), np.asarray(stop, np.float64), n)[None]  # (1, n, 3)


@pytest.fixture(scope="module")
def template():
    return default_template()


@pytest.fixture(scope="module")
def camera():
    return orbit_camera(0.0, image_size=(SIZE, SIZE))


@pytest.fixture(scope="module")
def portrait(template, camera):
    """A frontal portrait's (mask, theta, confidence) drawn from a grown "long straight" style."""
    grown = grow_style(jax.random.key(5), HAIR_STYLES["long straight"], template, n_strands=N_STRANDS,
                       n_points=N_POINTS)
    hit, theta = strand_coverage(np.asarray(grown.points), camera, mesh=template.mesh)
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(hit, iterations=3)) | hit
    return mask.astype(np.float32), theta, np.ones(mask.shape)


@pytest.fixture(scope="module")
def ranking(template, camera, portrait):
    mask, theta, conf = portrait
    return match_styles(jax.random.key(1), mask, theta, conf, camera, template, n_strands=N_STRANDS,
                        scale=SCALE, styles=STYLES)


# --- estimate_hair_color ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NATURAL))
def test_hair_color_recovers_natural_colours(name):
    img = _srgb_image(0.7 * np.asarray(HAIR_COLORS[name]))
    est = estimate_hair_color(img, np.ones(img.shape[:2], np.float32))
    mel, phe = NATURAL[name]
    assert est.name == name
    assert est.melanin == pytest.approx(mel, rel=0.15, abs=0.02)
    assert est.pheomelanin == pytest.approx(phe, rel=0.15, abs=0.02)
    assert est.error < 0.1 and est.pixels > 0
    assert est.rgb.shape == (3,) and est.observed.shape == (3,)
    np.testing.assert_allclose(est.rgb, HAIR_COLORS[name], rtol=0.2, atol=2e-3)


def test_natural_table_equals_hair_color():
    # HAIR_COLORS' natural entries are computed at import by a numpy copy of hair_color's formula
    # (no JAX at import, 31cd522): the copy must stay the formula
    from machlib.hair import hair_color

    for name, (mel, phe) in {**NATURAL, "black": (8.0, 0.0)}.items():
        want = tuple(round(float(c), 4) for c in np.asarray(hair_color(mel, phe)))
        assert HAIR_COLORS[name] == want, name


def test_hair_color_uses_only_masked_pixels():
    img = _srgb_image(0.7 * np.asarray(HAIR_COLORS["blonde"]), n=32)
    img[:16] = _srgb_image(0.7 * np.asarray(HAIR_COLORS["green"]), n=32)[:16]  # not hair
    mask = np.zeros((32, 32), np.float32)
    mask[16:] = 0.8
    assert estimate_hair_color(img, mask).name == "blonde"
    with pytest.raises(ValueError, match="estimate_hair_color"):
        estimate_hair_color(img, mask, threshold=0.9)  # no pixel reaches 0.9


def test_dyed_colour_keeps_its_hue():
    img = _srgb_image(0.7 * np.asarray(HAIR_COLORS["green"]))
    est = estimate_hair_color(img, np.ones(img.shape[:2], np.float32))
    assert est.name == "green"
    assert est.rgb[1] > 2 * est.rgb[0] and est.rgb[1] > 2 * est.rgb[2]
    assert np.all((est.rgb >= 0) & (est.rgb <= 1))


def test_hair_color_bad_inputs():
    img = _srgb_image(np.asarray(HAIR_COLORS["brown"]))
    ones = np.ones((16, 16), np.float32)
    bad = [
        lambda: estimate_hair_color(img, np.ones((8, 16), np.float32)),  # shape mismatch
        lambda: estimate_hair_color(img.astype(np.float32) / 255, ones),  # float image
        lambda: estimate_hair_color(img[..., :2].copy(), ones),  # 2 channels
        lambda: estimate_hair_color(img, np.pad(np.ones((4, 4), np.float32), ((0, 12), (0, 12)))),  # 16 < 20
        lambda: estimate_hair_color(img, ones, threshold=0.0),
        lambda: estimate_hair_color(img, ones, threshold=1.5),
        lambda: estimate_hair_color(img, ones, shading=0.0),
    ]
    for call in bad:
        with pytest.raises((ValueError, TypeError), match="estimate_hair_color"):
            call()


# --- strand_coverage --------------------------------------------------------------------------


def test_coverage_angle_of_vertical_and_horizontal_strands():
    cam = orbit_camera(0.0, image_size=(64, 64))
    hit, theta = strand_coverage(_line((0, 0.1, 0), (0, -0.1, 0)), cam)
    assert hit.shape == theta.shape == (64, 64) and hit.dtype == bool
    assert hit.sum() > 10
    np.testing.assert_allclose(theta[hit], np.pi / 2, atol=0.05)
    assert np.all(theta[~hit] == 0)
    hit, theta = strand_coverage(_line((-0.1, 0, 0), (0.1, 0, 0)), cam)
    assert hit.sum() > 10
    ang = theta[hit]
    assert np.all(np.minimum(ang, np.pi - ang) < 0.05)  # ≈ 0 (mod π)
    # the hit pixels of a horizontal strand lie on one or two rows, of a vertical one on columns
    assert np.ptp(np.nonzero(hit)[0]) <= 1


def test_coverage_head_hides_strands_behind_it(template):
    cam = orbit_camera(0.0, image_size=(64, 64))
    behind = _line((0, 0.05, -0.2), (0, -0.05, -0.2))
    front = _line((0, 0.05, 0.2), (0, -0.05, 0.2))
    assert strand_coverage(behind, cam)[0].sum() > 5  # visible without the head
    assert strand_coverage(behind, cam, mesh=template.mesh)[0].sum() == 0
    hit_free, _ = strand_coverage(front, cam)
    hit_head, theta = strand_coverage(front, cam, mesh=template.mesh)
    assert hit_head.sum() > 5
    np.testing.assert_array_equal(hit_head, hit_free)
    np.testing.assert_allclose(theta[hit_head], np.pi / 2, atol=0.05)


def test_coverage_bad_points():
    cam = orbit_camera(0.0, image_size=(32, 32))
    with pytest.raises((ValueError, TypeError), match="strand_coverage"):
        strand_coverage(np.zeros((4, 8, 2)), cam)
    with pytest.raises((ValueError, TypeError), match="strand_coverage"):
        strand_coverage(np.zeros((8, 3)), cam)


# --- match_styles -----------------------------------------------------------------------------


def test_portrait_fixture_is_plausible(portrait):
    mask, theta, _ = portrait
    frac = mask.mean()
    assert 0.05 < frac < 0.6
    ang = theta[mask > 0.5]
    # long straight hair mostly runs vertically in a frontal view
    assert np.median(np.abs(ang[ang > 0] - np.pi / 2)) < 0.5


def test_match_ranks_the_source_style_first(ranking):
    assert [m.name for m in ranking][0] == "long straight"
    assert ranking[-1].name == "bald"
    assert sorted(m.name for m in ranking) == sorted(STYLES)
    assert all(isinstance(m, StyleMatch) for m in ranking)
    scores = [m.score for m in ranking]
    assert scores == sorted(scores, reverse=True)
    best = ranking[0]
    assert best.f1 > 0.7 and best.orientation > 0.7
    for m in ranking:
        assert 0.0 <= m.f1 <= 1.0 and -1.0 <= m.orientation <= 1.0


def test_match_is_deterministic(template, camera, portrait, ranking):
    mask, theta, conf = portrait
    again = match_styles(jax.random.key(1), mask, theta, conf, camera, template, n_strands=N_STRANDS,
                         scale=SCALE, styles=STYLES)
    assert again == ranking


def test_match_without_hair_prefers_bald(template, camera, portrait):
    _, theta, conf = portrait
    out = match_styles(jax.random.key(1), np.zeros((SIZE, SIZE)), theta, conf, camera, template,
                       n_strands=N_STRANDS, scale=SCALE, styles=STYLES)
    assert out[0].name == "bald"
    assert all(m.f1 == 0.0 for m in out)


def test_match_bad_inputs(template, camera, portrait):
    mask, theta, conf = portrait
    key = jax.random.key(0)
    bad = [
        lambda: match_styles(key, mask, theta[:64], conf, camera, template, styles=STYLES),
        lambda: match_styles(key, mask, theta, conf[:, :64], camera, template, styles=STYLES),
        lambda: match_styles(key, mask[:64, :64], theta[:64, :64], conf[:64, :64], camera, template, styles=STYLES),
        lambda: match_styles(key, mask, theta, conf, camera, template, scale=0, styles=STYLES),
        lambda: match_styles(key, mask, theta, conf, camera, template, styles={}),
        lambda: match_styles(key, mask, theta, conf, camera, template, orientation_weight=-1.0, styles=STYLES),
        lambda: match_styles(key, mask, theta, conf, camera, template, styles=STYLES, allowed=mask[:64]),
    ]
    for call in bad:
        with pytest.raises((ValueError, TypeError), match="match_styles"):
            call()


# --- hair_allowed -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def landmarks():
    return detect_landmarks(default_portrait())


def test_hair_allowed(landmarks):
    h, w = default_portrait().shape[:2]
    oval = np.asarray(landmarks.points)[face_oval()]
    (x0, y0), (x1, y1) = oval.min(0), oval.max(0)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    face = ((((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) <= 1).astype(np.float32)
    hair = np.zeros((h, w), np.float32)
    hair[int(y0) - 40: int(y0) - 5, int(x0): int(x1)] = 1.0  # on top of the head
    hair[h - 30: h - 10, 10:30] = 1.0  # hair seen below the chin, far from the face
    person = np.maximum(face, hair)
    person[int(y1) + 20:, int(cx) - 60: int(cx) + 60] = 1.0  # the body, below the chin
    ok = hair_allowed(HairMask(hair, person, face), landmarks)
    assert ok.shape == (h, w) and ok.dtype == np.float32
    assert set(np.unique(ok)) <= {0.0, 1.0}
    r, c = int(cy), int(cx)
    assert ok[r, c] == 1  # face
    assert ok[int(y0) - 20, c] == 1  # hair on top
    assert ok[h - 20, 20] == 1  # hair below the chin
    assert ok[r, int(x0) - 20] == 1 and ok[r, int(x1) + 20] == 1  # the band beside the face
    assert ok[r, int(x0) - 80] == 0  # background beside the face, beyond the band
    assert ok[h - 5, w - 5] == 0  # background below the chin, far from the face
    assert ok[5, w - 5] == 0  # background above the chin, far from the face
    assert ok[h - 40, c] == 0  # the body below the chin
