"""Multi-resolution texture extraction (§2.4.1): the loss pieces, the init/step/run fit, the
problem built from a render, texel visibility."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import ndimage

from helpers import assert_tree_allclose, quad_patch, uv_sphere, x64
from machlib import look_at
from machlib.render import render_textured
from machlib.texture import (
    TextureFitConfig,
    TextureProblem,
    fit_texture,
    psnr,
    texel_visibility,
    texture_fit,
    texture_problem,
    texture_tv,
    upsample_texture,
)


def _pattern(r):
    """A smooth colour pattern on [0,1]² evaluated at texel centres."""
    g = (np.arange(r) + 0.5) / r
    u, v = np.meshgrid(g, g)
    return np.stack([0.5 + 0.3 * np.sin(3 * u), 0.4 + 0.3 * v * u, 0.3 + 0.2 * np.cos(4 * v)], -1).astype(np.float32)


def test_tv_zero_for_constant_and_resolution_normalised():
    assert float(texture_tv(jnp.full((16, 16, 3), 0.4))) == pytest.approx(0.0, abs=1e-9)
    # a vertical step edge of height 1 across the whole map costs ≈ h·ℓ = 1 per channel / C
    for r in (32, 64, 128):
        tex = np.zeros((r, r, 1), np.float32)
        tex[:, r // 2 :] = 1.0
        assert float(texture_tv(tex, eps=1e-6)) == pytest.approx(1.0, rel=1e-3)


def test_tv_gradient_matches_finite_differences():
    with x64():
        tex = jax.random.uniform(jax.random.PRNGKey(0), (5, 6, 2), jnp.float64)
        check_grads(lambda t: texture_tv(t, eps=0.01), (tex,), order=1, modes=["rev"], eps=1e-6)


def test_upsample_matches_resize_and_preserves_constants():
    tex = jnp.asarray(_pattern(8))
    up = upsample_texture(tex, 32)
    ref = jax.image.resize(tex, (32, 32, 3), "linear")
    np.testing.assert_allclose(up, ref, atol=1e-5)
    np.testing.assert_allclose(upsample_texture(jnp.full((4, 4, 3), 0.3), 12), 0.3, atol=1e-6)
    with pytest.raises((ValueError, TypeError), match="upsample_texture"):
        upsample_texture(jnp.zeros((4, 5, 3)), 8)


def test_fit_recovers_a_texture_from_dense_samples():
    r = 16
    truth = _pattern(r)
    key = jax.random.PRNGKey(1)
    uv = jax.random.uniform(key, (4000, 2), minval=0.02, maxval=0.98)
    from machlib.render import texture

    target = texture(jnp.asarray(truth), uv)
    problem = TextureProblem(uv, target, jnp.ones(uv.shape[0]))
    config = TextureFitConfig(resolutions=(4, 16), steps=(60, 300), learning_rates=(0.05, 0.02), alpha=0.0)
    result = fit_texture(problem, config=config)
    assert result.texture.shape == (16, 16, 3)
    assert [lv.shape[0] for lv in result.levels] == [4, 16]
    assert result.history[1]["data"][-1] < 0.01 < result.history[0]["data"][0]
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(result.texture[inner], truth[inner], atol=0.03)


def test_step_jit_equals_eager_and_vmap_equals_loop():
    with x64():
        fit = texture_fit(TextureFitConfig(resolutions=(8,), steps=(3,), learning_rates=(0.05,)))
        keys = jax.random.split(jax.random.PRNGKey(2), 3)

        def problem(k):
            k1, k2 = jax.random.split(k)
            uv = jax.random.uniform(k1, (50, 2), jnp.float64)
            return TextureProblem(uv, jax.random.uniform(k2, (50, 3), jnp.float64), jnp.ones(50, jnp.float64))

        probs = [problem(k) for k in keys]
        states = [fit.init(jnp.full((8, 8, 3), 0.5, jnp.float64)) for _ in keys]
        eager = [fit.step(s, p) for s, p in zip(states, probs)]
        jitted = [jax.jit(fit.step)(s, p) for s, p in zip(states, probs)]
        for a, b in zip(eager, jitted):
            assert_tree_allclose(a, b, rtol=1e-9, atol=1e-12)
        stack = lambda xs: jax.tree_util.tree_map(lambda *l: jnp.stack(l), *xs)  # noqa: E731
        batched = jax.vmap(fit.step)(stack(states), stack(probs))
        assert_tree_allclose(batched, stack(eager), rtol=1e-9, atol=1e-12)
        # run == repeated step
        s_run, m_run = fit.run(states[0], probs[0], 3)
        s = states[0]
        for _ in range(3):
            s, m = fit.step(s, probs[0])
        assert_tree_allclose(s_run.texture, s.texture, rtol=1e-9, atol=1e-12)


def test_loss_gradient_matches_finite_differences():
    with x64():
        fit = texture_fit(TextureFitConfig(resolutions=(6,), steps=(1,), learning_rates=(0.1,)))
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
        uv = jax.random.uniform(k1, (40, 2), jnp.float64, 0.05, 0.95)
        problem = TextureProblem(uv, jax.random.uniform(k2, (40, 3), jnp.float64), jnp.ones(40, jnp.float64))
        tex = jax.random.uniform(k3, (6, 6, 3), jnp.float64)
        check_grads(lambda t: fit.loss(t, problem)[0], (tex,), order=1, modes=["rev"], eps=1e-6)


def test_padded_rows_leave_loss_and_gradient_unchanged():
    # fit_texture pads the pixel rows to a bucket size (one compiled program for portraits with
    # about as many face pixels); the padded rows weigh 0
    from machlib.texture._fit import _pad_rows

    with x64():
        fit = texture_fit(TextureFitConfig(resolutions=(8,), steps=(1,), learning_rates=(0.1,)))
        k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(5), 4)
        n = 1100
        problem = TextureProblem(jax.random.uniform(k1, (n, 2), jnp.float64, 0.05, 0.95),
                                 jax.random.uniform(k2, (n, 3), jnp.float64),
                                 jax.random.uniform(k4, (n,), jnp.float64),
                                 jnp.zeros((n, 2, 2), jnp.float64) + 0.01)
        padded = _pad_rows(problem)
        assert padded.uv.shape[0] > n and padded.uv_grad.shape[0] == padded.uv.shape[0]
        assert _pad_rows(padded) is padded  # a bucket size stays as it is
        tex = jax.random.uniform(k3, (8, 8, 3), jnp.float64)
        (l1, _), g1 = jax.value_and_grad(fit.loss, has_aux=True)(tex, problem)
        (l2, _), g2 = jax.value_and_grad(fit.loss, has_aux=True)(tex, padded)
        np.testing.assert_allclose(l2, l1, rtol=1e-12)
        np.testing.assert_allclose(g2, g1, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(resolutions=(32, 16), steps=(1, 1), learning_rates=(0.1, 0.1)),
        dict(resolutions=(32,), steps=(1, 1), learning_rates=(0.1,)),
        dict(resolutions=(32,), steps=(0,), learning_rates=(0.1,)),
        dict(resolutions=(32,), steps=(1,), learning_rates=(-0.1,)),
        dict(alpha=-1.0),
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match="TextureFitConfig"):
        TextureFitConfig(**kwargs)


def _scene(size=96):
    mesh = quad_patch(8, size=0.4)
    mesh = type(mesh)(np.asarray(mesh.vertices) - [0.2, 0.2, 0.0], mesh.faces, mesh.uv, mesh.faces_uv)
    cam = look_at(jnp.array([0.05, -0.03, 0.9]), jnp.zeros(3), image_size=(size, size))
    return mesh, cam


def test_problem_from_a_render_reproduces_the_image():
    mesh, cam = _scene()
    truth = _pattern(64)
    rgba = np.asarray(render_textured(mesh.vertices, mesh.faces, mesh.uv, mesh.faces_uv, truth, cam,
                                      filter="linear", antialiased=False))
    image = rgba[..., :3]
    problem, rast = texture_problem(image, mesh, cam, erode=1)
    assert problem.uv.shape[0] == problem.target.shape[0] > 1000
    config = TextureFitConfig(resolutions=(16, 64), steps=(80, 150), learning_rates=(0.05, 0.02))
    result = fit_texture(problem, config=config)
    again = np.asarray(render_textured(mesh.vertices, mesh.faces, mesh.uv, mesh.faces_uv, result.texture, cam,
                                       filter="linear", antialiased=False))
    mask = np.zeros(image.shape[:2], np.float32)
    mask[np.asarray(rast.triangle) >= 0] = 1
    assert float(psnr(again[..., :3], image, mask=mask)) > 35.0


def test_problem_takes_a_uv_map_where_given():
    """texture_problem(uv_map=...): the pixels' texture coordinates (and their derivatives, as
    central differences) come from the map where it differs from the mesh's, the rest stay."""
    mesh, cam = _scene()
    image = np.zeros((96, 96, 3), np.float32)
    plain, rast = texture_problem(image, mesh, cam, erode=1)
    from machlib.render import interpolate

    uv = np.asarray(interpolate(np.asarray(mesh.uv, np.float32), rast, np.asarray(mesh.faces_uv, np.int32)))
    moved = uv.copy()
    moved[30:60, 30:60, 1] = 0.5 + 2.0 * (moved[30:60, 30:60, 1] - 0.5)  # stretched twice along v
    problem, _ = texture_problem(image, mesh, cam, erode=1, uv_map=moved)
    rows, cols = np.nonzero((np.asarray(rast.triangle) >= 0)
                            & ndimage.binary_erosion(np.asarray(rast.triangle) >= 0, iterations=1, border_value=0))
    got = np.asarray(problem.uv)
    assert got.shape == np.asarray(plain.uv).shape
    np.testing.assert_allclose(got, moved[rows, cols], atol=1e-7)
    inside = (rows >= 35) & (rows < 55) & (cols >= 35) & (cols < 55)
    grad, grad0 = np.asarray(problem.uv_grad), np.asarray(plain.uv_grad)
    np.testing.assert_allclose(grad[inside][:, 1], 2.0 * grad0[inside][:, 1], rtol=0.02, atol=1e-6)  # twice along v
    outside = (rows < 28) | (rows >= 62) | (cols < 28) | (cols >= 62)
    np.testing.assert_array_equal(grad[outside], grad0[outside])
    with pytest.raises((ValueError, TypeError), match="uv_map"):
        texture_problem(image, mesh, cam, uv_map=np.zeros((10, 10, 2), np.float32))


def test_problem_rejects_bad_inputs():
    mesh, cam = _scene()
    with pytest.raises(ValueError, match="image_size"):
        texture_problem(np.zeros((50, 96, 3), np.float32), mesh, cam)
    with pytest.raises((ValueError, TypeError), match="face_mask"):
        texture_problem(np.zeros((96, 96, 3), np.float32), mesh, cam, face_mask=np.ones((10, 10)))
    with pytest.raises(ValueError, match="no face pixel"):
        texture_problem(np.zeros((96, 96, 3), np.float32), mesh, cam, face_mask=np.zeros((96, 96)))


def test_texel_visibility_front_seen_back_not():
    sphere = uv_sphere(32, 24, radius=0.1)
    cam = look_at(jnp.array([0.0, 0.0, 0.6]), jnp.zeros(3), image_size=(128, 128))
    _, rast = texture_problem(np.zeros((128, 128, 3), np.float32), sphere, cam)
    vis = texel_visibility(sphere, cam, rast, 64)
    assert vis.shape == (64, 64)
    # u = 0.5 is the front (+z) of the sphere, the seam u = 0 / 1 its back
    assert vis[28:36, 28:36].min() > 0.9
    assert vis[:, :6].max() == 0 and vis[:, -6:].max() == 0
    # mask restricting the pixels restricts the texels
    half = np.zeros((128, 128), np.float32)
    half[:, 64:] = 1
    vis_half = texel_visibility(sphere, cam, rast, 64, pixel_mask=half)
    assert 0 < vis_half.sum() < 0.7 * vis.sum()
