"""read_garment_color: the colour of the clothes below the face in a portrait."""

import numpy as np
import pytest

from machlib.character import garment_color_name, read_garment_color
from machlib.geometry import default_template


@pytest.fixture(scope="module")
def pts():
    return np.asarray(default_template().landmark_uv, np.float64) * 200 + 100  # a face 200 px tall


def _portrait(pts, torso=(20, 28, 64), skin=(205, 150, 120)):
    img = np.full((700, 400, 3), 235, np.uint8)  # a light background
    img[int(pts[10, 1]):int(pts[152, 1])] = skin  # the face band (the cheeks' colour)
    img[int(pts[152, 1]) + 30:] = torso
    return img


@pytest.mark.parametrize("torso, name", [((20, 28, 64), "navy"), ((240, 240, 238), "white"),
                                         ((150, 20, 25), "red"), ((40, 100, 45), "green")])
def test_the_clothes_colour_is_named(pts, torso, name):
    r = read_garment_color(_portrait(pts, torso), pts)
    assert r.color == name and r.note == "" and r.pixels > 1000
    np.testing.assert_allclose(r.srgb, np.asarray(torso) / 255.0, atol=0.01)


def test_skin_hair_and_background_do_not_count(pts):
    img = _portrait(pts, torso=(205, 150, 120))  # bare shoulders: the face's skin colour
    r = read_garment_color(img, pts)
    assert r.color is None and "too few" in r.note
    img = _portrait(pts)
    hair = np.zeros(img.shape[:2], np.float32)
    hair[:, :] = 1.0  # hair over everything: nothing is clothes
    assert read_garment_color(img, pts, hair=hair).color is None
    person = np.zeros(img.shape[:2], np.float32)  # nobody there
    assert read_garment_color(img, pts, person=person).color is None
    person[:, 150:250] = 1.0  # a narrow person: only its pixels are read, still enough
    img[int(pts[152, 1]) + 30:, :150] = (240, 200, 0)  # a yellow background beside them
    assert read_garment_color(img, pts, person=person).color == "navy"


def test_a_photo_cropped_at_the_chin_has_no_reading(pts):
    img = _portrait(pts)[: int(pts[152, 1]) + 20]
    r = read_garment_color(img, pts)
    assert r.color is None and r.srgb is None and r.note == "the photo ends above the clothes"


def test_bad_inputs(pts):
    img = _portrait(pts)
    with pytest.raises((ValueError, TypeError), match="read_garment_color"):
        read_garment_color(img.astype(np.float32), pts)
    with pytest.raises(ValueError, match="landmarks"):
        read_garment_color(img, pts[:10])
    with pytest.raises(ValueError, match="person must have shape"):
        read_garment_color(img, pts, person=np.ones((5, 5)))
    with pytest.raises(ValueError, match="garment_color_name"):
        garment_color_name((0.1, 0.2))
