"""Attributes read from the photo (issue 17, item 6): facial hair, skin tone, glasses colour names,
the classifier hook, and the merge with a prompt."""

import numpy as np
import pytest
from skimage import data
from synthetic_faces import draw_beard, draw_glasses

from machlib import default_portrait
from machlib._errors import InputError
from machlib.character import (
    AttributeClassifier,
    PhotoReading,
    detect_facial_hair,
    glasses_color_name,
    merge_attributes,
    read_attributes,
    skin_tone_from_ita,
)
from machlib.geometry import MediaPipeDetector
from machlib.text import VOCABULARY, FaceAttributes


@pytest.fixture(scope="module")
def faces():
    det = MediaPipeDetector()
    return {name: (img, det(img)) for name, img in (("hopper", default_portrait()),
                                                    ("astronaut", np.ascontiguousarray(data.astronaut())))}


def test_clean_shaven_portraits_read_as_such(faces):
    for name, (img, lm) in faces.items():
        r = detect_facial_hair(img, lm)
        assert (r["beard"], r["moustache"]) == ("none", "none"), (name, r["evidence"])
        assert {"upper_lip", "chin", "jaw_right", "jaw_left"} == set(r["evidence"])


@pytest.mark.parametrize("region, beard, moustache", [
    ("full", "full", {"thin", "thick"}),
    ("goatee", "goatee", {"thin", "thick"}),
    ("moustache", "none", {"thin", "thick"}),
])
def test_a_painted_beard_is_read(faces, region, beard, moustache):
    img, lm = faces["astronaut"]
    r = detect_facial_hair(draw_beard(img, lm.points, region=region), lm)
    assert r["beard"] == beard and r["moustache"] in moustache, r["evidence"]
    assert r["beard"] in VOCABULARY["beard"] and r["moustache"] in VOCABULARY["moustache"]


def test_a_shadow_is_not_a_beard(faces):
    """Darkening without texture (a smooth shadow under the chin) stays clean-shaven."""
    from scipy import ndimage

    img, lm = faces["astronaut"]
    painted = draw_beard(img, lm.points, region="full")
    m = ndimage.gaussian_filter((np.abs(painted.astype(np.int16) - img).max(-1) > 20).astype(np.float32), 3)[..., None]
    blur = ndimage.gaussian_filter(img.astype(np.float32), (6, 6, 0))
    shadow = (img * (1 - m) + 0.55 * blur * m).astype(np.uint8)  # darker and smoother, no hair
    assert detect_facial_hair(shadow, lm)["beard"] == "none"


def test_skin_tone_from_ita_covers_every_angle():
    assert [skin_tone_from_ita(a) for a in (89.0, 60.0, 48.0, 30.0, 15.0, 0.0, -29.0, -31.0, -90.0)] == [
        "very light", "very light", "light", "intermediate", "tan", "brown", "brown", "dark", "dark"]
    assert set(map(skin_tone_from_ita, np.linspace(-90, 90, 181))) == set(VOCABULARY["skin_tone"])
    with pytest.raises(InputError):
        skin_tone_from_ita(float("nan"))


@pytest.mark.parametrize("ita", [60.0, 45.0, 33.0, 18.0, -10.0, -45.0])
def test_ita_of_flat_skin_patches(ita):
    """The texture stage's ITA (complete_texture's, of the seen skin) on a flat patch of known
    colour gives that colour's category."""
    from machlib.geometry import default_template, face_oval
    from machlib.texture import complete_texture, ita_of, polygon_sdf, skin_color

    R = 64
    colour = np.asarray(skin_color(ita), np.float32)
    assert abs(float(ita_of(colour)) - ita) < 0.5
    lm = np.asarray(default_template().landmark_uv, np.float32)
    face = np.asarray(polygon_sdf(lm[np.asarray(face_oval())], R)) < 0
    raw = np.broadcast_to(colour, (R, R, 3)) * face[..., None]
    out = complete_texture(raw, face, template_albedo=np.full((R, R, 3), 0.6, np.float32), iterations=50)
    assert abs(out.ita - ita) < 1.0
    assert skin_tone_from_ita(out.ita) == skin_tone_from_ita(ita)


def test_glasses_colour_names():
    assert glasses_color_name((0.05, 0.05, 0.05)) == "black"
    assert glasses_color_name((0.35, 0.18, 0.08)) == "brown"
    assert glasses_color_name((0.93, 0.83, 0.55)) == "gold"
    assert glasses_color_name((0.9, 0.9, 0.92)) in ("silver", "white")
    with pytest.raises(InputError):
        glasses_color_name((0.1, 0.2))


class _Fixed:
    """An AttributeClassifier that always answers the same, recording the crops it saw."""

    def __init__(self, answers):
        self.answers, self.seen = answers, []

    def classify(self, face):
        self.seen.append(face.shape)
        return self.answers


def test_read_attributes_says_where_each_value_came_from(faces):
    img, lm = faces["astronaut"]
    drawn = draw_glasses(img, lm.points, style="round", color=(30, 22, 18), width=0.035)
    r = read_attributes(drawn, lm, ita=50.0)
    assert isinstance(r, PhotoReading)
    a = r.attributes
    assert (a.glasses, a.glasses_color, a.beard, a.moustache, a.skin_tone) == ("round", "black", "none", "none",
                                                                                "light")
    assert a.gender is None and a.age_group is None  # not guessed without a classifier
    assert r.sources["glasses"] == r.sources["beard"] == r.sources["skin_tone"] == "photo"
    assert r.sources["gender"] == r.sources["age_group"] == "unset" and r.sources["hair_length"] == "unset"
    assert any("classifier" in n for n in r.notices)
    assert r.evidence["glasses"]["score"] > 0.5 and r.evidence["skin_tone"]["ita_degrees"] == 50.0
    clean = read_attributes(img, lm)
    assert clean.attributes.glasses == "none" and clean.attributes.glasses_color is None
    assert clean.sources["skin_tone"] == "unset" and clean.sources["glasses_color"] == "unset"

    fixed = _Fixed({"gender": ("female", 0.9), "age_group": ("young adult", 0.7)})
    assert isinstance(fixed, AttributeClassifier)
    r = read_attributes(img, lm, classifier=fixed, hair={"hair_length": "short", "hair_color": "brown",
                                                        "hairstyle": "not-a-style"})
    assert (r.attributes.gender, r.attributes.age_group) == ("female", "young adult")
    assert r.sources["gender"] == "classifier" and r.evidence["gender"]["probability"] == 0.9
    assert fixed.seen and fixed.seen[0][0] > 100 and fixed.seen[0][2] == 3  # a face crop
    assert r.attributes.hair_length == "short" and r.sources["hair_color"] == "photo"
    assert r.sources["hairstyle"] == "unset" and not r.notices
    with pytest.raises(InputError, match="answered"):
        read_attributes(img, lm, classifier=_Fixed({"gender": ("robot", 1.0)}))
    with pytest.raises(InputError, match="classify"):
        read_attributes(img, lm, classifier=object())


def test_the_prompt_wins_where_it_says_something():
    read = PhotoReading(FaceAttributes(glasses="round", glasses_color="black", beard="none", skin_tone="tan"),
                        {"glasses": "photo", "glasses_color": "photo", "beard": "photo", "skin_tone": "photo",
                         "gender": "unset"}, {}, [])
    attrs, src = merge_attributes(FaceAttributes(glasses="aviator", gender="male"), read)
    assert attrs.to_dict() == {"gender": "male", "skin_tone": "tan", "glasses": "aviator", "glasses_color": "black",
                               "beard": "none"}
    assert src == {"glasses": "prompt", "glasses_color": "photo", "beard": "photo", "skin_tone": "photo",
                   "gender": "prompt"}


@pytest.mark.slow
def test_make_from_a_photo_without_a_prompt_reads_its_attributes(faces):
    """``machlib make --image`` without a prompt: glasses drawn on the astronaut are read, their
    frames come back as 3D glasses of that style and colour, and the report says where each
    attribute came from (photo / unset) with the evidence."""
    from machlib.character import make_character
    from machlib.character._make import make_report

    img, lm = faces["astronaut"]
    drawn = draw_glasses(img, lm.points, style="round", color=(30, 22, 18), width=0.035)
    r = make_character(image=drawn, n_strands=60, n_points=8, guides=30)
    assert r.attributes["glasses"] == "round" and r.attributes["glasses_color"] == "black"
    assert r.assets["glasses"]["style"] == "round" and r.assets["glasses"]["color"] == "black"
    assert any(p.name == "frame" for p in r.character.parts)
    assert r.texture.glasses.present and r.texture.occlusion.max() == 1.0
    # no colour word in a prompt: the bust takes the colour of her (orange-red) suit, not white
    worn = r.assets["garment"]
    assert worn["color_source"] == "photo" and worn["color"] in ("red", "orange") and worn["photo"]["pixels"] > 1000
    report = make_report(r, timings=r.timings, files=[])
    src = report["attribute_sources"]
    assert src["glasses"] == src["beard"] == src["skin_tone"] == "photo" and src["gender"] == "unset"
    assert report["attributes"]["beard"] == "none" and report["attributes"]["skin_tone"] in VOCABULARY["skin_tone"]
    assert "gender" not in report["attributes"] and "age_group" not in report["attributes"]
    assert report["attribute_evidence"]["skin_tone"]["ita_degrees"] == round(r.texture.metrics["ita_degrees"], 3)
    assert any("classifier" in n for n in report["notices"])


def _found(rims, valid, present=True, thickness=None):
    from machlib.texture import GlassesDetection

    ev = {"rim_shape": rims, "rims_valid": valid}
    if thickness is not None:
        ev["frame_thickness"] = thickness
    return GlassesDetection(present, 0.9 if present else 0.1, np.zeros((4, 4), np.float32),
                            "square" if present else None, (0.1, 0.1, 0.1) if present else None, ev, "image")


def test_glasses_lens_takes_the_rims_extent_down_the_face():
    from machlib.character import glasses_lens

    a, b = {"top": -0.15, "bottom": 0.29}, {"top": -0.18, "bottom": 0.48}
    drop, height = glasses_lens(_found([a, b], [1.0, 1.0], thickness=0.05))
    assert drop == pytest.approx(0.15) and height == pytest.approx(0.71)
    # a rim off the face (an eye turned away) does not count unless none does
    assert glasses_lens(_found([a, b], [1.0, 0.2])) == pytest.approx((0.07, 0.44))
    assert glasses_lens(_found([a, b], [0.1, 0.2])) == pytest.approx((0.15, 0.66))
    # clipped to the range make_glasses takes
    assert glasses_lens(_found([{"top": -0.6, "bottom": 0.9}], [1.0])) == pytest.approx((0.15, 0.8))
    assert glasses_lens(_found([{"top": 0.3, "bottom": 0.45}], [1.0])) == pytest.approx((0.3, 0.4))
    # nothing found, or no contours measured (a parser's mask): nothing to place
    assert glasses_lens(_found([a, b], [1.0, 1.0], present=False)) is None
    assert glasses_lens(_found([], [])) is None
    assert glasses_lens(_found([{"aspect": 1.2}], [1.0])) is None
    with pytest.raises(InputError, match="glasses_lens"):
        glasses_lens({"rim_shape": [a]})


def test_the_bundled_portraits_frames_sit_low_and_large(faces):
    """Hopper's 1960s frames reach from her brows' lower edge down onto her cheeks, the pupils in
    the lenses' upper half (measured by hand on the photo: the outer frame from 0.16 pupil
    distances above the pupils to 0.48 below); the astronaut wears none."""
    from machlib.character import glasses_lens
    from machlib.texture import detect_glasses

    img, lm = faces["hopper"]
    g = detect_glasses(img, lm)
    assert all({"top", "bottom"} <= set(r) for r in g.evidence["rim_shape"])
    drop, height = glasses_lens(g)
    assert 0.1 < drop < 0.22 and 0.6 < height <= 0.8, (drop, height, g.evidence["rim_shape"])
    img, lm = faces["astronaut"]
    assert glasses_lens(detect_glasses(img, lm)) is None
