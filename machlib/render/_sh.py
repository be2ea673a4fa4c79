"""Second-order spherical-harmonics lighting (Ramamoorthi & Hanrahan 2001).

Lighting is a distant radiance environment ``L(ω)`` projected onto the nine real spherical
harmonics of bands 0–2, one column per colour channel: ``coeffs`` of shape ``(9, C)``. A
Lambertian surface with normal ``n`` and albedo ``ρ`` then reflects ``ρ · s(n)`` with the
*shading*

.. code-block:: text

   s(n) = Σ_k  Â_l(k) / π · L_k · Y_k(n),      Â_0 = π,  Â_1 = 2π/3,  Â_2 = π/4

so a uniform environment of radiance 1 gives ``s ≡ 1`` and an albedo renders as itself.
Directions are in head space (:doc:`/conventions`: +y up, +z out of the face).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = [
    "SH_BANDS",
    "sh_basis",
    "sh_shading",
    "sh_constant",
    "sh_directional",
    "fit_sh_lighting",
]

#: Band index ``l`` of each of the nine coefficients, in the order used by :func:`sh_basis`.
SH_BANDS = (0, 1, 1, 1, 2, 2, 2, 2, 2)

_C0 = 0.5 * math.sqrt(1.0 / math.pi)
_C1 = math.sqrt(3.0 / (4.0 * math.pi))
_C2 = 0.5 * math.sqrt(15.0 / math.pi)
_C3 = 0.25 * math.sqrt(5.0 / math.pi)
_C4 = 0.25 * math.sqrt(15.0 / math.pi)
# cosine-lobe convolution divided by π (see the module docstring)
_LOBE = (1.0, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 0.25, 0.25, 0.25, 0.25, 0.25)


def _unit(v: jax.Array) -> jax.Array:
    sq = jnp.sum(v * v, axis=-1, keepdims=True)
    tiny = jnp.finfo(v.dtype).tiny if jnp.issubdtype(v.dtype, jnp.floating) else 1e-30
    safe = jnp.where(sq > tiny, sq, 1.0)
    return jnp.where(sq > tiny, v / jnp.sqrt(safe), 0.0)


def sh_basis(directions: Float[ArrayLike, "*batch 3"]) -> Float[Array, "*batch 9"]:
    """The nine real spherical harmonics ``Y_k`` of bands 0–2 at the given directions.

    Args:
        directions: ``(..., 3)`` directions ``(x, y, z)`` in head space; normalised here
            (zero vectors give the band-0 value only, with finite gradients).

    Returns:
        ``(..., 9)``: ``Y00, Y1−1 ∝ y, Y10 ∝ z, Y11 ∝ x, Y2−2 ∝ xy, Y2−1 ∝ yz, Y20 ∝ 3z²−1,
        Y21 ∝ xz, Y22 ∝ x²−y²``, orthonormal over the sphere.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import sh_basis
        >>> [round(float(v), 4) for v in sh_basis(jnp.array([0.0, 0.0, 1.0]))[:4]]
        [0.2821, 0.0, 0.4886, 0.0]
    """
    d = jnp.asarray(directions)
    if d.ndim < 1 or d.shape[-1] != 3:
        raise ValueError(f"sh_basis: directions must have shape (..., 3), got {d.shape}")
    if not jnp.issubdtype(d.dtype, jnp.floating):
        d = d.astype(jnp.float32)
    d = _unit(d)
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    return jnp.stack(
        [
            jnp.full_like(x, _C0),
            _C1 * y,
            _C1 * z,
            _C1 * x,
            _C2 * x * y,
            _C2 * y * z,
            _C3 * (3.0 * z * z - (x * x + y * y + z * z)),  # = 3z² − 1 on the sphere, 0 at d = 0
            _C2 * x * z,
            _C4 * (x * x - y * y),
        ],
        axis=-1,
    )


def _check_coeffs(name: str, coeffs) -> jax.Array:
    coeffs = jnp.asarray(coeffs)
    if coeffs.ndim != 2 or coeffs.shape[0] != 9:
        raise ValueError(f"{name}: coeffs must have shape (9, C), got {coeffs.shape}")
    return coeffs


def sh_shading(
    normals: Float[ArrayLike, "*batch 3"], coeffs: Float[ArrayLike, "9 C"]
) -> Float[Array, "*batch C"]:
    """Lambertian shading ``s(n)`` of an SH environment (module docstring), per channel.

    Multiply by an albedo to get the reflected colour. Differentiable in both arguments.

    Args:
        normals: ``(..., 3)`` surface normals in head space (normalised here).
        coeffs: ``(9, C)`` radiance coefficients, one column per channel.

    Returns:
        ``(..., C)`` shading; 1 everywhere for :func:`sh_constant` ``(1.0)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import sh_shading, sh_constant
        >>> sh_shading(jnp.array([[0.0, 1.0, 0.0]]), sh_constant(jnp.ones(3))).round(5).tolist()
        [[1.0, 1.0, 1.0]]
    """
    coeffs = _check_coeffs("sh_shading", coeffs)
    basis = sh_basis(normals)
    lobe = jnp.asarray(_LOBE, dtype=basis.dtype)
    return jnp.matmul(basis * lobe, coeffs.astype(basis.dtype), precision=jax.lax.Precision.HIGHEST)


def sh_constant(radiance: Float[ArrayLike, "C"]) -> Float[Array, "9 C"]:
    """SH coefficients of a uniform environment of the given radiance per channel.

    Args:
        radiance: ``(C,)`` radiance (1 gives shading 1).

    Returns:
        ``(9, C)`` coefficients; only band 0 is non-zero.
    """
    radiance = jnp.asarray(radiance, dtype=jnp.result_type(float, jnp.asarray(radiance).dtype))
    if radiance.ndim != 1:
        raise ValueError(f"sh_constant: radiance must have shape (C,), got {radiance.shape}")
    first = (radiance / _C0)[None]
    return jnp.concatenate([first, jnp.zeros((8, radiance.shape[0]), radiance.dtype)], axis=0)


def sh_directional(
    direction: Float[ArrayLike, "3"],
    color: Float[ArrayLike, "C"],
    *,
    ambient: Float[ArrayLike, "C"] | float = 0.0,
) -> Float[Array, "9 C"]:
    """SH coefficients of a distant light toward ``direction`` plus a uniform ambient term.

    The light is a delta of irradiance ``π · color`` on a surface facing it, band-limited to
    order 2, so a surface facing the light has shading ``≈ 1.06 · color + ambient`` (the
    band-limited cosine lobe overshoots the exact ``color`` by 6 %).

    Args:
        direction: ``(3,)`` direction *toward* the light in head space (normalised here).
        color: ``(C,)`` light colour (intensity per channel).
        ambient: ``(C,)`` or scalar uniform radiance added (shading offset).

    Returns:
        ``(9, C)`` radiance coefficients.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import sh_directional, sh_shading
        >>> c = sh_directional(jnp.array([0.0, 0.0, 1.0]), jnp.ones(1), ambient=0.2)
        >>> s = sh_shading(jnp.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]), c)
        >>> bool(s[0, 0] > 1.0), bool(abs(s[1, 0] - 0.2) < 0.1)
        (True, True)
    """
    color = jnp.asarray(color)
    if color.ndim != 1:
        raise ValueError(f"sh_directional: color must have shape (C,), got {color.shape}")
    if jnp.shape(direction) != (3,):
        raise ValueError(f"sh_directional: direction must have shape (3,), got {jnp.shape(direction)}")
    y = sh_basis(jnp.asarray(direction, dtype=jnp.result_type(float, color.dtype)))
    amb = jnp.broadcast_to(jnp.asarray(ambient, dtype=y.dtype), color.shape)
    return math.pi * y[:, None] * color[None].astype(y.dtype) + sh_constant(amb)


def fit_sh_lighting(
    normals: Float[ArrayLike, "N 3"],
    radiance: Float[ArrayLike, "N C"],
    albedo: Float[ArrayLike, "N C"],
    *,
    weights: Float[ArrayLike, "N"] | None = None,
    ridge: float = 1e-3,
) -> Float[Array, "9 C"]:
    """Estimate SH lighting from observed colours, normals and an albedo prior.

    Solves the weighted ridge least-squares problem
    ``min_c Σ_i w_i ‖radiance_i − albedo_i · s(n_i; c)‖² + ridge · Σ_i w_i · ‖c_{1:}‖²``
    in closed form, independently per channel (band 0 is not penalised). Differentiable.

    Args:
        normals: ``(N, 3)`` unit normals of the observed surface points.
        radiance: ``(N, C)`` observed colours (linear or display values, used as given).
        albedo: ``(N, C)`` albedo prior at the same points (e.g. a template skin colour).
        weights: ``(N,)`` non-negative sample weights (e.g. a visibility mask); default all 1.
        ridge: Tikhonov weight on bands 1–2, relative to the total weight.

    Returns:
        ``(9, C)`` radiance coefficients for :func:`sh_shading`.
    """
    normals = jnp.asarray(normals)
    radiance = jnp.asarray(radiance)
    albedo = jnp.asarray(albedo)
    if normals.ndim != 2 or normals.shape[-1] != 3:
        raise ValueError(f"fit_sh_lighting: normals must have shape (N, 3), got {normals.shape}")
    if radiance.ndim != 2 or albedo.shape != radiance.shape or radiance.shape[0] != normals.shape[0]:
        raise ValueError(
            "fit_sh_lighting: radiance and albedo must both have shape (N, C) with N = "
            f"{normals.shape[0]}, got {radiance.shape} and {albedo.shape}"
        )
    basis = sh_basis(normals) * jnp.asarray(_LOBE, dtype=normals.dtype)  # (N, 9)
    w = jnp.ones(normals.shape[0], basis.dtype) if weights is None else jnp.asarray(weights)
    if w.shape != (normals.shape[0],):
        raise ValueError(f"fit_sh_lighting: weights must have shape ({normals.shape[0]},), got {w.shape}")
    penalty = jnp.asarray([0.0] + [1.0] * 8, dtype=basis.dtype) * ridge * jnp.sum(w)

    def solve(rad_c, alb_c):
        a = basis * alb_c[:, None]
        lhs = (a * w[:, None]).T @ a + jnp.diag(penalty) + 1e-12 * jnp.eye(9, dtype=basis.dtype)
        rhs = (a * w[:, None]).T @ rad_c
        return jnp.linalg.solve(lhs, rhs)

    return jax.vmap(solve, in_axes=(1, 1), out_axes=1)(radiance, albedo)
