"""texture_portrait's photo masks that are pure numpy: the strands that run on from the hair into
the face (skin=True). Synthetic inputs, no fit."""

from __future__ import annotations

import numpy as np
from helpers import open_mouth

from machlib._facemesh import LIPS_INNER, LIPS_OUTER, face_oval
from machlib.pipeline import HAIR_MIX_TEST, HAIR_STRAND_TEST, _hair_mixture, _strands_from_hair


def test_strands_from_hair_follow_the_hair_not_creases():
    h, w, fw = 80, 120, 200.0  # reach: 30 px
    hair = np.zeros((h, w), bool)
    hair[:, :10] = True  # the hair beside the face
    allowed = ~hair
    likely = np.ones((h, w), np.float32)  # skin everywhere
    likely[30:34, 10:35] = 0.6  # a strand, half skin by colour, running on from the hair
    likely[31, 20] = 1.0  # a highlight on it that reads as skin
    likely[60:63, 50:70] = 0.2  # a crease inside the face, far from the hair
    likely[10:13, 10:100] = 0.6  # a long strand: followed only 15 % of the face width
    out = _strands_from_hair(hair, likely, allowed, fw)
    assert out.dtype == np.float32 and out.shape == (h, w)
    assert out[30:34, 10:35].min() == 1.0  # the whole strand, its highlight closed over
    assert out[60:63, 50:70].max() == 0.0  # the crease does not touch the hair
    assert out[11, 10 + int(HAIR_STRAND_TEST[1] * fw) - 2] == 1.0 and out[11, 10 + int(HAIR_STRAND_TEST[1] * fw) + 3:].max() == 0.0
    assert out[hair].max() == 0.0 and out[45:55, 20:].max() == 0.0  # neither the hair nor skin
    assert not _strands_from_hair(np.zeros_like(hair), likely, allowed, fw).any()


def _edge_portrait(hair_rgb, beside):
    """A cheek (columns 30 on) beside hair (columns 0-29) of colour ``hair_rgb`` with strands
    (vertical stripes of ±15 % lightness, 3 px apart); in the 12 columns after the 8-px band that
    hides the hair's edge (face width 200 px: 4 %), ``beside(t)`` gives the colour, ``t`` running
    from 0 at column 38 to 1 at column 49. Returns the image, the hair, the skin seen (the face
    less the hidden band), a skin confidence of 1 everywhere (what the skin's colour model gives
    t1_face0's blended band: above 0.9), the face and the face width."""
    h, w, fw = 90, 150, 200.0
    rng = np.random.default_rng(0)
    skin = np.array([0.90, 0.74, 0.62])
    image = np.broadcast_to(skin, (h, w, 3)).copy()
    stripes = 1.0 + 0.15 * np.sin(np.arange(w) * 2.0 * np.pi / 3.0)[None, :, None]
    image[:, :30] = np.asarray(hair_rgb) * stripes[:, :30]
    for i, c in enumerate(range(38, 50)):
        image[:, c] = beside(i / 11.0, stripes[0, c, 0])
    image = np.clip(image + rng.normal(0.0, 0.005, image.shape), 0.0, 1.0).astype(np.float32)
    hair = np.zeros((h, w), bool)
    hair[:, :30] = True
    sure = ~hair
    sure[:, 30:38] = False  # the band that portrait_occlusion hides beside the hair
    likely = np.ones((h, w), np.float32)
    return image, hair, sure, likely, ~hair, fw


def test_hair_mixture_finds_red_hair_blended_into_the_cheek():
    """t1_face0 (issue 15 / 17 item 5): the edge of her red hair, blurred into her left cheek,
    reads as skin by colour (orange skin and red hair lie a few standard deviations apart) and
    was painted into the albedo as a stripe from the temple to the jaw. Its colour lies on the
    way from the cheek's to the hair's: those pixels, reached from the hair, are no skin."""
    hair_rgb = np.array([0.80, 0.48, 0.22])  # red hair, lighter than the skin by ~20 L*
    skin = np.array([0.90, 0.74, 0.62])

    def blend(t, stripe):  # 70 % hair at the band, 25 % twelve pixels on, strands across it
        a = (0.70 - 0.45 * t) * (0.8 + 0.2 * stripe)
        return a * hair_rgb * stripe + (1.0 - a) * skin

    image, hair, sure, likely, allowed, fw = _edge_portrait(hair_rgb, blend)
    band = np.zeros_like(hair)
    band[:, 38:43] = True  # at least 45 % hair
    old = _strands_from_hair(hair, likely, allowed, fw)
    assert old.max() == 0.0  # before: skin by colour, so nothing runs on from the hair
    mixed = _hair_mixture(image, hair, sure, fw)
    assert mixed.dtype == np.float32 and mixed.shape == hair.shape
    assert 0.5 < np.median(mixed[:, 38]) < 0.9 and abs(np.median(mixed[:, 70:])) < 0.05
    out = _strands_from_hair(hair, likely, allowed, fw, mixed=mixed)
    assert out[band].min() == 1.0
    assert out[:, 52:].max() == 0.0  # the cheek beyond the blend stays skin
    assert out[:, 30:38].max() == 0.0 and out[hair].max() == 0.0  # already hidden / the hair itself


def test_hair_mixture_leaves_shading_beside_dark_hair_and_features():
    """What the blend test must not take: the cheek's shade beside dark hair (it darkens the
    skin toward the hair's colour but is no hair, and the skin model already separates dark
    hair), and a reddish crease or blush inside the face that does not touch the hair."""
    dark = np.array([0.16, 0.11, 0.09])
    skin = np.array([0.90, 0.74, 0.62])

    def shade(t, stripe):  # the skin at 55 % → 85 % of its brightness
        return skin * (0.55 + 0.30 * t)

    image, hair, sure, likely, allowed, fw = _edge_portrait(dark, shade)
    mixed = _hair_mixture(image, hair, sure, fw)
    assert mixed.max() == 0.0  # hair darker than the skin by more than HAIR_MIX_TEST[2] L*
    np.testing.assert_array_equal(_strands_from_hair(hair, likely, allowed, fw, mixed=mixed),
                                  _strands_from_hair(hair, likely, allowed, fw))

    red = np.array([0.80, 0.48, 0.22])
    image, hair, sure, likely, allowed, fw = _edge_portrait(red, lambda t, s: skin)
    image[40:44, 56:80] = 0.5 * red + 0.5 * skin  # a crease the colour of a half blend, 18 px off the band
    mixed = _hair_mixture(image, hair, sure, fw)
    assert mixed[40:44, 56:66].min() > HAIR_MIX_TEST[0]  # (0 beyond 4 σ of the hair: no local hair)
    out = _strands_from_hair(hair, likely, allowed, fw, mixed=mixed)
    assert out.max() == 0.0  # it does not reach the hair; the plain cheek beside it is skin
    assert not _strands_from_hair(np.zeros_like(hair), likely, allowed, fw, mixed=mixed).any()


def test_lips_off_mouth_flags_the_photos_lips_on_the_heads_skin():
    """t1_face3's moustache (issue 15): a laugh's thin upper lip lies where the fitted head has
    skin above its lips, so the photo's red was painted there. Synthetic: the template's lips
    drawn in red on skin, the landmarks where they are drawn, and a head whose texture
    coordinates put the upper lip 8 mm (0.04 UV) higher, above the head's lips."""
    from skimage.draw import polygon

    from machlib._facemesh import LIPS_INNER, LIPS_OUTER
    from machlib.geometry import Landmarks, default_template
    from machlib.pipeline import _lips_off_mouth

    tpl = default_template()
    lm = np.asarray(tpl.landmark_uv, np.float64)
    n = 160
    c = lm[list(LIPS_OUTER)].mean(0)
    pts = (lm - c) * 600.0 + n / 2  # the mouth in the middle of the image, 128 px wide
    h = w = n
    image = np.empty((h, w, 3), np.float32)
    image[:] = (0.85, 0.66, 0.55)  # skin
    image += np.random.default_rng(0).normal(0, 0.01, image.shape).astype(np.float32)

    def fill(idx):
        m = np.zeros((h, w), bool)
        rr, cc = polygon(pts[list(idx), 1] - 0.5, pts[list(idx), 0] - 0.5, shape=(h, w))
        m[rr, cc] = True
        return m

    lips = fill(LIPS_OUTER) & ~fill(LIPS_INNER)
    image[lips] = (0.62, 0.30, 0.28)  # red lips
    image[fill(LIPS_INNER)] = (0.92, 0.90, 0.85)  # teeth
    def marks(p):
        p = p.astype(np.float32)
        k = p.shape[0]
        return Landmarks(p, np.zeros(k, np.float32), np.ones(k, np.float32),
                         np.r_[p.min(0), p.max(0)].astype(np.float32))

    landmarks = marks(pts)
    oval = np.ones((h, w), np.float32)  # the face fills the image (the pixels' UVs lie around the mouth)
    avoid = fill(LIPS_INNER).astype(np.float32)  # the open mouth's interior, hidden
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    uv = np.stack([(xx - n / 2) / 600.0 + c[0], (yy - n / 2) / 600.0 + c[1]], -1)  # the photo's own layout
    covered = np.ones((h, w), bool)
    assert not _lips_off_mouth(image, landmarks, tpl, uv, covered, oval, avoid).any()  # lips on lips
    moved = uv.copy()
    moved[..., 1] -= 0.04  # the head's texture 8 mm higher: the upper lip's red lands on its skin
    off = _lips_off_mouth(image, landmarks, tpl, moved, covered, oval, avoid) > 0.5
    upper = lips & (yy < pts[13, 1])  # the photo's upper lip
    assert off[upper].mean() > 0.6  # the upper lip is read onto the skin above the head's lips
    assert not off[~lips].any()  # never skin or teeth
    assert not off[lips & (yy > pts[14, 1])].any()  # below the open mouth: the portrait's own
    # a closed mouth (the inner lips meet): its lip line is the portrait's own, nothing is hidden
    shut = pts.copy()
    shut[[13, 14]] = 0.5 * (pts[13] + pts[14])
    assert not _lips_off_mouth(image, marks(shut), tpl, moved, covered, oval, avoid).any()
    # no FaceMesh lips (68-point landmarks): nothing
    assert not _lips_off_mouth(image, marks(pts[:68]), tpl, moved, covered, oval, avoid).any()


def _inside(poly_points, query):
    from matplotlib.path import Path

    return Path(poly_points).contains_points(query)


def test_mouth_uv_puts_the_photos_lips_on_the_heads_lips():
    """t1_face3 (issue 15): the fitted head's laugh does not follow the photo's lips, so its
    upper lip lay over the photo's teeth and the photo's thin upper lip over the skin above it.
    Synthetic: a head whose texture coordinates put the mouth 0.03 UV higher than the photo's
    lips (the photo's upper lip on the head's skin, its teeth on the head's upper lip); the
    landmark-guided map puts the photo's lips back on the head's lips, its opening in the
    head's, and leaves the face away from the mouth as the mesh maps it."""
    from machlib.pipeline import LIP_UV_RING, _mouth_uv

    tpl, lm, pts, uv, marks = open_mouth()
    n = uv.shape[0]
    moved = uv.copy()
    moved[..., 1] += 0.03  # the head's lips lower than the photo's
    covered = np.ones((n, n), bool)
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    q = np.stack([xx.ravel(), yy.ravel()], 1)
    lips_px = (_inside(pts[list(LIPS_OUTER)], q) & ~_inside(pts[list(LIPS_INNER)], q)).reshape(n, n)
    inner_px = _inside(pts[list(LIPS_INNER)], q).reshape(n, n)
    # 2 px in from either contour: the photo's lips seen by the fit (the interior is hidden, grown)
    from scipy import ndimage

    # and off the interior's grown edge (1 % of the face width), which the fit hides too
    fw = float(np.ptp(pts[face_oval()][:, 0]))
    core = ndimage.binary_erosion(lips_px, iterations=2) & (ndimage.distance_transform_edt(~inner_px) > 0.01 * fw + 1.5)

    def on_lips(m):
        f = m.reshape(-1, 2).astype(np.float64)
        return (_inside(lm[list(LIPS_OUTER)], f) & ~_inside(lm[list(LIPS_INNER)], f)).reshape(n, n)

    assert on_lips(moved)[core].mean() < 0.6  # the premise: the mesh puts much of them elsewhere
    out, squeezed = _mouth_uv(marks(pts), tpl, moved, covered)
    assert out.shape == moved.shape and out.dtype == np.float32 and squeezed.shape == (n, n)
    assert on_lips(out)[core].mean() > 0.97
    f = out.reshape(-1, 2).astype(np.float64)
    assert _inside(lm[list(LIPS_INNER)], f).reshape(n, n)[ndimage.binary_erosion(inner_px, iterations=3)].mean() > 0.97
    # the face beyond the ring (from the outer contour) keeps the mesh's coordinates
    far = ndimage.distance_transform_edt(~(lips_px | inner_px)) > LIP_UV_RING * fw + 3
    np.testing.assert_array_equal(out[far], moved[far])
    # the pixels left out (the ring squeezed by the offset fading over it): only in the ring, a few
    ring = ~(lips_px | inner_px) & ~far
    assert squeezed[~ring].max() == 0.0 and squeezed[ring].mean() < 0.25
    # continuous across the outer contour: no step larger than the stretch of the map itself
    step = np.abs(np.diff(out, axis=0)).max()
    assert step < 0.02
    # a closed mouth, or landmarks without the FaceMesh lips: None
    shut = pts.copy()
    shut[[13, 14]] = 0.5 * (pts[13] + pts[14])
    assert _mouth_uv(marks(shut), tpl, moved, covered) is None
    assert _mouth_uv(marks(pts[:68]), tpl, moved, covered) is None


def test_mouth_seen_follows_the_photos_lips():
    """The head's lip texels are seen as much as the photo's lip pixels mapped onto them (the
    mesh's visibility there, here none, does not count); the opening's texels keep the photo's
    hidden interior; texels off the lips keep their visibility."""
    from machlib.pipeline import _mouth_seen

    tpl, lm, pts, uv, marks = open_mouth()
    n = uv.shape[0]
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    q = np.stack([xx.ravel(), yy.ravel()], 1)
    interior = _inside(pts[list(LIPS_INNER)], q).reshape(n, n)
    mask = (~interior).astype(np.float32)
    R = 256
    seen = np.zeros((R, R), np.float32)
    seen[:20] = 1.0  # seen texels far from the mouth
    out = _mouth_seen(seen, marks(pts), tpl, mask)
    ty, tx = np.mgrid[0:R, 0:R] + 0.5
    t = np.stack([tx.ravel() / R, ty.ravel() / R], 1)
    from scipy import ndimage

    lips_t = (_inside(lm[list(LIPS_OUTER)], t) & ~_inside(lm[list(LIPS_INNER)], t)).reshape(R, R)
    open_t = _inside(lm[list(LIPS_INNER)], t).reshape(R, R)
    assert out[ndimage.binary_erosion(lips_t, iterations=1)].min() == 1.0
    assert out[ndimage.binary_erosion(open_t, iterations=2)].max() == 0.0
    np.testing.assert_array_equal(out[:20], 1.0)
    assert out[20:][~(lips_t | open_t)[20:]].max() == 0.0
