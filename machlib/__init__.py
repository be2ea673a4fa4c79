"""machlib: composable, stateless JAX primitives for text/photo → animatable 3D characters.

Top level: cameras, meshes, images and errors shared by every stage. Stages live in
subpackages: :mod:`machlib.geometry`, :mod:`machlib.texture`, :mod:`machlib.hair`,
:mod:`machlib.text`, :mod:`machlib.assets`, :mod:`machlib.human` (the parametric MakeHuman human), :mod:`machlib.animation`, :mod:`machlib.export`,
:mod:`machlib.character` (the assembled avatar and ``machlib make``) and :mod:`machlib.viewer`.
"""

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
from ._version import __version__ as __version__

__all__ = [
    "Camera", "intrinsics_from_fov", "look_at", "matrix_to_rotvec", "project", "rotation_matrix",
    "world_to_camera", "extrinsics_filter", "head_pose", "camera_from_head_pose",
    "DataError", "InputError", "MachlibError", "NoFaceError", "ParserError", "WeightsMissingError",
    "jit_errors",
    "DEFAULT_PORTRAIT", "default_portrait", "load_image", "save_png",
    "Mesh", "boundary_loops", "cap_holes", "glb_bytes", "load_mesh", "save_glb", "save_obj", "vertex_normals",
    "animation", "assets", "character", "export", "geometry", "hair", "human", "text", "texture", "viewer",
]
