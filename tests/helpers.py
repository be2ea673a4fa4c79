"""Shared builders and assertions for the test suite (import as ``from helpers import ...``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from machlib import Camera, Mesh

__all__ = [
    "uv_sphere",
    "small_mesh",
    "quad_patch",
    "random_camera",
    "x64",
    "assert_tree_allclose",
    "signed_volume",
    "uv_signed_areas",
    "edge_counts",
    "open_mouth",
]


def uv_sphere(n_u: int = 16, n_v: int = 10, radius: float = 1.0) -> Mesh:
    """A closed, welded UV sphere with outward counter-clockwise faces.

    Layout as the template head: ``u`` is the azimuth (front ``+z`` at ``u = 0.5``, seam at the
    back), ``v`` the polar angle from the top pole (``v = 0``) to the bottom one. The seam
    column and the poles have several ``uv`` per vertex; the UV triangles do not overlap.
    ``n_u · (2 n_v − 2)`` faces (288 for the defaults).
    """
    us = np.linspace(0.0, 1.0, n_u + 1)
    vs = np.linspace(0.0, 1.0, n_v + 1)

    def direction(u, v):
        az, pol = np.pi * (2.0 * u - 1.0), np.pi * v
        return np.stack([np.sin(az) * np.sin(pol), np.cos(pol), np.cos(az) * np.sin(pol)], -1)

    U, Vv = np.meshgrid(us[:-1], vs[1:-1])
    rings = direction(U.reshape(-1), Vv.reshape(-1))
    verts = radius * np.concatenate([[[0.0, 1.0, 0.0]], rings, [[0.0, -1.0, 0.0]]], 0)
    n_rings = n_v - 1
    top, bottom = 0, 1 + n_rings * n_u

    def gid(r, c):
        return 1 + r * n_u + (c % n_u)

    UU, VV = np.meshgrid(us, vs)
    uv = np.stack([UU.reshape(-1), VV.reshape(-1)], 1)

    def tid(row, col):
        return row * (n_u + 1) + col

    faces, faces_uv = [], []
    for c in range(n_u):
        faces.append([top, gid(0, c), gid(0, c + 1)])
        faces_uv.append([tid(0, c), tid(1, c), tid(1, c + 1)])
        for r in range(n_rings - 1):
            a, b, cc, dd = gid(r, c), gid(r, c + 1), gid(r + 1, c), gid(r + 1, c + 1)
            ta, tb, tc, td = tid(r + 1, c), tid(r + 1, c + 1), tid(r + 2, c), tid(r + 2, c + 1)
            faces += [[a, cc, dd], [a, dd, b]]
            faces_uv += [[ta, tc, td], [ta, td, tb]]
        faces.append([gid(n_rings - 1, c), bottom, gid(n_rings - 1, c + 1)])
        faces_uv.append([tid(n_v - 1, c), tid(n_v, c), tid(n_v - 1, c + 1)])
    # pole uv corners at the middle of their column (as the template does)
    uv[tid(0, np.arange(n_u + 1)), 0] = np.clip(us + 0.5 / n_u, 0.0, 1.0)
    uv[tid(n_v, np.arange(n_u + 1)), 0] = np.clip(us + 0.5 / n_u, 0.0, 1.0)
    return Mesh(verts, np.array(faces, dtype=np.int64), uv, np.array(faces_uv, dtype=np.int64))


def small_mesh() -> Mesh:
    """The default small test mesh: a unit UV sphere with 288 triangles."""
    return uv_sphere()


def quad_patch(n: int = 4, *, size: float = 1.0) -> Mesh:
    """A flat ``n × n`` quad grid in the ``z = 0`` plane whose UVs equal ``(x, y) / size``
    (one ``uv`` per vertex, ``2 n²`` triangles counter-clockwise seen from ``+z``)."""
    g = np.linspace(0.0, 1.0, n + 1)
    X, Y = np.meshgrid(g, g)
    uv = np.stack([X.reshape(-1), Y.reshape(-1)], 1)
    verts = np.concatenate([uv * size, np.zeros((len(uv), 1))], 1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return Mesh(verts, faces, uv, faces.copy())


def random_camera(key, *, image_size=(256, 256), dtype=None) -> Camera:
    """A random camera about 3 m in front of the origin, looking roughly at it.

    Rotation: a random rotation vector of norm up to ~0.5 rad; translation ``(±0.2, ±0.2,
    3 ± 0.3)``; focal 400–600 px; principal point near the image centre.
    """
    dtype = dtype or jnp.result_type(float)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    w, h = image_size
    rotation = 0.3 * jax.random.normal(k1, (3,), dtype)
    translation = jnp.array([0.0, 0.0, 3.0], dtype) + jax.random.uniform(k2, (3,), dtype, -0.2, 0.2)
    focal = jax.random.uniform(k3, (2,), dtype, 400.0, 600.0)
    principal = jnp.array([w / 2.0, h / 2.0], dtype) + jax.random.uniform(k4, (2,), dtype, -5.0, 5.0)
    return Camera(rotation, translation, focal, principal, image_size=tuple(image_size))


def x64():
    """Context manager enabling float64 for its body and restoring the previous setting."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64()


def assert_tree_allclose(a, b, *, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """Assert two pytrees have the same structure and allclose leaves."""
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb, f"tree structures differ: {ta} vs {tb}"
    for i, (x, y) in enumerate(zip(la, lb)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape, f"leaf {i}: shapes differ {x.shape} vs {y.shape}"
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"leaf {i}")


def signed_volume(vertices, faces) -> float:
    """Signed volume of a closed triangle mesh (positive for outward counter-clockwise faces)."""
    v, f = np.asarray(vertices, np.float64), np.asarray(faces)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def uv_signed_areas(mesh: Mesh) -> np.ndarray:
    """``(F,)`` signed areas of the UV triangles (in ``(u, v)`` coordinates, ``v`` down)."""
    uv, ft = np.asarray(mesh.uv, np.float64), np.asarray(mesh.faces_uv)
    a, b, c = uv[ft[:, 0]], uv[ft[:, 1]], uv[ft[:, 2]]
    return 0.5 * ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])


def edge_counts(faces) -> np.ndarray:
    """How many faces share each undirected edge (one count per distinct edge)."""
    f = np.asarray(faces)
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return counts


def open_mouth(n: int = 160):
    """The template's lips laid out as an open mouth about 128 px wide in an ``n × n`` photo:
    ``(template, landmark_uv, pts, uv, marks)`` with ``pts`` the template's landmarks in pixels,
    ``uv`` ``(n, n, 2)`` the photo's own texture layout (each pixel's template UV), and
    ``marks(points)`` the :class:`~machlib.geometry.Landmarks` of pixel points. For the mouth
    mapping's tests (``tests/texture/test_face_masks.py``, ``test_mouth.py``)."""
    from machlib._facemesh import LIPS_OUTER
    from machlib.geometry import Landmarks, default_template

    tpl = default_template()
    lm = np.asarray(tpl.landmark_uv, np.float64)
    c = lm[list(LIPS_OUTER)].mean(0)
    pts = (lm - c) * 600.0 + n / 2
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    uv = np.stack([(xx - n / 2) / 600.0 + c[0], (yy - n / 2) / 600.0 + c[1]], -1).astype(np.float32)

    def marks(p):
        p = p.astype(np.float32)
        k = p.shape[0]
        return Landmarks(p, np.zeros(k, np.float32), np.ones(k, np.float32),
                         np.r_[p.min(0), p.max(0)].astype(np.float32))

    return tpl, lm, pts, uv, marks
