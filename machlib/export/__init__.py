"""Export: binary glTF 2.0 (GLB) with PBR materials, morph targets, skins and hair lines.

* :class:`GltfBuilder` assembles materials (PBR metallic-roughness, PNG textures embedded),
  meshes of :class:`Triangles` (normals, UVs, tangents, colours, skin weights, morph targets named
  in ``extras.targetNames``) and :class:`Lines` (hair strands), a node hierarchy and skins, and
  writes one GLB (:meth:`GltfBuilder.to_glb`), byte-for-byte deterministic.
* :func:`read_glb` decodes a GLB back into JSON and numpy arrays; :func:`validate_gltf` checks the
  glTF 2.0 rules that matter (the tests also run the Khronos validator when Node.js is present).
* :func:`vertex_tangents` (``TANGENT`` for normal maps) and :func:`encode_png` (deterministic PNG).
"""

from ._gltf import GltfBuilder, Lines, Triangles, encode_png, read_glb, validate_gltf, vertex_tangents

__all__ = ["GltfBuilder", "Triangles", "Lines", "read_glb", "validate_gltf", "vertex_tangents", "encode_png"]
