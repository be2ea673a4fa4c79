"""The eyes' colours read from the photo (issue 13 item 7): the iris and the eye whites, delit,
and the stated defaults where closed or downcast eyes do not show them."""

import numpy as np
import pytest
from jaxtyping import TypeCheckError

from machlib._errors import InputError
from machlib.assets import IRIS_COLORS
from machlib.character import SCLERA_DEFAULT, EyeColors, iris_color_name, read_attributes, read_eye_colors

_RIGHT = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
_LEFT = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
SKIN = (196, 140, 118)
WHITE = (222, 214, 206)


def _srgb_to_linear(c):
    c = np.asarray(c, np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _face(iris_srgb, *, half_height=11.0, iris_radius=9.0, highlight=True):
    """Two eyes on skin, each an ellipse of white 28 px wide (half) with an iris disc, a pupil,
    a black lash line and a white highlight, with the landmarks that delimit them."""
    h, w = 80, 200
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    img = np.empty((h, w, 3), np.uint8)
    img[...] = SKIN
    pts = np.full((478, 2), 5e3)
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for cx, ids, iris0, sign in ((60.0, _RIGHT, 468, -1.0), (140.0, _LEFT, 473, 1.0)):
        cy = 40.0
        # the contour from the corner 33 (263) over the upper lid to 133 (362) and back below
        pts[ids] = np.stack([cx + sign * 28 * np.cos(t), cy - half_height * np.sin(t)], 1)
        opening = ((xx - cx) / 28) ** 2 + ((yy - cy) / half_height) ** 2 <= 1
        img[opening] = WHITE
        disc = opening & (np.hypot(xx - cx, yy - cy) <= iris_radius)
        img[disc] = iris_srgb
        img[opening & (np.hypot(xx - cx, yy - cy) <= 0.35 * iris_radius)] = (8, 6, 6)  # pupil
        if highlight:
            img[opening & (np.hypot(xx - cx - 3, yy - cy + 3) <= 1.5)] = (255, 255, 255)
        img[(np.abs(((xx - cx) / 28) ** 2 + ((yy - cy) / half_height) ** 2 - 1) < 0.12) & (yy < cy)] = (20, 16, 14)
        r = iris_radius
        pts[iris0:iris0 + 5] = [(cx, cy), (cx + r, cy), (cx, cy - r), (cx - r, cy), (cx, cy + r)]
    return img, pts


@pytest.mark.parametrize("name, srgb", [("blue", (62, 110, 165)), ("brown", (92, 52, 26)), ("green", (78, 118, 64))])
def test_a_known_iris_colour_is_read(name, srgb):
    img, pts = _face(srgb)
    e = read_eye_colors(img, pts)
    assert isinstance(e, EyeColors) and e.notes == ()
    np.testing.assert_allclose(e.iris, _srgb_to_linear(srgb), rtol=0.02)  # not the pupil, lashes or highlight
    assert e.iris_name == name and min(e.iris_pixels) > 50
    np.testing.assert_allclose(e.sclera, _srgb_to_linear(WHITE), rtol=0.02)
    assert min(e.sclera_pixels) >= 2


def test_the_light_is_divided_out():
    img, pts = _face((62, 110, 165))
    plain = read_eye_colors(img, pts)
    warm = read_eye_colors(img, pts, shading=(1.25, 1.0, 0.8))
    np.testing.assert_allclose(warm.iris, plain.iris / np.array([1.25, 1.0, 0.8]), rtol=1e-9)
    np.testing.assert_allclose(warm.sclera, plain.sclera / np.array([1.25, 1.0, 0.8]), rtol=1e-9)


def test_closed_or_downcast_eyes_are_not_read():
    img, pts = _face((62, 110, 165), half_height=2.5)  # a slit: lids nearly shut
    e = read_eye_colors(img, pts)
    assert e.iris is None and e.sclera is None and e.iris_name is None
    assert e.iris_pixels == (0, 0) and max(e.openness) < 0.17
    assert len(e.notes) == 2 and all("closed or looking down" in n for n in e.notes)


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    from machlib.geometry import MediaPipeDetector

    img = np.ascontiguousarray(data.astronaut())
    return img, np.asarray(MediaPipeDetector()(img).points, np.float64)


def test_read_attributes_falls_back_on_closed_eyes(astronaut):
    img, pts = astronaut
    shut = pts.copy()
    for up, lo in ((_RIGHT[1:8], _RIGHT[9:][::-1]), (_LEFT[1:8], _LEFT[9:][::-1])):
        shut[list(up)] = shut[list(lo)] - [0.0, 0.5]  # the upper lid down on the lower one
    r = read_attributes(img, shut)
    assert r.attributes.iris_color is None and r.sources["iris_color"] == "unset"
    assert any("iris colour is not read" in n and "closed or looking down" in n for n in r.notices)
    assert r.evidence["iris_color"]["sclera_default"] == list(SCLERA_DEFAULT)
    assert r.evidence["iris_color"]["iris_rgb"] is None


def test_a_white_as_coloured_as_the_skin_is_not_a_white():
    img, pts = _face((62, 110, 165))
    img[np.all(img == WHITE, axis=-1)] = (205, 150, 128)  # blurred lids: skin where the white was
    e = read_eye_colors(img, pts)
    assert e.sclera is None and e.iris_name == "blue"
    assert any("as coloured as the skin" in n for n in e.notes)


def test_read_attributes_reports_the_eyes_and_the_prompt_still_wins(astronaut):
    """The astronaut's brown eyes, delit with the light's shading of a forward-facing surface."""
    from machlib.character import merge_attributes
    from machlib.render import sh_constant
    from machlib.text import FaceAttributes

    img, pts = astronaut
    sh = np.asarray(sh_constant(np.array([1.2, 1.0, 0.9])))
    r = read_attributes(img, pts, lighting=sh)
    ev = r.evidence["iris_color"]
    assert r.attributes.iris_color == "brown" and r.sources["iris_color"] == "photo"
    np.testing.assert_allclose(ev["shading"], [1.2, 1.0, 0.9], atol=1e-3)
    plain = read_eye_colors(img, pts)
    np.testing.assert_allclose(ev["iris_rgb"], plain.iris / [1.2, 1.0, 0.9], atol=1e-4)
    np.testing.assert_allclose(ev["sclera_rgb"], plain.sclera / [1.2, 1.0, 0.9], atol=1e-4)
    assert ev["notes"] == [] and min(ev["iris_pixels"]) > 5
    attrs, src = merge_attributes(FaceAttributes(iris_color="blue"), r)
    assert attrs.iris_color == "blue" and src["iris_color"] == "prompt"
    with pytest.raises(InputError, match="lighting"):
        read_attributes(img, pts, lighting=np.ones((4, 3)))


def test_iris_color_name_and_bad_input():
    for name, rgb in IRIS_COLORS.items():
        assert iris_color_name(rgb) == name
    img, pts = _face((62, 110, 165))
    with pytest.raises((InputError, TypeCheckError)):  # the annotation at test time, else the check
        read_eye_colors(img.astype(np.float32), pts)
    with pytest.raises(InputError, match="read_eye_colors: points"):
        read_eye_colors(img, pts[:468])
    with pytest.raises(InputError, match="shading"):
        read_eye_colors(img, pts, shading=(1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="min_openness"):
        read_eye_colors(img, pts, min_openness=1.5)
    with pytest.raises(InputError, match="iris_color_name"):
        iris_color_name((0.1, 0.2))
