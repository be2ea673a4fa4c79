"""Differentiable rendering in pure JAX, the nvdiffrast decomposition: rasterize, interpolate,
texture, antialias; plus spherical-harmonics lighting. See :doc:`/rendering`."""

from ._sh import SH_BANDS, fit_sh_lighting, sh_basis, sh_constant, sh_directional, sh_shading

__all__ = [
    "SH_BANDS", "fit_sh_lighting", "sh_basis", "sh_constant", "sh_directional", "sh_shading",
]
from ._rasterize import Raster, fragment_count, interpolate, projection_matrix, rasterize, to_clip

__all__ += ["Raster", "fragment_count", "interpolate", "projection_matrix", "rasterize", "to_clip"]
from ._texture import build_mip, mip_level, texture
from ._antialias import antialias, antialias_topology

__all__ += ["build_mip", "mip_level", "texture", "antialias", "antialias_topology"]
from ._shade import linear_to_srgb, render_textured, srgb_to_linear

__all__ += ["linear_to_srgb", "render_textured", "srgb_to_linear"]
