"""machlib.render: texture sampling (nearest, bilinear, mipmapped), build_mip and mip_level."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib.render import build_mip, mip_level, texture

BOUNDARIES = ("clamp", "wrap", "zero")


# --------------------------------------------------------------------------------------------
# numpy references, each written from the definition rather than from the implementation


def _bilinear_ref(tex, uv, boundary):
    """Bilinear lookup with texel centres at ((j + ½)/W, (i + ½)/H).

    clamp: the continuous texel coordinate is clamped to the centres of the edge texels;
    wrap: the coordinate is taken modulo 1 first; zero: the texture is padded with a ring of
    zeros and the coordinate clamped into that ring."""
    tex = np.asarray(tex, np.float64)
    H, W, _ = tex.shape
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    out = []
    for u, v in uv:
        if boundary == "wrap":
            u, v = u - np.floor(u), v - np.floor(v)
            t = np.concatenate([tex, tex[:1]], 0)  # one extra row/column wrapped around
            t = np.concatenate([t, t[:, :1]], 1)
            t = np.concatenate([t[-2:-1], t], 0)  # and one before
            t = np.concatenate([t[:, -2:-1], t], 1)
            x, y = u * W - 0.5 + 1.0, v * H - 0.5 + 1.0
        elif boundary == "clamp":
            t = tex
            x = min(max(u * W - 0.5, 0.0), W - 1.0)
            y = min(max(v * H - 0.5, 0.0), H - 1.0)
        else:
            t = np.pad(tex, ((1, 1), (1, 1), (0, 0)))
            x = min(max(u * W - 0.5 + 1.0, 0.0), W + 1.0)
            y = min(max(v * H - 0.5 + 1.0, 0.0), H + 1.0)
        i0 = min(int(np.floor(y)), t.shape[0] - 2)
        j0 = min(int(np.floor(x)), t.shape[1] - 2)
        fy, fx = y - i0, x - j0
        out.append(
            (1 - fy) * ((1 - fx) * t[i0, j0] + fx * t[i0, j0 + 1]) + fy * ((1 - fx) * t[i0 + 1, j0] + fx * t[i0 + 1, j0 + 1])
        )
    return np.array(out)


def _nearest_ref(tex, uv, boundary):
    tex = np.asarray(tex, np.float64)
    H, W, C = tex.shape
    out = []
    for u, v in np.asarray(uv, np.float64).reshape(-1, 2):
        j, i = int(np.floor(u * W)), int(np.floor(v * H))
        if boundary == "wrap":
            out.append(tex[i % H, j % W])
        elif boundary == "clamp":
            out.append(tex[min(max(i, 0), H - 1), min(max(j, 0), W - 1)])
        else:
            out.append(tex[i, j] if 0 <= i < H and 0 <= j < W else np.zeros(C))
    return np.array(out)


def _random_tex(seed, shape=(6, 10, 3), dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=shape), dtype)


def _off_kink_uv(seed, n, H, W, lo=-1.3, hi=2.3, dtype=jnp.float32):
    """UVs inside and outside [0, 1] whose texel coordinates stay ≥ 0.1 texel from texel
    centres (where bilinear interpolation has kinks), for finite differences."""
    rng = np.random.default_rng(seed)
    x = np.floor(rng.uniform(lo * W, hi * W, n)) + rng.uniform(0.1, 0.9, n)
    y = np.floor(rng.uniform(lo * H, hi * H, n)) + rng.uniform(0.1, 0.9, n)
    return jnp.asarray(np.stack([(x + 0.5) / W, (y + 0.5) / H], -1), dtype)


# --------------------------------------------------------------------------------------------
# nearest and bilinear


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_bilinear_matches_reference(boundary):
    tex = _random_tex(0)
    uv = jnp.asarray(np.random.default_rng(1).uniform(-0.6, 1.6, (200, 2)), jnp.float32)
    uv = jnp.concatenate([uv, jnp.array([[0.0, 0.0], [1.0, 1.0], [0.05, 0.5], [0.5, 0.999], [0.5, 0.5]])])
    got = texture(tex, uv, boundary=boundary)
    assert got.shape == (uv.shape[0], 3) and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), _bilinear_ref(tex, uv, boundary), atol=2e-6)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_nearest_matches_reference(boundary):
    tex = _random_tex(2)
    uv = jnp.asarray(np.random.default_rng(3).uniform(-0.6, 1.6, (200, 2)), jnp.float32)
    got = texture(tex, uv, filter="nearest", boundary=boundary)
    np.testing.assert_array_equal(np.asarray(got), _nearest_ref(tex, uv, boundary).astype(np.float32))


def test_bilinear_known_values():
    H, W = 4, 8
    i, j = np.mgrid[0:H, 0:W]
    ramp = jnp.asarray(np.stack([(j + 0.5) / W, (i + 0.5) / H], -1), jnp.float32)  # texel centre uv
    uv = jnp.asarray(np.random.default_rng(4).uniform([0.5 / W, 0.5 / H], [1 - 0.5 / W, 1 - 0.5 / H], (50, 2)), jnp.float32)
    # a linear ramp is reproduced exactly between the texel centres: texture(uv) = uv
    np.testing.assert_allclose(np.asarray(texture(ramp, uv)), np.asarray(uv), atol=1e-6)
    # texel centres return the texel itself in every mode
    centres = ramp.reshape(-1, 2)
    for flt in ("nearest", "linear"):
        np.testing.assert_allclose(np.asarray(texture(ramp, centres, filter=flt)), np.asarray(centres), atol=1e-6)
    # batch shapes pass through
    assert texture(ramp, uv.reshape(5, 10, 2)).shape == (5, 10, 2)
    # wrap: u and u + 1 read the same; zero: far outside is zero; clamp: far outside is the edge
    np.testing.assert_allclose(np.asarray(texture(ramp, uv + 1.0, boundary="wrap")), np.asarray(texture(ramp, uv)), atol=1e-5)
    assert np.all(np.asarray(texture(ramp, uv + 3.0, boundary="zero")) == 0.0)
    np.testing.assert_allclose(np.asarray(texture(ramp, jnp.array([[5.0, -4.0]]))), [[1 - 0.5 / W, 0.5 / H]], atol=1e-6)


# --------------------------------------------------------------------------------------------
# mip pyramid and level selection


def test_build_mip_shapes_and_values():
    tex = _random_tex(5, (16, 8, 3))
    levels = build_mip(tex)
    assert [m.shape for m in levels] == [(16, 8, 3), (8, 4, 3), (4, 2, 3), (2, 1, 3)]
    t = np.asarray(tex, np.float64)
    for k, m in enumerate(levels):
        s = 2**k
        expect = t.reshape(16 // s, s, 8 // s, s, 3).mean(axis=(1, 3))  # s × s box average
        np.testing.assert_allclose(np.asarray(m), expect, atol=1e-6)
    assert [m.shape for m in build_mip(tex, max_levels=2)] == [(16, 8, 3), (8, 4, 3)]
    assert [m.shape[:2] for m in build_mip(jnp.ones((6, 6, 1)))] == [(6, 6), (3, 3)]  # stops at odd sizes
    assert [m.shape[:2] for m in build_mip(jnp.ones((4, 4, 1)))] == [(4, 4), (2, 2), (1, 1)]
    assert len(build_mip(jnp.ones((1, 1, 2)))) == 1
    with pytest.raises(ValueError, match="max_levels"):
        build_mip(tex, max_levels=0)


def test_mip_level_formula():
    size = (32, 8)  # (W, H)
    # ∂u/∂x = 2/W (2 texels per pixel along x), ∂v/∂y = 1/H: the longer footprint wins
    g = jnp.array([[2.0 / 32, 0.0], [0.0, 1.0 / 8]])
    assert float(mip_level(g, size)) == pytest.approx(1.0, abs=1e-6)
    # rotated footprint of 4 texels along the pixel y axis (u and v both vary with y)
    g = jnp.array([[0.0, 4.0 * 0.6 / 32], [0.0, 4.0 * 0.8 / 8]])
    assert float(mip_level(g, size)) == pytest.approx(2.0, abs=1e-6)
    # magnification is negative; zero footprint is finite, and so is its gradient
    assert float(mip_level(jnp.eye(2) * 0.25 / 32, (32, 32))) == pytest.approx(-2.0, abs=1e-6)
    assert np.isfinite(float(mip_level(jnp.zeros((2, 2)), size)))
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda x: mip_level(x, size))(jnp.zeros((2, 2))))))
    assert mip_level(jnp.zeros((3, 5, 2, 2)), size).shape == (3, 5)
    with pytest.raises((ValueError, TypeError), match="mip_level|uv_grad"):
        mip_level(jnp.zeros((3, 2)), size)


def _footprint(texels, H, W, n):
    """uv_grad of an isotropic footprint of ``texels`` texels per pixel, for n samples."""
    return jnp.broadcast_to(jnp.diag(jnp.array([texels / W, texels / H])), (n, 2, 2))


@pytest.mark.parametrize("flt", ["linear-mipmap-linear", "linear-mipmap-nearest"])
def test_mipmapped_level_choice(flt):
    H, W = 16, 32
    tex = _random_tex(6, (H, W, 2))
    levels = build_mip(tex)
    assert len(levels) == 5
    uv = _off_kink_uv(7, 40, H, W, lo=0.0, hi=1.0)
    n = uv.shape[0]

    def at(k):
        return np.asarray(texture(levels[k], uv))

    # magnifying (footprint < 1 texel) uses level 0, i.e. plain bilinear
    np.testing.assert_allclose(np.asarray(texture(tex, uv, _footprint(0.3, H, W, n), filter=flt)), at(0), atol=1e-6)
    # a footprint of 2^k texels picks level k exactly
    for k in range(5):
        got = texture(tex, uv, _footprint(2.0**k, H, W, n), filter=flt, mip=levels)
        np.testing.assert_allclose(np.asarray(got), at(k), atol=1e-6, err_msg=f"level {k}")
    # beyond the last level: clamped to it
    np.testing.assert_allclose(np.asarray(texture(tex, uv, _footprint(500.0, H, W, n), filter=flt)), at(4), atol=1e-6)
    # between levels: trilinear blends the two neighbours, mipmap-nearest takes the nearer one
    got = np.asarray(texture(tex, uv, _footprint(2.0**1.3, H, W, n), filter=flt))
    expect = 0.7 * at(1) + 0.3 * at(2) if flt == "linear-mipmap-linear" else at(1)
    np.testing.assert_allclose(got, expect, atol=1e-5)
    got = np.asarray(texture(tex, uv, _footprint(2.0**2.8, H, W, n), filter=flt))
    expect = 0.2 * at(2) + 0.8 * at(3) if flt == "linear-mipmap-linear" else at(3)
    np.testing.assert_allclose(got, expect, atol=1e-5)
    # max_mip_level caps the level; a bias alone sets it; a bias shifts a computed level
    got = texture(tex, uv, _footprint(16.0, H, W, n), filter=flt, max_mip_level=1)
    np.testing.assert_allclose(np.asarray(got), at(1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(texture(tex, uv, filter=flt, mip_level_bias=2.0)), at(2), atol=1e-6)
    bias = jnp.where(jnp.arange(n) % 2 == 0, 3.0, 0.0)
    got = np.asarray(texture(tex, uv, _footprint(2.0, H, W, n), filter=flt, mip_level_bias=bias))
    np.testing.assert_allclose(got[::2], at(4)[::2], atol=1e-6)
    np.testing.assert_allclose(got[1::2], at(1)[1::2], atol=1e-6)


def test_mipmap_filters_a_checkerboard():
    """A one-texel checkerboard minified by 2 or more averages to grey; bilinear aliases."""
    H = W = 16
    i, j = np.mgrid[0:H, 0:W]
    tex = jnp.asarray(((i + j) % 2)[..., None], jnp.float32)
    uv = _off_kink_uv(8, 64, H, W, lo=0.0, hi=1.0)
    grey = texture(tex, uv, _footprint(2.0, H, W, 64), filter="linear-mipmap-linear")
    np.testing.assert_allclose(np.asarray(grey), 0.5, atol=1e-6)
    assert np.std(np.asarray(texture(tex, uv))) > 0.1


# --------------------------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_bilinear_gradients(boundary):
    with x64():
        H, W = 5, 7
        tex = _random_tex(9, (H, W, 2), jnp.float64)
        uv = _off_kink_uv(10, 30, H, W, dtype=jnp.float64)
        wts = jnp.asarray(np.random.default_rng(11).normal(size=(30, 2)))

        def f(t, q):
            return jnp.sum(texture(t, q, boundary=boundary) * wts)

        check_grads(f, (tex, uv), order=1, modes=("rev", "fwd"), eps=1e-6)
        g_uv = np.asarray(jax.grad(f, argnums=1)(tex, uv))
        inside = np.all((np.asarray(uv) > 0.5 / np.array([W, H])) & (np.asarray(uv) < 1 - 0.5 / np.array([W, H])), -1)
        assert np.all(np.abs(g_uv[inside]).sum(-1) > 0)  # uv gradients exist inside the texture
        if boundary == "clamp":  # and vanish where the lookup is clamped
            far = np.all((np.asarray(uv) < 0) | (np.asarray(uv) > 1), -1)
            assert far.any() and np.all(g_uv[far] == 0.0)


def test_mipmapped_gradients():
    with x64():
        H, W = 16, 16
        tex = _random_tex(12, (H, W, 2), jnp.float64)
        uv = _off_kink_uv(13, 12, H, W, lo=0.05, hi=0.95, dtype=jnp.float64)
        rng = np.random.default_rng(14)
        # levels strictly between 0 and 3, ≥ 0.1 from integers and from the rounding points
        lod = rng.integers(0, 3, 12) + rng.uniform(0.1, 0.4, 12) + 0.5 * rng.integers(0, 2, 12)
        texels = 2.0**lod
        rot = rng.uniform(0, 2 * np.pi, 12)
        R = np.stack([np.stack([np.cos(rot), -np.sin(rot)], -1), np.stack([np.sin(rot), np.cos(rot)], -1)], -2)
        # anisotropic (columns of different lengths) so the longer axis is unambiguous
        uv_grad = jnp.asarray(R * np.array([1.0, 0.6]) * (texels / W)[:, None, None])
        wts = jnp.asarray(rng.normal(size=(12, 2)))

        def f(t, q, qg):
            return jnp.sum(texture(t, q, qg, filter="linear-mipmap-linear") * wts)

        check_grads(f, (tex, uv, uv_grad), order=1, modes=("rev",), eps=1e-6)
        assert float(jnp.abs(jax.grad(f, argnums=2)(tex, uv, uv_grad)).sum()) > 0  # level of detail is differentiable

        def g(t, q):
            return jnp.sum(texture(t, q, uv_grad, filter="linear-mipmap-nearest") * wts)

        check_grads(g, (tex, uv), order=1, modes=("rev",), eps=1e-6)

        def h(t):
            return jnp.sum(texture(t, uv, filter="nearest") * wts)

        check_grads(h, (tex,), order=1, modes=("rev", "fwd"), eps=1e-6)


# --------------------------------------------------------------------------------------------
# jit, vmap, errors


@pytest.mark.parametrize("flt", ["nearest", "linear", "linear-mipmap-linear"])
def test_jit_and_vmap(flt):
    H, W = 8, 8
    texs = _random_tex(15, (3, H, W, 2))
    uvs = jnp.stack([_off_kink_uv(16 + b, 20, H, W) for b in range(3)])
    grads = jnp.broadcast_to(_footprint(2.5, H, W, 20), (3, 20, 2, 2))

    def f(t, q, qg):
        return texture(t, q, qg if flt != "linear" else None, filter=flt, boundary="wrap")

    eager = [f(texs[b], uvs[b], grads[b]) for b in range(3)]
    jitted = jax.jit(f)(texs[0], uvs[0], grads[0])
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager[0]), atol=1e-6)
    vmapped = jax.vmap(f)(texs, uvs, grads)
    for b in range(3):
        np.testing.assert_allclose(np.asarray(vmapped[b]), np.asarray(eager[b]), atol=1e-6)
    # vmap over the lookups only (one shared texture)
    shared = jax.vmap(f, in_axes=(None, 0, 0))(texs[0], uvs, grads)
    np.testing.assert_allclose(np.asarray(shared[2]), np.asarray(f(texs[0], uvs[2], grads[2])), atol=1e-6)


def test_bad_inputs_raise():
    tex = _random_tex(17, (4, 4, 3))
    uv = jnp.full((5, 2), 0.5)
    with pytest.raises((ValueError, TypeError), match="texture|tex"):
        texture(tex[..., 0], uv)
    with pytest.raises(TypeError, match="texture|tex"):
        texture(jnp.ones((4, 4, 3), jnp.int32), uv)
    with pytest.raises((ValueError, TypeError), match="texture|uv"):
        texture(tex, jnp.full((5, 3), 0.5))
    with pytest.raises((ValueError, TypeError), match="filter"):
        texture(tex, uv, filter="cubic")
    with pytest.raises((ValueError, TypeError), match="boundary"):
        texture(tex, uv, boundary="mirror")
    with pytest.raises((ValueError, TypeError), match="texture|uv_grad"):
        texture(tex, uv, jnp.zeros((4, 2, 2)), filter="linear-mipmap-linear")
    with pytest.raises(ValueError, match="mip level 0"):
        texture(tex, uv, filter="linear-mipmap-linear", mip=build_mip(tex[:2, :2]))
    # a mipmapped filter with neither uv_grad nor a level would silently sample level 0
    for flt in ("linear-mipmap-linear", "linear-mipmap-nearest"):
        with pytest.raises(ValueError, match="uv_grad"):
            texture(tex, uv, filter=flt)
    np.testing.assert_allclose(texture(tex, uv, filter="linear-mipmap-linear", mip_level_bias=0.0),
                               texture(tex, uv), atol=1e-6)
    with pytest.raises((ValueError, TypeError), match="build_mip|tex"):
        build_mip(jnp.ones((4, 4)))
