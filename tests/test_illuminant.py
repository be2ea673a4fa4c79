"""light_from_eyes: the light's colour recovered from eye whites and teeth under a known cast
(synthetic eyes, and the astronaut portrait tinted by a known light), the fallback to the prior
when the eyes are closed or show no whites, the black-hair naming of estimate_hair_color, the
white-balanced ITA of the texture stage, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from machlib._facemesh import LIPS_INNER, LIPS_OUTER, RIGHT_EYE, RIGHT_IRIS
from machlib._illuminant import LEFT_EYE, LEFT_IRIS
from machlib.hair import light_from_eyes

WARM = np.array([1.3, 1.0, 0.7])
SKIN = np.array([0.55, 0.33, 0.24])  # linear skin albedo
WHITE = np.array([0.7, 0.7, 0.7])  # eye whites


def _srgb(lin):
    lin = np.clip(np.asarray(lin, np.float64), 0, 1)
    return (255 * np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055) + 0.5).astype(np.uint8)


def _face(light, *, open_eyes=True, whites=WHITE):
    """A 64 x 128 skin patch with two eyes (16-point lid contours, irises) under ``light``."""
    h, w = 64, 128
    img = np.broadcast_to(SKIN, (h, w, 3)).copy()
    pts = np.full((478, 2), 1000.0)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    for eye, iris, cx in ((RIGHT_EYE, RIGHT_IRIS, 36.0), (LEFT_EYE, LEFT_IRIS, 92.0)):
        cy, a, b = 30.0, 16.0, 7.0 if open_eyes else 0.4
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        pts[list(eye)] = np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)
        pts[list(iris)] = [(cx, cy), (cx + 4, cy), (cx, cy - 4), (cx - 4, cy), (cx, cy + 4)]
        inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1
        img[inside] = whites
        img[np.hypot(xx - cx, yy - cy) <= 4.5] = (0.08, 0.04, 0.02)  # a brown iris
    return _srgb(img * light), pts


@pytest.mark.parametrize("light", [WARM, np.array([0.8, 1.0, 1.25]), np.ones(3)])
def test_the_eye_whites_give_the_lights_colour(light):
    img, pts = _face(light)
    est = light_from_eyes(img, pts, reference=(1, 1, 1))  # neutral eye whites
    assert est.sclera_pixels > 60 and est.teeth_pixels == 0 and est.weight > 0.6
    # the eye whites' colour, shrunk towards the neutral prior by their weight n / (n + 30)
    want = (light / light.mean()) ** est.weight
    np.testing.assert_allclose(est.rgb, want / want.mean(), rtol=0.02)
    np.testing.assert_allclose(light_from_eyes(img, pts, min_pixels=1, reference=(1, 1, 1)).rgb,
                               light / light.mean(), rtol=0.03)
    # eye whites of the default reference's slightly yellow colour give the light itself
    own = np.array([0.6417, 0.5578, 0.4352])
    img2, _ = _face(light, whites=own / own.max() * 0.7)
    np.testing.assert_allclose(light_from_eyes(img2, pts, min_pixels=1).rgb, light / light.mean(), rtol=0.03)
    # the exposure: the whites' luminance against a normally exposed eye white
    lum = float((WHITE * light) @ [0.2126, 0.7152, 0.0722])
    np.testing.assert_allclose(est.exposure * 0.25, lum, rtol=0.05)
    # a prior moves the estimate only as much as the few pixels leave room for
    prior = np.array([0.8, 1.0, 1.2])
    cool = light_from_eyes(img, pts, prior=prior, reference=(1, 1, 1))
    moved = np.linalg.norm(np.log(cool.rgb / est.rgb))
    assert 0 < moved <= 1.05 * (1 - est.weight) * np.linalg.norm(np.log(prior / prior.mean())) + 1e-3


def test_closed_eyes_and_eyes_without_whites_fall_back_on_the_prior():
    prior = np.array([1.2, 1.0, 0.8])
    for img, pts in (_face(WARM, open_eyes=False), _face(WARM, whites=SKIN)):
        est = light_from_eyes(img, pts, prior=prior)
        assert est.sclera_pixels == 0 and est.weight == 0.0 and est.exposure == 1.0
        np.testing.assert_allclose(est.rgb, prior / prior.mean())
        np.testing.assert_allclose(light_from_eyes(img, pts).rgb, np.ones(3))


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    from machlib.geometry import detect_landmarks

    img = data.astronaut()
    lm = detect_landmarks(img)
    return img, np.asarray(lm.points), lm


def test_a_tinted_portrait_gives_back_its_tint(astronaut):
    """The astronaut smiles: her teeth (and a little eye white) are the reference."""
    img, pts, _ = astronaut
    base = light_from_eyes(img, pts, min_pixels=1)  # the reference's own colour, no prior
    assert base.teeth_pixels > 40
    # a professionally white-balanced photo: with the teeth's slightly yellow white, a near-white light
    np.testing.assert_allclose(base.rgb, np.ones(3), atol=0.05)
    s = img / 255.0
    lin = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)
    for tint in (WARM, np.array([0.85, 1.0, 1.2])):
        tinted = _srgb(lin * tint / tint.max())
        est = light_from_eyes(tinted, pts, min_pixels=1)
        np.testing.assert_allclose(est.rgb / base.rgb / np.mean(est.rgb / base.rgb), tint / tint.mean(), rtol=0.05)


def test_teeth_count_only_when_the_mouth_is_open():
    img, pts = _face(WARM, open_eyes=False)
    img = img.copy()
    t = np.linspace(0, 2 * np.pi, len(LIPS_INNER), endpoint=False)
    pts[list(LIPS_INNER)] = np.stack([64 + 14 * np.cos(t), 52 + 6 * np.sin(t)], 1)
    pts[list(LIPS_OUTER)] = np.stack([64 + 18 * np.cos(t), 52 + 9 * np.sin(t)], 1)
    yy, xx = np.mgrid[0:64, 0:128] + 0.5
    mouth = ((xx - 64) / 14) ** 2 + ((yy - 52) / 6) ** 2 <= 1
    img[(((xx - 64) / 18) ** 2 + ((yy - 52) / 9) ** 2 <= 1) & ~mouth] = _srgb(np.array([0.45, 0.12, 0.12]) * WARM)
    img[mouth & (yy < 52)] = _srgb(np.array([0.6, 0.58, 0.53]) * WARM)  # upper teeth
    img[mouth & (yy >= 52)] = _srgb(np.array([0.05, 0.01, 0.01]) * WARM)  # the dark mouth
    est = light_from_eyes(img, pts, reference=(1, 1, 1))
    assert est.teeth_pixels > 30 and est.sclera_pixels == 0
    assert est.rgb[0] > 1.2 and est.rgb[2] < 0.85  # warm, like the light
    closed = pts.copy()
    closed[list(LIPS_INNER), 1] = 52.0
    assert light_from_eyes(img, closed).teeth_pixels == 0


def test_bad_inputs_name_the_function_and_argument():
    img, pts = _face(WARM)
    for kwargs, what in (({}, "image"), ({"points": pts[:468]}, "points"), ({"min_pixels": 0}, "min_pixels"),
                         ({"prior": (1.0, -1.0, 1.0)}, "prior"), ({"reference_white": 0.0}, "reference_white"),
                         ({"reference": (1.0, 0.0, 1.0)}, "reference")):
        args = {"image": img.astype(np.float32) if what == "image" else img, "points": pts}
        args.update(kwargs)
        # the shape-typed arguments are also checked by jaxtyping in the test run (a TypeError)
        with pytest.raises((ValueError, TypeError), match="light_from_eyes" + ("" if what == "image" else f": {what}")):
            light_from_eyes(args.pop("image"), args.pop("points"), **args)
    bad = pts.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="light_from_eyes: points"):
        light_from_eyes(img, bad)


def test_very_dark_hair_is_named_black_even_with_a_brownish_tint():
    from machlib.hair import HAIR_COLORS, estimate_hair_color

    # black hair photographed: the pigment's colour plus the cuticle's unpigmented sheen and a
    # trace of a warm light
    seen = 0.7 * (np.asarray(HAIR_COLORS["black"]) + 0.05) * np.array([1.15, 1.0, 0.85])
    img = np.broadcast_to(_srgb(seen), (16, 16, 3)).copy()
    est = estimate_hair_color(img, np.ones((16, 16), np.float32))
    assert est.name == "black"
    brown = np.broadcast_to(_srgb(0.7 * np.asarray(HAIR_COLORS["brown"]) * 1.6), (16, 16, 3)).copy()
    assert estimate_hair_color(brown, np.ones((16, 16), np.float32)).name == "brown"


def test_the_texture_stages_ita_divides_the_light_out():
    from machlib.pipeline import _balanced_ita

    skin = np.broadcast_to(np.array([0.45, 0.30, 0.24]), (8, 8, 3))
    w = np.ones((8, 8))
    neutral = _balanced_ita(_srgb(skin) / 255.0, w, np.ones(3))
    warm = _balanced_ita(_srgb(skin * WARM) / 255.0, w, np.ones(3))
    assert warm < neutral - 8  # a warm light makes light skin read darker
    np.testing.assert_allclose(_balanced_ita(_srgb(skin * WARM) / 255.0, w, WARM), neutral, atol=1.0)


def test_the_hair_stages_colour_uses_the_eyes_light(astronaut):
    from machlib.hair import hair_mask
    from machlib.pipeline import _hair_color_choice

    img, pts, lm = astronaut
    hm = hair_mask(img, lm)
    info = _hair_color_choice(img, hm.mask, None, hm.face, pts)
    ref = info["light_reference"]
    assert ref["teeth_pixels"] > 40 and 0.5 < ref["weight"] < 1.0
    # the teeth outweigh the skin prior: the light is the eyes' and teeth's, pulled a little
    eyes = light_from_eyes(img, pts)
    assert np.abs(np.log(np.asarray(info["light"]) / eyes.rgb)).max() < 0.1
    assert info["name"] == "blonde"  # labelled dark blonde

