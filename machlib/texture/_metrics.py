"""Image quality metrics for re-rendered avatars: masked PSNR and SSIM (Wang et al. 2004)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._device import to_device
from .._errors import InputError

__all__ = ["psnr", "ssim"]


def _check(name: str, a, b, mask):
    a = to_device(a)  # host data moved without compiling a conversion program per shape
    a = to_device(a, jnp.result_type(float, a.dtype))
    b = to_device(b, a.dtype)
    if a.ndim != 3 or a.shape != b.shape:
        raise InputError(f"{name}: images must have the same shape (H, W, C), got {a.shape} and {b.shape}")
    m = to_device(np.ones(a.shape[:2], a.dtype)) if mask is None else to_device(mask, a.dtype)
    if m.shape != a.shape[:2]:
        raise InputError(f"{name}: mask must have shape {a.shape[:2]}, got {m.shape}")
    return a, b, m


def psnr(
    a: Float[ArrayLike, "H W C"], b: Float[ArrayLike, "H W C"], *, mask: Float[ArrayLike, "H W"] | None = None
) -> Float[Array, ""]:
    """Peak signal-to-noise ratio in dB of two images in ``[0, 1]`` over a weighted mask.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import psnr
        >>> round(float(psnr(jnp.zeros((4, 4, 3)), jnp.full((4, 4, 3), 0.1))), 3)
        20.0
    """
    return _psnr(*_check("psnr", a, b, mask))


# the metrics' work as one compiled program per shape (eagerly, each operation compiled its own:
# about thirty for a texture stage's PSNR and SSIM)
@jax.jit
def _psnr(a, b, m):
    mse = jnp.sum(m[..., None] * (a - b) ** 2) / jnp.maximum(jnp.sum(m) * a.shape[-1], 1e-12)
    return -10.0 * jnp.log10(jnp.maximum(mse, 1e-20))


def _gauss(size: int, sigma: float, dtype) -> jax.Array:
    x = jnp.arange(size, dtype=dtype) - (size - 1) / 2.0
    g = jnp.exp(-0.5 * (x / sigma) ** 2)
    return g / jnp.sum(g)


def _blur(x: jax.Array, g: jax.Array) -> jax.Array:
    """Separable 'valid' Gaussian filter of an (H, W, C) image."""
    k = g.shape[0]
    h, w = x.shape[:2]
    rows = sum(g[i] * x[i : h - k + 1 + i] for i in range(k))
    return sum(g[i] * rows[:, i : w - k + 1 + i] for i in range(k))


def ssim(
    a: Float[ArrayLike, "H W C"],
    b: Float[ArrayLike, "H W C"],
    *,
    mask: Float[ArrayLike, "H W"] | None = None,
    window: int = 11,
    sigma: float = 1.5,
) -> Float[Array, ""]:
    """Structural similarity of two images in ``[0, 1]``, averaged over channels and the mask.

    Standard SSIM (Gaussian window 11, σ = 1.5, ``K1 = 0.01``, ``K2 = 0.03``); the local SSIM
    map is averaged with the mask's weights at each window centre.
    """
    a, b, m = _check("ssim", a, b, mask)
    if a.shape[0] < window or a.shape[1] < window:
        raise InputError(f"ssim: images must be at least {window} × {window}, got {a.shape[:2]}")
    return _ssim(a, b, m, int(window), float(sigma))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _ssim(a, b, m, window: int, sigma: float):
    g = _gauss(window, sigma, a.dtype)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    var_a = _blur(a * a, g) - mu_a**2
    var_b = _blur(b * b, g) - mu_b**2
    cov = _blur(a * b, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    r = window // 2
    mc = m[r : a.shape[0] - r, r : a.shape[1] - r]
    return jnp.sum(jnp.mean(s, axis=-1) * mc) / jnp.maximum(jnp.sum(mc), 1e-12)
