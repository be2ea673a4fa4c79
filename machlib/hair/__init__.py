"""Strand hair (Make-A-Character §2.5): strand containers and strand file I/O.

What exists now:

* containers: :class:`Strands` (``S`` strands × ``P`` points, the fixed shape that growth and
  rendering use) and :class:`RaggedStrands` (strands of different lengths, stored flat as the file
  formats store them), with conversions, :func:`strands_from_list` and arc-length
  :func:`resample_strands`;
* file formats: USC-HairSalon ``.data`` (:func:`read_hair_data`, :func:`write_hair_data`), Cem
  Yuksel's ``.hair`` (:func:`read_cem_hair`, :func:`write_cem_hair`), USD ``BasisCurves`` as ASCII
  ``.usda`` (:func:`write_usd_curves`), and glTF ``LINES`` arrays (:func:`strands_to_gltf_lines`).

Positions are metres in head space (+y up, +z out of the face; see :doc:`/conventions`); colours
are linear RGB; thickness is a diameter in metres. Orientation maps, 3D fields, strand growth and
the hairstyle library are planned (see :doc:`/hair`).
"""

from ._io import (
    read_cem_hair,
    read_hair_data,
    strands_to_gltf_lines,
    write_cem_hair,
    write_hair_data,
    write_usd_curves,
)
from ._strands import (
    DEFAULT_HAIR_COLOR,
    DEFAULT_HAIR_WIDTH,
    RaggedStrands,
    Strands,
    resample_strands,
    strands_from_list,
)

__all__ = [
    "DEFAULT_HAIR_COLOR", "DEFAULT_HAIR_WIDTH", "RaggedStrands", "Strands", "resample_strands",
    "strands_from_list",
    "read_hair_data", "write_hair_data", "read_cem_hair", "write_cem_hair", "write_usd_curves",
    "strands_to_gltf_lines",
]
