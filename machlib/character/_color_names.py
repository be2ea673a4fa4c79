"""Colour words from measured colours: CIELAB conversions in numpy and the nearest named colour.

:func:`~machlib.character.iris_color_name`, :func:`~machlib.character.glasses_color_name` and
:func:`~machlib.character.garment_color_name` all name a colour read from a photo by the nearest
entry of a table in CIELAB, with the lightness difference weighted down (a photo's light and
exposure move lightness more than hue). One-shot host steps, so numpy float64 (eagerly in JAX
each operation compiled a program per shape).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._errors import InputError
from ..texture._skin import _lab_linear_np as _lab_linear
from ..texture._skin import _srgb_to_lab_np as _lab


def _nearest_name(owner: str, rgb, names: Sequence[str], table_linear, *, lightness_weight: float,
                  linear: bool = False) -> str:
    """The entry of ``names`` (whose colours are the rows of ``table_linear``, linear RGB) nearest
    to ``rgb`` (sRGB in ``[0, 1]``, or linear RGB with ``linear``) in CIELAB, the lightness
    difference weighted by ``lightness_weight``. Raises :class:`InputError` (naming ``owner``)
    unless ``rgb`` is 3 finite numbers."""
    c = np.asarray(rgb, np.float64)
    if c.shape != (3,) or not np.isfinite(c).all():
        raise InputError(f"{owner}: rgb must be 3 finite numbers, got shape {c.shape}")
    c = np.clip(c, 0.0, 1.0)
    diff = _lab_linear(np.asarray(table_linear, np.float64)) - (_lab_linear(c) if linear else _lab(c))[None]
    diff[:, 0] *= float(lightness_weight)
    return names[int(np.argmin(np.linalg.norm(diff, axis=1)))]
