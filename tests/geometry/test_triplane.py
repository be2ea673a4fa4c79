"""Triplane (UV position map): uv_raster, encode, decode, round trips on the default template."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from helpers import assert_tree_allclose, quad_patch, small_mesh, x64
from machlib import Mesh
from machlib.geometry import (
    UVRaster,
    decode,
    decode_mesh,
    procedural_template,
    encode,
    encode_mesh,
    uv_raster,
)


@pytest.fixture(scope="module")
def template():
    return procedural_template()


@pytest.fixture(scope="module")
def sphere_raster():
    m = small_mesh()
    return m, uv_raster(m, 16)


def _texel_centres(R):
    c = (np.arange(R) + 0.5) / R
    U, V = np.meshgrid(c, c)
    return np.stack([U, V], -1)


# --------------------------------------------------------------------------------------------
# uv_raster


def test_uv_raster_structure(sphere_raster):
    m, r = sphere_raster
    assert isinstance(r, UVRaster) and r.resolution == 16
    assert r.corners.shape == (16, 16, 3) and r.corners.dtype == jnp.int32
    assert r.bary.shape == (16, 16, 3) and r.mask.shape == (16, 16) and r.mask.dtype == jnp.bool_
    corners, bary, mask = (np.asarray(x) for x in (r.corners, r.bary, r.mask))
    assert mask.mean() > 0.9
    assert corners.min() >= 0 and corners.max() < m.num_vertices
    # inside and (clamped) outside the chart: convex weights
    np.testing.assert_allclose(bary.sum(-1), 1.0, atol=1e-5)
    assert bary.min() >= -1e-6
    # each texel's corners form a face of the mesh
    faces = {tuple(sorted(f)) for f in np.asarray(m.faces).tolist()}
    assert all(tuple(sorted(c)) in faces for c in corners.reshape(-1, 3).tolist())


def test_uv_raster_fills_outside_with_nearest_surface_point():
    """A chart covering only [0, 0.5]²: outside texels take the nearest point of the nearest
    covered texel's triangle, which is on the surface and within a texel of the nearest point."""
    q = quad_patch(2)
    half = Mesh(q.vertices, q.faces, 0.5 * np.asarray(q.uv), q.faces_uv)  # vertex xy = 2 * uv
    R = 8
    r = uv_raster(half, R)
    mask = np.asarray(r.mask)
    assert mask[:4, :4].all() and not mask[4:].any() and not mask[:, 4:].any()
    tp = np.asarray(encode(jnp.asarray(half.vertices, jnp.float32), r))
    c = _texel_centres(R)
    exact = np.clip(2.0 * c, 0.0, 1.0)
    np.testing.assert_allclose(tp[mask][:, :2], exact[mask], atol=1e-6)
    assert np.abs(tp[..., :2] - exact).max() <= 2.0 / R + 1e-6  # one texel, in position units
    assert tp[..., :2].min() >= 0.0 and tp[..., :2].max() <= 1.0 and np.all(tp[..., 2] == 0)
    np.testing.assert_allclose(np.asarray(r.bary).sum(-1), 1.0, atol=1e-6)
    assert np.asarray(r.bary).min() >= 0.0


def test_uv_raster_errors():
    m = quad_patch(2)
    for bad in (1, 0, -3):
        with pytest.raises(ValueError, match="resolution"):
            uv_raster(m, bad)
    with pytest.raises((ValueError, TypeError), match="resolution"):
        uv_raster(m, 8.0)
    tiny = Mesh(np.eye(3), np.array([[0, 1, 2]]), np.array([[0.01, 0.01], [0.02, 0.01], [0.01, 0.02]]),
                np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="cover no texel"):
        uv_raster(tiny, 8)


# --------------------------------------------------------------------------------------------
# encode / decode on exact cases


def test_encode_linear_patch_is_exact():
    """Vertices that are a linear function of UV are reproduced exactly at every texel centre."""
    q = quad_patch(3, size=2.0)
    tp, mask = encode_mesh(q, 12)
    assert tp.shape == (12, 12, 3) and bool(mask.all())
    c = _texel_centres(12)
    np.testing.assert_allclose(np.asarray(tp[..., :2]), 2.0 * c, atol=1e-6)
    np.testing.assert_allclose(np.asarray(tp[..., 2]), 0.0, atol=0)


def test_decode_known_values():
    ramp = jnp.arange(4.0)[None, :, None] * jnp.ones((4, 1, 1))
    out = decode(ramp, jnp.array([[0.5, 0.5], [0.0, 0.0], [1.0, 1.0], [0.125, 0.9], [0.3, 0.1]]))
    np.testing.assert_allclose(np.asarray(out).ravel(), [1.5, 0.0, 3.0, 0.0, 0.7], atol=1e-6)
    # texel centres return texel values exactly, for any channel count
    t = jax.random.normal(jax.random.PRNGKey(0), (8, 8, 5))
    c = jnp.asarray(_texel_centres(8).reshape(-1, 2), jnp.float32)
    np.testing.assert_allclose(decode(t, c), t.reshape(-1, 5), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([4, 8, 13]))
def test_round_trip_affine_map(seed, R):
    """encode → decode reproduces any affine function of UV inside the texel-centre square."""
    rng = np.random.default_rng(seed)
    q = quad_patch(3)
    A, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    verts = np.asarray(q.uv) @ A + b
    tp = encode(jnp.asarray(verts, jnp.float32), uv_raster(q, R))
    uv = rng.uniform(0.5 / R, 1 - 0.5 / R, (20, 2))
    np.testing.assert_allclose(np.asarray(decode(tp, jnp.asarray(uv, jnp.float32))), uv @ A + b, atol=1e-4)


def test_encode_dtype_follows_vertices(sphere_raster):
    m, r = sphere_raster
    assert encode(jnp.asarray(m.vertices, jnp.float32), r).dtype == jnp.float32
    with x64():
        assert encode(jnp.asarray(m.vertices, jnp.float64), r).dtype == jnp.float64


def test_encode_decode_shape_errors(sphere_raster):
    m, r = sphere_raster
    with pytest.raises((ValueError, TypeError), match="encode|vertices"):
        encode(jnp.zeros((m.num_vertices, 2)), r)
    with pytest.raises((ValueError, TypeError), match="decode|triplane"):
        decode(jnp.zeros((4, 5, 3)), jnp.zeros((2, 2)))
    with pytest.raises((ValueError, TypeError), match="decode|triplane"):
        decode(jnp.zeros((4, 4)), jnp.zeros((2, 2)))
    with pytest.raises((ValueError, TypeError), match="decode|uv"):
        decode(jnp.zeros((4, 4, 3)), jnp.zeros((2, 3)))


# --------------------------------------------------------------------------------------------
# transformations


def test_encode_decode_jit_and_vmap(sphere_raster):
    m, r = sphere_raster
    V = jnp.asarray(m.vertices, jnp.float32)
    batch = V[None] * jnp.array([1.0, 0.9, 1.2])[:, None, None] + jnp.array([0.0, 0.1, -0.2])[:, None, None]
    eager = np.stack([encode(v, r) for v in batch])
    np.testing.assert_allclose(jax.jit(encode)(batch[1], r), eager[1], atol=1e-6)
    np.testing.assert_allclose(jax.vmap(encode, in_axes=(0, None))(batch, r), eager, atol=1e-6)

    uv = jnp.asarray(m.vertex_uv(), jnp.float32)
    tps = jnp.asarray(eager)
    dec = np.stack([decode(t, uv) for t in tps])
    np.testing.assert_allclose(jax.jit(decode)(tps[2], uv), dec[2], atol=1e-6)
    np.testing.assert_allclose(jax.vmap(decode, in_axes=(0, None))(tps, uv), dec, atol=1e-6)
    uvs = jnp.stack([uv, uv[::-1], 0.5 * uv])
    np.testing.assert_allclose(jax.vmap(decode)(tps, uvs), np.stack([decode(t, u) for t, u in zip(tps, uvs)]),
                               atol=1e-6)
    # a UVRaster is a pytree: it can be an (unbatched) jit argument and round-trips through jit
    assert_tree_allclose(jax.jit(lambda x: x)(r), r)


def test_encode_grads(sphere_raster):
    m, r = sphere_raster
    with x64():
        V = jnp.asarray(m.vertices, jnp.float64)
        check_grads(lambda v: encode(v, r), (V,), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


def test_decode_grads():
    R = 8
    with x64():
        tp = jax.random.normal(jax.random.PRNGKey(1), (R, R, 3), jnp.float64)
        # away from texel-centre kinks and from the clamped border
        j = jnp.array([[0.0, 1.0], [2.0, 5.0], [6.0, 3.0], [4.0, 4.0]], jnp.float64)
        f = jnp.array([[0.3, 0.6], [0.25, 0.7], [0.55, 0.45], [0.8, 0.2]], jnp.float64)
        uv = (j + 0.5 + f) / R
        check_grads(lambda t: decode(t, uv), (tp,), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)
        check_grads(lambda u: decode(tp, u), (uv,), order=1, modes=["rev"], eps=1e-7, atol=1e-5, rtol=1e-5)
        check_grads(decode, (tp, uv), order=1, modes=["rev"], eps=1e-7, atol=1e-5, rtol=1e-5)


def test_decode_grad_finite_at_border_and_centres():
    R = 8
    tp = jax.random.normal(jax.random.PRNGKey(2), (R, R, 3))
    uv = jnp.array([[0.0, 0.0], [1.0, 1.0], [0.5 / R, 0.5 / R], [0.5, 0.5], [-0.2, 1.3]])
    g = jax.grad(lambda u: jnp.sum(decode(tp, u)))(uv)
    assert np.all(np.isfinite(np.asarray(g)))


# --------------------------------------------------------------------------------------------
# default template round trip


@pytest.fixture(scope="module")
def round_trip_errors(template):
    m = template.mesh
    V = jnp.asarray(m.vertices, jnp.float32)
    uv = jnp.asarray(m.vertex_uv(), jnp.float32)
    out = {}
    for R in (256, 512):
        raster = uv_raster(m, R)
        back = decode(encode(V, raster), uv)
        err = np.linalg.norm(np.asarray(back, np.float64) - np.asarray(V, np.float64), axis=1)
        out[R] = dict(max=float(err.max()), mean=float(err.mean()), p99=float(np.percentile(err, 99)),
                      coverage=float(np.asarray(raster.mask).mean()))
    print("template round trip (metres):", out)
    return out


@pytest.mark.slow
def test_template_round_trip_error(round_trip_errors):
    # measured: R=256 mean 0.13 mm, p99 2.2 mm, max 7.2 mm (steep flanks of the nose);
    #           R=512 mean 0.066 mm, p99 1.1 mm, max 3.6 mm
    e256, e512 = round_trip_errors[256], round_trip_errors[512]
    assert e256["mean"] < 0.3e-3 and e256["p99"] < 4e-3 and e256["max"] < 12e-3
    assert e512["mean"] < 0.15e-3 and e512["p99"] < 2e-3 and e512["max"] < 6e-3
    assert e512["mean"] < 0.7 * e256["mean"]
    assert e512["max"] < e256["max"]
    assert e512["p99"] < 0.7 * e256["p99"]


@pytest.mark.slow
def test_template_mask_coverage(round_trip_errors):
    for R in (256, 512):
        assert round_trip_errors[R]["coverage"] > 0.95


@pytest.mark.slow
def test_decode_mesh_keeps_topology(template):
    m = template.mesh
    tp = template.position_map(256)
    out = decode_mesh(tp, m)
    assert isinstance(out, Mesh)
    for a, b in ((out.faces, m.faces), (out.uv, m.uv), (out.faces_uv, m.faces_uv)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert out.num_vertices == m.num_vertices
    err = np.linalg.norm(np.asarray(out.vertices) - np.asarray(m.vertices), axis=1)
    assert err.mean() < 0.3e-3
    assert out.vertices.dtype == tp.dtype


def test_decode_mesh_small(sphere_raster):
    m, r = sphere_raster
    tp = encode(jnp.asarray(m.vertices, jnp.float32), uv_raster(m, 64))
    out = decode_mesh(tp, m)
    np.testing.assert_array_equal(np.asarray(out.faces), np.asarray(m.faces))
    err = np.linalg.norm(np.asarray(out.vertices) - np.asarray(m.vertices), axis=1)
    assert np.median(err) < 0.05  # unit sphere, coarse (288 faces) chart at 64 texels


def test_decode_wrap_u_closes_the_seam():
    R = 8
    tp = jax.random.normal(jax.random.PRNGKey(11), (R, R, 3))
    v = jnp.full((5,), 0.4)
    # inside (more than half a texel from the seam) wrapping changes nothing
    inner = jnp.stack([jnp.linspace(0.07, 0.93, 5), v], -1)
    np.testing.assert_allclose(decode(tp, inner, wrap_u=True), decode(tp, inner), atol=1e-6)
    # on the seam both sides give the blend of the first and last columns
    seam = jnp.array([[0.0, 0.4], [1.0, 0.4]])
    both = decode(tp, seam, wrap_u=True)
    np.testing.assert_allclose(both[0], both[1], atol=1e-6)
    mid = 0.5 * (decode(tp, jnp.array([[0.5 / R, 0.4]])) + decode(tp, jnp.array([[1 - 0.5 / R, 0.4]])))
    np.testing.assert_allclose(both[0], mid[0], atol=1e-6)
    # continuous across the seam (clamping jumps by up to a column difference there)
    eps = 1e-4
    near = decode(tp, jnp.array([[eps, 0.4], [1 - eps, 0.4]]), wrap_u=True)
    assert float(jnp.abs(near[0] - near[1]).max()) < 1e-2
    clamped = decode(tp, jnp.array([[eps, 0.4], [1 - eps, 0.4]]))
    assert float(jnp.abs(clamped[0] - clamped[1]).max()) > 0.1
    # u outside [0, 1] wraps around; jit/vmap agree
    np.testing.assert_allclose(decode(tp, inner + jnp.array([1.0, 0.0]), wrap_u=True),
                               decode(tp, inner, wrap_u=True), atol=1e-5)
    batch = jnp.stack([tp, 2 * tp])
    np.testing.assert_allclose(jax.vmap(lambda t: decode(t, seam, wrap_u=True))(batch),
                               np.stack([decode(t, seam, wrap_u=True) for t in batch]), atol=1e-6)


def test_decode_wrap_u_grads():
    R = 8
    with x64():
        tp = jax.random.normal(jax.random.PRNGKey(12), (R, R, 3), jnp.float64)
        uv = jnp.array([[0.02, 0.3], [0.99, 0.61], [0.5 + 0.2 / R, 0.45]], jnp.float64)  # two within the seam
        check_grads(lambda t: decode(t, uv, wrap_u=True), (tp,), order=1, modes=["rev"], eps=1e-6, atol=1e-6,
                    rtol=1e-6)
        check_grads(lambda u: decode(tp, u, wrap_u=True), (uv,), order=1, modes=["rev"], eps=1e-7, atol=1e-5,
                    rtol=1e-5)
