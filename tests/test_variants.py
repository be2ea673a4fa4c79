"""Core primitives under jit, without jit, and with arguments placed on the device: the same
results (``chex.variants``, as dm_pix tests its image ops).

Each primitive is checked against a reference computed once eagerly with plain inputs; the
variants then call it through ``self.variant`` (``jax.jit``, no jit, ``jax.device_put`` of the
arguments, or plain host arrays)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from machlib import look_at, project, rotation_matrix
from machlib.hair import smooth_strands, strand_ribbons
from machlib.render import interpolate, rasterize, sh_directional, sh_shading, texture, to_clip

_VARIANTS = dict(with_jit=True, without_jit=True, with_device=True, without_device=True)


def _camera():
    return look_at(jnp.asarray([0.1, 0.05, 0.6]), jnp.zeros(3), image_size=(24, 16))


def _triangles():
    v = jnp.asarray([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.0, 0.1, 0.02], [0.12, 0.1, -0.01]])
    return v, jnp.asarray([[0, 1, 2], [1, 3, 2]], jnp.int32)


class CorePrimitivesTest(chex.TestCase):
    @chex.variants(**_VARIANTS)
    def test_project(self):
        cam = _camera()
        pts = jax.random.normal(jax.random.key(0), (7, 3)) * 0.05
        want = np.asarray(project(pts, cam))
        got = self.variant(project)(pts, cam)
        chex.assert_shape(got, (7, 2))
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)

    @chex.variants(**_VARIANTS)
    def test_rotation_matrix(self):
        rv = jnp.asarray([0.2, -0.4, 0.1])
        want = np.asarray(rotation_matrix(rv))
        got = self.variant(rotation_matrix)(rv)
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)
        np.testing.assert_allclose(np.asarray(got) @ np.asarray(got).T, np.eye(3), atol=1e-6)

    @chex.variants(**_VARIANTS)
    def test_rasterize_and_interpolate(self):
        v, tri = _triangles()
        clip = to_clip(v, _camera())
        attr = jnp.stack([v[:, 0], v[:, 1], jnp.arange(4.0)], -1)

        def draw(clip, attr):
            rast = rasterize(clip, tri, image_size=(24, 16), capacity=4096)
            return rast.triangle, interpolate(attr, rast, tri)

        want_tri, want_attr = draw(clip, attr)
        got_tri, got_attr = self.variant(draw)(clip, attr)
        chex.assert_shape(got_attr, (16, 24, 3))
        assert int((np.asarray(want_tri) >= 0).sum()) > 20
        np.testing.assert_array_equal(np.asarray(got_tri), np.asarray(want_tri))
        np.testing.assert_allclose(np.asarray(got_attr), np.asarray(want_attr), atol=1e-5)

    @chex.variants(**_VARIANTS)
    def test_texture(self):
        tex = jax.random.uniform(jax.random.key(1), (8, 8, 3))
        uv = jax.random.uniform(jax.random.key(2), (5, 2))
        want = np.asarray(texture(tex, uv))
        got = self.variant(texture)(tex, uv)
        chex.assert_shape(got, (5, 3))
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)

    @chex.variants(**_VARIANTS)
    def test_sh_shading(self):
        coeffs = sh_directional(jnp.asarray([0.3, 0.5, 0.8]), jnp.asarray([1.0, 0.9, 0.8]), ambient=0.2)
        n = jax.random.normal(jax.random.key(3), (6, 3))
        n = n / jnp.linalg.norm(n, axis=-1, keepdims=True)
        want = np.asarray(sh_shading(n, coeffs))
        got = self.variant(sh_shading)(n, coeffs)
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)

    @chex.variants(**_VARIANTS)
    def test_strand_primitives(self):
        t = jnp.linspace(0.0, 0.1, 6)[None, :, None]
        pts = jnp.asarray([[0.0, 0.1, 0.0], [0.05, 0.08, 0.02]])[:, None, :] + t * jnp.asarray([0.0, -1.0, 0.3])
        want_s = np.asarray(smooth_strands(pts, iterations=2, strength=0.4))
        got_s = self.variant(lambda p: smooth_strands(p, iterations=2, strength=0.4))(pts)
        np.testing.assert_allclose(np.asarray(got_s), want_s, atol=1e-6)
        width = jnp.full(6, 0.001)
        want_v, _ = strand_ribbons(pts, jnp.zeros(3), width)
        got_v, got_n = self.variant(strand_ribbons)(pts, jnp.zeros(3), width)
        chex.assert_equal_shape([got_v, got_n])
        np.testing.assert_allclose(np.asarray(got_v), np.asarray(want_v), atol=1e-6)
