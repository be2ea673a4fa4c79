"""2D hair analysis: the Gabor orientation map (synthetic stripes, noise, jit == eager,
vmap == loop), its colour preview, and the hair mask on real portraits (astronaut, Grace
Hopper), the segmenter option and bad inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from machlib._image import default_portrait
from machlib.geometry import detect_landmarks
from machlib.hair import (
    HairMask,
    OrientationMap,
    hair_mask,
    orientation_image,
    orientation_map,
)

N = 64
WL = 5.0  # one wavelength everywhere: one compilation per image shape


def _stripes(deg: float, n: int = N, wavelength: float = 5.0) -> np.ndarray:
    """Sinusoidal stripes whose *strands* run at ``deg`` (x right, y down): the wave vector is
    perpendicular, ``(-sin, cos)``."""
    y, x = np.mgrid[0:n, 0:n] + 0.5
    t = np.radians(deg)
    return (0.5 + 0.5 * np.cos(2 * np.pi * (-x * np.sin(t) + y * np.cos(t)) / wavelength)).astype(np.float32)


def _angle_error_deg(theta, deg):
    return np.abs(np.degrees(np.angle(np.exp(2j * (np.asarray(theta, np.float64) - np.radians(deg)))) / 2))


# --- orientation map -------------------------------------------------------------------------


@pytest.mark.parametrize("deg", [0.0, 20.0, 45.0, 90.0, 120.0, 170.0])
def test_stripes_give_their_orientation(deg):
    om = orientation_map(_stripes(deg), wavelength=WL)
    assert isinstance(om, OrientationMap)
    theta, conf = np.asarray(om.theta)[12:-12, 12:-12], np.asarray(om.confidence)[12:-12, 12:-12]
    assert theta.min() >= 0.0 and theta.max() < np.pi
    sure = conf > 0.5
    assert sure.mean() > 0.8  # confident almost everywhere (even filters dip at zero crossings)
    assert _angle_error_deg(theta[sure], deg).max() < 3.0  # bins are 180/32 = 5.6°
    assert np.median(_angle_error_deg(theta, deg)) < 3.0
    assert np.median(conf) > 0.6


def test_confidence_low_on_noise_and_flat():
    stripes = np.median(np.asarray(orientation_map(_stripes(30.0), wavelength=WL).confidence))
    noise = np.random.default_rng(0).random((N, N)).astype(np.float32)
    c_noise = np.asarray(orientation_map(noise, wavelength=WL).confidence)
    c_flat = np.asarray(orientation_map(np.full((N, N), 0.4, np.float32), wavelength=WL).confidence)
    assert np.median(c_noise) < 0.4 < stripes
    assert c_flat.max() < 1e-3
    assert c_noise.min() >= 0.0 and c_noise.max() <= 1.0


def test_mask_multiplies_confidence():
    img = _stripes(60.0)
    mask = np.zeros((N, N), np.float32)
    mask[:, : N // 2] = 1.0
    a, b = orientation_map(img, wavelength=WL), orientation_map(img, mask=mask, wavelength=WL)
    np.testing.assert_allclose(np.asarray(b.confidence), np.asarray(a.confidence) * mask, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(b.theta), np.asarray(a.theta))


def test_jit_equals_eager_and_vmap_equals_loop():
    imgs = np.stack([_stripes(d, 48) for d in (10.0, 75.0)]) + 0.05 * np.random.default_rng(1).random((2, 48, 48)).astype(np.float32)
    imgs = jnp.asarray(imgs)
    f = lambda im: orientation_map(im, n_orientations=16, iterations=1)  # noqa: E731
    loop = [f(im) for im in imgs]
    batched = jax.vmap(f)(imgs)
    jitted = jax.jit(f)(imgs[0])
    with jax.disable_jit():
        eager = f(imgs[0])
    for field in OrientationMap._fields:
        np.testing.assert_allclose(np.asarray(getattr(batched, field)), np.stack([np.asarray(getattr(o, field)) for o in loop]), atol=1e-5)
        np.testing.assert_allclose(np.asarray(getattr(jitted, field)), np.asarray(getattr(eager, field)), atol=1e-5)


def test_orientation_image_colours():
    om = orientation_map(_stripes(90.0), wavelength=WL)
    rgb = orientation_image(om)
    assert rgb.shape == (N, N, 3) and rgb.dtype == np.uint8
    centre = rgb[20:-20, 20:-20].reshape(-1, 3).astype(int)
    # vertical strands: hue 2θ = π → cyan (no red, green ≈ blue)
    assert np.median(centre[:, 0]) < 30 and np.median(centre[:, 1]) > 100
    assert orientation_image(om, mask=np.zeros((N, N)))[..., :].max() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image": np.zeros((2, N, N), np.float32)}, "orientation_map"),
        ({"image": np.zeros((4, 4), np.float32)}, "orientation_map"),
        ({"n_orientations": 1}, "n_orientations"),
        ({"iterations": -1}, "iterations"),
        ({"sigma": 0.0}, "sigma"),
        ({"wavelength": float("nan")}, "wavelength"),
        ({"mask": np.ones((N, N - 1), np.float32)}, "mask|orientation_map"),
    ],
)
def test_orientation_map_bad_inputs(kwargs, match):
    kwargs = {"image": _stripes(0.0), **kwargs}
    image = kwargs.pop("image")
    with pytest.raises((ValueError, TypeError), match=match):
        orientation_map(image, **kwargs)


def test_orientation_map_rejects_integer_image():
    with pytest.raises((ValueError, TypeError), match="orientation_map|dtype|Float"):
        orientation_map(np.zeros((N, N), np.uint8))


# --- hair mask -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    img = data.astronaut()
    lm = detect_landmarks(img)
    return img, lm, hair_mask(img, lm)


@pytest.fixture(scope="module")
def grace():
    img = default_portrait()
    lm = detect_landmarks(img)
    return img, lm, hair_mask(img, lm)


def _eroded(mask, n):
    from scipy import ndimage

    return ndimage.binary_erosion(mask > 0.5, iterations=n)


def _face_core(face, lm):
    """The face below the brows between the outer eye corners (eyes, nose, mouth, inner
    cheeks): hair that falls over the face (a fringe, a strand over the temple) never covers it
    in these portraits."""
    pts = np.asarray(lm.points)
    h, w = face.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    x0, x1 = np.sort(pts[[33, 263], 0])
    return _eroded(face, 2) & (yy > pts[[105, 334], 1].mean() + 4) & (xx > x0) & (xx < x1)


def drawn_mask(name, shape):
    """The hair mask drawn by hand for a portrait (tests/hair/data/hair_masks.json)."""
    import json
    from pathlib import Path

    from skimage.draw import polygon

    entry = json.loads((Path(__file__).parent / "data" / "hair_masks.json").read_text())[name]
    assert tuple(entry["size"]) == (shape[1], shape[0])
    out = np.zeros(shape, bool)
    for poly in entry["polygons"]:
        p = np.asarray(poly, np.float64)
        rr, cc = polygon(p[:, 1] - 0.5, p[:, 0] - 0.5, shape=shape)
        out[rr, cc] = True
    return out


def _iou(a, b):
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_hair_mask_matches_the_drawn_masks(astronaut, grace):
    # IoU of the mask (> 0.5) with the hair drawn by hand (benchmarks/hair_reading.py has all
    # eight portraits): astronaut 0.90, Grace Hopper 0.39 (most of her hair is under the cap and
    # the grey wisps beside her face are half missed; the cap must not become hair)
    img, _, hm = astronaut
    assert _iou(hm.mask > 0.5, drawn_mask("astronaut", img.shape[:2])) > 0.85
    img, _, hm = grace
    assert _iou(hm.mask > 0.5, drawn_mask("hopper", img.shape[:2])) > 0.35


def test_hair_mask_keeps_the_fringe(astronaut):
    # the astronaut's side-swept fringe lies partly inside the landmarks' face oval: the part of
    # it that the drawn mask has inside the oval is partly found (0.43 of it; before the fringe
    # band, none: the whole oval was cut out of the mask)
    img, _, hm = astronaut
    fringe = drawn_mask("astronaut", img.shape[:2]) & (hm.face > 0.5)
    assert fringe.sum() > 100
    assert (hm.mask[fringe] > 0.5).mean() > 0.3


def test_hair_mask_astronaut(astronaut):
    img, lm, hm = astronaut
    assert isinstance(hm, HairMask)
    for m in hm:
        assert m.shape == img.shape[:2] and m.dtype == np.float32
        assert m.min() >= 0.0 and m.max() <= 1.0
    frac = float((hm.mask > 0.5).mean())
    assert 0.01 < frac < 0.06  # the hair is about 2.7 % of the 512² image
    assert hm.mask[_face_core(hm.face, lm)].max() == 0.0  # no hair on the eyes, nose, mouth
    # known hair (looked at): the crown, the left side and the right side of her head
    for y0, y1, x0, x1 in [(30, 50, 215, 245), (70, 110, 158, 176), (70, 110, 272, 290)]:
        assert hm.mask[y0:y1, x0:x1].mean() > 0.6, (y0, x0)  # highlights on the crown leave small holes
    # background (wall, flag), the neck and the orange suit are not hair
    for y0, y1, x0, x1 in [(20, 60, 320, 370), (100, 200, 0, 60), (180, 200, 200, 250), (300, 400, 50, 150)]:
        assert hm.mask[y0:y1, x0:x1].max() < 0.05, (y0, x0)
    assert hm.person[300:400, 50:150].mean() > 0.9  # the suit is person, yet not hair


def test_hair_mask_grace_hopper(grace):
    _, lm, hm = grace
    assert hm.mask[_face_core(hm.face, lm)].max() == 0.0
    assert 0.004 < float((hm.mask > 0.5).mean()) < 0.02  # little hair shows under her cap
    # the grey side hair (looked at, /tmp overlays): left temple beside the glasses, the left
    # clump below the ear, the right temple and the right clump below the ear
    for y0, y1, x0, x1 in [(150, 180, 160, 170), (255, 275, 165, 175), (150, 175, 352, 362), (275, 292, 342, 350)]:
        assert hm.mask[y0:y1, x0:x1].mean() > 0.3, (y0, x0)
    # the cap (crown, badge, brim), the uniform, the background, the flag beside her hair and the
    # face (glasses, cheeks) are not hair
    for y0, y1, x0, x1 in [
        (30, 110, 180, 340),
        (100, 122, 200, 320),
        (400, 560, 50, 200),
        (50, 200, 420, 500),
        (150, 300, 380, 420),
        (230, 300, 100, 145),
        (170, 300, 200, 330),
    ]:
        assert hm.mask[y0:y1, x0:x1].max() < 0.05, (y0, x0)


def test_hair_mask_side_hair_option(grace):
    img, lm, hm = grace
    plain = hair_mask(img, lm, side_hair=False)
    assert (plain.mask > 0.5).sum() < 0.8 * (hm.mask > 0.5).sum()  # the band adds a good part (29 %) of her hair
    assert (hm.mask >= plain.mask - 0.2).mean() > 0.99


def test_hair_mask_without_refinement(astronaut):
    img, lm, hm = astronaut
    raw = hair_mask(img, lm, refine=False)
    assert raw.mask[_eroded(raw.face, 2)].max() == 0.0
    # the geometric candidate contains the refined hair and stops at the chin
    assert (raw.mask >= hm.mask - 0.2).mean() > 0.99
    chin = int(np.asarray(lm.points)[:, 1].max()) + 5
    assert raw.mask[chin:].max() < 0.05


def test_segmenter_option(astronaut):
    img, lm, _ = astronaut
    calls = []

    def seg(im):
        calls.append(im.shape)
        out = np.zeros(im.shape[:2], np.float32)
        out[:40] = 1.0
        return out

    hm = hair_mask(img, lm, segmenter=seg)
    assert calls == [img.shape]
    assert hm.mask[:40].min() == 1.0 and hm.mask[40:].max() == 0.0
    with pytest.raises(ValueError, match="hair_mask: segmenter"):
        hair_mask(img, lm, segmenter=lambda im: np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="hair_mask: segmenter"):
        hair_mask(img, lm, segmenter=lambda im: np.full(im.shape[:2], 2.0, np.float32))
    with pytest.raises((ValueError, TypeError), match="hair_mask|segmenter"):
        hair_mask(img, lm, segmenter="mediapipe")


def test_hair_mask_bad_inputs(astronaut):
    img, lm, _ = astronaut
    with pytest.raises((ValueError, TypeError), match="hair_mask|dtype|UInt8"):
        hair_mask(img.astype(np.float32), lm)
    with pytest.raises((ValueError, TypeError), match="hair_mask|shape|H W 3"):
        hair_mask(img[..., :2], lm)
    with pytest.raises((ValueError, TypeError), match="hair_mask|numpy"):
        hair_mask([[0, 0, 0]], lm)
    with pytest.raises((ValueError, TypeError), match="hair_mask: landmarks"):
        hair_mask(img, np.zeros((478, 2)))
    with pytest.raises((ValueError, TypeError), match="hair_mask: landmarks"):
        hair_mask(img, lm._replace(points=lm.points[:10]))
    with pytest.raises((ValueError, TypeError), match="hair_mask: threshold"):
        hair_mask(img, lm, threshold=1.5)


def test_hair_colour_pixels_beside_a_hat(astronaut, grace):
    # under Grace Hopper's cap the mask holds mostly shaded skin (the melanin fit read it red);
    # the colour is read beside her face where neither her skin's hue and chroma nor the cap's
    # colour explain a pixel: her grey hair, light and nearly colourless
    from skimage.color import rgb2lab

    from machlib.hair._color import _hair_beside_hat

    img, lm, hm = grace
    sel = _hair_beside_hat(img, hm, lm.points)
    assert sel is not None and sel.shape == img.shape[:2] and sel.dtype == bool
    assert sel.sum() >= 50 and not (sel & (hm.face > 0.5)).any()
    lab = np.median(rgb2lab(img)[sel], 0)
    skin = np.median(rgb2lab(img)[_eroded(hm.face, 10)], 0)
    assert lab[0] > 50 and np.hypot(lab[1], lab[2]) < 0.5 * np.hypot(skin[1], skin[2])
    # the astronaut's crown shows hair: her mask's own pixels are used
    img, lm, hm = astronaut
    assert _hair_beside_hat(img, hm, lm.points) is None


def test_person_pass_joins_hair_across_a_thin_gap():
    # hair_mask's person pass: hair cut off from the hair found by a thin unsure gap (a tied-back
    # tail below the hair above the ear) joins it; hair-coloured pixels far off, or a part within
    # reach that is not clearly hair (skin-coloured), do not
    from machlib.hair._orient import _person_first

    h, w = 120, 120
    rng = np.random.default_rng(0)
    lab = np.empty((h, w, 3))
    lab[:] = (60.0, 15.0, 30.0)  # background
    hair_c, skin_c = np.array([15.0, 0.0, 5.0]), np.array([70.0, 15.0, 15.0])
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    top = (yy > 10) & (yy < 40) & (xx > 20) & (xx < 100)
    tail = (yy > 43) & (yy < 80) & (xx > 80) & (xx < 100)  # 3 px below the top hair
    far = (yy > 60) & (yy < 80) & (xx > 22) & (xx < 40)  # 20 px away
    pale = (yy > 43) & (yy < 70) & (xx > 50) & (xx < 70)  # within reach, skin-coloured
    skin = (yy > 90) & (yy < 110) & (xx > 20) & (xx < 60)
    for region, c in ((top, hair_c), (tail, hair_c), (far, hair_c), (pale, skin_c), (skin, skin_c)):
        lab[region] = c
    lab += rng.normal(0.0, 1.5, lab.shape)
    person = np.ones((h, w), np.float32)
    person[(yy > 40) & (yy < 43)] = 0.0  # the unsure gap
    person[:, 110:] = 0.0  # background
    base = person > 0.5
    none = np.zeros((h, w), bool)
    out = _person_first(lab, top & base, top & (xx > 90), base, none, none, person, skin, None, rng,
                        cx=60.0, fw=100.0, y_top=50.0, y_chin=115.0, yy=yy, xx=xx)
    assert out[top].all() and out[tail].mean() > 0.95
    assert not out[far].any() and not out[pale].any()


def test_crown_fill_takes_the_crown_above_the_hairline():
    # hair_mask's crown pass: a pale highlight and a dark parting that the colour models left out
    # of the hair on top of the head are hair (above the hairline); the bare forehead below the
    # hairline is not; with no hair found on top of the head (a hat) nothing is added
    from machlib.hair._orient import _crown_fill

    h, w = 120, 120
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    face = ((xx - 60) / 30) ** 2 + ((yy - 80) / 35) ** 2 < 1.0  # oval top at y = 45, chin at 115
    head = ((xx - 60) / 42) ** 2 + ((yy - 60) / 50) ** 2 < 1.0  # the person: a head, top at y = 10
    hair = head & (yy < 30)  # the hairline at y = 30, bare forehead 30..45
    hair |= head & ~face & (np.abs(xx - 60) > 30)  # the sides
    highlight = head & (yy > 15) & (yy < 25) & (xx > 40) & (xx < 55)
    parting = (yy > 12) & (yy < 29) & (xx > 66) & (xx < 70)
    found = hair & ~highlight & ~parting
    kw = dict(cx=60.0, fw=60.0, y_top=45.0, y_chin=115.0, yy=yy, xx=xx)
    out = _crown_fill(found, head, face, **kw)
    assert out[highlight].all() and out[parting].all() and out[found].all()
    forehead = head & ~face & (yy > 30) & (yy < 45) & (np.abs(xx - 60) < 25)
    assert forehead.sum() > 200 and not out[forehead].any()
    # a hat: only the sides were found as hair, nothing on top of the head
    sides = found & (yy > 45)
    assert np.array_equal(_crown_fill(sides, head, face, **kw), sides)


def _strand_image(h, w, rng):
    """A hair-coloured image whose every column is a strand of its own brightness (vertical
    hair seen from the front: strong oriented contrast at the Gabor bank's scale)."""
    strands = np.repeat(rng.uniform(0.55, 1.0, (1, w)), h, 0) * rng.uniform(0.95, 1.05, (h, w))
    return np.clip(np.asarray([200.0, 140.0, 80.0]) * strands[..., None], 0, 255).astype(np.uint8)


def test_smooth_region_beside_the_hair_is_not_hair():
    # hair_mask's step 7: an arm behind the head, skin-coloured like the hair, smooth and joined
    # to the side hair along its length, goes with the edge of the arm beyond it; the hair, its
    # strands beside the face and a textured region of the same size (more hair) stay
    from machlib.hair._orient import _smooth_off

    h, w = 160, 180
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    face = ((xx - 80) / 30) ** 2 + ((yy - 80) / 40) ** 2 < 1.0  # fw = 60, oval top 40, chin 120
    head = ((xx - 80) / 52) ** 2 + ((yy - 70) / 62) ** 2 < 1.0
    hair = head & ~face & (yy < 150)
    hair |= (np.abs(xx - 80) > 30) & (np.abs(xx - 80) < 52) & (yy > 60) & (yy < 150)  # falling hair
    arm = (xx >= 132) & (xx < 170) & (yy > 20) & (yy < 160)
    edge = (xx >= 170) & (xx < 174) & (yy > 20) & (yy < 160)  # its outline: a dark line
    img = _strand_image(h, w, rng)
    shade = 0.75 + 0.2 * np.cos((xx - 151) / 19 * np.pi / 2)  # a smooth limb, lit from the front
    img[arm] = np.clip(np.asarray([200.0, 140.0, 80.0]) * shade[arm][:, None], 0, 255).astype(np.uint8)
    img[edge] = (60, 40, 25)
    seeds = hair & (np.abs(xx - 80) < 40) & (yy > 40) & (yy < 70)  # the temples
    kw = dict(cx=80.0, fw=60.0, y_chin=120.0, yy=yy, xx=xx)
    cand = hair | arm | edge
    out = _smooth_off(img, cand, seeds, **kw)
    assert out[hair & (xx < 128)].all() and out[hair].mean() > 0.97  # at most its last pixels by the arm
    assert out[arm].mean() < 0.05 and not out[edge].any()
    # the same region with strands is hair: nothing goes
    assert np.array_equal(_smooth_off(_strand_image(h, w, rng), cand, seeds, **kw), cand)
    # without seeds (no hair found beside the face) nothing is tested
    assert np.array_equal(_smooth_off(img, cand, seeds & False, **kw), cand)


def test_hair_mask_keeps_a_profiles_nose_and_lips_out(grace, monkeypatch):
    # in near-profile the face oval's landmarks run down the near cheek, and the nose, the lips
    # and the far eye stand out beyond it over the background (t1_face4: the colour rounds and
    # the side-hair band beside the oval took his far brow's shade, the tip of his nose and his
    # upper lip for hair). A synthetic profile: Grace Hopper's landmarks with everything but the
    # oval moved sideways by 0.4 face widths, on a head whose every pixel off the oval is hair,
    # the features beyond the oval included (painted with the hair's strands: whatever their
    # look): no pixel of the features' hull is hair (old code: 1.0 there); the hair around the
    # head still is.
    from machlib.geometry import Landmarks, face_oval
    from machlib.hair import _orient

    img0, lm, _ = grace
    h, w = img0.shape[:2]
    pts = np.asarray(lm.points, np.float64).copy()
    oval = np.zeros(len(pts), bool)
    oval[face_oval()] = True
    fw = float(np.ptp(pts[oval, 0]))
    pts[~oval, 0] -= 0.4 * fw
    prof = Landmarks(pts.astype(np.float32), lm.depth, lm.confidence, lm.box)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    face = _orient._face_region(pts, h, w) > 0.5
    hull = _orient._features_hull(pts, (h, w), fw)
    beyond = hull & ~face
    assert beyond.sum() > 0.05 * fw * fw  # the nose and lips stand out of the oval
    cx, cy = pts[oval, 0].mean(), pts[oval, 1].mean()
    head = ((xx - cx) / (0.85 * fw)) ** 2 + ((yy - cy + 0.15 * fw) / (1.1 * fw)) ** 2 < 1.0
    person = (head | hull | (yy > cy + 0.9 * fw)).astype(np.float32)
    monkeypatch.setattr(_orient, "_person_segmentation", lambda image: person)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (205, 215, 230)  # the background
    strands = _strand_image(h, w, np.random.default_rng(1)).astype(np.float64) * 0.3  # dark brown hair
    img[person > 0.5] = strands[person > 0.5].astype(np.uint8)
    rng = np.random.default_rng(2)
    img[face] = np.clip(np.asarray([225.0, 175.0, 145.0]) + rng.normal(0, 3, (face.sum(), 3)), 0, 255).astype(np.uint8)
    shirt = (yy > cy + 0.9 * fw) & ~hull
    img[shirt] = (90, 110, 90)
    hm = hair_mask(img, prof)
    assert hm.mask[beyond].max() == 0.0
    # the hair around the head: above the oval and beside it on the side away from the features
    top = head & (yy < pts[oval, 1].min() - 0.1 * fw) & ~hull
    back = head & (xx > pts[oval, 0].max() + 0.1 * fw) & (yy < cy) & ~hull
    assert (hm.mask[top] > 0.5).mean() > 0.9 and (hm.mask[back] > 0.5).mean() > 0.9
