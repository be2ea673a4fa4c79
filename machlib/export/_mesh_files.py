"""Single meshes in files: Wavefront OBJ (+ MTL) and binary glTF, written and read.

OBJ's texture origin is bottom-left, so ``vt = (u, 1 − v)`` on the way out and back; machlib's
UV origin is the top-left (glTF's), see :doc:`/conventions`. Writers are atomic
(:func:`~machlib.export.write_atomic`); readers raise :class:`~machlib.InputError` naming the
file and the problem.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Optional, Union

import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._mesh import Mesh, vertex_normals
from .._strand_raster import _linear_to_srgb
from ._files import write_atomic
from ._gltf import GltfBuilder, Triangles, encode_png

__all__ = ["save_obj", "load_mesh", "glb_bytes", "save_glb", "ObjPart", "write_obj_parts"]


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
    write_atomic(path, buf.getvalue().encode())
    if texture is not None:  # after the OBJ, so a failed OBJ write leaves no orphan material
        write_atomic(mtl, f"newmtl skin\nKd 1 1 1\nKa 0 0 0\nKs 0 0 0\nmap_Kd {texture}\n".encode())


def _parse_obj(text: str, name: str) -> Mesh:
    verts, uvs, faces, faces_uv = [], [], [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            if parts[0] == "v":
                if len(parts) < 4:
                    raise InputError("a vertex needs x y z")
                verts.append([float(x) for x in parts[1:4]])
            elif parts[0] == "vt":
                if len(parts) < 3:
                    raise InputError("a texture coordinate needs u v")
                uvs.append([float(parts[1]), 1.0 - float(parts[2])])
            elif parts[0] == "f":
                corners = [p.split("/") for p in parts[1:]]
                if len(corners) < 3 or any(len(c) < 2 or not c[1] for c in corners):
                    raise InputError("faces need 'v/vt' corners (texture coordinates)")
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
        split_faces = np.asarray(g.faces)
        positions = np.asarray(g.vertices, dtype=np.float64)
        n = len(positions)
        if (uv.ndim != 2 or uv.shape != (n, 2) or split_faces.ndim != 2 or split_faces.shape[1:] != (3,)
                or not len(split_faces) or split_faces.min() < 0 or split_faces.max() >= n):
            raise InputError(f"{path}: the mesh's faces, positions and texture coordinates do not agree")
        if not (np.isfinite(positions).all() and np.isfinite(uv).all()):
            raise InputError(f"{path}: the mesh has NaN or infinite positions or texture coordinates")
        uv[:, 1] = 1.0 - uv[:, 1]  # trimesh flips glTF's v to OBJ's convention; undo it
        verts, faces = _weld(positions, split_faces)
        return Mesh(verts, faces, uv, split_faces)
    raise InputError(f"{path}: unsupported mesh format {suffix!r} (use .obj, .glb or .gltf)")


def glb_bytes(mesh: Mesh, *, texture: np.ndarray | None = None, color=(0.8, 0.62, 0.52)) -> bytes:
    """Encode ``mesh`` as a binary glTF 2.0 asset (bytes) with normals and ``TEXCOORD_0``.

    Built with :class:`GltfBuilder`, so it is deterministic and passes :func:`validate_gltf`.

    Args:
        mesh: the :class:`~machlib.Mesh` (split at UV seams on the way out).
        texture: optional ``(H, W, 3)`` uint8 base-colour texture (sRGB).
        color: base colour factor (glTF's linear RGB) used when there is no texture.

    Returns:
        The GLB file contents.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.export import glb_bytes, validate_gltf
        >>> tri = Mesh(np.eye(3), np.array([[0, 1, 2]]), np.zeros((3, 2)), np.array([[0, 1, 2]]))
        >>> data = glb_bytes(tri)
        >>> data[:4], validate_gltf(data)
        (b'glTF', [])
    """
    positions, uv, faces, source = mesh.split()
    normals = np.asarray(vertex_normals(jnp.asarray(mesh.vertices), jnp.asarray(mesh.faces)))[source]
    builder = GltfBuilder()
    if texture is not None:
        material = builder.add_material(name="skin", base_color_texture=np.asarray(texture, dtype=np.uint8)[..., :3],
                                        metallic=0.0, roughness=0.6)
    else:
        material = builder.add_material(name="skin", base_color=(*(float(c) for c in color), 1.0),
                                        metallic=0.0, roughness=0.6)
    index = builder.add_mesh([Triangles(positions, faces, normals=normals, uv=uv, material=material)], name="head")
    builder.add_node(name="head", mesh=index)
    return builder.to_glb()


def save_glb(path: str | os.PathLike, mesh: Mesh, *, texture: np.ndarray | None = None) -> None:
    """Write ``mesh`` as binary glTF (see :func:`glb_bytes`), atomically.

    Args:
        path: output ``.glb`` path.
        mesh: the :class:`Mesh`.
        texture: optional ``(H, W, 3)`` uint8 base-colour texture.
    """
    write_atomic(Path(path), glb_bytes(mesh, texture=texture))


class ObjPart(NamedTuple):
    """One object of a multi-part OBJ and its material (:func:`write_obj_parts`).

    Attributes:
        name: object and material name (``o`` / ``usemtl``).
        mesh: the :class:`~machlib.Mesh`.
        base_color: linear RGB(A) base colour (written as sRGB ``Kd``).
        roughness: PBR roughness in ``[0, 1]`` (``Pr``, and a Phong ``Ns`` from it).
        metallic: PBR metalness in ``[0, 1]`` (``Pm``).
        alpha: opacity ``d``.
        texture: optional sRGB albedo image (uint8, or float in ``[0, 1]``): ``map_Kd``.
        normal_map: optional tangent-space normal map: ``norm`` and ``map_Bump -bm 1``.
        roughness_map: optional roughness image, written as one grey channel (data, not
            colour): ``map_Pr``.
        specular_map: optional specular-intensity image in ``[0, 1]`` (glTF's
            ``KHR_materials_specular`` factor, 1 = F0 0.04), one grey channel: ``map_Ks`` with
            ``Ks 1 1 1``.
    """

    name: str
    mesh: Mesh
    base_color: Sequence[float] = (0.8, 0.8, 0.8)
    roughness: float = 0.5
    metallic: float = 0.0
    alpha: float = 1.0
    texture: Optional[np.ndarray] = None
    normal_map: Optional[np.ndarray] = None
    roughness_map: Optional[np.ndarray] = None
    specular_map: Optional[np.ndarray] = None


def _u8(img) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def _stem(part: str) -> str:
    """A part name as a file-name piece (letters, digits, ``._-``; anything else becomes ``_``)."""
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    return "".join(c if c in ok else "_" for c in part) or "part"


def write_obj_parts(out_dir: Union[str, os.PathLike], parts: Sequence[ObjPart], *, name: str = "avatar") -> list:
    """Write several meshes as one Wavefront OBJ + MTL with their textures (one object each).

    Writes ``<name>.obj``, ``<name>.mtl`` and, for the parts that have them,
    ``<name>_albedo.png``, ``<name>_normal.png``, ``<name>_roughness.png`` and
    ``<name>_specular.png`` into ``out_dir``
    (which must exist). The normal map is named both ``norm`` (the PBR extension) and
    ``map_Bump -bm 1.000`` (what Blender's and most other importers read); roughness is one
    grey channel, so importers treat it as data rather than colour. The first part with a map
    (the skin, in machlib's characters) names it ``<name>_<map>.png``; a later part with a map of
    the same kind (the eyes' iris and sclera textures) writes ``<name>_<part>_<map>.png``, so no
    part's image overwrites another's.

    Args:
        out_dir: destination folder.
        parts: the :class:`ObjPart` s.
        name: file stem (letters, digits, ``._-``).

    Returns:
        The written file names.

    Raises:
        InputError: ``out_dir`` is not a folder or ``name`` is not a plain file stem.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"write_obj_parts: {out} is not a folder")
    if not name or set(name) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"):
        raise InputError(f"write_obj_parts: name must be a plain file stem, got {name!r}")
    obj = [f"# machlib\nmtllib {name}.mtl\n"]
    mtl = ["# machlib materials\n"]
    written = [f"{name}.obj", f"{name}.mtl"]
    v_off = vt_off = 1
    for p in parts:
        v = np.asarray(p.mesh.vertices, dtype=np.float64)
        uv = np.asarray(p.mesh.uv, dtype=np.float64)
        f = np.asarray(p.mesh.faces) + v_off
        ft = np.asarray(p.mesh.faces_uv) + vt_off
        buf = io.StringIO()
        buf.write(f"o {p.name}\nusemtl {p.name}\n")
        np.savetxt(buf, v, fmt="v %.6f %.6f %.6f")
        np.savetxt(buf, np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1).reshape(-1, 2), fmt="vt %.6f %.6f")
        np.savetxt(buf, np.stack([f, ft], 2).reshape(-1, 6), fmt="f %d/%d %d/%d %d/%d")
        obj.append(buf.getvalue())
        v_off += len(v)
        vt_off += len(uv)
        kd = _linear_to_srgb(np.asarray(p.base_color, dtype=np.float64)[:3])
        ks = "1 1 1" if p.specular_map is not None else "0.04 0.04 0.04"
        mtl.append(f"newmtl {p.name}\nKd {kd[0]:.4f} {kd[1]:.4f} {kd[2]:.4f}\nKs {ks}\n"
                   f"Ns {max(2.0, (1 - p.roughness) * 200):.1f}\nd {p.alpha:.3f}\nillum 2\n"
                   f"Pr {p.roughness:.3f}\nPm {p.metallic:.3f}\n")
        # image maps: (file suffix, image, MTL lines, written as one grey channel: data maps)
        for suffix, image, lines, grey in (
            ("albedo", p.texture, "map_Kd {fn}\n", False),
            ("normal", p.normal_map, "norm {fn}\nmap_Bump -bm 1.000 {fn}\n", False),
            ("roughness", p.roughness_map, "map_Pr {fn}\n", True),
            ("specular", p.specular_map, "map_Ks {fn}\n", True),
        ):
            if image is None:
                continue
            fn = f"{name}_{suffix}.png"
            if fn in written:  # a second part with its own map (the eyes' textures): its own file
                fn = f"{name}_{_stem(p.name)}_{suffix}.png"
            r = _u8(image)
            write_atomic(out / fn, encode_png(r[..., 0] if grey and r.ndim == 3 else r))
            mtl.append(lines.format(fn=fn))
            written.append(fn)
        mtl.append("\n")
    write_atomic(out / f"{name}.obj", "".join(obj).encode())
    write_atomic(out / f"{name}.mtl", "".join(mtl).encode())
    return written
