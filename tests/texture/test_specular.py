"""The avatar's specular lobe (glTF's GGX BRDF with the region maps) and its use in the relit render."""

import jax
import jax.numpy as jnp
import numpy as np
from helpers import random_camera, uv_sphere, x64
from jax.test_util import check_grads

from machlib.render import interpolate, rasterize, sh_directional, to_clip
from machlib.render._brdf import _ggx_lobe
from machlib.texture import ggx_specular
from machlib.texture._pbr import (
    _fit_specular_irradiance,
    _sh_light_direction,
    _specular_image,
)


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference(n, v, l, r, s):
    """glTF 2.0 appendix B, written out in numpy float64 term by term."""
    n, v, l = _unit(n), _unit(v), _unit(l)
    h = _unit(v + l)
    nl, nv, nh, vh = (np.sum(a * b, -1) for a, b in ((n, l), (n, v), (n, h), (v, h)))
    a2 = np.maximum(np.asarray(r, np.float64) ** 2, 1e-3) ** 2
    d = a2 / (np.pi * (nh**2 * (a2 - 1) + 1) ** 2)
    g = 2 * nl / (nl + np.sqrt(a2 + (1 - a2) * nl**2)) * 2 * nv / (nv + np.sqrt(a2 + (1 - a2) * nv**2))
    brdf = (0.04 + 0.96 * (1 - vh) ** 5) * d * g / (4 * nl * nv)  # separable Smith for the check below
    vis = 0.5 / (nl * np.sqrt(nv**2 * (1 - a2) + a2) + nv * np.sqrt(nl**2 * (1 - a2) + a2))
    exact = s * (0.04 + 0.96 * (1 - vh) ** 5) * d * vis * nl
    return np.where((nl > 0) & (nv > 0), exact, 0.0), np.where((nl > 0) & (nv > 0), s * brdf * nl, 0.0)


def _dirs(rng, n, z_min=0.2):
    d = rng.normal(size=(n, 3))
    d[:, 2] = np.abs(d[:, 2]) + z_min
    return _unit(d)


def test_the_numpy_lobe_is_the_same_formula():
    """The preview renderer evaluates the lobe in numpy float64 through the same code."""
    rng = np.random.default_rng(1)
    n, v, l = _dirs(rng, 64), _dirs(rng, 64), _dirs(rng, 64)
    r, s = rng.uniform(0.0, 1.0, 64), rng.uniform(0.0, 1.0, 64)
    h = _unit(v + l)
    got = _ggx_lobe(np, *(np.sum(a * b, -1) for a, b in ((n, l), (n, v), (n, h), (v, h))), r, s)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, _reference(n, v, l, r, s)[0], rtol=1e-10, atol=1e-14)


def test_matches_the_gltf_formula_and_the_mirror_value():
    rng = np.random.default_rng(0)
    n, v, l = _dirs(rng, 64), _dirs(rng, 64), _dirs(rng, 64)
    n[:8] = -_unit(v[:8] + l[:8])  # facing away from both: no lobe
    r, s = rng.uniform(0.2, 1.0, 64), rng.uniform(0.0, 1.0, 64)
    got = np.asarray(ggx_specular(n.astype(np.float32), v.astype(np.float32), l.astype(np.float32),
                                  r.astype(np.float32), s.astype(np.float32)))
    exact, separable = _reference(n, v, l, r, s)
    np.testing.assert_allclose(got, exact, rtol=2e-4, atol=1e-7)
    lit = (np.sum(_unit(n) * v, -1) > 0) & (np.sum(_unit(n) * l, -1) > 0)
    assert lit.sum() > 20 and not lit[:8].any()
    assert np.all(got[~lit] == 0) and np.all(got[lit] > 0)
    # the height-correlated visibility lies above the separable Smith form (less shadowing), not far
    assert np.all(exact[lit] >= separable[lit] * 0.999) and np.all(exact[lit] <= separable[lit] * 1.6)
    # at the mirror direction, seen along the normal: 0.04 · 1 / (π α²) · 1/4 · specular
    up = jnp.array([0.0, 0.0, 1.0])
    for rough, spec in ((0.3, 1.0), (0.55, 0.7), (1.0, 0.5)):
        f = float(ggx_specular(up, up, up, jnp.float32(rough), jnp.float32(spec)))
        assert abs(f - spec * 0.04 / (np.pi * rough**4) / 4) < 1e-5 * max(1.0, f)


def test_reflects_no_more_than_fresnel_over_the_hemisphere():
    """∫ f dω over all light directions (the lobe's directional albedo) is below the Fresnel term and
    close to it for a smooth surface: the lobe conserves energy, as the GLB's material does."""
    k = 400
    t = (np.arange(k) + 0.5) / k * np.pi / 2
    p = (np.arange(2 * k) + 0.5) / (2 * k) * 2 * np.pi
    T, P = np.meshgrid(t, p, indexing="ij")
    dw = (np.pi / 2 / k) * (np.pi / k) * np.sin(T)
    light = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    n = jnp.array([0.0, 0.0, 1.0])
    for rough, lo in ((0.3, 0.03), (0.55, 0.025), (0.9, 0.015)):
        for view in ((0.0, 0.0, 1.0), (0.6, 0.0, 0.8)):
            f = np.asarray(ggx_specular(n, jnp.asarray(view), jnp.asarray(light, jnp.float32), jnp.float32(rough),
                                        jnp.float32(1.0))).reshape(T.shape)
            albedo = float(np.sum(f * dw))
            assert lo < albedo < 0.06, (rough, view, albedo)


def test_jit_vmap_and_eager_agree():
    rng = np.random.default_rng(1)
    n, v, l = (jnp.asarray(_dirs(rng, 12), jnp.float32) for _ in range(3))
    r, s = jnp.asarray(rng.uniform(0.2, 1, 12), jnp.float32), jnp.asarray(rng.uniform(0, 1, 12), jnp.float32)
    with jax.disable_jit():
        eager = ggx_specular(n, v, l, r, s)
    np.testing.assert_allclose(jax.jit(ggx_specular)(n, v, l, r, s), eager, rtol=1e-5, atol=1e-8)
    batched = jax.vmap(ggx_specular)(n, v, l, r, s)
    loop = jnp.stack([ggx_specular(n[i], v[i], l[i], r[i], s[i]) for i in range(12)])
    np.testing.assert_allclose(batched, loop, rtol=1e-5, atol=1e-8)
    # one light for many points broadcasts
    np.testing.assert_allclose(ggx_specular(n, v, l[0], r, s), jax.vmap(ggx_specular, (0, 0, None, 0, 0))(n, v, l[0], r, s),
                               rtol=1e-6)


def test_gradients_float64_and_finite_at_degenerate_inputs():
    rng = np.random.default_rng(2)
    with x64():
        n, v, l = (jnp.asarray(_dirs(rng, 6, z_min=0.5)) for _ in range(3))
        r, s = jnp.asarray(rng.uniform(0.3, 0.9, 6)), jnp.asarray(rng.uniform(0.2, 1.0, 6))
        check_grads(lambda *a: ggx_specular(*a), (n, v, l, r, s), order=1, modes=["rev", "fwd"], eps=1e-6)
        # a zero normal, a light below the surface, a grazing view, light opposite the view (h = 0)
        z = jnp.zeros(3)
        up, down = jnp.array([0.0, 0.0, 1.0]), jnp.array([0.0, 0.0, -1.0])
        side = jnp.array([1.0, 0.0, 0.0])
        for args in ((z, up, up), (up, up, down), (up, side, up), (up, side, -side)):
            g = jax.jacrev(lambda a, b, c: ggx_specular(a, b, c, 0.5, 1.0), argnums=(0, 1, 2))(*args)
            assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)


def test_dominant_light_direction_of_sh():
    for d in ((0.3, 0.5, 0.8), (-0.9, 0.1, 0.4), (0.0, -1.0, 0.0)):
        c = sh_directional(jnp.asarray(d, jnp.float32), jnp.array([1.0, 0.8, 0.6]), ambient=0.3)
        np.testing.assert_allclose(_sh_light_direction(c), _unit(d), atol=1e-5)
    assert _sh_light_direction(np.eye(9, 3) * 0) is None
    flat = np.zeros((9, 3))
    flat[0] = 3.0
    assert _sh_light_direction(flat) is None


def test_irradiance_fit():
    rng = np.random.default_rng(3)
    lobe = rng.uniform(0, 0.2, (40, 40))
    diffuse_error = rng.normal(0, 0.01, (40, 40, 3))
    w = (rng.uniform(size=(40, 40)) > 0.3).astype(np.float64)
    res = 0.8 * lobe[..., None] + diffuse_error
    assert abs(_fit_specular_irradiance(lobe, res, w) - 0.8) < 0.02
    # weights matter: a big error where the weight is 0 changes nothing
    res2 = res.copy()
    res2[w == 0] += 5.0
    assert abs(_fit_specular_irradiance(lobe, res2, w) - _fit_specular_irradiance(lobe, res, w)) < 1e-9
    # a photo darker than the render where the lobe is: no negative light
    assert _fit_specular_irradiance(lobe, -res, w) == 0.0
    assert _fit_specular_irradiance(np.zeros((4, 4)), np.ones((4, 4, 3)), np.ones((4, 4))) == 0.0


def test_specular_image_of_a_sphere():
    """Per pixel, the lobe of the sphere's true normal, seen from the camera's centre: a camera
    centre or a normal taken from the wrong frame moves the highlight."""
    mesh = uv_sphere(64, 40, radius=1.0)
    cam = random_camera(jax.random.PRNGKey(4), image_size=(96, 96), dtype=jnp.float32)
    v = jnp.asarray(mesh.vertices, jnp.float32)
    f = jnp.asarray(mesh.faces, jnp.int32)
    rast = rasterize(to_clip(v, cam), f, image_size=(96, 96), cull_backfaces=True, derivatives=True)
    light = _unit([0.4, 0.3, -1.0])
    rough, spec = np.full((16, 16), 0.4, np.float32), np.full((16, 16), 0.8, np.float32)
    img = _specular_image(v, f, mesh.uv, mesh.faces_uv, cam, rast, rough, spec, light)
    covered = np.asarray(rast.triangle) >= 0
    assert img.shape == (96, 96) and np.all(img[~covered] == 0) and covered.sum() > 1000
    p = np.asarray(interpolate(v, rast, f))[covered]
    from machlib._camera import _rotation_matrix_np

    centre = -_rotation_matrix_np(np.asarray(cam.rotation, np.float64)).T @ np.asarray(cam.translation, np.float64)
    exact, _ = _reference(p, centre - p, np.broadcast_to(light, p.shape), 0.4, 0.8)
    got = img[covered]
    assert got.max() > 0.05  # the highlight is in view
    strong = exact > 0.1 * exact.max()
    np.testing.assert_allclose(got[strong], exact[strong], rtol=0.1)
    assert abs(np.argmax(got) - np.argmax(exact)) == 0 or np.linalg.norm(p[np.argmax(got)] - p[np.argmax(exact)]) < 0.05
    # the maps are read per pixel: no specular, no lobe
    zero = _specular_image(v, f, mesh.uv, mesh.faces_uv, cam, rast, rough, np.zeros_like(spec), light)
    assert np.all(zero == 0)
