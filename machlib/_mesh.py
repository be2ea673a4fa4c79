"""Triangle meshes with a separate UV topology, and their OBJ / GLB input and output.

A :class:`Mesh` keeps geometry and texture coordinates apart, as OBJ does: ``faces`` index the
unique 3D ``vertices`` (so the surface is welded and can be closed) and ``faces_uv`` index the
texture coordinates ``uv`` (so a UV seam or a pole can give one vertex several ``uv``). Winding is
counter-clockwise seen from outside; UV origin is the top-left corner of the texture image (glTF),
see :doc:`/conventions`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._typing import AnyArray

from ._errors import InputError

__all__ = ["Mesh", "vertex_normals", "load_mesh", "save_obj", "save_glb", "glb_bytes", "boundary_loops", "cap_holes"]


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
            raise ValueError(f"Mesh: vertices must have shape (V, 3), got {v}")
        if len(f) != 2 or f[1] != 3:
            raise ValueError(f"Mesh: faces must have shape (F, 3), got {f}")
        if len(t) != 2 or t[1] != 2:
            raise ValueError(f"Mesh: uv must have shape (T, 2), got {t}")
        if ft != f:
            raise ValueError(f"Mesh: faces_uv must have the shape of faces {f}, got {ft}")

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
            raise ValueError(f"Mesh.vertex_uv: {missing} vertices are used by no face")
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


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_obj(path: str | os.PathLike, mesh: Mesh, *, texture: str | None = None) -> None:
    """Write ``mesh`` as Wavefront OBJ (``v``, ``vt``, ``f v/vt``), optionally with an MTL.

    OBJ's texture origin is bottom-left, so ``vt = (u, 1 - v)``. Written to a temporary file and
    renamed, so a failure never leaves a half-written file.

    Args:
        path: output ``.obj`` path.
        mesh: the :class:`Mesh`.
        texture: optional image file name (relative to the OBJ) for a ``map_Kd`` material; an
            MTL file with the OBJ's stem is written beside it.
    """
    path = Path(path)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    t = np.asarray(mesh.uv, dtype=np.float64)
    f = np.asarray(mesh.faces) + 1
    ft = np.asarray(mesh.faces_uv) + 1
    buf = io.StringIO()
    buf.write("# machlib mesh\n")
    mtl = path.with_suffix(".mtl")
    if texture is not None:
        buf.write(f"mtllib {mtl.name}\nusemtl skin\n")
    np.savetxt(buf, v, fmt="v %.7g %.7g %.7g")
    np.savetxt(buf, np.stack([t[:, 0], 1.0 - t[:, 1]], 1), fmt="vt %.7g %.7g")
    np.savetxt(buf, np.stack([f, ft], 2).reshape(-1, 6), fmt="f %d/%d %d/%d %d/%d")
    _write_atomic(path, buf.getvalue().encode())
    if texture is not None:  # after the OBJ, so a failed OBJ write leaves no orphan material
        _write_atomic(mtl, f"newmtl skin\nKd 1 1 1\nKa 0 0 0\nKs 0 0 0\nmap_Kd {texture}\n".encode())


def _parse_obj(text: str, name: str) -> Mesh:
    verts, uvs, faces, faces_uv = [], [], [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            if parts[0] == "v":
                if len(parts) < 4:
                    raise ValueError("a vertex needs x y z")
                verts.append([float(x) for x in parts[1:4]])
            elif parts[0] == "vt":
                if len(parts) < 3:
                    raise ValueError("a texture coordinate needs u v")
                uvs.append([float(parts[1]), 1.0 - float(parts[2])])
            elif parts[0] == "f":
                corners = [p.split("/") for p in parts[1:]]
                if len(corners) < 3 or any(len(c) < 2 or not c[1] for c in corners):
                    raise ValueError("faces need 'v/vt' corners (texture coordinates)")
                vi = [int(c[0]) for c in corners]
                ti = [int(c[1]) for c in corners]
                vi = [i - 1 if i > 0 else len(verts) + i for i in vi]
                ti = [i - 1 if i > 0 else len(uvs) + i for i in ti]
                for k in range(1, len(corners) - 1):  # fan-triangulate polygons
                    faces.append([vi[0], vi[k], vi[k + 1]])
                    faces_uv.append([ti[0], ti[k], ti[k + 1]])
        except (ValueError, IndexError) as e:
            raise InputError(f"{name}: line {lineno} is not valid OBJ ({e}): {line.strip()[:60]!r}")
    if not verts or not faces:
        raise InputError(f"{name}: the OBJ has no vertices or no faces")
    f, ft = np.array(faces), np.array(faces_uv)
    if f.min() < 0 or f.max() >= len(verts) or ft.min() < 0 or ft.max() >= len(uvs):
        raise InputError(f"{name}: a face index is out of range")
    return Mesh(np.array(verts), f, np.array(uvs), ft)


def _weld(positions: np.ndarray, faces: np.ndarray, decimals: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices with equal (rounded) positions, numbered by first appearance so the
    original vertex order survives (vertex-indexed landmark tables stay valid)."""
    keys = np.round(positions, decimals)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # unique rows in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return positions[first[order]], rank[inverse.reshape(-1)][faces]


def load_mesh(path: str | os.PathLike) -> Mesh:
    """Read a mesh with texture coordinates from OBJ, GLB or glTF.

    OBJ is read directly (``v``, ``vt``, ``f v/vt[/vn]``, polygons fan-triangulated). GLB/glTF
    go through trimesh; vertices that glTF split at UV seams are welded again by position.

    Args:
        path: a ``.obj``, ``.glb`` or ``.gltf`` file.

    Returns:
        The :class:`Mesh`.

    Raises:
        InputError: missing file, unknown format, or a mesh without texture coordinates.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such mesh file")
    suffix = path.suffix.lower()
    if suffix == ".obj":
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text OBJ file")
        return _parse_obj(text, str(path))
    if suffix in (".glb", ".gltf"):
        import trimesh

        try:
            scene = trimesh.load(path, force="scene", process=False)
        except Exception as e:  # trimesh raises many types on malformed files
            raise InputError(f"{path}: could not read glTF ({e})")
        geoms = list(scene.geometry.values())
        if not geoms:
            raise InputError(f"{path}: the file has no meshes")
        g = geoms[0]
        uv = getattr(g.visual, "uv", None)
        if uv is None:
            raise InputError(f"{path}: the mesh has no texture coordinates (TEXCOORD_0)")
        uv = np.asarray(uv, dtype=np.float64).copy()
        uv[:, 1] = 1.0 - uv[:, 1]  # trimesh flips glTF's v to OBJ's convention; undo it
        split_faces = np.asarray(g.faces)
        verts, faces = _weld(np.asarray(g.vertices, dtype=np.float64), split_faces)
        return Mesh(verts, faces, uv, split_faces)
    raise InputError(f"{path}: unsupported mesh format {suffix!r} (use .obj, .glb or .gltf)")


def glb_bytes(mesh: Mesh, *, texture: np.ndarray | None = None, color=(0.8, 0.62, 0.52)) -> bytes:
    """Encode ``mesh`` as a binary glTF 2.0 asset (bytes) with normals and ``TEXCOORD_0``.

    Args:
        mesh: the :class:`Mesh` (split at UV seams on the way out).
        texture: optional ``(H, W, 3)`` uint8 base-colour texture.
        color: base colour factor used when there is no texture.

    Returns:
        The GLB file contents.
    """
    import trimesh
    from PIL import Image

    positions, uv, faces, source = mesh.split()
    normals = np.asarray(vertex_normals(jnp.asarray(mesh.vertices), jnp.asarray(mesh.faces)))[source]
    uv_gl = uv.copy()
    uv_gl[:, 1] = 1.0 - uv_gl[:, 1]  # trimesh expects OBJ-style v and flips it for glTF
    if texture is not None:
        material = trimesh.visual.material.PBRMaterial(
            baseColorTexture=Image.fromarray(np.asarray(texture, dtype=np.uint8)),
            metallicFactor=0.0, roughnessFactor=0.6,
        )
    else:
        material = trimesh.visual.material.PBRMaterial(
            baseColorFactor=[int(255 * c) for c in color] + [255], metallicFactor=0.0, roughnessFactor=0.6
        )
    tm = trimesh.Trimesh(
        vertices=positions, faces=faces, vertex_normals=normals,
        visual=trimesh.visual.TextureVisuals(uv=uv_gl, material=material), process=False,
    )
    return trimesh.exchange.gltf.export_glb(trimesh.Scene(tm), include_normals=True)


def save_glb(path: str | os.PathLike, mesh: Mesh, *, texture: np.ndarray | None = None) -> None:
    """Write ``mesh`` as binary glTF (see :func:`glb_bytes`), atomically.

    Args:
        path: output ``.glb`` path.
        mesh: the :class:`Mesh`.
        texture: optional ``(H, W, 3)`` uint8 base-colour texture.
    """
    _write_atomic(Path(path), glb_bytes(mesh, texture=texture))
