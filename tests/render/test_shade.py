"""render_textured: the unlit texture, SH-lit albedo, one compiled program for both, gradients,
jit and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from helpers import quad_patch, x64
from machlib import look_at
from machlib.render import linear_to_srgb, render_textured, sh_constant, sh_directional, sh_shading, srgb_to_linear
from machlib.render._shade import _shade_jit


def _scene(size=40, dtype=np.float32):
    mesh = quad_patch(6, size=0.4)
    verts = (np.asarray(mesh.vertices) - [0.2, 0.2, 0.0]).astype(dtype)
    cam = look_at(jnp.array([0.05, -0.03, 1.6], dtype), jnp.zeros(3, dtype), image_size=(size, size))
    return verts, mesh, cam


def _render(verts, mesh, tex, cam, lighting=None):
    return render_textured(verts, mesh.faces, np.asarray(mesh.uv, verts.dtype), mesh.faces_uv, tex, cam,
                           lighting=lighting, filter="linear", antialiased=False)


def test_unlit_shows_the_texture_lit_multiplies_linear_albedo_and_both_share_one_program():
    verts, mesh, cam = _scene()
    color = np.array([0.6, 0.4, 0.2], np.float32)
    tex = np.broadcast_to(color, (8, 8, 3)).copy()
    before = _shade_jit._cache_size()
    unlit = np.asarray(_render(verts, mesh, tex, cam))
    covered = unlit[..., 3] > 0.5
    assert covered.sum() > 400 and not covered.all()
    np.testing.assert_allclose(unlit[covered][:, :3], np.broadcast_to(color, (covered.sum(), 3)), atol=1e-6)
    assert np.all(unlit[~covered] == 0.0)
    light = sh_constant(jnp.array([0.5, 0.7, 0.9]))
    lit = np.asarray(_render(verts, mesh, tex, cam, lighting=light))
    assert _shade_jit._cache_size() == before + 1  # (lit and unlit: one program)
    shade = np.asarray(sh_shading(jnp.array([[0.0, 0.0, 1.0]]), light))[0]
    want = np.asarray(linear_to_srgb(srgb_to_linear(jnp.asarray(color)) * shade))
    np.testing.assert_allclose(lit[covered][:, :3], np.broadcast_to(want, (covered.sum(), 3)), atol=1e-5)
    np.testing.assert_array_equal(lit[..., 3], unlit[..., 3])


def test_gradients_in_texture_and_lighting_match_finite_differences():
    with x64():
        verts, mesh, cam = _scene(size=16, dtype=np.float64)
        tex = jax.random.uniform(jax.random.PRNGKey(0), (4, 4, 3), jnp.float64, 0.2, 0.8)
        light = sh_directional(jnp.array([0.3, 0.5, 1.0]), jnp.array([0.9, 0.8, 0.7]), ambient=0.3).astype(jnp.float64)
        f = lambda t, s: _render(verts, mesh, t, cam, lighting=s)[..., :3].sum(axis=(0, 1))  # noqa: E731
        check_grads(f, (tex, light), order=1, modes=["rev"], eps=1e-6, atol=1e-4, rtol=1e-4)
        g = lambda t: _render(verts, mesh, t, cam)[..., :3].sum()  # noqa: E731  (unlit: no NaN from the unused light)
        grad = jax.grad(g)(tex)
        assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).max()) > 0
        check_grads(g, (tex,), order=1, modes=["rev"], eps=1e-6, atol=1e-4, rtol=1e-4)


def test_jit_equals_eager_and_vmap_equals_loop():
    verts, mesh, cam = _scene(size=24)
    texs = jax.random.uniform(jax.random.PRNGKey(1), (3, 4, 4, 3))
    light = sh_constant(jnp.array([0.8, 0.8, 0.8]))
    one = lambda t: _render(verts, mesh, t, cam, lighting=light)  # noqa: E731
    loop = jnp.stack([one(t) for t in texs])
    np.testing.assert_allclose(jax.vmap(one)(texs), loop, atol=1e-6)
    np.testing.assert_allclose(jax.jit(one)(texs[0]), loop[0], atol=1e-6)
