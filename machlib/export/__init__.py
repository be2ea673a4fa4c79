"""Every file format machlib writes and reads, in one package.

* **glTF 2.0 (GLB)**: :class:`GltfBuilder` assembles materials (PBR metallic-roughness, PNG
  textures embedded), meshes of :class:`Triangles` (normals, UVs, tangents, colours, skin
  weights, sparse morph targets with normal deltas, named in ``extras.targetNames``) and
  :class:`Lines`, a node hierarchy and skins, and writes one GLB (:meth:`GltfBuilder.to_glb`),
  byte-for-byte deterministic. :func:`glb_bytes` / :func:`save_glb` encode one
  :class:`~machlib.Mesh`. :func:`read_glb` decodes a GLB back into JSON and numpy arrays and
  :func:`validate_gltf` checks the glTF 2.0 rules that matter.
* **Wavefront OBJ + MTL**: :func:`save_obj` and :func:`load_mesh` (OBJ, and GLB/glTF through
  trimesh) for one mesh; :func:`write_obj_parts` for several :class:`ObjPart` s with PBR-ish
  materials and texture maps.
* **Hair strands**: USC-HairSalon ``.data`` (:func:`read_hair_data`, :func:`write_hair_data`),
  Cem Yuksel's ``.hair`` (:func:`read_cem_hair`, :func:`write_cem_hair`), USD BasisCurves
  ``.usda`` (:func:`write_usd_curves`) and glTF lines (:func:`strands_to_gltf_lines`).
* **Bundles and safety**: :func:`write_bundle` (deterministic zip) and :func:`write_atomic`
  (every writer here replaces its file atomically).
* :func:`vertex_tangents` (``TANGENT`` for normal maps) and :func:`encode_png` (deterministic PNG).

Readers raise :class:`~machlib.InputError` naming the file and the problem.
"""

from ._files import write_atomic, write_bundle
from ._gltf import GltfBuilder, Lines, Triangles, encode_png, read_glb, validate_gltf, vertex_tangents
from ._hair import (
    read_cem_hair,
    read_hair_data,
    strands_to_gltf_lines,
    write_cem_hair,
    write_hair_data,
    write_usd_curves,
)
from ._mesh_files import ObjPart, glb_bytes, load_mesh, save_glb, save_obj, write_obj_parts

__all__ = [
    "GltfBuilder", "Triangles", "Lines", "read_glb", "validate_gltf", "vertex_tangents", "encode_png",
    "glb_bytes", "save_glb", "save_obj", "load_mesh", "ObjPart", "write_obj_parts",
    "read_hair_data", "write_hair_data", "read_cem_hair", "write_cem_hair", "write_usd_curves",
    "strands_to_gltf_lines", "write_bundle", "write_atomic",
]
