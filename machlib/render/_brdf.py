"""The glTF specular lobe, written once for JAX and numpy.

:func:`machlib.texture.ggx_specular` (JAX, differentiable) and the preview renderer
(:func:`machlib._scene.render_scene`, numpy) both evaluate :func:`_ggx_lobe`, so a viewer-like
highlight in the previews and the relit metric of the texture stage are the same formula.
"""

from __future__ import annotations


def _ggx_lobe(xp, nl, nv, nh, vh, roughness, specular):
    """glTF's dielectric specular lobe times ``n·l`` from the cosines of unit vectors (see
    :func:`machlib.texture.ggx_specular` for the formula): ``xp`` is ``jax.numpy`` or ``numpy``.
    ``nl`` and ``nv`` may be any sign (the lobe is 0 where either is ``<= 0``; a double ``where``
    keeps gradients finite there), ``nh`` and ``vh`` are clipped to ``[0, 1]``."""
    nh = xp.clip(nh, 0.0, 1.0)
    vh = xp.clip(vh, 0.0, 1.0)
    lit = (nl > 0) & (nv > 0)
    nl = xp.where(lit, nl, 1.0)  # double where: finite gradients where the lobe is cut off
    nv = xp.where(lit, nv, 1.0)
    alpha = xp.maximum(roughness * roughness, 1e-3)
    a2 = alpha * alpha
    d = a2 / (xp.pi * (nh * nh * (a2 - 1.0) + 1.0) ** 2)
    vis = 0.5 / (nl * xp.sqrt(nv * nv * (1.0 - a2) + a2) + nv * xp.sqrt(nl * nl * (1.0 - a2) + a2))
    fresnel = 0.04 + 0.96 * (1.0 - vh) ** 5
    return xp.where(lit, specular * fresnel * d * vis * nl, 0.0)
