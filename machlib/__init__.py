"""machlib: composable, stateless JAX primitives for text/photo → animatable 3D characters.

Top level: cameras, meshes, images and errors shared by every stage. Stages live in
subpackages: :mod:`machlib.geometry`, :mod:`machlib.texture`, :mod:`machlib.hair`,
:mod:`machlib.text`, :mod:`machlib.assets`, :mod:`machlib.human` (the parametric MakeHuman human), :mod:`machlib.animation`, :mod:`machlib.export`,
:mod:`machlib.character` (the assembled avatar and ``machlib make``) and :mod:`machlib.viewer`.

``import machlib`` is cheap: it imports neither JAX nor any subpackage. Every name in
``__all__`` (and every subpackage) is loaded on first access (:pep:`562`), so
``from machlib import Camera`` and ``machlib.geometry.fit_landmarks`` work as usual and pay for
what they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names as _lazy_names
from ._version import __version__ as __version__

#: Public name → the module that defines it (relative to this package).
_LAZY = {
    **dict.fromkeys(
        ("Camera", "intrinsics_from_fov", "look_at", "matrix_to_rotvec", "project", "rotation_matrix",
         "world_to_camera", "extrinsics_filter", "head_pose", "camera_from_head_pose"), "._camera"),
    **dict.fromkeys(
        ("DataError", "InputError", "MachlibError", "NoFaceError", "ParserError", "WeightsMissingError",
         "jit_errors"), "._errors"),
    **dict.fromkeys(("DEFAULT_PORTRAIT", "default_portrait", "load_image", "save_png"), "._image"),
    **dict.fromkeys(("Mesh", "boundary_loops", "cap_holes", "vertex_normals"), "._mesh"),
    **dict.fromkeys(("glb_bytes", "load_mesh", "save_glb", "save_obj"), ".export"),
}
_SUBPACKAGES = ("animation", "assets", "character", "export", "geometry", "hair", "human", "text", "texture",
                "viewer")
#: Public modules outside ``__all__`` that ``machlib.NAME`` also loads on first access.
_MODULES = ("render", "interop", "pipeline", "batch", "cli")

__all__ = [  # noqa: RUF022 (grouped by topic, the order of the API page)
    "Camera", "intrinsics_from_fov", "look_at", "matrix_to_rotvec", "project", "rotation_matrix",
    "world_to_camera", "extrinsics_filter", "head_pose", "camera_from_head_pose",
    "DataError", "InputError", "MachlibError", "NoFaceError", "ParserError", "WeightsMissingError",
    "jit_errors",
    "DEFAULT_PORTRAIT", "default_portrait", "load_image", "save_png",
    "Mesh", "boundary_loops", "cap_holes", "glb_bytes", "load_mesh", "save_glb", "save_obj", "vertex_normals",
    "animation", "assets", "character", "export", "geometry", "hair", "human", "text", "texture", "viewer",
]


__getattr__, __dir__ = _lazy_names(__name__, globals(), _LAZY, _SUBPACKAGES + _MODULES)


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from . import (
        animation,
        assets,
        character,
        export,
        geometry,
        hair,
        human,
        text,
        texture,
        viewer,
    )
    from ._camera import (
        Camera,
        camera_from_head_pose,
        extrinsics_filter,
        head_pose,
        intrinsics_from_fov,
        look_at,
        matrix_to_rotvec,
        project,
        rotation_matrix,
        world_to_camera,
    )
    from ._errors import (
        DataError,
        InputError,
        MachlibError,
        NoFaceError,
        ParserError,
        WeightsMissingError,
        jit_errors,
    )
    from ._image import DEFAULT_PORTRAIT, default_portrait, load_image, save_png
    from ._mesh import Mesh, boundary_loops, cap_holes, vertex_normals
    from .export import glb_bytes, load_mesh, save_glb, save_obj
