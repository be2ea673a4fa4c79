"""Facial region masks in UV from the template landmarks, polygon signed distances and mask
morphology (dilate, erode, feather)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib.geometry import default_template, face_oval
from machlib.texture import dilate_mask, erode_mask, feather_mask, polygon_sdf, region_masks
from machlib.texture._regions import LIPS_INNER, LIPS_OUTER, RIGHT_BROW, RIGHT_EYE, RIGHT_NOSTRIL, mirrored

R = 128
NAMES = ["brows", "eyes", "face", "lips", "mouth", "nostrils"]


@pytest.fixture(scope="module")
def lm():
    return np.asarray(default_template().landmark_uv, np.float32)


@pytest.fixture(scope="module")
def masks(lm):
    return {k: np.asarray(v) for k, v in region_masks(lm, R).items()}


def _at(mask, p):
    """The mask's value at the texel containing the UV point ``p``."""
    r = mask.shape[0]
    return float(mask[int(p[1] * r), int(p[0] * r)])


# --------------------------------------------------------------------------------------------
# region masks


def test_masks_are_nonempty_soft_and_in_range(masks):
    assert sorted(masks) == NAMES
    for k, m in masks.items():
        assert m.shape == (R, R) and m.dtype == np.float32, k
        assert m.min() >= 0.0 and m.max() <= 1.0, k
        assert (m > 0.5).sum() >= 4, k  # every region covers texels at R = 128
    # rough areas (texels at R = 128) in the template's UV layout: the face is by far the largest
    assert masks["face"].sum() > 10 * max(masks[k].sum() for k in NAMES if k != "face")
    assert masks["mouth"].sum() >= masks["lips"].sum() > 0.5 * masks["mouth"].sum()


def test_masks_disjoint_and_nested(masks):
    for a, b in [("eyes", "brows"), ("eyes", "mouth"), ("eyes", "nostrils"), ("brows", "mouth"),
                 ("brows", "nostrils"), ("mouth", "nostrils"), ("lips", "nostrils")]:
        assert float((masks[a] * masks[b]).sum()) == 0.0, (a, b)
    # lips ⊆ mouth, every feature ⊆ face
    assert np.all(masks["lips"] <= masks["mouth"] + 1e-6)
    for k in ("eyes", "brows", "mouth", "nostrils", "lips"):
        assert np.all(masks[k] <= masks["face"] + 1e-6), k


def test_masks_are_left_right_symmetric(lm, masks):
    # the template's landmarks are mirror-symmetric about u = 0.5 ...
    right = np.concatenate([RIGHT_EYE, RIGHT_BROW, RIGHT_NOSTRIL])
    left = np.asarray(mirrored(tuple(int(i) for i in right)))
    np.testing.assert_allclose(lm[left, 0], 1.0 - lm[right, 0], atol=1e-5)
    np.testing.assert_allclose(lm[left, 1], lm[right, 1], atol=1e-5)
    # ... so are the masks (u → 1 − u is a column flip in the texel-centre convention)
    for k, m in masks.items():
        np.testing.assert_allclose(m, m[:, ::-1], atol=1e-4, err_msg=k)
    # and each paired region has half of its area on each side
    for k in ("eyes", "brows", "nostrils"):
        m = masks[k]
        assert m[:, : R // 2].sum() == pytest.approx(m[:, R // 2 :].sum(), rel=1e-4), k
        assert m[:, : R // 2].sum() > 0, k


def test_masks_contain_their_landmarks(lm, masks):
    exact = masks
    # grown by 2 texels, each region covers the texels of all its contour landmarks
    grown = {k: np.asarray(v) for k, v in region_masks(lm, R, dilate=2.0 / R).items()}
    for k, idx in (("eyes", RIGHT_EYE), ("brows", RIGHT_BROW), ("mouth", LIPS_OUTER), ("nostrils", RIGHT_NOSTRIL)):
        for side in (idx, mirrored(idx)):
            assert min(_at(grown[k], lm[i]) for i in side) == 1.0, k
            # the middle of the contour is inside the exact region (a brow is an arch: the middle
            # between its upper and lower edge, not the centroid of the arch)
            pts = lm[list(side)]
            middle = (pts[2] + pts[7]) / 2 if k == "brows" else pts.mean(0)
            assert _at(exact[k], middle) == 1.0, k
    assert _at(grown["eyes"], lm[468]) == 1.0  # the right iris centre
    assert _at(exact["mouth"], lm[list(LIPS_INNER)].mean(0)) == 1.0
    # the middle of the upper and the lower lip are lips
    assert _at(exact["lips"], (lm[0] + lm[13]) / 2) == 1.0
    assert _at(exact["lips"], (lm[17] + lm[14]) / 2) == 1.0
    # every landmark that is not on the face oval lies inside the face
    oval = set(np.asarray(face_oval()).tolist())
    assert min(_at(exact["face"], lm[i]) for i in range(478) if i not in oval) > 0.5
    # a point well outside the face (the UV square's corner) is in no region
    for k, m in exact.items():
        assert m[0, 0] == 0.0 and m[-1, -1] == 0.0, k


def test_dilate_grows_error_prone_regions_only(lm, masks):
    grown = {k: np.asarray(v) for k, v in region_masks(lm, R, dilate=0.02).items()}
    for k in ("eyes", "brows", "mouth", "nostrils"):
        assert np.all(grown[k] >= masks[k] - 1e-6), k
        assert grown[k].sum() > 1.5 * masks[k].sum(), k
    for k in ("face", "lips"):  # never grown
        np.testing.assert_allclose(grown[k], masks[k], atol=1e-6, err_msg=k)


def test_region_masks_jit_vmap_equals_loop(lm, masks):
    shifts = jnp.asarray([[0.0, 0.0], [0.05, 0.0], [0.0, -0.04]], jnp.float32)
    batched = jax.jit(jax.vmap(lambda d: region_masks(jnp.asarray(lm) + d, R)))(shifts)
    for k in NAMES:
        np.testing.assert_allclose(batched[k][0], masks[k], atol=1e-6, err_msg=k)
    for i in (1, 2):
        one = region_masks(jnp.asarray(lm) + shifts[i], R)
        for k in NAMES:
            np.testing.assert_allclose(batched[k][i], one[k], atol=1e-6, err_msg=f"{k}[{i}]")
    # shifting the landmarks by 0.05 in u moves the masks 0.05 · R texels to the right
    eyes = np.asarray(batched["eyes"])
    cols = np.arange(R) + 0.5
    centre = lambda m: (m.sum(0) * cols).sum() / m.sum()  # noqa: E731
    assert centre(eyes[1]) - centre(eyes[0]) == pytest.approx(0.05 * R, abs=0.25)


@pytest.mark.parametrize("case", ["few_landmarks", "3d_landmarks", "resolution", "dilate"])
def test_region_masks_bad_inputs(lm, case):
    args, kw = [lm, 32], {}
    if case == "few_landmarks":
        args[0] = lm[:468]
    elif case == "3d_landmarks":
        args[0] = np.zeros((478, 3), np.float32)
    elif case == "resolution":
        args[1] = 0
    else:
        kw["dilate"] = -0.01
    with pytest.raises((ValueError, TypeError), match="region_masks"):
        region_masks(*args, **kw)


# --------------------------------------------------------------------------------------------
# polygon signed distance


def _sdf_reference(poly, r):
    """Brute force: distance to the nearest segment, sign by the even-odd rule (ray to +u)."""
    poly = np.asarray(poly, np.float64)
    c = (np.arange(r) + 0.5) / r
    u, v = np.meshgrid(c, c)
    p = np.stack([u, v], -1)[:, :, None, :]
    a, b = poly[None, None], np.roll(poly, -1, 0)[None, None]
    e = b - a
    t = np.clip(((p - a) * e).sum(-1) / (e * e).sum(-1), 0.0, 1.0)
    d = np.sqrt((((p - a) - t[..., None] * e) ** 2).sum(-1)).min(-1)
    ay, by = a[..., 1], b[..., 1]
    x_cross = a[..., 0] + (p[..., 1] - ay) * e[..., 0] / np.where(e[..., 1] != 0, e[..., 1], 1.0)
    crosses = ((ay > p[..., 1]) != (by > p[..., 1])) & (p[..., 0] < x_cross)
    inside = crosses.sum(-1) % 2 == 1
    return np.where(inside, -d, d)


def test_polygon_sdf_square_and_docstring_values():
    square = np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]], np.float32)
    d = np.asarray(polygon_sdf(square, 8))
    assert d.shape == (8, 8)
    assert d[4, 4] == pytest.approx(-0.1875) and d[0, 0] == pytest.approx(np.hypot(0.1875, 0.1875))
    inside = np.zeros((8, 8), bool)
    inside[2:6, 2:6] = True
    assert np.all(d[inside] < 0) and np.all(d[~inside] > 0)
    # orientation and starting vertex do not matter
    np.testing.assert_allclose(polygon_sdf(square[::-1], 8), d, atol=1e-7)
    np.testing.assert_allclose(polygon_sdf(np.roll(square, 1, 0), 8), d, atol=1e-7)


def test_polygon_sdf_matches_brute_force_on_a_concave_polygon():
    # an L-shaped (concave) polygon and a star: a random-ish simple polygon with reflex vertices
    ell = np.array([[0.1, 0.1], [0.6, 0.1], [0.6, 0.4], [0.35, 0.4], [0.35, 0.9], [0.1, 0.9]])
    k = np.arange(10)
    rad = np.where(k % 2 == 0, 0.4, 0.17)
    star = 0.5 + np.stack([rad * np.cos(2 * np.pi * k / 10 + 0.1), rad * np.sin(2 * np.pi * k / 10 + 0.1)], -1)
    with x64():
        for poly in (ell, star):
            out = np.asarray(polygon_sdf(jnp.asarray(poly), 40))
            np.testing.assert_allclose(out, _sdf_reference(poly, 40), atol=1e-12)
    # |∇d| = 1 away from the medial axis: neighbouring texels differ by at most one texel width
    d = np.asarray(polygon_sdf(star, 40))
    assert np.abs(np.diff(d, axis=0)).max() <= 1.0 / 40 + 1e-6
    assert np.abs(np.diff(d, axis=1)).max() <= 1.0 / 40 + 1e-6


def test_polygon_sdf_gradient_matches_finite_differences():
    tri = np.array([[0.13, 0.21], [0.81, 0.33], [0.41, 0.87]])
    with x64():
        check_grads(jax.jit(lambda p: polygon_sdf(p, 6)), (jnp.asarray(tri),), order=1, modes=["rev"], eps=1e-7)
        # moving the whole polygon by δ changes the distance field by −δ·∇d: for a texel whose
        # nearest feature is an edge's interior, d/dshift = −(edge normal)
        g = jax.jit(jax.grad(lambda s: polygon_sdf(jnp.asarray(tri) + s, 6)[0, 3]))(jnp.zeros(2))
        assert float(jnp.linalg.norm(g)) == pytest.approx(1.0, abs=1e-9)


def test_polygon_sdf_jit_vmap_equals_loop():
    base = jnp.asarray([[0.2, 0.2], [0.8, 0.25], [0.5, 0.8]], jnp.float32)
    polys = jnp.stack([base, base + 0.05, base * 0.9])
    batched = jax.jit(jax.vmap(lambda p: polygon_sdf(p, 16)))(polys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], polygon_sdf(polys[i], 16), atol=1e-6)


@pytest.mark.parametrize("case", ["two_vertices", "3d", "resolution", "float_resolution"])
def test_polygon_sdf_bad_inputs(case):
    poly, r = np.array([[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]), 8
    if case == "two_vertices":
        poly = poly[:2]
    elif case == "3d":
        poly = np.zeros((4, 3))
    elif case == "resolution":
        r = 0
    else:
        r = 8.0
    with pytest.raises((ValueError, TypeError), match="polygon_sdf"):
        polygon_sdf(poly, r)


# --------------------------------------------------------------------------------------------
# morphology


def _random_masks(n=24, seed=0):
    rng = np.random.default_rng(seed)
    binary = (rng.uniform(size=(n, n)) > 0.8).astype(np.float32)
    binary[6:14, 8:20] = 1.0
    soft = np.asarray(feather_mask(binary, 1.0))
    return binary, soft


def test_dilate_contains_mask_contains_erode():
    ms = np.stack(_random_masks())  # a binary and a soft mask
    dil = {r: np.asarray(jax.vmap(lambda x, r=r: dilate_mask(x, r))(ms)) for r in (1, 2, 3)}
    ero = {r: np.asarray(jax.vmap(lambda x, r=r: erode_mask(x, r))(ms)) for r in (1, 2, 3)}
    for r in (1, 2, 3):
        d, e = dil[r], ero[r]
        assert np.all(d >= ms) and np.all(ms >= e - 1e-6), r  # erode = 1 − dilate(1 − m): rounding
        for i in range(2):
            assert d[i].sum() > ms[i].sum() > e[i].sum(), r
        if r > 1:  # growing is monotone in the radius
            assert np.all(d >= dil[r - 1]) and np.all(e <= ero[r - 1] + 1e-6), r
    np.testing.assert_array_equal(dilate_mask(ms[1], 0), ms[1])
    np.testing.assert_allclose(erode_mask(ms[1], 0), ms[1], atol=1e-6)


def test_dilate_structuring_element_is_a_symmetric_octagon():
    point = np.zeros((15, 15), np.float32)
    point[7, 7] = 1.0
    sizes = {1: 9, 2: 21}
    for r in (1, 2, 3, 4):
        d = np.asarray(dilate_mask(point, r))
        assert set(np.unique(d)) == {0.0, 1.0}
        if r in sizes:
            assert int(d.sum()) == sizes[r]
        # symmetric under the square's symmetries, inside the r-square, containing the r-cross
        for img in (d.T, d[::-1], d[:, ::-1]):
            np.testing.assert_array_equal(img, d)
        ii, jj = np.nonzero(d)
        assert np.abs(ii - 7).max() == r and np.abs(jj - 7).max() == r
        assert d[7, 7 - r : 8 + r].all() and d[7 - r : 8 + r, 7].all()
        # an approximate disk: everything within 0.7 r is in, nothing beyond √2 r
        dist = np.hypot(*np.meshgrid(np.arange(15) - 7, np.arange(15) - 7))
        assert d[dist <= 0.7 * r].all() and not d[dist > np.sqrt(2) * r + 1e-9].any()
    # erode is the dual of dilate; the edge is repeated at the image border
    m = _random_masks()[1]
    np.testing.assert_allclose(erode_mask(m, 2), 1.0 - np.asarray(dilate_mask(1.0 - m, 2)), atol=1e-7)
    np.testing.assert_array_equal(erode_mask(np.ones((8, 8), np.float32), 3), 1.0)
    np.testing.assert_array_equal(dilate_mask(np.zeros((8, 8), np.float32), 3), 0.0)


def test_morphology_accepts_bool_and_int_masks():
    """The docstrings: "bool and int masks are converted to float32"."""
    point = np.zeros((9, 9), bool)
    point[4, 4] = True
    for m in (point, point.astype(np.int32)):
        d = dilate_mask(m, 1)
        assert d.dtype == jnp.float32 and float(d.sum()) == 9.0
        assert float(erode_mask(m, 1).sum()) == 0.0


def test_feather_range_monotone_and_symmetric():
    step = np.zeros((16, 24), np.float32)
    step[:, 12:] = 1.0
    for sigma in (0.7, 2.0, 3.5):
        soft = np.asarray(feather_mask(step, sigma))
        assert soft.min() >= 0.0 and soft.max() <= 1.0 + 1e-6
        row = soft[5]
        assert np.all(np.diff(row) >= -1e-7), sigma  # monotone across the edge
        assert 0.0 < row[11] < 0.5 < row[12] < 1.0, sigma
        np.testing.assert_allclose(row[11::-1] + row[12:], 1.0, atol=1e-6)  # symmetric about the edge
        np.testing.assert_allclose(soft, np.broadcast_to(row, soft.shape), atol=1e-6)  # a straight edge
    # wider σ → softer: the value next to the edge moves toward 0.5
    a, b = (np.asarray(feather_mask(step, s))[0, 12] for s in (1.0, 3.0))
    assert 0.5 < b < a
    # constants stay constant (edge padding), σ = 0 is the identity
    np.testing.assert_allclose(feather_mask(np.full((10, 10), 0.3, np.float32), 2.0), 0.3, atol=1e-6)
    np.testing.assert_array_equal(feather_mask(step, 0.0), step)


def _edge_padded_gaussian(x, sigma):
    """numpy reference of the separable Gaussian blur with edge padding (float64)."""
    half = max(1, int(np.ceil(3.0 * sigma)))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(np.asarray(x, np.float64), ((half, half), (half, half)), mode="edge")
    h, w = x.shape
    rows = sum(k[i] * p[i:i + h] for i in range(k.size))
    return sum(k[i] * rows[:, i:i + w] for i in range(k.size))


def test_feather_short_and_long_kernels_match_reference():
    # short kernels are summed shifted copies, long ones a banded matrix with the edge padding
    # folded into its first and last columns (a kernel longer than the image included)
    rng = np.random.default_rng(3)
    for shape in ((1, 1), (2, 7), (13, 40), (33, 21)):
        m = rng.random(shape).astype(np.float32)
        for sigma in (0.6, 2.5, 5.0, 5.4, 9.0, 30.0):
            np.testing.assert_allclose(feather_mask(m, sigma), _edge_padded_gaussian(m, sigma), atol=2e-6,
                                       err_msg=f"{shape} sigma={sigma}")
    # colour images (channels moved first for the shifted copies) blur each channel alike
    from machlib.texture._regions import _blur

    rgb = rng.random((17, 26, 3)).astype(np.float32)
    for sigma in (1.5, 5.0, 9.0):
        want = np.stack([_edge_padded_gaussian(rgb[..., c], sigma) for c in range(3)], -1)
        np.testing.assert_allclose(_blur(jnp.asarray(rgb), sigma), want, atol=2e-6, err_msg=f"rgb sigma={sigma}")


def test_feather_long_kernel_gradient_jit_vmap():
    with x64():
        m = jax.random.uniform(jax.random.PRNGKey(1), (6, 11), jnp.float64)
        check_grads(jax.jit(lambda x: feather_mask(x, 7.0)), (m,), order=1, modes=["fwd", "rev"], eps=1e-6)
    batch = jax.random.uniform(jax.random.PRNGKey(2), (3, 12, 9))
    np.testing.assert_allclose(jax.vmap(lambda x: feather_mask(x, 8.0))(batch),
                               np.stack([feather_mask(x, 8.0) for x in batch]), atol=1e-6)


def test_feather_gradient_matches_finite_differences():
    with x64():
        m = jax.random.uniform(jax.random.PRNGKey(0), (7, 9), jnp.float64)
        check_grads(jax.jit(lambda x: feather_mask(x, 1.3)), (m,), order=1, modes=["rev"], eps=1e-6)


def test_morphology_jit_vmap_equals_loop():
    batch = jnp.stack([jnp.asarray(m) for m in _random_masks()])
    for fn, arg in ((dilate_mask, 2), (erode_mask, 3), (feather_mask, 1.5)):
        f = lambda x, fn=fn, arg=arg: fn(x, arg)  # noqa: E731
        looped = jnp.stack([f(x) for x in batch])
        np.testing.assert_allclose(jax.jit(jax.vmap(f))(batch), looped, atol=1e-6, err_msg=fn.__name__)


@pytest.mark.parametrize(
    "fn, arg, bad",
    [
        (dilate_mask, -1, "radius"),
        (dilate_mask, 1.5, "radius"),
        (dilate_mask, 1, "mask"),
        (erode_mask, -2, "radius"),
        (erode_mask, 1, "mask"),
        (feather_mask, -1.0, "sigma"),
        (feather_mask, 1.0, "mask"),
    ],
)
def test_morphology_bad_inputs(fn, arg, bad):
    mask = np.zeros((8, 8, 3), np.float32) if bad == "mask" else np.zeros((8, 8), np.float32)
    with pytest.raises((ValueError, TypeError), match=fn.__name__):
        fn(mask, arg)
