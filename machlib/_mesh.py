"""Triangle meshes with a separate UV topology (their files: :mod:`machlib.export`).

A :class:`Mesh` keeps geometry and texture coordinates apart, as OBJ does: ``faces`` index the
unique 3D ``vertices`` (so the surface is welded and can be closed) and ``faces_uv`` index the
texture coordinates ``uv`` (so a UV seam or a pole can give one vertex several ``uv``). Winding is
counter-clockwise seen from outside; UV origin is the top-left corner of the texture image (glTF),
see :doc:`/conventions`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._errors import InputError
from ._typing import AnyArray


__all__ = ["Mesh", "vertex_normals", "boundary_loops", "cap_holes"]


class Mesh(eqx.Module):
    """A triangle mesh: welded geometry plus an OBJ-style UV topology.

    Attributes:
        vertices: ``(V, 3)`` float positions in metres (head space: +y up, +z out of the face).
        faces: ``(F, 3)`` int indices into ``vertices``, counter-clockwise seen from outside.
        uv: ``(T, 2)`` float texture coordinates in ``[0, 1]``, origin top-left, ``v`` down.
        faces_uv: ``(F, 3)`` int indices into ``uv``; corner ``c`` of face ``f`` has position
            ``vertices[faces[f, c]]`` and texture coordinate ``uv[faces_uv[f, c]]``.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> m = Mesh(np.eye(3), np.array([[0, 1, 2]]), np.array([[0., 0.], [1., 0.], [0., 1.]]),
        ...          np.array([[0, 1, 2]]))
        >>> m.num_vertices, m.num_faces
        (3, 1)
    """

    vertices: Float[AnyArray, "V 3"]
    faces: Int[AnyArray, "F 3"]
    uv: Float[AnyArray, "T 2"]
    faces_uv: Int[AnyArray, "F 3"]

    def __check_init__(self):
        v, f, t, ft = (np.shape(x) for x in (self.vertices, self.faces, self.uv, self.faces_uv))
        if len(v) != 2 or v[1] != 3:
            raise InputError(f"Mesh: vertices must have shape (V, 3), got {v}")
        if len(f) != 2 or f[1] != 3:
            raise InputError(f"Mesh: faces must have shape (F, 3), got {f}")
        if len(t) != 2 or t[1] != 2:
            raise InputError(f"Mesh: uv must have shape (T, 2), got {t}")
        if ft != f:
            raise InputError(f"Mesh: faces_uv must have the shape of faces {f}, got {ft}")

    @property
    def num_vertices(self) -> int:
        """Number of unique 3D vertices ``V``."""
        return int(np.shape(self.vertices)[0])

    @property
    def num_faces(self) -> int:
        """Number of triangles ``F``."""
        return int(np.shape(self.faces)[0])

    def vertex_uv(self) -> np.ndarray:
        """One representative texture coordinate per vertex, ``(V, 2)`` (numpy).

        Where a vertex has several ``uv`` (a seam or a pole) the first corner that uses it wins;
        decoding a position map there gives the same point up to the map's resolution.
        """
        faces = np.asarray(self.faces).reshape(-1)
        fuv = np.asarray(self.faces_uv).reshape(-1)
        out = np.full((self.num_vertices, 2), np.nan)
        order = np.arange(faces.size)[::-1]  # so the first corner is written last and wins
        out[faces[order]] = np.asarray(self.uv)[fuv[order]]
        if np.isnan(out).any():
            missing = int(np.isnan(out[:, 0]).sum())
            raise InputError(f"Mesh.vertex_uv: {missing} vertices are used by no face")
        return out

    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Split vertices at UV seams for formats with one index buffer (glTF).

        Returns:
            ``(positions (N, 3), uv (N, 2), faces (F, 3), source (N,))`` where ``source`` maps
            each split vertex back to its index in ``vertices``.
        """
        f = np.asarray(self.faces).reshape(-1)
        ft = np.asarray(self.faces_uv).reshape(-1)
        pairs, inverse = np.unique(np.stack([f, ft], 1), axis=0, return_inverse=True)
        positions = np.asarray(self.vertices)[pairs[:, 0]]
        uv = np.asarray(self.uv)[pairs[:, 1]]
        return positions, uv, inverse.reshape(-1, 3), pairs[:, 0]


@jax.jit  # one compiled program per mesh size instead of ten eager operations, each compiled
def vertex_normals(vertices: Float[AnyArray, "V 3"], faces: Int[AnyArray, "F 3"]) -> Float[Array, "V 3"]:
    """Area-weighted unit vertex normals (outward for counter-clockwise faces).

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` triangle indices.

    Returns:
        ``(V, 3)`` unit normals; a vertex with no area around it gets a zero vector and finite
        gradients.
    """
    vertices = jnp.asarray(vertices)
    tri = vertices[faces]
    fn = jnp.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = jnp.zeros_like(vertices).at[faces.reshape(-1)].add(jnp.repeat(fn, 3, axis=0))
    n2 = jnp.sum(vn * vn, axis=-1, keepdims=True)
    ok = n2 > jnp.finfo(vertices.dtype).tiny
    return jnp.where(ok, vn / jnp.sqrt(jnp.where(ok, n2, 1.0)), 0.0)


# ---------------------------------------------------------------------------------------------
# OBJ


def boundary_loops(faces: Int[AnyArray, "F 3"]) -> list:
    """The boundary loops of a triangle mesh, each an ordered ``(n,)`` array of vertex indices
    following the faces' winding (empty for a closed mesh).

    Example:
        >>> import numpy as np
        >>> from machlib import boundary_loops
        >>> [loop.tolist() for loop in boundary_loops(np.array([[0, 1, 2], [0, 2, 3]]))]
        [[0, 1, 2, 3]]
    """
    f = np.asarray(faces, np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    key = set(map(tuple, e.tolist()))
    nxt = {a: b for a, b in e.tolist() if (b, a) not in key}
    loops, seen = [], set()
    for s in sorted(nxt):
        if s in seen:
            continue
        loop, cur = [], s
        while cur not in seen and cur in nxt:
            seen.add(cur)
            loop.append(cur)
            cur = nxt[cur]
        loops.append(np.array(loop, np.int64))
    return loops


def cap_holes(vertices: Float[AnyArray, "V 3"], faces: Int[AnyArray, "F 3"]) -> tuple[np.ndarray, np.ndarray]:
    """Close every boundary loop with a fan of triangles around its centroid (numpy).

    For inside/outside tests on an open mesh (the human's head ends at the base of its neck):
    the caps keep the faces' outward counter-clockwise winding.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` triangles.

    Returns:
        ``(vertices, faces)`` with one centroid vertex per loop appended and the cap triangles
        after the original faces (unchanged for a closed mesh).
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    new_v, new_f = [v], [f]
    n = len(v)
    for loop in boundary_loops(f):
        if len(loop) < 3:
            continue
        new_v.append(v[loop].mean(0, keepdims=True))
        # the loop follows the faces' winding, so the cap runs against it
        nxt = np.roll(loop, -1)
        new_f.append(np.stack([nxt, loop, np.full(len(loop), n)], 1))
        n += 1
    return np.concatenate(new_v), np.concatenate(new_f)
