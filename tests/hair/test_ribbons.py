"""machlib.hair.strand_ribbons / ribbon_faces: strands as triangle ribbons for mesh renderers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64
from jax.test_util import check_grads
from jaxtyping import TypeCheckError

from machlib import InputError
from machlib.hair import ribbon_faces, strand_ribbons


def _strands(key, s=5, p=7, dtype=jnp.float32):
    """Strands starting on a 10 cm sphere and running down and outwards."""
    k1, k2 = jax.random.split(key)
    d = jax.random.normal(k1, (s, 3), dtype)
    roots = 0.1 * d / jnp.linalg.norm(d, axis=1, keepdims=True)
    t = jnp.linspace(0.0, 0.1, p, dtype=dtype)[None, :, None]
    drift = jnp.asarray([0.0, -1.0, 0.0], dtype) + 0.3 * jax.random.normal(k2, (s, 1, 3), dtype)
    return roots[:, None, :] * (1.0 + t) + t * drift


def test_ribbon_shape_width_and_outward_normals():
    pts = _strands(jax.random.key(0))
    width = jnp.linspace(0.002, 0.0005, pts.shape[1])
    v, n = strand_ribbons(pts, jnp.zeros(3), width)
    assert v.shape == n.shape == (5, 7, 2, 3)
    np.testing.assert_allclose(np.asarray(0.5 * (v[:, :, 0] + v[:, :, 1])), np.asarray(pts), atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(v[:, :, 0] - v[:, :, 1]), axis=-1),
                               np.broadcast_to(np.asarray(width), (5, 7)), rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(n), axis=-1), 1.0, rtol=1e-5)
    assert (np.sum(np.asarray(n[:, :, 0]) * np.asarray(pts), -1) > 0).all()  # away from the centre
    # every triangle is wound counter-clockwise seen from its vertices' normal side
    f = ribbon_faces(5, 7)
    assert f.shape == (5 * 6 * 2, 3) and f.max() == 5 * 7 * 2 - 1
    flat_v, flat_n = np.asarray(v, np.float64).reshape(-1, 3), np.asarray(n, np.float64).reshape(-1, 3)
    face_n = np.cross(flat_v[f[:, 1]] - flat_v[f[:, 0]], flat_v[f[:, 2]] - flat_v[f[:, 0]])
    assert (np.sum(face_n * flat_n[f].mean(1), -1) > 0).all()


def test_ribbon_radial_strand_falls_back():
    """A strand running straight out from the centre still gets a finite, full-width ribbon."""
    pts = jnp.asarray([[[0.0, 0.0, 0.1], [0.0, 0.0, 0.15], [0.0, 0.0, 0.2]]])
    v, n = strand_ribbons(pts, jnp.zeros(3), jnp.full(3, 0.001))
    assert np.isfinite(np.asarray(v)).all() and np.isfinite(np.asarray(n)).all()
    np.testing.assert_allclose(np.linalg.norm(np.asarray(v[0, :, 0] - v[0, :, 1]), axis=-1), 0.001, rtol=1e-5)


def test_ribbon_jit_eager_vmap_and_grads():
    pts = _strands(jax.random.key(1))
    width = jnp.full(pts.shape[1], 0.001)
    out = strand_ribbons(pts, jnp.zeros(3), width)
    with jax.disable_jit():
        eager = strand_ribbons(pts, jnp.zeros(3), width)
    for a, b in zip(out, eager):  # vertices in metres, unit normals: float32 rounding apart
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    centers = jnp.asarray([[0.0, 0.0, 0.0], [0.0, 0.01, 0.0]])
    batched = jax.vmap(strand_ribbons, in_axes=(None, 0, None))(pts, centers, width)
    one = strand_ribbons(pts, centers[1], width)
    np.testing.assert_allclose(np.asarray(batched[0][1]), np.asarray(one[0]), atol=1e-7)
    with x64():
        p64 = _strands(jax.random.key(2), 2, 4, jnp.float64)
        check_grads(lambda p, c, w: strand_ribbons(p, c, w)[0], (p64, jnp.asarray([0.0, 0.01, 0.0]),
                    jnp.full(4, 0.002, jnp.float64)), order=1, modes=["rev"], eps=1e-6)


def test_ribbon_faces_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_points"):
        ribbon_faces(3, 1)
    with pytest.raises((InputError, TypeCheckError), match="points"):
        strand_ribbons(jnp.zeros((2, 1, 3)), jnp.zeros(3), jnp.zeros(1))
    with pytest.raises((InputError, TypeCheckError), match="width"):
        strand_ribbons(jnp.zeros((2, 4, 3)), jnp.zeros(3), jnp.zeros(3))
