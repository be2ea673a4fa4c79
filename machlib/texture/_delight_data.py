"""Training data for the learned delighter (Make-A-Character §2.4.2): lights baked into albedo
textures, with skin-tone augmentation by ITA.

The paper bakes 100 HDR environments (indoor/outdoor, day/night) into 193 captured albedos and
augments skin colour by the Individual Typology Angle. Here the environments are procedural
second-order SH lights (all a Lambertian bake can see, Ramamoorthi & Hanrahan 2001) assembled
in closed form from the parts of real scenes — a key light and a fill light (discs of light:
:func:`sh_disc`), a sky/ground dome (:func:`sky_lighting`) and an ambient term — with colours
from black-body temperatures (:func:`color_temperature_rgb`). The families:

* ``outdoor_day``: a sun (4500–6500 K, 10–80° elevation, clear to overcast), a blue sky
  (8000–15000 K) over a darker ground, a weak bounce;
* ``outdoor_night``: a sodium or LED street lamp (2000–4500 K), a faint moon, a dark sky;
* ``indoor_day``: a window (a broad disc near the horizon, 5500–7500 K), a fill from the room,
  a warm ceiling over a darker floor;
* ``indoor_night``: a tungsten or warm LED key (2700–4000 K) from above, a cooler fill, warm
  ambient.

Each environment is scaled to a random exposure: the brightest shading luminance over all
normals (the side facing the key) is drawn in a range typical of the family. Every parameter
range is listed in :data:`LIGHTING_RANGES`. All of it is pure JAX, deterministic in the PRNG
key, ``jit``- and ``vmap``-safe, and one compiled graph serves every family. Directions are head
space (:doc:`/conventions`: +y up, +z out of the face, +x toward the subject's left); azimuth is
measured from +z toward +x, elevation above the horizontal plane. Colours are sRGB display
values in ``[0, 1]``; light multiplies *linear* reflectance unless ``linear=False``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from .._errors import InputError
from ..render import linear_to_srgb, sh_basis, sh_shading, srgb_to_linear
from ._skin import lab_to_srgb, shift_to_ita, srgb_to_lab

__all__ = [
    "LIGHTING_KINDS",
    "LIGHTING_RANGES",
    "color_temperature_rgb",
    "sh_disc",
    "sky_lighting",
    "sample_lighting",
    "bake_lighting",
    "albedo_variations",
    "delighting_pairs",
    "light_directions",
    "bake_visibility",
    "ambient_occlusion",
    "DelightScene",
    "delight_scene",
    "ITA_BINS",
    "BATCH_RANGES",
    "DelightBatch",
    "delighting_batch",
]

#: The environment families :func:`sample_lighting` draws from.
LIGHTING_KINDS = ("indoor_day", "indoor_night", "outdoor_day", "outdoor_night")

#: Per family, the uniform range of every environment parameter (degrees, kelvin, and colour
#: scales in units of shading). ``*_azimuth`` is an absolute value: the key's side is drawn at
#: random and the fill sits on the other side. ``exposure`` is the brightest shading luminance.
LIGHTING_RANGES = {
    "outdoor_day": {
        "key_elevation": (10.0, 80.0), "key_azimuth": (0.0, 150.0), "key_kelvin": (4500.0, 6500.0),
        "key_intensity": (0.3, 4.0), "key_half_angle": (0.5, 3.0),
        "fill_elevation": (-40.0, -5.0), "fill_azimuth": (0.0, 180.0), "fill_kelvin": (4000.0, 6000.0),
        "fill_intensity": (0.0, 0.3), "fill_half_angle": (40.0, 70.0),
        "sky_kelvin": (8000.0, 15000.0), "sky_intensity": (0.25, 0.8),
        "ground_kelvin": (3500.0, 5500.0), "ground_intensity": (0.05, 0.25),
        "ambient_kelvin": (6000.0, 8000.0), "ambient_intensity": (0.0, 0.05),
        "exposure": (1.0, 1.5),
    },
    "outdoor_night": {
        "key_elevation": (20.0, 75.0), "key_azimuth": (0.0, 170.0), "key_kelvin": (2000.0, 4500.0),
        "key_intensity": (1.5, 3.0), "key_half_angle": (2.0, 10.0),
        "fill_elevation": (20.0, 70.0), "fill_azimuth": (0.0, 150.0), "fill_kelvin": (6000.0, 9000.0),
        "fill_intensity": (0.0, 0.4), "fill_half_angle": (0.5, 1.0),
        "sky_kelvin": (10000.0, 15000.0), "sky_intensity": (0.02, 0.08),
        "ground_kelvin": (2500.0, 3500.0), "ground_intensity": (0.01, 0.05),
        "ambient_kelvin": (3000.0, 4000.0), "ambient_intensity": (0.0, 0.05),
        "exposure": (0.5, 1.0),
    },
    "indoor_day": {
        "key_elevation": (-5.0, 35.0), "key_azimuth": (20.0, 120.0), "key_kelvin": (5500.0, 7500.0),
        "key_intensity": (1.5, 4.0), "key_half_angle": (15.0, 35.0),
        "fill_elevation": (0.0, 40.0), "fill_azimuth": (20.0, 100.0), "fill_kelvin": (3500.0, 5000.0),
        "fill_intensity": (0.0, 0.5), "fill_half_angle": (20.0, 50.0),
        "sky_kelvin": (3500.0, 5000.0), "sky_intensity": (0.15, 0.4),
        "ground_kelvin": (3000.0, 4500.0), "ground_intensity": (0.05, 0.2),
        "ambient_kelvin": (4000.0, 5000.0), "ambient_intensity": (0.0, 0.1),
        "exposure": (0.9, 1.4),
    },
    "indoor_night": {
        "key_elevation": (25.0, 70.0), "key_azimuth": (0.0, 90.0), "key_kelvin": (2700.0, 4000.0),
        "key_intensity": (1.2, 2.5), "key_half_angle": (3.0, 15.0),
        "fill_elevation": (0.0, 40.0), "fill_azimuth": (30.0, 100.0), "fill_kelvin": (3500.0, 5000.0),
        "fill_intensity": (0.1, 0.6), "fill_half_angle": (10.0, 30.0),
        "sky_kelvin": (2700.0, 3500.0), "sky_intensity": (0.05, 0.2),
        "ground_kelvin": (2700.0, 3500.0), "ground_intensity": (0.02, 0.1),
        "ambient_kelvin": (3000.0, 3500.0), "ambient_intensity": (0.05, 0.15),
        "exposure": (0.6, 1.2),
    },
}

_PARAMS = tuple(LIGHTING_RANGES["outdoor_day"])
_LUMA = (0.2126, 0.7152, 0.0722)
_M_INV = ((3.2404542, -1.5371385, -0.4985314), (-0.9692660, 1.8760108, 0.0415560), (0.0556434, -0.2040259, 1.0572252))
_SH_L = np.array([0, 1, 1, 1, 2, 2, 2, 2, 2], dtype=np.float64)


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` near-uniform unit directions (a Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    y = 1.0 - 2.0 * i / n
    r = np.sqrt(np.maximum(0.0, 1.0 - y * y))
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.sin(phi), y, r * np.cos(phi)], axis=1)


_PROBE_DIRS = _fibonacci_sphere(512)  # normals at which the exposure (peak shading) is measured


# ------------------------------------------------------------------------------------------------
# colour


def _g(lam: np.ndarray, mu: float, s1: float, s2: float) -> np.ndarray:
    s = np.where(lam < mu, s1, s2)
    return np.exp(-0.5 * ((lam - mu) / s) ** 2)


_LAMBDA = np.arange(360.0, 831.0, 5.0)  # nm
# CIE 1931 2° colour-matching functions, multi-lobe fit of Wyman, Sloan & Shirley (2013); (3, 95)
_CMF = np.stack([
    1.056 * _g(_LAMBDA, 599.8, 37.9, 31.0) + 0.362 * _g(_LAMBDA, 442.0, 16.0, 26.7) - 0.065 * _g(_LAMBDA, 501.1, 20.4, 26.2),
    0.821 * _g(_LAMBDA, 568.8, 46.9, 40.5) + 0.286 * _g(_LAMBDA, 530.9, 16.3, 31.1),
    1.217 * _g(_LAMBDA, 437.0, 11.8, 36.0) + 0.681 * _g(_LAMBDA, 459.0, 26.0, 13.8),
])


def color_temperature_rgb(kelvin: Float[ArrayLike, "*batch"] | float) -> Float[Array, "*batch 3"]:
    """Linear sRGB colour of a black body at ``kelvin``, with luminance 1.

    Planck's law integrated (360–830 nm, 5 nm steps) against the CIE 1931 colour-matching
    functions in the multi-lobe Gaussian fit of Wyman, Sloan & Shirley (2013), then XYZ → linear
    sRGB; out-of-gamut negatives are clipped. 6500 K is near white, lower is redder, higher bluer.

    Args:
        kelvin: temperature(s), e.g. 2700 (tungsten) to 15000 (blue sky); 1000–40000 is sensible.

    Returns:
        ``(..., 3)`` linear RGB with ``0.2126 R + 0.7152 G + 0.0722 B = 1``.

    Example:
        >>> from machlib.texture import color_temperature_rgb
        >>> r, g, b = color_temperature_rgb(3000.0).tolist()
        >>> r > g > b
        True
    """
    t = jnp.asarray(kelvin, dtype=jnp.result_type(float, jnp.asarray(kelvin).dtype))[..., None]
    lam_m = jnp.asarray(_LAMBDA * 1e-9, t.dtype)
    c2 = 1.4387769e-2  # second radiation constant h·c/k, m·K
    # relative spectral radiance (the factor 2hc² cancels in the normalisation below)
    spectrum = lam_m**-5 / jnp.expm1(c2 / (lam_m * t))
    spectrum = spectrum / jnp.max(spectrum, axis=-1, keepdims=True)
    xyz = spectrum @ jnp.asarray(_CMF.T, t.dtype)
    rgb = jnp.clip(xyz @ jnp.asarray(_M_INV, xyz.dtype).T, 0.0, None)
    return rgb / (rgb @ jnp.asarray(_LUMA, rgb.dtype))[..., None]


# ------------------------------------------------------------------------------------------------
# SH environments in closed form (Funk–Hecke: a function f(ω·d) has the coefficients
# 2π ∫ f(t) P_l(t) dt · Y_lm(d))


def _zonal(direction, per_band, dtype):
    """Coefficients ``(9, C)`` of a function symmetric about ``direction`` with the given
    per-band Funk–Hecke integrals ``per_band (3, C)``."""
    y = sh_basis(jnp.asarray(direction, dtype))
    return y[:, None] * per_band[jnp.asarray(_SH_L.astype(np.int32))]


def sh_disc(
    direction: Float[ArrayLike, "3"],
    color: Float[ArrayLike, "C"],
    *,
    half_angle: float | Float[ArrayLike, ""],
) -> Float[Array, "9 C"]:
    """SH coefficients of a uniformly bright disc of light (a sun, a lamp, a window).

    The disc subtends the cone of half-angle ``half_angle`` (radians) around ``direction``; its
    radiance is set so that a surface facing it has shading ``color`` (before band-limiting),
    so a tiny disc equals :func:`machlib.render.sh_directional` and larger ones light more
    softly. Projected exactly onto bands 0–2.

    Args:
        direction: ``(3,)`` direction toward the disc's centre in head space (normalised here).
        color: ``(C,)`` shading of a facing surface, per channel.
        half_angle: angular radius in radians, in ``[0, π/2]`` (0: a point light).

    Returns:
        ``(9, C)`` radiance coefficients.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import sh_directional
        >>> from machlib.texture import sh_disc
        >>> d, c = jnp.array([0.0, 0.6, 0.8]), jnp.ones(3)
        >>> bool(jnp.allclose(sh_disc(d, c, half_angle=1e-3), sh_directional(d, c), atol=1e-4))
        True
    """
    color = jnp.asarray(color)
    if color.ndim != 1:
        raise InputError(f"sh_disc: color must have shape (C,), got {color.shape}")
    if jnp.shape(direction) != (3,):
        raise InputError(f"sh_disc: direction must have shape (3,), got {jnp.shape(direction)}")
    dtype = jnp.result_type(float, color.dtype)
    alpha = jnp.clip(jnp.asarray(half_angle, dtype), 0.0, math.pi / 2)
    # radiance color / sin²α times ∫_{cos α}^1 P_l(t) dt = (1 − c, (1 − c²)/2, (c − c³)/2), written
    # without the cancellation of 1 − cos α at small angles: π · color · (1/cos²(α/2), 1, cos α)
    per_band = jnp.stack([1.0 / jnp.cos(0.5 * alpha) ** 2, jnp.ones_like(alpha), jnp.cos(alpha)])
    return _zonal(direction, math.pi * per_band[:, None] * color.astype(dtype)[None], dtype)


def sky_lighting(
    sky: Float[ArrayLike, "C"],
    ground: Float[ArrayLike, "C"],
    *,
    up: Float[ArrayLike, "3"] | None = None,
) -> Float[Array, "9 C"]:
    """SH coefficients of a sky dome: radiance ``sky`` over the upper hemisphere, ``ground``
    below (the step at the horizon projected exactly onto bands 0–2).

    Args:
        sky: ``(C,)`` radiance of the hemisphere around ``up``.
        ground: ``(C,)`` radiance of the other one.
        up: ``(3,)`` the sky direction, default head-space ``+y``.

    Returns:
        ``(9, C)`` coefficients; ``sky == ground == 1`` gives shading 1 everywhere.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import sh_shading
        >>> from machlib.texture import sky_lighting
        >>> c = sky_lighting(jnp.ones(1), jnp.zeros(1))
        >>> [round(float(sh_shading(jnp.array(n), c)[0]), 3) for n in ([0.0, 1.0, 0.0], [0.0, -1.0, 0.0])]
        [1.0, 0.0]
    """
    sky = jnp.asarray(sky)
    ground = jnp.asarray(ground)
    if sky.ndim != 1 or ground.shape != sky.shape:
        raise InputError(f"sky_lighting: sky and ground must both have shape (C,), got {sky.shape} and {ground.shape}")
    dtype = jnp.result_type(float, sky.dtype, ground.dtype)
    u = jnp.asarray([0.0, 1.0, 0.0] if up is None else up, dtype)
    if u.shape != (3,):
        raise InputError(f"sky_lighting: up must have shape (3,), got {u.shape}")
    s, g = sky.astype(dtype), ground.astype(dtype)
    # ∫ f P_l over [-1, 1] for f = s on (0, 1], g on [-1, 0): (s + g), (s − g)/2, 0
    per_band = 2.0 * math.pi * jnp.stack([s + g, 0.5 * (s - g), jnp.zeros_like(s)])
    return _zonal(u, per_band, dtype)


def _direction(elevation_deg, azimuth_deg):
    """Head-space unit vector: azimuth from +z toward +x about +y, elevation above the horizon."""
    el, az = jnp.radians(elevation_deg), jnp.radians(azimuth_deg)
    return jnp.stack([jnp.cos(el) * jnp.sin(az), jnp.sin(el), jnp.cos(el) * jnp.cos(az)])


def _peak_shading(coeffs):
    """Largest luminance of the (non-negative) shading over all normal directions."""
    with jax.ensure_compile_time_eval():  # a constant (512, 9) basis, not traced ops
        basis = sh_shading(jnp.asarray(_PROBE_DIRS, coeffs.dtype), jnp.eye(9, dtype=coeffs.dtype))
    s = jnp.clip(basis @ coeffs, 0.0, None)
    return jnp.max(s @ jnp.asarray(_LUMA, coeffs.dtype))


def _environment(p, side):
    """The SH environment ``(9, 3)`` of one parameter vector (ordered as ``_PARAMS``)."""
    v = dict(zip(_PARAMS, p))
    colors = color_temperature_rgb(
        jnp.stack([v["key_kelvin"], v["fill_kelvin"], v["sky_kelvin"], v["ground_kelvin"], v["ambient_kelvin"]])
    )
    key = sh_disc(_direction(v["key_elevation"], side * v["key_azimuth"]), colors[0] * v["key_intensity"],
                  half_angle=jnp.radians(v["key_half_angle"]))
    fill = sh_disc(_direction(v["fill_elevation"], -side * v["fill_azimuth"]), colors[1] * v["fill_intensity"],
                   half_angle=jnp.radians(v["fill_half_angle"]))
    dome = sky_lighting(colors[2] * v["sky_intensity"], colors[3] * v["ground_intensity"])
    ambient = sky_lighting(colors[4] * v["ambient_intensity"], colors[4] * v["ambient_intensity"])
    coeffs = key + fill + dome + ambient
    return coeffs * (v["exposure"] / jnp.maximum(_peak_shading(coeffs), 1e-6))


def _check_kinds(name: str, kinds) -> tuple:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in LIGHTING_RANGES]
    if not kinds or bad:
        raise InputError(f"{name}: kinds must be drawn from {LIGHTING_KINDS}, got {kinds}")
    return kinds


def sample_lighting(key: PRNGKeyArray, *, kinds: str | tuple | list = LIGHTING_KINDS) -> Float[Array, "9 3"]:
    """A random natural lighting environment as RGB SH coefficients (module docstring).

    A family is drawn uniformly from ``kinds``, then each parameter uniformly from its
    :data:`LIGHTING_RANGES` entry. Deterministic in ``key``; ``jit``/``vmap``-safe (``kinds`` is
    static). The brightest shading luminance over all normals equals the drawn ``exposure``.

    Args:
        key: a JAX PRNG key.
        kinds: one family name or several; see :data:`LIGHTING_KINDS`.

    Returns:
        ``(9, 3)`` float32 radiance coefficients for :func:`machlib.render.sh_shading`.

    Example:
        >>> import jax
        >>> from machlib.texture import sample_lighting
        >>> sample_lighting(jax.random.key(0), kinds="outdoor_day").shape
        (9, 3)
    """
    return _sample_jit(key, kinds=_check_kinds("sample_lighting", kinds))


@functools.partial(jax.jit, static_argnames="kinds")
def _sample_jit(key, *, kinds):
    table = jnp.asarray([[LIGHTING_RANGES[k][p] for p in _PARAMS] for k in kinds], jnp.float32)  # (K, P, 2)
    u = jax.random.uniform(key, (len(_PARAMS) + 2,), jnp.float32)  # one draw: cheap to compile
    lo_hi = table[jnp.minimum((u[0] * len(kinds)).astype(jnp.int32), len(kinds) - 1)]
    p = lo_hi[:, 0] + (lo_hi[:, 1] - lo_hi[:, 0]) * u[2:]
    side = jnp.where(u[1] < 0.5, 1.0, -1.0)
    return _environment(p, side)


# ------------------------------------------------------------------------------------------------
# baking


def bake_lighting(
    albedo: Float[ArrayLike, "*batch 3"],
    normal_map: Float[ArrayLike, "*batch 3"],
    coeffs: Float[ArrayLike, "9 3"],
    *,
    linear: bool = True,
    occlusion: Float[ArrayLike, "*batch"] | None = None,
    specular: float | Float[ArrayLike, ""] = 0.0,
    shininess: float = 16.0,
) -> Float[Array, "*batch 3"]:
    """Bake an SH light into an albedo texture: ``lit = ρ · max(s(n), 0) · ao (+ specular)``.

    The diffuse part is :func:`machlib.render.sh_shading` of the texel normals times the albedo.
    The optional specular sheen (default off: a specular-free bake) is the SH environment
    filtered by a Phong lobe of exponent ``shininess`` (band factors ``exp(−l²/2·shininess)``)
    seen in the mirror direction of a frontal viewer (``+z``); it is white, not tinted by ``ρ``.

    Args:
        albedo: ``(..., 3)`` sRGB albedo in ``[0, 1]`` (e.g. an ``(R, R, 3)`` texture).
        normal_map: ``(..., 3)`` head-space normals at the same texels (normalised here).
        coeffs: ``(9, 3)`` radiance coefficients.
        linear: multiply in linear light (convert ``albedo`` from sRGB, the result back);
            ``False`` multiplies the display values directly.
        occlusion: optional ``(...)`` ambient-occlusion factor in ``[0, 1]`` multiplying the
            shading.
        specular: strength of the specular sheen (0: none).
        shininess: Phong exponent of the sheen.

    Returns:
        ``(..., 3)`` lit texture, sRGB (or display-space if ``linear=False``), clipped to
        ``[0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import sh_constant
        >>> from machlib.texture import bake_lighting
        >>> lit = bake_lighting(jnp.full((2, 2, 3), 0.5), jnp.zeros((2, 2, 3)).at[..., 2].set(1.0),
        ...                     sh_constant(jnp.ones(3)))
        >>> round(float(lit[0, 0, 0]), 4)
        0.5
    """
    albedo = jnp.asarray(albedo)
    normal_map = jnp.asarray(normal_map)
    if albedo.ndim < 1 or albedo.shape[-1] != 3 or normal_map.shape != albedo.shape:
        raise InputError(
            f"bake_lighting: albedo and normal_map must have the same shape (..., 3), got {albedo.shape} and "
            f"{normal_map.shape}"
        )
    dtype = jnp.result_type(float, albedo.dtype)
    coeffs = jnp.asarray(coeffs, dtype)
    if coeffs.shape != (9, 3):
        raise InputError(f"bake_lighting: coeffs must have shape (9, 3), got {coeffs.shape}")
    shading = jnp.clip(sh_shading(normal_map.astype(dtype), coeffs), 0.0, None)
    if occlusion is not None:
        occlusion = jnp.asarray(occlusion, dtype)
        if occlusion.shape != albedo.shape[:-1]:
            raise InputError(f"bake_lighting: occlusion must have shape {albedo.shape[:-1]}, got {occlusion.shape}")
        shading = shading * occlusion[..., None]
    rho = srgb_to_linear(albedo.astype(dtype)) if linear else albedo.astype(dtype)
    out = rho * shading
    strength = jnp.asarray(specular, dtype)
    # the sheen is only computed when asked for (a Python 0 skips it; a traced value never does)
    if not (isinstance(specular, (int, float)) and specular == 0):
        n = normal_map.astype(dtype)
        n = n / jnp.maximum(jnp.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
        view = jnp.asarray([0.0, 0.0, 1.0], dtype)
        refl = 2.0 * (n @ view)[..., None] * n - view
        lobe = jnp.asarray(np.exp(-(_SH_L**2) / (2.0 * shininess)), dtype)
        sheen = jnp.clip((sh_basis(refl) * lobe) @ coeffs, 0.0, None)
        if occlusion is not None:
            sheen = sheen * occlusion[..., None]
        out = out + strength * sheen
    return linear_to_srgb(out) if linear else jnp.clip(out, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------
# albedo augmentation and pairs


def _smooth_field(coarse, resolution):
    """Upsample a ``(cells, cells, C)`` grid of unit Gaussian noise to a smooth ``(R, R, C)``
    field with normalised Gaussian weights (a separable ``(R, cells)`` matrix), keeping unit
    variance."""
    cells = coarse.shape[0]
    x = (np.arange(resolution) + 0.5) / resolution
    c = (np.arange(cells) + 0.5) / cells
    w = np.exp(-0.5 * ((x[:, None] - c[None]) * cells / 0.6) ** 2)
    w = w / np.sqrt((w**2).sum(1, keepdims=True))
    wj = jnp.asarray(w, coarse.dtype)
    return jnp.einsum("ia,abc,jb->ijc", wj, coarse, wj)


def _box2(x):
    """Mean over each texel's 2×2 neighbourhood (edges replicated)."""
    p = jnp.pad(x, ((0, 1), (0, 1)), mode="edge")
    return 0.25 * (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:])


def albedo_variations(
    key: PRNGKeyArray,
    albedo: Float[ArrayLike, "R R 3"],
    *,
    mask: Float[ArrayLike, "R R"] | None = None,
    strength: float | Float[ArrayLike, ""] = 1.0,
) -> Float[Array, "R R 3"]:
    """A procedurally varied copy of an albedo texture (a different "person" for training).

    Adds, in CIELAB and weighted by ``mask``: a low-frequency mottling of lightness and of
    redness/yellowness (σ ≈ 2.5 ΔE), a random global redness bias, and a random density of
    freckle-like spots (darker, yellower texels, up to ~2 % of the skin).

    Args:
        key: PRNG key.
        albedo: ``(R, R, 3)`` sRGB texture in ``[0, 1]``.
        mask: ``(R, R)`` weights in ``[0, 1]`` where the variation applies (skin); default all.
        strength: scale of all variations (0 returns the albedo unchanged, up to rounding).

    Returns:
        ``(R, R, 3)`` sRGB texture in ``[0, 1]``.
    """
    albedo = jnp.asarray(albedo)
    if albedo.ndim != 3 or albedo.shape[-1] != 3 or albedo.shape[0] != albedo.shape[1]:
        raise InputError(f"albedo_variations: albedo must have shape (R, R, 3), got {albedo.shape}")
    dtype = jnp.result_type(float, albedo.dtype)
    R = albedo.shape[0]
    m = jnp.ones((R, R), dtype) if mask is None else jnp.asarray(mask, dtype)
    if m.shape != (R, R):
        raise InputError(f"albedo_variations: mask must have shape ({R}, {R}), got {m.shape}")
    k_normal, k_uniform = jax.random.split(key)
    lab = srgb_to_lab(albedo.astype(dtype))
    cells = 6
    normal = jax.random.normal(k_normal, (cells * cells * 3 + 3,), dtype)
    uniform = jax.random.uniform(k_uniform, (R * R + 2,), dtype)
    mottle = _smooth_field(normal[:-3].reshape(cells, cells, 3), R) * jnp.asarray([2.5, 2.0, 2.0], dtype)
    bias = normal[-3:] * jnp.asarray([0.0, 2.0, 1.5], dtype)
    density = 0.02 * uniform[0]
    depth = 6.0 + 8.0 * uniform[1]
    spots = _box2((uniform[2:].reshape(R, R) < density).astype(dtype))
    freckles = spots[..., None] * jnp.stack([-depth, 0.3 * depth, 0.5 * depth])
    delta = (mottle + bias + freckles) * strength * m[..., None]
    return lab_to_srgb(lab + delta)


def delighting_pairs(
    key: PRNGKeyArray,
    albedo: Real[ArrayLike, "R R 3"],
    normal_map: Float[ArrayLike, "R R 3"],
    *,
    count: int,
    ita_range: tuple[float, float] = (-45.0, 65.0),
    mask: Float[ArrayLike, "R R"] | None = None,
    keep: Float[ArrayLike, "R R"] | None = None,
    kinds: str | tuple | list = LIGHTING_KINDS,
    variation: float = 0.0,
    linear: bool = True,
    specular: tuple[float, float] = (0.0, 0.0),
    occlusion: Float[ArrayLike, "R R"] | None = None,
) -> tuple[Float[Array, "count R R 3"], Float[Array, "count R R 3"]]:
    """Training pairs for the delighter: ``(lit texture, albedo)``, ``count`` of them.

    Per pair (independent keys): optionally :func:`albedo_variations` (outside ``keep``); a
    skin tone drawn
    uniformly in ``ita_range`` applied with :func:`machlib.texture.shift_to_ita` (the mean over
    ``mask`` is moved to that ITA and every texel shifted alike, except where ``keep`` protects
    it, e.g. the eyes); a light from :func:`sample_lighting`; and :func:`bake_lighting`.
    Deterministic in ``key``; ``jit``-safe with ``count`` and the options static.

    Args:
        key: PRNG key.
        albedo: ``(R, R, 3)`` sRGB ground-truth albedo, float in ``[0, 1]`` or uint8.
        normal_map: ``(R, R, 3)`` head-space normals in the same UV layout
            (:func:`machlib.texture.normal_map`).
        count: number of pairs.
        ita_range: ``(low, high)`` ITA in degrees of the augmented skin.
        mask: ``(R, R)`` skin weights for the ITA mean (e.g. the template's face region minus
            eyes, brows and lips); default uniform.
        keep: ``(R, R)`` in ``[0, 1]``: texels (partly) exempt from the tone shift and the
            variations (e.g. the eyes); default none.
        kinds: lighting families (see :data:`LIGHTING_KINDS`).
        variation: :func:`albedo_variations` strength (0: none).
        linear: bake in linear light.
        specular: ``(low, high)`` range of the specular sheen strength.
        occlusion: optional ``(R, R)`` ambient occlusion for every bake.

    Returns:
        ``(lit, albedo)``, each ``(count, R, R, 3)`` in ``[0, 1]``.
    """
    if not isinstance(count, int) or count < 1:
        raise InputError(f"delighting_pairs: count must be a positive int, got {count!r}")
    kinds = _check_kinds("delighting_pairs", kinds)
    albedo = jnp.asarray(albedo)
    if albedo.dtype == jnp.uint8:
        albedo = albedo.astype(jnp.float32) / 255.0
    normal_map = jnp.asarray(normal_map)
    if albedo.ndim != 3 or albedo.shape[-1] != 3 or albedo.shape[0] != albedo.shape[1] or normal_map.shape != albedo.shape:
        raise InputError(
            f"delighting_pairs: albedo and normal_map must both have shape (R, R, 3), got {albedo.shape} and "
            f"{normal_map.shape}"
        )
    lo, hi = (float(v) for v in ita_range)
    if not -90.0 < lo <= hi < 90.0:
        raise InputError(f"delighting_pairs: ita_range must satisfy -90 < low <= high < 90, got {ita_range}")
    R = albedo.shape[0]
    dtype = jnp.result_type(float, albedo.dtype)
    skin = jnp.ones((R, R), dtype) if mask is None else jnp.asarray(mask, dtype)
    protect = jnp.zeros((R, R), dtype) if keep is None else jnp.asarray(keep, dtype)
    for name, arr in (("mask", skin), ("keep", protect)):
        if arr.shape != (R, R):
            raise InputError(f"delighting_pairs: {name} must have shape ({R}, {R}), got {arr.shape}")
    s_lo, s_hi = (float(v) for v in specular)
    if not 0.0 <= s_lo <= s_hi:
        raise InputError(f"delighting_pairs: specular must be a (low, high) range with 0 <= low <= high, got {specular}")
    if occlusion is not None:
        occlusion = jnp.asarray(occlusion, dtype)
        if occlusion.shape != (R, R):
            raise InputError(f"delighting_pairs: occlusion must have shape ({R}, {R}), got {occlusion.shape}")
    return _pairs_jit(
        key, albedo.astype(dtype), normal_map.astype(dtype), skin, protect, occlusion, count=count, kinds=kinds,
        ita=(lo, hi), variation=float(variation), linear=bool(linear), specular=(s_lo, s_hi),
    )


@functools.partial(jax.jit, static_argnames=("count", "kinds", "ita", "variation", "linear", "specular"))
def _pairs_jit(key, albedo, normal_map, skin, protect, occlusion, *, count, kinds, ita, variation, linear, specular):
    def one(k):
        k_var, k_light, k_u = jax.random.split(k, 3)
        u = jax.random.uniform(k_u, (2,), albedo.dtype)
        base = albedo
        if variation:
            base = albedo_variations(k_var, base, mask=1.0 - protect, strength=variation)
        tone = ita[0] + (ita[1] - ita[0]) * u[0]
        toned = shift_to_ita(base, tone, weights=skin)
        target = toned + protect[..., None] * (base - toned)
        coeffs = _sample_jit(k_light, kinds=kinds)
        strength = specular[0] + (specular[1] - specular[0]) * u[1] if specular[1] > 0 else 0.0
        lit = bake_lighting(target, normal_map, coeffs, linear=linear, occlusion=occlusion, specular=strength)
        return lit, target

    return jax.vmap(one)(jax.random.split(key, count))


# ------------------------------------------------------------------------------------------------
# geometry-aware lighting: visibility (cast shadows, ambient occlusion) baked from a mesh, and an
# ITA-balanced data set of directional + SH lights with shadows, specular highlights, make-up and
# blemishes, for the learned (flax) delighter


def light_directions(count: int) -> Float[np.ndarray, "count 3"]:
    """``count`` near-uniform unit directions on the sphere (a Fibonacci lattice, head space).

    Args:
        count: number of directions (positive).

    Returns:
        ``(count, 3)`` float32 unit vectors; the same for the same ``count``.
    """
    if not isinstance(count, int) or count < 1:
        raise InputError(f"light_directions: count must be a positive int, got {count!r}")
    return _fibonacci_sphere(count).astype(np.float32)


def bake_visibility(
    mesh,
    resolution: int,
    directions: Float[ArrayLike, "K 3"],
    *,
    map_size: int = 256,
    bias: float = 0.004,
) -> Float[np.ndarray, "K R R"]:
    """Per-texel visibility of distant lights: cast shadows baked from the geometry.

    For each direction ``d`` the mesh is rasterized with :func:`machlib.render.rasterize` in an
    orthographic view along ``−d`` (a shadow map of ``map_size²`` pixels); a texel (its surface
    point from the UV position map) is lit when it is no deeper than the map there plus
    ``bias`` metres, with 2 × 2 percentage-closer filtering (soft 0–1 edges). Faces turned away
    from ``d`` are not zeroed here: multiply by ``max(n·d, 0)`` when shading. Run once per mesh
    (numpy in, numpy out; about 0.1 s per direction at the defaults).

    Args:
        mesh: a :class:`~machlib.Mesh` with UVs (e.g. the template head).
        resolution: texture size ``R``.
        directions: ``(K, 3)`` directions toward the lights (normalised here).
        map_size: shadow-map size in pixels.
        bias: depth tolerance in metres (against self-shadowing acne).

    Returns:
        ``(K, R, R)`` float32 visibility in ``[0, 1]``.
    """
    from .._mesh import vertex_normals
    from ..geometry._triplane import encode, uv_raster
    from ..render import rasterize

    if mesh.uv is None or mesh.faces_uv is None:
        raise InputError("bake_visibility: mesh has no UV coordinates")
    dirs = np.asarray(directions, np.float64)
    if dirs.ndim != 2 or dirs.shape[1] != 3 or len(dirs) == 0:
        raise InputError(f"bake_visibility: directions must have shape (K, 3), got {dirs.shape}")
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    if not np.all(norms > 1e-9):
        raise InputError("bake_visibility: directions must be non-zero")
    dirs = dirs / norms
    verts = np.asarray(mesh.vertices, np.float64)
    centre = 0.5 * (verts.min(0) + verts.max(0))
    scale = 1.05 * float(np.linalg.norm(verts - centre, axis=1).max())
    raster = uv_raster(mesh, resolution)
    pos = np.asarray(encode(jnp.asarray(verts - centre, jnp.float32), raster), np.float64)
    nrm = np.asarray(encode(vertex_normals(jnp.asarray(verts, jnp.float32), jnp.asarray(mesh.faces)), raster), np.float64)
    nrm /= np.maximum(np.linalg.norm(nrm, axis=-1, keepdims=True), 1e-12)
    faces = jnp.asarray(mesh.faces, jnp.int32)
    out = np.empty((len(dirs), resolution, resolution), np.float32)
    for k, d in enumerate(dirs):
        helper = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        u = np.cross(helper, d)
        u /= np.linalg.norm(u)
        v = np.cross(d, u)
        basis = np.stack([u, v, -d], 1) / scale
        def clip(p, basis=basis):  # orthographic along −d: x, y across, z = −depth toward the light
            return np.concatenate([p @ basis, np.ones(p.shape[:-1] + (1,))], -1)
        rast = rasterize(jnp.asarray(clip(verts - centre), jnp.float32), faces, image_size=(map_size, map_size))
        depth = np.asarray(rast.depth, np.float64)
        q = clip(pos)
        # slope-scaled bias: grazing texels need more tolerance (a map pixel spans more depth)
        cos = np.clip(nrm @ d, 0.05, 1.0)
        tol = (bias + 2.0 * scale / map_size * np.sqrt(1.0 - cos**2) / cos) / scale
        # pixel coordinates of texel points (row 0 at NDC y = +1), bilinear PCF over 2 × 2
        x = (q[..., 0] + 1.0) * 0.5 * map_size - 0.5
        y = (1.0 - q[..., 1]) * 0.5 * map_size - 0.5
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - x0, y - y0
        vis = np.zeros(q.shape[:-1])
        for dy, wy in ((0, 1.0 - fy), (1, fy)):
            for dx, wx in ((0, 1.0 - fx), (1, fx)):
                yy = np.clip(y0 + dy, 0, map_size - 1)
                xx = np.clip(x0 + dx, 0, map_size - 1)
                vis += wy * wx * (q[..., 2] <= depth[yy, xx] + tol)
        out[k] = vis
    return out


def ambient_occlusion(
    visibility: Float[ArrayLike, "K R R"],
    normal_map: Float[ArrayLike, "R R 3"],
    directions: Float[ArrayLike, "K 3"],
) -> Float[Array, "R R"]:
    """Cosine-weighted ambient occlusion from baked visibility: ``Σ V_k max(n·d_k, 0) / Σ max(n·d_k, 0)``.

    Args:
        visibility: ``(K, R, R)`` from :func:`bake_visibility`.
        normal_map: ``(R, R, 3)`` unit normals.
        directions: ``(K, 3)`` the same directions (unit, near-uniform on the sphere).

    Returns:
        ``(R, R)`` AO in ``[0, 1]`` (1: the whole hemisphere is open).
    """
    vis = jnp.asarray(visibility)
    n = jnp.asarray(normal_map)
    d = jnp.asarray(directions, n.dtype)
    if vis.ndim != 3 or n.shape != vis.shape[1:] + (3,) or d.shape != (vis.shape[0], 3):
        raise InputError(
            f"ambient_occlusion: need visibility (K, R, R), normal_map (R, R, 3) and directions (K, 3); got "
            f"{vis.shape}, {n.shape}, {d.shape}"
        )
    cos = jnp.clip(jnp.einsum("ijc,kc->kij", n, d), 0.0, None)
    return jnp.sum(vis * cos, 0) / jnp.maximum(jnp.sum(cos, 0), 1e-6)


class DelightScene(NamedTuple):
    """Everything :func:`delighting_batch` needs about the head, built once by :func:`delight_scene`.

    Attributes:
        albedo: ``(R, R, 3)`` base sRGB albedo (the template's) in ``[0, 1]``.
        normals: ``(R, R, 3)`` unit head-space normals per texel.
        directions: ``(K, 3)`` light directions with baked visibility.
        visibility: ``(K, R, R)`` visibility of each direction (:func:`bake_visibility`).
        ao: ``(R, R)`` ambient occlusion (:func:`ambient_occlusion`).
        skin: ``(R, R)`` skin weights for the ITA mean (face less eyes, brows, lips, nostrils).
        keep: ``(R, R)`` texels exempt from tone shifts and variations (eyes).
        face: ``(R, R)`` the face region (where a frontal photo sees the head).
        landmarks_uv: ``(478, 2)`` UV of the dense landmarks (for make-up).
    """

    albedo: np.ndarray
    normals: np.ndarray
    directions: np.ndarray
    visibility: np.ndarray
    ao: np.ndarray
    skin: np.ndarray
    keep: np.ndarray
    face: np.ndarray
    landmarks_uv: np.ndarray


def delight_scene(*, template=None, resolution: int = 128, directions: int = 96) -> DelightScene:
    """Bake the head's data for :func:`delighting_batch`: albedo, normals, visibility, AO, masks.

    Args:
        template: a :class:`~machlib.geometry.Template` (default: :func:`~machlib.geometry.default_template`,
            the human base's UV layout).
        resolution: texture size ``R``.
        directions: number of light directions to bake (:func:`light_directions`).

    Returns:
        A :class:`DelightScene` of numpy arrays.
    """
    from ..geometry import default_template, template_albedo
    from ._delight import normal_map as _normal_map

    if not isinstance(resolution, int) or resolution < 8:
        raise InputError(f"delight_scene: resolution must be an int >= 8, got {resolution!r}")
    template = template if template is not None else default_template()
    albedo = np.asarray(template_albedo(resolution, template=template), np.float32) / 255.0
    normals = np.asarray(_normal_map(template.mesh, resolution))
    dirs = light_directions(directions)
    vis = bake_visibility(template.mesh, resolution, dirs)
    ao = np.asarray(ambient_occlusion(vis, normals, dirs), np.float32)

    def region(name):
        m = template.regions.get(name)
        if m is None:
            return np.zeros((resolution, resolution), np.float32)
        m = jnp.asarray(m, jnp.float32)
        return np.clip(np.asarray(jax.image.resize(m, (resolution, resolution), "linear")), 0.0, 1.0)

    features = np.clip(region("eyes") + region("brows") + region("lips") + region("nostrils"), 0.0, 1.0)
    face = region("face")
    return DelightScene(albedo, normals, dirs, vis, ao, (face * (1.0 - features)).astype(np.float32),
                        region("eyes"), face, np.asarray(template.landmark_uv, np.float32))


#: ITA bins of the balanced split: the :data:`~machlib.texture.ITA_CATEGORIES` with the open
#: ends closed at 70° and −50° (the range of real skin).
ITA_BINS = {
    "very_light": (55.0, 70.0), "light": (41.0, 55.0), "intermediate": (28.0, 41.0),
    "tan": (10.0, 28.0), "brown": (-30.0, 10.0), "dark": (-50.0, -30.0),
}

#: Uniform ranges of :func:`delighting_batch`'s lights and looks (shading units, degrees).
BATCH_RANGES = {
    "environment": (0.25, 1.0),  # scale of the SH environment (sample_lighting), times AO
    "sun": (0.0, 1.6),           # shading of a surface facing the directional light
    "sun_kelvin": (2700.0, 7000.0),
    "specular": (0.0, 0.25),     # white highlight of the directional light (Blinn–Phong)
    "shininess": (10.0, 60.0),
    "camera_yaw": (-35.0, 35.0), "camera_pitch": (-12.0, 12.0),
    "makeup": (0.0, 0.6),        # per layer, each present with probability 0.35
    "variation": (0.4, 1.2),     # albedo_variations strength (mottling, redness, freckles)
    "blemishes": (0.0, 0.004),   # density of red spots per texel
}


class DelightBatch(NamedTuple):
    """A batch of :func:`delighting_batch`.

    Attributes:
        lit: ``(N, R, R, 3)`` sRGB lit textures in ``[0, 1]``.
        albedo: ``(N, R, R, 3)`` ground-truth sRGB albedo.
        seen: ``(N, R, R)`` what a photo from the sampled camera sees (face region, facing).
        ita: ``(N,)`` ITA (degrees) the skin was shifted to.
        bin: ``(N,)`` int index into :data:`ITA_BINS` (``i mod 6``: exactly balanced).
    """

    lit: Array
    albedo: Array
    seen: Array
    ita: Array
    bin: Array


def _blemishes(key, resolution, density, dtype):
    """Small reddish-brown spots (acne, moles): ``(R, R)`` intensity in ``[0, 1]``."""
    u = jax.random.uniform(key, (resolution, resolution), dtype)
    spots = (u < density).astype(dtype)
    x = np.arange(-3, 4)
    g = np.exp(-0.5 * (x / 1.2) ** 2)
    g = jnp.asarray(g / g.max(), dtype)
    blur = jax.scipy.signal.convolve2d(spots, g[:, None] * g[None, :], mode="same")
    return jnp.clip(blur, 0.0, 1.0)


def delighting_batch(key: PRNGKeyArray, scene: DelightScene, *, count: int, split: str = "train") -> DelightBatch:
    """An ITA-balanced batch of ``(lit, albedo)`` pairs with shadows, highlights and make-up.

    Per pair (from independent keys): the template albedo with :func:`albedo_variations`
    (mottling, redness, freckles), blemishes (red-brown spots) and a skin tone drawn uniformly in
    ITA bin ``i mod 6`` of :data:`ITA_BINS` (:func:`~machlib.texture.shift_to_ita`, eyes kept);
    make-up (:func:`~machlib.texture.makeup`: blush, eye shadow, lipstick, each with probability
    0.35); then the light, in linear RGB:

    ``lit = ρ · (a · s_env(n) · AO + k · c · max(n·d, 0) · V_d) + h · c · V_d · max(n·ĥ, 0)^p``

    with ``s_env`` an environment of :func:`sample_lighting`, ``d`` one of the scene's baked
    directions (in front of the face) with its cast-shadow visibility ``V_d``, ``ĥ`` the half
    vector toward a frontal camera; ranges in :data:`BATCH_RANGES`. ``seen`` is the face region
    where it faces a camera at a random yaw/pitch. ``split="train"`` and ``"heldout"`` draw from
    disjoint key streams (``fold_in`` 0 and 1), so the held-out split is fixed by the seed.

    Args:
        key: PRNG key.
        scene: the :class:`DelightScene`.
        count: pairs in the batch (static).
        split: ``"train"`` or ``"heldout"``.

    Returns:
        A :class:`DelightBatch`.
    """
    if not isinstance(count, int) or count < 1:
        raise InputError(f"delighting_batch: count must be a positive int, got {count!r}")
    if split not in ("train", "heldout"):
        raise InputError(f"delighting_batch: split must be 'train' or 'heldout', got {split!r}")
    if not isinstance(scene, DelightScene):
        raise InputError(f"delighting_batch: scene must be a DelightScene, got {type(scene).__name__}")
    arrays = tuple(jnp.asarray(a, jnp.float32) for a in scene)
    return _batch_jit(jax.random.fold_in(key, 0 if split == "train" else 1), *arrays, count=count)


@functools.partial(jax.jit, static_argnames=("count",))
def _batch_jit(key, albedo, normals, dirs, vis, ao, skin, keep, face, luv, *, count):
    from ._makeup import makeup as _makeup

    dtype = albedo.dtype
    bins = jnp.asarray(list(ITA_BINS.values()), dtype)
    r = BATCH_RANGES
    front = (dirs[:, 2] > -0.1) & (dirs[:, 1] > -0.6)  # lights in front of the face (and not from below)
    logits = jnp.where(front, 0.0, -jnp.inf)

    def rng(u, name):
        lo, hi = r[name]
        return lo + (hi - lo) * u

    def one(k, b):
        ks = jax.random.split(k, 6)
        u = jax.random.uniform(ks[0], (16,), dtype)
        base = albedo_variations(ks[1], albedo, mask=1.0 - keep, strength=rng(u[0], "variation"))
        spots = _blemishes(ks[2], albedo.shape[0], rng(u[1], "blemishes"), dtype) * (1.0 - keep)
        lab = srgb_to_lab(base)
        lab = lab + spots[..., None] * jnp.asarray([-12.0, 14.0, 8.0], dtype) * (0.5 + u[2])
        base = lab_to_srgb(lab)
        lo_hi = bins[b]
        tone = lo_hi[0] + (lo_hi[1] - lo_hi[0]) * u[3]
        toned = shift_to_ita(base, tone, weights=skin)
        target = toned + keep[..., None] * (base - toned)
        on = (u[4:7] < 0.35).astype(dtype)
        target = _makeup(target, luv, blush=on[0] * rng(u[7], "makeup"), eye_shadow=on[1] * rng(u[8], "makeup"),
                         lipstick=on[2] * rng(u[9], "makeup"))
        target = jnp.clip(target, 0.0, 1.0)
        env = _sample_jit(ks[3], kinds=LIGHTING_KINDS)
        s_env = jnp.clip(sh_shading(normals, env), 0.0, None) * ao[..., None] * rng(u[10], "environment")
        j = jax.random.categorical(ks[4], logits)
        d = dirs[j]
        color = color_temperature_rgb(rng(u[11], "sun_kelvin"))
        v = vis[j]
        sun = rng(u[12], "sun") * color * (jnp.clip(normals @ d, 0.0, None) * v)[..., None]
        half = d + jnp.asarray([0.0, 0.0, 1.0], dtype)
        half = half / jnp.maximum(jnp.linalg.norm(half), 1e-6)
        lobe = jnp.clip(normals @ half, 0.0, 1.0) ** rng(u[13], "shininess") * v * (normals @ d > 0)
        spec = rng(u[14], "specular") * color * lobe[..., None]
        lit = linear_to_srgb(srgb_to_linear(target) * (s_env + sun) + spec)
        yaw = jnp.radians(rng(u[15], "camera_yaw"))
        pitch = jnp.radians(rng(jax.random.uniform(ks[5], (), dtype), "camera_pitch"))
        cam = jnp.stack([jnp.cos(pitch) * jnp.sin(yaw), jnp.sin(pitch), jnp.cos(pitch) * jnp.cos(yaw)])
        facing = jnp.clip((normals @ cam - 0.15) / 0.25, 0.0, 1.0)
        return jnp.clip(lit, 0.0, 1.0), target, face * facing, tone

    b = jnp.arange(count) % len(ITA_BINS)
    lit, target, seen, ita = jax.vmap(one)(jax.random.split(key, count), b)
    return DelightBatch(lit, target, seen, ita, b)
