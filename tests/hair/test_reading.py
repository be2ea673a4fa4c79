"""read_hairstyle and style_agreement: the astronaut's hair read against the labels drawn by
hand (tests/hair/data/hair_masks.json), synthetic masks on her landmarks for each length and
the fringe, the reading's dict, and bad inputs."""

from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import numpy as np
import pytest

from machlib.geometry import detect_landmarks, face_oval
from machlib.hair import (
    HAIR_STYLES,
    LENGTHS,
    HairReading,
    OrientationMap,
    hair_mask,
    orientation_map,
    read_hairstyle,
    style_agreement,
)

LABELS = json.loads((Path(__file__).parent / "data" / "hair_masks.json").read_text())


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    img = data.astronaut()
    lm = detect_landmarks(img)
    hm = hair_mask(img, lm)
    om = orientation_map(img.astype(np.float32).mean(-1) / 255.0, mask=hm.mask)
    return img, lm, hm, om


def _flat(shape):
    z = np.zeros(shape, np.float32)
    return OrientationMap(z, z, z)


def test_astronaut_reading_matches_the_drawn_labels(astronaut):
    _, lm, hm, om = astronaut
    r = read_hairstyle(hm.mask, om, lm, color="blonde")
    want = LABELS["astronaut"]["labels"]
    assert (r.length, r.fringe, r.parting) == (want["length"], want["fringe"], want["parting"])
    assert r.fringe_side == "right"  # from her parting on the image left across to the right
    assert r.color == "blonde" and r.length in LENGTHS
    assert r.volume > 0.2  # her bouffant stands well beyond the face
    assert len(r.reasons) == 5
    d = r.to_dict()
    json.dumps(d)  # JSON-ready
    assert d["length"] == "short" and isinstance(d["reasons"], list)


def _oval(lm):
    p = np.asarray(lm.points)[np.asarray(face_oval())]
    return p[:, 0].min(), p[:, 0].max(), p[:, 1].min(), p[:, 1].max()


@pytest.mark.parametrize(("below_chin", "want"), [(-0.5, "short"), (0.0, "chin"), (0.5, "shoulder"), (1.2, "long")])
def test_length_from_synthetic_masks(astronaut, below_chin, want):
    img, lm, _, _ = astronaut
    x0, x1, y_top, y_chin = _oval(lm)
    fh, fw = y_chin - y_top, x1 - x0
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    tip = y_chin + below_chin * fh
    cap = (yy < y_top - 0.12 * fh) & (yy > y_top - 0.5 * fh) & (np.abs(xx - 0.5 * (x0 + x1)) < 0.6 * fw)
    sides = ((np.abs(xx - x0 + 0.1 * fw) < 0.1 * fw) | (np.abs(xx - x1 - 0.1 * fw) < 0.1 * fw)) & (yy > y_top - 0.2 * fh) & (yy < tip)
    r = read_hairstyle((cap | sides).astype(np.float32), _flat((h, w)), lm)
    assert r.length == want, (r.tip, r.reasons)
    assert r.fringe == "none"
    assert abs(r.tip - below_chin) < 0.1 or r.reaches_border


def test_fringe_and_no_hair(astronaut):
    img, lm, _, _ = astronaut
    x0, x1, y_top, y_chin = _oval(lm)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    fh = y_chin - y_top
    brow = np.asarray(lm.points)[[105, 334], 1].mean()
    cap = (yy > y_top - 0.4 * fh) & (yy < brow) & (xx > x0) & (xx < x1)
    # strands hanging straight down: a straight fringe; at 45 degrees: side-swept
    theta = np.full((h, w), np.pi / 2, np.float32)
    conf = cap.astype(np.float32)
    r = read_hairstyle(cap.astype(np.float32), OrientationMap(theta, conf, conf), lm)
    assert r.fringe == "straight" and r.fringe_angle < 5
    assert r.fringe_side == "none"
    r = read_hairstyle(cap.astype(np.float32), OrientationMap(theta * 0 + np.pi / 4, conf, conf), lm)
    assert r.fringe == "side-swept" and r.fringe_angle > 40
    assert r.fringe_side == "right"  # image y is down: at 45 degrees the strands slant down to the right
    r = read_hairstyle(cap.astype(np.float32), OrientationMap(theta * 0 + 3 * np.pi / 4, conf, conf), lm)
    assert r.fringe == "side-swept" and r.fringe_side == "left"
    none = read_hairstyle(np.zeros((h, w), np.float32), _flat((h, w)), lm)
    assert none.length == "none" and none.fringe == "none" and none.parting == "none"


def test_style_agreement_prefers_the_read_length():
    long_ = HairReading("long", "none", "centre", "straight", 0.1, 1.0, True, 0.0, 0.0, 0.0, 0.2)
    short = HairReading("short", "none", "none", "straight", 0.3, -0.6, False, 0.0, 0.0, float("nan"), 0.3)
    a = {n: style_agreement(long_, s)[0] for n, s in HAIR_STYLES.items()}
    assert max(a, key=a.get) == "long straight"
    assert a["pixie"] < a["bob"] < a["long straight"] and a["long curly"] < a["long straight"]
    b = {n: style_agreement(short, s)[0] for n, s in HAIR_STYLES.items()}
    assert b["buzz cut"] > b["long curly"] and b["ponytail"] > b["long straight"] - 1.0
    assert b["afro"] < b["pixie"] < b["buzz cut"]  # short straight hair is not an afro (coily)
    _, reasons = style_agreement(long_, HAIR_STYLES["bob"])
    assert len(reasons) == 3 and "length" in reasons[0]


def test_bad_inputs(astronaut):
    _, lm, hm, om = astronaut
    with pytest.raises(ValueError, match="read_hairstyle: mask"):
        read_hairstyle(hm.mask * 2 + 0.1, om, lm)
    with pytest.raises(ValueError, match="read_hairstyle: orientation"):
        read_hairstyle(hm.mask, _flat((4, 4)), lm)
    with pytest.raises(ValueError, match="read_hairstyle: landmarks"):
        read_hairstyle(hm.mask, om, np.zeros((478, 2)))
    with pytest.raises(ValueError, match="read_hairstyle: threshold"):
        read_hairstyle(hm.mask, om, lm, threshold=1.0)
    with pytest.raises((ValueError, TypeError), match="style_agreement|reading"):
        style_agreement({"length": "long"}, HAIR_STYLES["bob"])


def _srgb(lin):
    lin = np.clip(np.asarray(lin, np.float64), 0, 1)
    return (255 * np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055) + 0.5).astype(np.uint8)


@pytest.mark.parametrize("name", ["gray", "brown", "blonde", "black"])
def test_light_from_skin_white_balances_the_hair_colour(name):
    from machlib.hair import HAIR_COLORS, estimate_hair_color, light_from_skin

    warm = np.array([1.3, 1.0, 0.7])  # a warm room light
    img = np.zeros((16, 32, 3), np.uint8)
    img[:, :16] = _srgb(1.2 * np.array([0.532, 0.281, 0.187]) * warm)  # skin of the template's tint
    img[:, 16:] = _srgb(0.7 * np.asarray(HAIR_COLORS[name]) * warm)
    face = np.zeros((16, 32), np.float32)
    face[:, :16] = 1
    light = light_from_skin(img, face)
    np.testing.assert_allclose(light, warm / warm.mean(), rtol=0.03)
    est = estimate_hair_color(img, 1 - face, light=light)
    assert est.name == name
    if name == "gray":  # unbalanced, the warm light is in the pixels (a blonde-looking albedo) ...
        np.testing.assert_allclose(est.rgb, HAIR_COLORS["gray"], atol=0.02)
        raw = estimate_hair_color(img, 1 - face)
        assert raw.observed[0] > 1.5 * raw.observed[2]
        # ... but hair still named grey gets the named grey's neutral colour, not the cast
        assert raw.name == "gray" and np.ptp(raw.rgb) / raw.rgb.max() < 0.05
    with pytest.raises(ValueError, match="light"):
        estimate_hair_color(img, 1 - face, light=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="light_from_skin"):
        light_from_skin(img, np.zeros((16, 32), np.float32))


def test_the_retrieved_style_takes_the_photos_fringe_and_parting():
    from machlib.pipeline import _style_for_reading

    def reading(fringe, parting):
        return HairReading("short", fringe, parting, "straight", 0.2, -0.5, False, 0.0, 0.0, 0.0, 0.3)

    pixie, long_ = HAIR_STYLES["pixie"], HAIR_STYLES["long straight"]
    st, changed = _style_for_reading(pixie, reading("none", "none"))
    assert st.bangs == 0.0 and changed == {"bangs": 0.0} and st.parting == pixie.parting
    st, changed = _style_for_reading(long_, reading("straight", "left"))  # image left: subject's right
    assert st.bangs == 0.05 and st.parting == "right" and changed == {"bangs": 0.05, "parting": "right"}
    st, changed = _style_for_reading(long_, reading("side-swept", "centre"))  # the sweep follows the parting
    assert st.bangs == 0.0 and changed == {}  # long straight is centre-parted already
    # a side-swept fringe is swept to the side the photo's falls toward (the image's right is the
    # subject's left); a straight one falls forward
    swept = dataclasses.replace(reading("side-swept", "left"), fringe_side="right")
    st, changed = _style_for_reading(pixie, swept)
    assert st.sweep == "left" and st.bangs == pixie.bangs and changed == {"sweep": "left", "parting": "right"}
    st, changed = _style_for_reading(pixie, reading("straight", "none"))
    assert st.sweep == "none" and changed == {"sweep": "none"}
    st, changed = _style_for_reading(HAIR_STYLES["bald"], reading("straight", "left"))
    assert changed == {} and st.bald
    assert _style_for_reading(HAIR_STYLES["ponytail"], reading("none", "left"))[0].parting == "none"


def _turned(lm, by: float):
    """The landmarks with the nose tip moved ``by`` face widths along x: a face turned to one side
    as far as read_hairstyle can tell (it reads the turn from the nose tip against the oval)."""
    x0, x1, _, _ = _oval(lm)
    pts = np.array(lm.points, copy=True)
    pts[1, 0] += by * (x1 - x0)
    return lm._replace(points=pts)


def test_tied_back_from_a_knot_behind_the_neck(astronaut):
    # hair pulled back: a cap on top, nothing beside the cheeks, and on a face turned to the image
    # left a knot behind the head (image right) that reaches the nape; drawn on her landmarks
    img, lm, _, _ = astronaut
    x0, x1, y_top, y_chin = _oval(lm)
    fh, fw = y_chin - y_top, x1 - x0
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cap = (yy < y_top - 0.12 * fh) & (yy > y_top - 0.5 * fh) & (np.abs(xx - 0.5 * (x0 + x1)) < 0.6 * fw)
    behind = (xx > x1 + 0.05 * fw) & (xx < x1 + 0.3 * fw) & (yy > y_top - 0.2 * fh)

    def read(knot_bottom, landmarks):
        tail = behind & (yy < y_chin + knot_bottom * fh)
        return read_hairstyle((cap | tail).astype(np.float32), _flat((h, w)), landmarks)

    away = _turned(lm, -0.3)
    r = read(-0.1, away)
    assert r.length == "tied back" and -0.2 < r.nape < 0.0, r.reasons
    assert "tail or knot" in r.reasons[0] and r.to_dict()["nape"] == round(r.nape, 3)
    # a short cut's back hair ends well above the chin: short
    r = read(-0.5, away)
    assert r.length == "short" and r.nape < -0.4
    # on a frontal face the same hair hangs beside the cheek: chin length, no nape read
    r = read(-0.1, lm)
    assert r.length == "chin" and np.isnan(r.nape)
    # turned the other way the knot is on the face's front side: hair beside the cheek, not behind
    assert read(-0.1, _turned(lm, 0.3)).length != "tied back"
    # hair hanging past the chin is not tied back
    assert read(0.6, away).length in ("shoulder", "long")


def test_style_agreement_for_tied_back_hair():
    tied = HairReading("tied back", "none", "none", "straight", 0.1, -0.5, False, 0.0, 0.0, float("nan"), 0.3)
    a = {n: style_agreement(tied, s)[0] for n, s in HAIR_STYLES.items()}
    assert a["ponytail"] == a["bun"] == max(a.values())
    assert a["ponytail"] > a["crop"] > a["bob"] > a["long straight"]
    assert "photo tied back" in style_agreement(tied, HAIR_STYLES["crop"])[1][0]
    # a knot at the nape (the hair behind the head ends above the chin line) is a low bun; a
    # tail hanging past the chin line is a ponytail; unread (nan), every gathered style ties
    assert a["low bun"] == a["ponytail"]
    knot = dataclasses.replace(tied, nape=-0.12)
    k = {n: style_agreement(knot, s)[0] for n, s in HAIR_STYLES.items()}
    assert max(k, key=k.get) == "low bun" and k["ponytail"] == k["bun"] == k["low bun"] - 0.5
    tail = dataclasses.replace(tied, nape=0.1)
    t = {n: style_agreement(tail, s)[0] for n, s in HAIR_STYLES.items()}
    assert t["ponytail"] == t["bun"] == max(t.values()) and t["low bun"] == t["ponytail"] - 0.5
