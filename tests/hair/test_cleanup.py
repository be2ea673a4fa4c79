"""Strand clean-up and fitting: smoothing, uniform resampling and lengths (jit == eager, vmap ==
loop, float64 gradients), the removal rules of cleanup_strands, template → fitted transfer, and
bad inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64
from jax.test_util import check_grads

from machlib import Camera, Mesh, project
from machlib.geometry import procedural_template
from machlib.hair import (
    HAIR_STYLES,
    CleanupResult,
    HeadSDF,
    Strands,
    cleanup_strands,
    grow_style,
    resample_strands,
    resample_uniform,
    sdf_lookup,
    smooth_strands,
    strand_lengths,
    transfer_strands,
)
from machlib.hair._growth import _closest_on_triangles
from machlib.hair._styles import _cached_sdf


@pytest.fixture(scope="module")
def template():
    return procedural_template()  # checked against the procedural head's analytic SDF


@pytest.fixture(scope="module")
def sdf(template):
    return _cached_sdf(template.mesh)


@pytest.fixture(scope="module")
def bob(template, sdf):
    # test_growth's shape (96 x 24): one compiled integrator serves both modules in one process
    return grow_style(jax.random.key(0), HAIR_STYLES["bob"], template, n_strands=96, n_points=24, sdf=sdf)


def _noisy(key, s=3, p=12, dtype=jnp.float32):
    t = jnp.linspace(0.0, 0.1, p, dtype=dtype)[:, None]
    line = t * jnp.array([0.2, -1.0, 0.3], dtype)
    return line[None] + 0.004 * jax.random.normal(key, (s, p, 3), dtype)


def _arc(pts):
    return np.linalg.norm(np.diff(np.asarray(pts, np.float64), axis=1), axis=2).sum(1)


# --- smoothing --------------------------------------------------------------------------------


def test_smooth_reduces_noise_keeps_root_and_lines():
    x = _noisy(jax.random.key(1))
    y = smooth_strands(x, iterations=20, strength=0.5)
    np.testing.assert_array_equal(np.asarray(y[:, 0]), np.asarray(x[:, 0]))
    second = lambda a: np.abs(np.diff(np.asarray(a), 2, axis=1)).mean()  # noqa: E731
    assert second(y) < 0.2 * second(x)
    line = jnp.linspace(0.0, 1.0, 9)[None, :, None] * jnp.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(np.asarray(smooth_strands(line, iterations=50, strength=0.8)), np.asarray(line),
                               atol=1e-5)
    # stable at the largest strength, and two-point strands are left alone
    assert np.isfinite(np.asarray(smooth_strands(x, iterations=500, strength=0.8))).all()
    two = x[:, :2]
    np.testing.assert_array_equal(np.asarray(smooth_strands(two, iterations=3)), np.asarray(two))


def test_smooth_jit_eager_vmap_and_grads():
    x = _noisy(jax.random.key(2))
    out = smooth_strands(x, iterations=3, strength=0.4)
    with jax.disable_jit():
        eager = smooth_strands(x, iterations=3, strength=0.4)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(out), atol=1e-6)
    batch = jnp.stack([x, 2.0 * x])
    vm = jax.vmap(lambda b: smooth_strands(b, iterations=3, strength=0.4))(batch)
    for i in range(2):
        np.testing.assert_allclose(np.asarray(vm[i]), np.asarray(smooth_strands(batch[i], iterations=3, strength=0.4)),
                                   atol=1e-6)
    with x64():
        x64_ = _noisy(jax.random.key(3), 2, 6, jnp.float64)
        check_grads(lambda p, s: smooth_strands(p, iterations=3, strength=s), (x64_, jnp.float64(0.3)), order=1,
                    modes=["rev"], eps=1e-6)


# --- resampling and lengths -------------------------------------------------------------------


def test_resample_uniform_spacing_ends_and_repeated_tips():
    x = np.asarray(_noisy(jax.random.key(4), 4, 10), np.float64)
    x[1, 6:] = x[1, 5]  # stopped early: the tail repeats the tip
    x[2] = x[2, 0]  # zero length
    y = np.asarray(resample_uniform(jnp.asarray(x, jnp.float32), n_points=17), np.float64)
    assert y.shape == (4, 17, 3)
    np.testing.assert_allclose(y[:, 0], x[:, 0], atol=1e-7)
    np.testing.assert_allclose(y[[0, 1, 3], -1], x[[0, 1, 3], -1], atol=1e-7)
    np.testing.assert_allclose(y[2], np.broadcast_to(x[2, 0], (17, 3)), atol=1e-7)
    seg = np.linalg.norm(np.diff(y, axis=1), axis=2)
    for i in (0, 1, 3):
        assert seg[i].min() > 0  # no repeated points left
    # the same points as the numpy resampler of the trimmed strand (chords of the polyline)
    ref = resample_strands([x[1, :6]], 17)[0]
    np.testing.assert_allclose(y[1], ref, atol=2e-6)
    # on a straight strand the spacing is exactly uniform
    line = np.linspace(0, 1, 5)[:, None] ** 2 * np.array([0.0, -0.2, 0.1])
    z = np.asarray(resample_uniform(jnp.asarray(line[None]), n_points=9), np.float64)[0]
    np.testing.assert_allclose(np.linalg.norm(np.diff(z, axis=0), axis=1), np.linalg.norm(line[-1]) / 8, rtol=1e-5)
    assert resample_uniform(jnp.asarray(x, jnp.float32)).shape == (4, 10, 3)  # n_points=None keeps P


def test_resample_and_lengths_jit_eager_vmap_and_grads():
    x = _noisy(jax.random.key(5), 3, 8)
    out = resample_uniform(x, n_points=11)
    with jax.disable_jit():
        eager = resample_uniform(x, n_points=11)
        eager_len = strand_lengths(x)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(out), atol=1e-6)
    np.testing.assert_allclose(np.asarray(eager_len), _arc(x), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(strand_lengths(x)), _arc(x), rtol=1e-5)
    batch = jnp.stack([x, x[:, ::-1]])
    vm = jax.vmap(lambda b: resample_uniform(b, n_points=11))(batch)
    vl = jax.vmap(strand_lengths)(batch)
    for i in range(2):
        np.testing.assert_allclose(np.asarray(vm[i]), np.asarray(resample_uniform(batch[i], n_points=11)), atol=1e-6)
        np.testing.assert_allclose(np.asarray(vl[i]), np.asarray(strand_lengths(batch[i])), rtol=1e-6)
    with x64():
        g = _noisy(jax.random.key(6), 2, 6, jnp.float64)  # generic: no sample on a kink
        check_grads(lambda p: resample_uniform(p, n_points=9), (g,), order=1, modes=["rev"], eps=1e-7)
        check_grads(strand_lengths, (g,), order=1, modes=["rev"], eps=1e-6)
        # a repeated tip: gradients stay finite
        rep = g.at[:, 4:].set(g[:, 3:4])
        jac = jax.jacrev(lambda p: resample_uniform(p, n_points=7))(rep)
        assert np.isfinite(np.asarray(jac)).all()


# --- clean-up ---------------------------------------------------------------------------------


def _frontal_camera(size=96):
    # OpenCV camera 0.6 m in front of the face, looking at it (rotation of pi about x)
    return Camera(jnp.array([np.pi, 0.0, 0.0]), jnp.array([0.0, 0.02, 0.6]), jnp.array([100.0, 100.0]),
                  jnp.array([size / 2, size / 2]), image_size=(size, size))


def _mask_of(points, cam, size=96):
    xy = np.asarray(project(jnp.asarray(points.reshape(-1, 3)), cam))
    m = np.zeros((size, size), np.float32)
    ok = (xy >= 0).all(1) & (xy < size).all(1)
    m[np.floor(xy[ok, 1]).astype(int), np.floor(xy[ok, 0]).astype(int)] = 1.0
    return m


def test_cleanup_rules(bob, sdf, template):
    good = np.asarray(bob.points)
    root = good[0, 0]
    p = good.shape[1]
    t = np.linspace(0.0, 1.0, p, dtype=np.float32)[:, None]
    short = root + t * np.array([0.0, 0.004, 0.0], np.float32)
    into = root + t * (np.array([0.0, 0.0, 0.0], np.float32) - root)  # root -> head centre
    side = np.array([0.16, 0.02, 0.0], np.float32) + t * np.array([0.1, 0.0, 0.0], np.float32)  # sticks out sideways
    far = root + t * np.array([0.0, 0.9, 0.0], np.float32)  # a 0.9 m spike up
    pts = np.concatenate([good, np.stack([short, into, side, far])]).astype(np.float32)
    n = len(good)
    strands = Strands(pts, np.tile([[0.1, 0.2, 0.3]], (n + 4, 1)).astype(np.float32),
                      np.arange(n + 4, dtype=np.float32))
    cam = _frontal_camera()
    mask = _mask_of(good, cam)
    res = cleanup_strands(strands, sdf=sdf, silhouette=mask, camera=cam)
    assert isinstance(res, CleanupResult)
    assert res.keep.tolist() == [True] * n + [False] * 4
    assert res.reasons == {"short": 1, "penetrating": 1, "silhouette": 1, "outlier": 1}
    assert res.removed_fraction == pytest.approx(4 / (n + 4))
    out = np.asarray(res.strands.points)
    assert out.shape == (n, p, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(res.strands.thickness), np.arange(n, dtype=np.float32))
    np.testing.assert_allclose(out[:, 0], good[:, 0], atol=1e-6)  # roots stay
    seg = np.linalg.norm(np.diff(out, axis=1), axis=2)
    # uniform, up to the final push out of the head (a percent where it moves points, or 50 µm on
    # the short fringe strands, whose segments are about 1 mm)
    np.testing.assert_allclose(seg, np.broadcast_to(seg.mean(1, keepdims=True), seg.shape), rtol=1e-2, atol=5e-5)
    # the kept strands are nearly what they were (smoothing is gentle), and outside the head
    np.testing.assert_allclose(_arc(out), _arc(good), rtol=0.15)
    assert np.asarray(sdf_lookup(sdf, out[:, 1:].reshape(-1, 3))).min() > -2e-3
    # without the sdf and the mask only the outlier rule is left: it catches the spike
    res2 = cleanup_strands(strands, min_length=0.0)
    assert res2.reasons["short"] == 0 and res2.reasons["penetrating"] == 0 and res2.reasons["silhouette"] == 0
    assert not res2.keep[n + 3] and res2.keep[:n].all()


def test_cleanup_edge_cases():
    empty = cleanup_strands(Strands(np.zeros((0, 5, 3), np.float32)), n_points=4)
    assert empty.strands.points.shape == (0, 4, 3) and empty.removed_fraction == 0.0
    every = cleanup_strands(Strands(np.zeros((3, 5, 3), np.float32)))
    assert every.reasons["short"] == 3 and every.strands.num_strands == 0 and every.removed_fraction == 1.0


# --- transfer ---------------------------------------------------------------------------------


def _moved(mesh, fn):
    return Mesh(fn(np.asarray(mesh.vertices, np.float64)), mesh.faces, mesh.uv, mesh.faces_uv)


def _surface_distance(q, mesh):
    from scipy.spatial import cKDTree

    v, f = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces)
    tri = v[f]
    _, cand = cKDTree(tri.mean(1)).query(q, k=32)
    best = np.full(len(q), np.inf)
    for i in range(cand.shape[1]):
        t = tri[cand[:, i]]
        best = np.minimum(best, np.linalg.norm(q - _closest_on_triangles(q, t[:, 0], t[:, 1], t[:, 2]), axis=1))
    return best


def test_transfer_identity_translation_and_warp(bob, template):
    src = template.mesh
    pts = np.asarray(bob.points, np.float64)
    same = transfer_strands(bob, src, template)  # a Template is accepted (its .mesh)
    np.testing.assert_allclose(np.asarray(same.points), pts, atol=1e-6)
    shift = np.array([0.01, -0.02, 0.005])
    moved = transfer_strands(bob, src, _moved(src, lambda v: v + shift))
    np.testing.assert_allclose(np.asarray(moved.points), pts + shift, atol=2e-6)
    np.testing.assert_array_equal(np.asarray(moved.color), np.asarray(bob.color))

    def warp(v):
        return v * np.array([1.08, 0.95, 1.03]) + np.array([0.0, 0.01, -0.005]) + 0.004 * np.sin(30.0 * v[:, [1, 2, 0]])

    tgt = _moved(src, warp)
    out = np.asarray(transfer_strands(bob, src, tgt, k=8).points, np.float64)
    assert _surface_distance(out[:, 0], tgt).max() < 1e-4  # roots on the fitted head
    # continuous along the strand: neighbouring points' displacements differ little
    d = out - pts
    step = np.linalg.norm(np.diff(d, axis=1), axis=2)
    assert step.max() < 0.01
    # the bulk follows the linear part of the warp (about the scale of the head)
    lin = pts * np.array([1.08, 0.95, 1.03]) + np.array([0.0, 0.01, -0.005]) - pts
    assert np.median(np.linalg.norm(d - lin, axis=2)) < 0.006


def test_transfer_pushes_out_of_the_target(bob, template):
    src = template.mesh
    tgt = _moved(src, lambda v: v * 1.06)  # the head grows under the strands
    base = _cached_sdf(src)  # the SDF of a scaled head is the scaled SDF: no second grid build
    tsdf = HeadSDF(base.values * 1.06, base.origin * 1.06, base.spacing * 1.06)
    raw = np.asarray(transfer_strands(bob, src, tgt, root_blend=0.001).points)
    pushed = np.asarray(transfer_strands(bob, src, tgt, target_sdf=tsdf, clearance=0.001).points)
    d_pushed = np.asarray(sdf_lookup(tsdf, pushed[:, 1:].reshape(-1, 3)))
    assert d_pushed.min() > 0.001 - 3e-4
    assert np.abs(np.asarray(sdf_lookup(tsdf, raw[:, 0]))).max() < 2e-3  # roots on the surface
    np.testing.assert_array_equal(pushed[:, 0], raw[:, 0])


# --- bad inputs -------------------------------------------------------------------------------


def test_bad_inputs_raise(bob, template):
    x = jnp.zeros((2, 5, 3))
    for fn in (smooth_strands, resample_uniform, strand_lengths):
        with pytest.raises((ValueError, TypeError), match=fn.__name__):
            fn(jnp.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="smooth_strands"):
        smooth_strands(x, strength=0.9)
    with pytest.raises(ValueError, match="smooth_strands"):
        smooth_strands(x, iterations=-1)
    with pytest.raises(ValueError, match="resample_uniform"):
        resample_uniform(x, n_points=1)
    with pytest.raises(ValueError, match="resample_uniform"):
        resample_uniform(jnp.zeros((2, 1, 3)))
    with pytest.raises((ValueError, TypeError), match="cleanup_strands"):
        cleanup_strands(np.zeros((2, 5, 3)))
    s = Strands(np.zeros((2, 5, 3), np.float32))
    cam = _frontal_camera()
    for kw in (dict(min_length=-1.0), dict(outlier_fraction=2.0), dict(outlier_k=0.0), dict(n_points=1),
               dict(smooth_strength=0.0), dict(silhouette=np.ones((96, 96))), dict(camera=cam),
               dict(silhouette=np.ones((32, 96)), camera=cam), dict(smooth_iterations=-2)):
        with pytest.raises((ValueError, TypeError), match="cleanup_strands"):
            cleanup_strands(s, **kw)
    bad = Mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.zeros((3, 2)), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="transfer_strands"):
        transfer_strands(bob, template.mesh, bad)
    with pytest.raises(ValueError, match="transfer_strands"):
        transfer_strands(bob, template.mesh, "head")
    with pytest.raises(ValueError, match="transfer_strands"):
        transfer_strands(bob, template.mesh, template.mesh, k=0)
    with pytest.raises(ValueError, match="transfer_strands"):
        transfer_strands(bob, template.mesh, template.mesh, root_blend=0.0)


def test_public_surface():
    import inspect

    from machlib.hair import _cleanup

    for name in _cleanup.__all__:
        obj = getattr(_cleanup, name)
        assert inspect.getdoc(obj), name
        if inspect.isfunction(obj):
            params = list(inspect.signature(obj).parameters.values())
            assert all(p.kind == p.KEYWORD_ONLY for p in params if p.default is not p.empty), name


def test_cleanup_to_count_grows_a_margin_and_thins_evenly():
    from machlib.hair import cleanup_to_count

    asked = []

    def grow(n):  # every third strand too short; deterministic in n
        asked.append(n)
        t = np.linspace(0, 1, 4)[None, :, None]
        length = np.where(np.arange(n) % 3 == 0, 0.001, 0.02)[:, None, None]
        x = np.arange(n, dtype=np.float32)[:, None, None] * np.array([1e-4, 0, 0])
        return Strands((x + t * length * np.array([0, 0, 1.0])).astype(np.float32))

    res = cleanup_to_count(grow, lambda s: cleanup_strands(s, min_length=0.01), 90)
    assert res.strands.num_strands == 90 and len(asked) == 2  # 4 % margin was not enough: a second round
    xs = np.asarray(res.strands.points)[:, 0, 0]
    assert np.all(np.diff(xs) > 0) and xs[-1] > 0.9 * 1e-4 * (asked[-1] - 1)  # spread over every root
    assert cleanup_to_count(grow, lambda s: cleanup_strands(s, min_length=0.01), 0).strands.num_strands == 0
    with pytest.raises(ValueError, match="n_strands"):
        cleanup_to_count(grow, lambda s: s, -1)
