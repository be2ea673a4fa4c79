"""texture_portrait(mouth=True)'s choice of whether an open mouth's lips are mapped by their
landmarks (issues 13/15): a smile whose lip band is mostly teeth over lips the fitted head already
puts in place keeps the head's coordinates (t1_face5), as does a three-quarter profile
(t1_face4); a laugh whose fitted lips lie over the photo's teeth is mapped (t1_face3).
Synthetic inputs, no fit."""

from __future__ import annotations

import numpy as np
from helpers import open_mouth
from skimage.draw import polygon

from machlib._camera import camera_from_head_pose
from machlib._facemesh import LIPS_INNER, LIPS_OUTER

SKIN, LIPS, TEETH = (0.85, 0.66, 0.55), (0.62, 0.30, 0.28), (0.92, 0.90, 0.85)


def _mouth(teeth_rows: float = 0.0):
    """The template's lips drawn as a 128-px-wide open mouth on skin (red lips, teeth inside the
    inner contour), the photo's own texture layout ``uv`` and the template. ``teeth_rows``: the
    lip band below the inner lower lip's centre (landmark 14) down to this fraction of the way to
    the outer contour's lowest point painted as teeth: a smile's lower teeth, which FaceMesh's
    inner contour runs across."""
    tpl, _, pts, uv, marks = open_mouth()
    n = uv.shape[0]
    yy = np.mgrid[0:n, 0:n][0] + 0.5

    def fill(idx):
        m = np.zeros((n, n), bool)
        rr, cc = polygon(pts[list(idx), 1] - 0.5, pts[list(idx), 0] - 0.5, shape=(n, n))
        m[rr, cc] = True
        return m

    image = np.empty((n, n, 3), np.float32)
    image[:] = SKIN
    image += np.random.default_rng(0).normal(0, 0.01, image.shape).astype(np.float32)
    band = fill(LIPS_OUTER) & ~fill(LIPS_INNER)
    image[band] = LIPS
    image[fill(LIPS_INNER)] = TEETH
    if teeth_rows > 0:  # the lower lip band's upper part: the lower teeth
        top, bottom = pts[14, 1], pts[list(LIPS_OUTER), 1].max()
        image[band & (yy > top) & (yy < top + teeth_rows * (bottom - top))] = TEETH

    return tpl, pts, uv, image, band, marks


def test_pale_lip_band_counts_a_smiles_teeth():
    """The fraction of the band paler than its lips: none for red lips, the teeth painted over
    the lower lip's band for a smile (t1_face5: 0.39), whatever the lips' own colour."""
    from machlib.pipeline import MOUTH_MAP_PALE, _pale_lip_band

    _, pts, _, image, band, _ = _mouth()
    assert _pale_lip_band(image, pts) < 0.02
    _, pts, _, smile, band, _ = _mouth(teeth_rows=0.7)
    teeth = (np.abs(smile - np.asarray(TEETH, np.float32)).max(-1) < 0.05) & band
    frac = _pale_lip_band(smile, pts)
    assert abs(frac - teeth.mean() / band.mean()) < 0.02
    assert frac > MOUTH_MAP_PALE
    # darker lips, the same teeth: the same fraction (the lips are the band's redder part)
    dark = smile.copy()
    dark[band & ~teeth] = (0.45, 0.18, 0.17)
    assert abs(_pale_lip_band(dark, pts) - frac) < 0.02


def test_mouth_map_wanted_keeps_the_heads_lips_on_a_smile_and_a_profile():
    """t1_face5's smile: the band is mostly teeth and the head's lips already land on the photo's,
    so the map (which moved the teeth and the lit lip onto the head's lips: pale lips, no lip
    line) is not used; with the head's lips 0.04 UV off the photo's (t1_face3's laugh) it is,
    and so is a band of lips. A 49° profile (t1_face4) or a closed mouth: never."""
    from machlib.pipeline import _mouth_map_wanted

    frontal, turned = camera_from_head_pose(np.array([8.0, 5.0, 0.0])), camera_from_head_pose(np.array([-49.0, 5.0, 0.0]))
    tpl, pts, uv, lips_image, _, marks = _mouth()
    _, _, _, smile, _, _ = _mouth(teeth_rows=0.7)
    n = uv.shape[0]
    covered = np.ones((n, n), bool)
    misplaced = uv.copy()
    misplaced[..., 1] += 0.04  # the head's lips lower than the photo's
    assert _mouth_map_wanted(lips_image, marks(pts), tpl, frontal, uv, covered)
    assert not _mouth_map_wanted(smile, marks(pts), tpl, frontal, uv, covered)
    assert _mouth_map_wanted(smile, marks(pts), tpl, frontal, misplaced, covered)
    assert not _mouth_map_wanted(lips_image, marks(pts), tpl, turned, uv, covered)
    assert not _mouth_map_wanted(lips_image, marks(pts), tpl, turned, misplaced, covered)
    shut = pts.copy()
    shut[[13, 14]] = 0.5 * (pts[13] + pts[14])
    assert not _mouth_map_wanted(lips_image, marks(shut), tpl, frontal, misplaced, covered)
    assert not _mouth_map_wanted(lips_image, marks(pts[:68]), tpl, frontal, misplaced, covered)


def test_band_teeth_are_the_pale_pixels_at_the_opening():
    """Where the head keeps its own coordinates on a smile (t1_face5), the lip band's teeth are
    hidden, not read as lip (her lower lip came out pale pink): the pale pixels of the band in
    regions that touch the inner lip polygon. A pale patch on the lip away from the opening (a
    highlight) is no tooth, nor is anything of a band of lips."""
    from machlib.pipeline import _band_teeth

    _, pts, _, lips_image, band, _ = _mouth()
    assert not _band_teeth(lips_image, pts).any()
    _, pts, _, smile, band, _ = _mouth(teeth_rows=0.5)
    n = smile.shape[0]
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    teeth = (np.abs(smile - np.asarray(TEETH, np.float32)).max(-1) < 0.05) & band
    # a highlight on the upper lip, apart from the opening (2 px above the inner contour's top)
    inner_top = pts[list(LIPS_INNER), 1].min()
    glint = band & (yy < inner_top - 3) & (np.abs(xx - pts[0, 0]) < 6)
    assert glint.sum() > 5
    smile[glint] = (0.95, 0.85, 0.80)
    found = _band_teeth(smile, pts) > 0.5
    assert found[teeth].mean() > 0.95
    assert not found[glint].any()
    assert not found[band & ~teeth & ~glint].any()
