"""fit_strand_tips: trim, extend and inflate strands to a portrait's hair silhouette (issue 17, item 3)."""

import numpy as np
import pytest
from helpers import uv_sphere

from machlib._errors import InputError
from machlib._preview import orbit_camera
from machlib.hair import Strands, TipFit, fit_strand_tips, head_sdf_grid, sdf_lookup
from machlib.hair._fit import _project

SIZE = 96


@pytest.fixture(scope="module")
def cam():
    return orbit_camera(0.0, image_size=(SIZE, SIZE))


def _rows_of(points, cam):
    from machlib._camera import rotation_matrix

    R = np.asarray(rotation_matrix(cam.rotation), np.float64)
    xy, _ = _project(np.asarray(points, np.float64), R, np.asarray(cam.translation, np.float64),
                     np.asarray(cam.focal, np.float64), np.asarray(cam.principal, np.float64))
    return xy


def _vertical(x: float, y0: float, y1: float, n: int = 8) -> np.ndarray:
    return np.stack([np.full(n, x), np.linspace(y0, y1, n), np.zeros(n)], 1).astype(np.float32)


def test_extends_to_the_mask_end_and_trims_what_leaves_it(cam):
    # two strands hanging down from y = 0.05: one stops at y = 0 inside a column of hair that
    # reaches row 70 (extend), one falls to y = -0.12, through the column's end (trim)
    pts = np.stack([_vertical(0.0, 0.05, 0.0), _vertical(0.01, 0.05, -0.12)])
    root_rows = _rows_of(pts[:, 0], cam)[:, 1]
    assert (root_rows < 40).all()
    mask = np.zeros((SIZE, SIZE))
    mask[: 70, 30:66] = 1.0
    fit = fit_strand_tips(Strands(pts), cam, mask, step=0.002, max_extension=0.3, tolerance=0.0, inflate=0.0)
    assert isinstance(fit, TipFit)
    assert fit.extended.tolist() == [True, False] and fit.trimmed.tolist() == [False, True]
    tips = _rows_of(fit.strands.points[:, -1], cam)[:, 1]
    assert 66 <= tips[0] < 70          # grown on to within a step of the mask's end
    assert 60 <= tips[1] < 70          # cut at its first point past the end
    np.testing.assert_allclose(fit.strands.points[:, 0], pts[:, 0], atol=1e-6)   # roots kept
    assert fit.strands.points.shape == pts.shape
    assert fit.length_after[0] > fit.length_before[0] and fit.length_after[1] < fit.length_before[1]
    s = fit.summary()
    assert s["trimmed"] == 1 and s["extended"] == 1


def test_orientation_bends_the_extension(cam):
    pts = _vertical(0.0, 0.05, 0.0)[None]
    mask = np.ones((SIZE, SIZE))
    theta = np.full((SIZE, SIZE), np.pi / 4)  # strands running down and to the image right
    straight = fit_strand_tips(Strands(pts), cam, mask, max_extension=0.05, inflate=0.0, gravity=0.0)
    bent = fit_strand_tips(Strands(pts), cam, mask, theta=theta, max_extension=0.05, inflate=0.0, gravity=0.0,
                           bend=1.0)
    dx_straight = np.diff(_rows_of(straight.strands.points[0, [0, -1]], cam)[:, 0])[0]
    dx_bent = np.diff(_rows_of(bent.strands.points[0, [0, -1]], cam)[:, 0])[0]
    assert abs(dx_straight) < 0.5 and dx_bent > 3.0


def _swept_fringe():
    """A round head, its SDF, and a swept fringe strand rooted on its front 40 deg up: its 3 cm run
    forward, down and to the side, 1.3 cm off the head at the tip."""
    head = uv_sphere(48, 32, radius=0.08)
    sdf = head_sdf_grid(head, spacing=0.005, margin=0.05)
    a = np.radians(40.0)
    root = np.array([0.0, 0.08 * np.sin(a), 0.08 * np.cos(a)])
    d = np.array([0.6, -0.4, 0.7]) / np.linalg.norm([0.6, -0.4, 0.7])
    pts = (root + np.linspace(0.0, 0.03, 8)[:, None] * d)[None].astype(np.float32)
    return head, sdf, pts


def _brows(cam, y):
    """Brow points (pixels) of a level brow line at head height ``y`` across the face."""
    return _rows_of(np.stack([np.linspace(-0.05, 0.05, 6), np.full(6, y), np.full(6, 0.075)], 1), cam)


def test_a_fringe_over_the_forehead_lies_on_it_and_keeps_its_sweep(cam):
    # over hair everywhere in the image, the fringe's extension kept the tip's depth and fell to
    # gravity: it hung straight down 1.3 cm in front of the head (a curtain with a gap behind
    # it). With the brows given, a strand rooted on the front hairline above them is a fringe:
    # its extension comes onto the head, one step's length closer per step at most, the head
    # carries it (no gravity, its heading kept), and it ends above the brows' line
    head, sdf, pts = _swept_fringe()
    assert float(sdf_lookup(sdf, pts[0, -1:])[0]) > 0.012
    kw = {"mesh": head, "sdf": sdf, "max_extension": 0.04, "inflate": 0.0}
    brows = _brows(cam, -0.03)
    fit = fit_strand_tips(Strands(pts), cam, np.ones((SIZE, SIZE)), brows=brows, **kw)
    assert fit.extended.tolist() == [True] and fit.length_after[0] > 0.06
    p = np.asarray(fit.strands.points[0], np.float64)
    dist = np.asarray(sdf_lookup(sdf, p.astype(np.float32)))
    assert dist[-1] < 0.004 and (dist > 0).all()              # on the head (without brows: 12 mm off)
    xy = _rows_of(p, cam)
    ext = xy[-1] - xy[-3]
    assert np.degrees(np.arctan2(abs(ext[0]), abs(ext[1]))) > 45.0   # still sideways (without: 4 deg)
    np.testing.assert_allclose(p[0], pts[0, 0], atol=1e-6)
    line = np.polyfit(brows[:, 0], brows[:, 1], 1)
    assert (xy[:, 1] < np.polyval(line, xy[:, 0])).all()       # above the brows
    # without the brows (or with the brows above the strand's root: not a fringe) it is not
    # told apart: its extension keeps the tip's depth and falls, as before
    for other in (None, _brows(cam, 0.07)):
        off = fit_strand_tips(Strands(pts), cam, np.ones((SIZE, SIZE)), brows=other, **kw)
        q = np.asarray(off.strands.points[0], np.float64)
        assert float(sdf_lookup(sdf, q[-1:].astype(np.float32))[0]) > 0.01
        e = _rows_of(q, cam)
        assert np.degrees(np.arctan2(abs(e[-1, 0] - e[-3, 0]), abs(e[-1, 1] - e[-3, 1]))) < 20.0


def test_a_fringe_ends_above_the_brows_and_is_not_inflated(cam):
    # the brows' line just below the fringe's tip: its extension stops there, where hair
    # continues in the mask (a fringe does not grow onto the brows); and inflation towards a
    # wider mask moves the strands on the outline but not the fringe over the face
    head, sdf, pts = _swept_fringe()
    tip_row = _rows_of(pts[0, -1:], cam)[0, 1]
    y_brow = next(y for y in np.linspace(0.05, -0.05, 101) if _brows(cam, y)[:, 1].min() > tip_row + 2.0)
    brows = _brows(cam, y_brow)
    kw = {"mesh": head, "sdf": sdf, "max_extension": 0.04}
    fit = fit_strand_tips(Strands(pts), cam, np.ones((SIZE, SIZE)), brows=brows, inflate=0.0, **kw)
    xy = _rows_of(np.asarray(fit.strands.points[0], np.float64), cam)
    line = np.polyfit(brows[:, 0], brows[:, 1], 1)
    assert (xy[:, 1] < np.polyval(line, xy[:, 0])).all()
    free = fit_strand_tips(Strands(pts), cam, np.ones((SIZE, SIZE)), inflate=0.0, **kw)
    assert free.length_after[0] > 0.069 and fit.length_after[0] < free.length_after[0] - 0.008   # stopped
    # inflation: a mask that reaches beyond the strands everywhere, no extension (max 0); 24
    # copies of the fringe and 24 strands down the side of the head (a sector counts 20 points)
    fringe = pts[0] + np.linspace(0.0, 0.004, 24)[:, None, None] * np.array([1.0, 0.0, 0.0])
    side = np.stack([np.full(8, 0.085), np.linspace(0.02, -0.02, 8), np.zeros(8)], 1)
    side = side + np.linspace(0.0, 0.01, 24)[:, None, None] * np.array([0.0, 1.0, 0.0])
    both = Strands(np.concatenate([fringe, side]).astype(np.float32))
    kw["max_extension"] = 0.0
    out = [np.asarray(fit_strand_tips(both, cam, np.ones((SIZE, SIZE)), brows=b, inflate=0.3, **kw)
                      .strands.points, np.float64) for b in (None, brows)]
    moved = [np.abs(o - both.points).max(axis=(1, 2)) for o in out]
    assert (moved[0][:24] > 1e-3).all() and (moved[1][:24] < 1e-5).all()   # the fringe stays with the brows
    assert (moved[0][24:] > 1e-3).all()
    np.testing.assert_allclose(out[1][24:], out[0][24:], atol=1e-6)        # the side inflates either way
    with pytest.raises(InputError, match="brows"):
        fit_strand_tips(both, cam, np.ones((SIZE, SIZE)), brows=np.full((3, 2), 5.0), **kw)   # no span


def test_inflate_widens_towards_the_outline_and_keeps_roots(cam):
    # a ring of strands around the origin, inside a disc of hair twice as wide
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    t = np.linspace(0.0, 1.0, 8)[:, None]
    pts = np.stack([np.stack([0.02 * np.cos(a) * (1 + t[:, 0]), 0.02 * np.sin(a) * (1 + t[:, 0]),
                              np.zeros(8)], 1) for a in ang]).astype(np.float32)
    c = _rows_of(np.zeros((1, 3)), cam)[0]
    r_tip = np.linalg.norm(_rows_of(pts[:, -1], cam) - c, axis=1).mean()
    yy, xx = np.mgrid[:SIZE, :SIZE] + 0.5
    mask = (np.hypot(xx - c[0], yy - c[1]) < 1.25 * r_tip).astype(float)
    fit = fit_strand_tips(Strands(pts), cam, mask, inflate=0.3, inflate_ramp=0.01, max_extension=0.0,
                          tolerance=0.0, sectors=8)
    r_after = np.linalg.norm(_rows_of(fit.strands.points[:, -1], cam) - c, axis=1)
    assert 1.12 * r_tip < r_after.mean() < 1.31 * r_tip
    np.testing.assert_allclose(fit.strands.points[:, 0], pts[:, 0], atol=1e-6)
    again = fit_strand_tips(Strands(pts), cam, mask, inflate=0.3, inflate_ramp=0.01, max_extension=0.0,
                            tolerance=0.0, sectors=8)
    np.testing.assert_array_equal(again.strands.points, fit.strands.points)  # deterministic


def test_inflated_side_hair_in_front_of_the_head_slides_back_onto_it(cam):
    # 24 strands hanging down the side of a round head 50 deg round from the front (in front of
    # its widest part), under a mask wider than they are: inflation moves them across the view,
    # which took them off the temple (the astronaut's side hair hung as a flat curtain in front
    # of it in a turned view); with the head's SDF each moved point slides back along its ray,
    # so the photo sees it where it saw the planar move, but it stays about as close to the head
    head = uv_sphere(48, 32, radius=0.08)
    sdf = head_sdf_grid(head, spacing=0.005, margin=0.06)
    a = np.radians(50.0)
    one = np.stack([np.full(8, 0.081 * np.sin(a)), np.linspace(0.04, 0.0, 8), np.full(8, 0.081 * np.cos(a))], 1)
    pts = (one + np.linspace(0.0, 0.01, 24)[:, None, None] * np.array([0.0, 1.0, 0.0])).astype(np.float32)
    kw = {"mesh": head, "inflate": 0.3, "inflate_ramp": 0.01, "max_extension": 0.0, "tolerance": 0.0}
    flat, hug = (np.asarray(fit_strand_tips(Strands(pts), cam, np.ones((SIZE, SIZE)), sdf=f, **kw).strands.points,
                            np.float64) for f in (None, sdf))
    np.testing.assert_allclose(hug[:, 0], pts[:, 0], atol=1e-6)                    # roots stay
    # the same curve in the image (the fit resamples strands by arc length: not the same points)
    np.testing.assert_allclose(_rows_of(hug[:, -1], cam), _rows_of(flat[:, -1], cam), atol=0.02)
    dense = flat[:, :-1, None] + np.linspace(0.0, 1.0, 50)[None, None, :, None] * np.diff(flat, axis=1)[:, :, None]
    curve = _rows_of(dense.reshape(24, -1, 3), cam)
    img = _rows_of(hug, cam)
    assert np.linalg.norm(img[:, :, None] - curve[:, None], axis=-1).min(-1).max() < 0.5   # chords differ
    d = [np.asarray(sdf_lookup(sdf, x.reshape(-1, 3).astype(np.float32))).reshape(24, 8) for x in (pts, flat, hug)]
    assert (d[1][:, -1] > d[0][:, -1] + 0.002).all()                 # the planar move: off the head
    assert (d[2][:, -1] < d[1][:, -1] - 0.002).all()                 # slid back towards it
    assert np.median(d[2][:, -1] - d[0][:, -1]) < 0.002              # about where it was (a 5 mm grid)
    assert (hug[:, -1, 2] < flat[:, -1, 2] - 0.003).all()
    step = np.linalg.norm(np.diff(hug, axis=1), axis=2)
    assert step.max() < 2.0 * np.linalg.norm(np.diff(flat, axis=1), axis=2).max()  # no jump along a strand


def test_inflate_is_smooth_along_a_strand_that_crosses_sectors(cam):
    # a ring of strands in a disc of hair wider below the centre than above it, and one strand
    # hanging down beside the centre through the sectors' boundaries: its move varies with the
    # angle continuously (a factor per sector, looked up by nearest sector, kinked it at each
    # boundary: t1_face5's side hair ribbed every 5°)
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    t = np.linspace(0.0, 1.0, 8)[:, None]
    ring = np.stack([np.stack([0.02 * np.cos(a) * (1 + t[:, 0]), 0.02 * np.sin(a) * (1 + t[:, 0]),
                               np.zeros(8)], 1) for a in ang]).astype(np.float32)
    n = 64
    hang = np.stack([np.full(n, 0.035), np.linspace(0.03, -0.03, n), np.zeros(n)], 1).astype(np.float32)
    ring = np.concatenate([ring, np.repeat(ring[:, -1:], n - 8, axis=1)], 1)  # the same point count
    pts = np.concatenate([ring, hang[None]])
    c = _rows_of(np.zeros((1, 3)), cam)[0]
    r_tip = np.linalg.norm(_rows_of(ring[:, -1], cam) - c, axis=1).mean()
    yy, xx = np.mgrid[:SIZE, :SIZE] + 0.5
    radius = np.where(yy > c[1], 1.3, 1.05) * r_tip  # rows grow downwards
    mask = (np.hypot(xx - c[0], yy - c[1]) < radius).astype(float)
    fit = fit_strand_tips(Strands(pts), cam, mask, keep_mask=np.ones((SIZE, SIZE)), inflate=0.3,
                          inflate_ramp=0.001, max_extension=0.0, tolerance=0.0, sectors=8, max_move=1.0)
    out = np.asarray(fit.strands.points[-1], np.float64)
    x = out[:, 0]
    assert x.max() - x.min() > 0.002  # moved outwards, more below the centre than above it
    bend = np.abs(np.diff(x, 2))[3:]  # past the root's ramp
    assert bend.max() < 2e-4, bend.max()


def test_empty_strands_and_bad_input(cam):
    mask = np.zeros((SIZE, SIZE))
    empty = fit_strand_tips(Strands(np.zeros((0, 4, 3), np.float32)), cam, mask)
    assert empty.strands.num_strands == 0 and empty.length_after.shape == (0,)
    one = Strands(_vertical(0.0, 0.05, 0.0)[None])
    with pytest.raises(InputError, match="fit_strand_tips: hair_mask must have the camera's image shape"):
        fit_strand_tips(one, cam, np.zeros((5, 5)))
    with pytest.raises(InputError, match="fit_strand_tips: step must be a number > 0"):
        fit_strand_tips(one, cam, mask, step=0.0)
    with pytest.raises(InputError, match="fit_strand_tips: bend must be a number in"):
        fit_strand_tips(one, cam, mask, bend=2.0)
    with pytest.raises(InputError, match="fit_strand_tips: sectors"):
        fit_strand_tips(one, cam, mask, sectors=2)
    bad = Strands(np.full((1, 4, 3), np.nan, np.float32))
    with pytest.raises(InputError, match="NaN"):
        fit_strand_tips(bad, cam, mask)


def test_hair_running_off_the_image_grows_on_to_frame_length(cam):
    # hair all the way to the image's bottom row: a strand that reaches the frame is not seen
    # ending, so it grows on (unseen) to frame_length; without it, it stops at the frame
    pts = np.stack([_vertical(0.0, 0.05, 0.0), _vertical(0.01, 0.05, -0.4)])  # the second already leaves
    assert _rows_of(pts[1, -1:], cam)[0, 1] > SIZE
    mask = np.zeros((SIZE, SIZE))
    mask[:, 30:66] = 1.0
    kw = {"step": 0.004, "max_extension": 0.6, "tolerance": 0.0, "inflate": 0.0}
    stop = fit_strand_tips(Strands(pts), cam, mask, **kw)
    assert stop.extended.tolist() == [True, False]
    assert stop.length_after[0] < 0.3                  # ends just past the frame
    grow = fit_strand_tips(Strands(pts), cam, mask, frame_length=0.5, **kw)
    assert grow.extended.tolist() == [True, True]
    np.testing.assert_allclose(grow.length_after, 0.5, atol=0.0045)
    np.testing.assert_allclose(grow.strands.points[:, 0], pts[:, 0], atol=1e-6)
    # ... but not where the hair ends inside the frame, nor where the border pixel is background
    short = mask.copy()
    short[70:] = 0.0
    assert not fit_strand_tips(Strands(pts[:1]), cam, short, frame_length=0.5, **kw).length_after[0] > 0.3
    side = np.zeros((SIZE, SIZE))
    side[:, 30:66] = 1.0
    side[-1] = 0.0                                      # the frame's bottom row is background
    assert fit_strand_tips(Strands(pts), cam, side, frame_length=0.5, **kw).length_after[0] < 0.3
    # one unseen length per strand: where the photo cannot see them end, strands end raggedly
    each = fit_strand_tips(Strands(pts), cam, mask, frame_length=np.array([0.45, 0.5]), **kw)
    np.testing.assert_allclose(each.length_after, [0.45, 0.5], atol=0.0045)
    with pytest.raises(InputError, match="fit_strand_tips: frame_length"):
        fit_strand_tips(Strands(pts), cam, mask, frame_length=-1.0)
    with pytest.raises(InputError, match="fit_strand_tips: frame_length"):
        fit_strand_tips(Strands(pts), cam, mask, frame_length=np.array([0.5, 0.5, 0.5]))


def test_occluder_hides_hair_behind_the_head_centre(cam):
    # two strands falling past the hair's end onto the "body": the one behind the centre's
    # depth is hidden by it and kept, the one in front is seen on the body and trimmed
    back = _vertical(0.0, 0.05, -0.1, 16)
    back[:, 2] = -0.05
    front = _vertical(0.0, 0.05, -0.1, 16)
    front[:, 2] = 0.05
    pts = np.stack([back, front])
    row = float(_rows_of(np.array([[0.0, 0.0, 0.0]]), cam)[0, 1])
    mask = np.zeros((SIZE, SIZE))
    mask[: int(row)] = 1.0
    body = 1.0 - mask
    kw = {"max_extension": 0.0, "inflate": 0.0, "tolerance": 0.0}
    assert fit_strand_tips(Strands(pts), cam, mask, **kw).trimmed.tolist() == [True, True]
    fit = fit_strand_tips(Strands(pts), cam, mask, occluder=body, **kw)
    assert fit.trimmed.tolist() == [False, True]
    np.testing.assert_allclose(fit.strands.points[0], back, atol=1e-5)


def test_a_root_seen_on_bare_skin_drops_its_strand(cam):
    # hair above row(y = 0), skin below: a strand rooted 1 cm below the hairline that runs up
    # into the hair would leave its first points on the skin as a thin band
    up = _vertical(0.0, -0.01, 0.05)
    inside = _vertical(0.01, 0.05, 0.01)
    row = float(_rows_of(np.array([[0.0, 0.0, 0.0]]), cam)[0, 1])
    mask = np.zeros((SIZE, SIZE))
    mask[: int(row)] = 1.0
    kw = {"max_extension": 0.0, "inflate": 0.0, "tolerance": 0.0}
    kept = fit_strand_tips(Strands(np.stack([up, inside])), cam, mask, drop_bare_roots=False, **kw)
    assert not kept.trimmed.any() and not kept.dropped.any()
    fit = fit_strand_tips(Strands(np.stack([up, inside])), cam, mask, **kw)
    assert fit.dropped.tolist() == [True, False] and fit.trimmed.tolist() == [True, False]
    assert fit.length_after[0] == 0.0 and fit.length_after[1] > 0.03
    np.testing.assert_allclose(fit.strands.points[0], np.repeat(up[:1], len(up), 0), atol=1e-6)
    assert fit.summary()["dropped"] == 1


def test_seen_judges_points_as_the_fit_does(cam):
    # hair_portrait turns under only the ends the photo does not see when a hat hides the hair
    # (the wisps it shows are pushed out by the hat): in front of the head and beside it seen,
    # behind it or out of the image not
    from helpers import uv_sphere

    from machlib.hair._fit import _seen

    ball = uv_sphere(32, 24, radius=0.08)
    pts = np.array([[0.0, 0.0, 0.09], [0.0, 0.0, -0.09], [0.085, 0.0, 0.0], [0.0, 5.0, 0.0]])
    assert _seen(pts, cam, ball).tolist() == [True, False, True, False]
    assert _seen(pts[None], cam, ball).shape == (1, 4)
