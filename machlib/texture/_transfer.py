"""Skin colour and detail transfer from the seen face onto the completed head (issue 15).

Completion fills the head the portrait did not see from the template albedo. Its tone is
matched to the face only by the mean colour, and its skin detail is the template's procedural
grain, so the photographed face looked like a warmer, more detailed patch on a flat head.
:func:`transfer_skin` gives the completed skin the seen skin's colour statistics (mean and
standard deviation per CIELAB channel, Reinhard et al. 2001) and its high frequencies
(:func:`skin_detail`, a band-pass of the seen skin, re-synthesised over the whole texture by
:func:`synthesize_detail`, random patches blended with a variance-preserving window).

Colours are sRGB in ``[0, 1]``; textures are ``(R, R, 3)`` in the UV convention of
:doc:`/conventions`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, Shaped

from .._errors import InputError
from ._regions import _blur
from ._skin import lab_to_srgb, srgb_to_lab

__all__ = ["detail_patches", "skin_detail", "synthesize_detail", "transfer_skin"]


def _stats(lab: Array, w: Array, rounds: int = 2) -> tuple[Array, Array]:
    """Weighted per-channel mean and standard deviation, re-weighted twice so outliers (hair,
    frames, shadows, moles) count less."""

    def once(w):
        total = jnp.sum(w)
        wn = w / jnp.where(total > 0, total, 1.0)
        mean = jnp.einsum("hw,hwc->c", wn, lab)
        var = jnp.einsum("hw,hwc->c", wn, (lab - mean) ** 2)
        return mean, jnp.sqrt(var + 1e-6)

    mean, sd = once(w)
    for _ in range(rounds):
        z2 = jnp.sum(((lab - mean) / (1.5 * sd)) ** 2, axis=-1)
        mean, sd = once(w * jnp.exp(-0.5 * z2))
    return mean, sd


def _normalized_blur(x: Array, w: Array, sigma: float) -> Array:
    num = _blur(x * w[..., None], sigma)
    den = _blur(w, sigma)[..., None]
    return num / jnp.maximum(den, 1e-3)


def skin_detail(
    texture: Float[ArrayLike, "R R 3"],
    mask: Shaped[ArrayLike, "R R"],
    *,
    sigma: float = 3.0,
    clip: float = 3.0,
) -> Float[Array, "R R 3"]:
    """The high frequencies of skin: a band-pass of ``texture`` over ``mask``, in CIELAB.

    ``detail = lab − blur(lab)`` with a Gaussian of standard deviation ``sigma`` texels,
    normalised over ``mask`` (texels outside the mask do not leak into the low-pass, so the
    mask's own edge leaves no halo), times the mask, and each channel limited to ``clip`` robust
    standard deviations (a hair strand or a mole does not become a blot when re-synthesised).
    Differentiable in ``texture``; jit/vmap-safe.

    Args:
        texture: ``(R, R, 3)`` sRGB in ``[0, 1]``.
        mask: ``(R, R)`` weights in ``[0, 1]`` of the skin texels to take detail from.
        sigma: the low-pass's standard deviation, texels (pores and fine wrinkles are a few
            texels wide at ``R = 1024``).
        clip: the band-pass is limited to ``± clip`` standard deviations per channel.

    Returns:
        ``(R, R, 3)`` CIELAB differences (``L*``, ``a*``, ``b*`` units), zero outside the mask.

    Raises:
        InputError: bad shapes, ``sigma`` or ``clip`` not positive.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import skin_detail
        >>> flat = jnp.full((32, 32, 3), 0.6)
        >>> float(jnp.abs(skin_detail(flat, jnp.ones((32, 32)))).max()) < 1e-3
        True
    """
    fn = "skin_detail"
    tex = jnp.asarray(texture)
    if tex.ndim != 3 or tex.shape[-1] != 3:
        raise InputError(f"{fn}: texture must have shape (R, R, 3), got {tex.shape}")
    m = jnp.asarray(mask)
    if m.shape != tex.shape[:2]:
        raise InputError(f"{fn}: mask must have shape {tex.shape[:2]}, got {m.shape}")
    if not sigma > 0 or not clip > 0:
        raise InputError(f"{fn}: sigma and clip must be > 0, got sigma={sigma!r}, clip={clip!r}")
    if not jnp.issubdtype(tex.dtype, jnp.floating):
        tex = tex.astype(jnp.float32)
    return _skin_detail(tex, m.astype(tex.dtype), float(sigma), float(clip))


@functools.partial(jax.jit, static_argnames=("sigma", "clip"))
def _skin_detail(tex, m, sigma, clip):
    lab = srgb_to_lab(tex)
    hp = (lab - _normalized_blur(lab, m, sigma)) * m[..., None]
    _, sd = _stats(hp, m, rounds=1)
    limit = clip * sd
    return limit * jnp.tanh(hp / limit)


def detail_patches(
    mask: Shaped[ArrayLike, "R R"],
    *,
    patch: int,
    seed: int = 0,
) -> Int[np.ndarray, "N N 2"]:
    """Random source corners for :func:`synthesize_detail`, deterministic in ``seed``.

    One ``(row, col)`` corner per output tile (tiles of ``patch`` texels on a grid of step
    ``patch / 2``), drawn uniformly among the corners whose whole ``patch × patch`` window lies in
    ``mask > 0.5``; when no window fits, the patch is halved until one does (at most down to 8).

    Args:
        mask: ``(R, R)`` the texels the patches may be taken from.
        patch: tile size in texels, even, ``>= 8``.
        seed: the random seed.

    Returns:
        ``(N, N, 2)`` int32 corners with ``N = R // (patch // 2) + 2``; all zero when no window
        of 8 texels fits (the detail is then empty).

    Raises:
        InputError: ``patch`` odd, below 8 or larger than the mask.

    Example:
        >>> import numpy as np
        >>> from machlib.texture import detail_patches
        >>> detail_patches(np.ones((64, 64)), patch=16, seed=1).shape
        (10, 10, 2)
    """
    fn = "detail_patches"
    m = np.asarray(mask) > 0.5
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InputError(f"{fn}: mask must be square (R, R), got {m.shape}")
    R = m.shape[0]
    if not isinstance(patch, (int, np.integer)) or patch < 8 or patch % 2 or patch > R:
        raise InputError(f"{fn}: patch must be an even int in [8, {R}], got {patch!r}")
    n = R // (patch // 2) + 2
    rng = np.random.default_rng(seed)
    # summed-area table: windows entirely inside the mask
    sat = np.pad(m.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    p = int(patch)
    while p >= 8:
        inside = sat[p:, p:] - sat[:-p, p:] - sat[p:, :-p] + sat[:-p, :-p] == p * p
        rows, cols = np.nonzero(inside)
        if rows.size:
            pick = rng.integers(0, rows.size, size=(n, n))
            corners = np.stack([rows[pick], cols[pick]], -1)
            # a smaller window fitted: centre the full patch on it (the border is taken as is)
            off = (patch - p) // 2
            return np.clip(corners - off, 0, R - patch).astype(np.int32)
        p //= 2
    return np.zeros((n, n, 2), np.int32)


def synthesize_detail(
    detail: Float[ArrayLike, "R R C"],
    corners: Int[ArrayLike, "N N 2"],
    *,
    patch: int,
) -> Float[Array, "R R C"]:
    """Stationary re-synthesis of ``detail`` over the whole ``R × R`` square by patch tiling.

    Output tiles of ``patch × patch`` texels sit on a grid of step ``patch / 2``; tile ``(i, j)``
    copies the source window at ``corners[i, j]`` (see :func:`detail_patches`) weighted by the
    separable window ``w(x) = sin(π (x + ½) / patch)``. Overlapping windows satisfy
    ``Σ w² = 1``, so zero-mean uncorrelated detail keeps its variance (amplitude) everywhere and
    there are no tile seams. Linear in ``detail`` (differentiable; jit/vmap-safe).

    Args:
        detail: ``(R, R, C)`` the source detail (e.g. :func:`skin_detail`).
        corners: ``(N, N, 2)`` int source corners, ``N = R // (patch // 2) + 2``.
        patch: tile size in texels, even, ``>= 8``.

    Returns:
        ``(R, R, C)`` synthesised detail.

    Raises:
        InputError: bad shapes or ``patch``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from machlib.texture import detail_patches, synthesize_detail
        >>> src = jax.random.normal(jax.random.PRNGKey(0), (64, 64, 1))
        >>> out = synthesize_detail(src, detail_patches(jnp.ones((64, 64)), patch=16), patch=16)
        >>> out.shape, bool(0.8 < float(out.std()) < 1.2)
        ((64, 64, 1), True)
    """
    fn = "synthesize_detail"
    d = jnp.asarray(detail)
    if d.ndim != 3 or d.shape[0] != d.shape[1]:
        raise InputError(f"{fn}: detail must have shape (R, R, C), got {d.shape}")
    R = d.shape[0]
    if not isinstance(patch, (int, np.integer)) or patch < 8 or patch % 2 or patch > R:
        raise InputError(f"{fn}: patch must be an even int in [8, {R}], got {patch!r}")
    n = R // (patch // 2) + 2
    c = jnp.asarray(corners)
    if c.shape != (n, n, 2) or not jnp.issubdtype(c.dtype, jnp.integer):
        raise InputError(f"{fn}: corners must be int with shape {(n, n, 2)}, got {c.dtype} {c.shape}")
    if not jnp.issubdtype(d.dtype, jnp.floating):
        d = d.astype(jnp.float32)
    return _synthesize(d, c, patch=int(patch))


@functools.partial(jax.jit, static_argnames=("patch",))
def _synthesize(d, corners, *, patch):
    R, C = d.shape[0], d.shape[-1]
    s = patch // 2
    n = corners.shape[0]
    x = (jnp.arange(patch, dtype=d.dtype) + 0.5) / patch
    w1 = jnp.sin(jnp.pi * x)
    window = (w1[:, None] * w1[None, :])[..., None]
    take = lambda rc: jax.lax.dynamic_slice(d, (rc[0], rc[1], jnp.zeros((), rc.dtype)), (patch, patch, C))
    tiles = jax.vmap(jax.vmap(take))(corners) * window  # (n, n, P, P, C)
    # tiles of one parity in each direction do not overlap: assemble each group by reshaping,
    # shift it by half a tile where odd, and add the four groups
    canvas = jnp.zeros((n * s + patch, n * s + patch, C), d.dtype)
    for pi in (0, 1):
        for pj in (0, 1):
            g = tiles[pi::2, pj::2]
            gi, gj = g.shape[0], g.shape[1]
            img = g.transpose(0, 2, 1, 3, 4).reshape(gi * patch, gj * patch, C)
            canvas = canvas.at[pi * s: pi * s + gi * patch, pj * s: pj * s + gj * patch].add(img)
    # the first full-coverage texel is at s (one tile of each parity overlaps it)
    return canvas[s: s + R, s: s + R]


def transfer_skin(
    completed: Float[ArrayLike, "R R 3"],
    reference: Float[ArrayLike, "R R 3"],
    *,
    reference_mask: Shaped[ArrayLike, "R R"],
    target_mask: Shaped[ArrayLike, "R R"],
    weight: Shaped[ArrayLike, "R R"],
    detail_weight: Shaped[ArrayLike, "R R"] | None = None,
    color: bool = True,
    detail: float = 1.0,
    sigma: float = 3.0,
    patch: int = 64,
    max_scale: float = 1.5,
    seed: int = 0,
) -> Float[Array, "R R 3"]:
    """Give completed skin the colour statistics and skin detail of the seen skin.

    1. **Colour** (``color=True``): per CIELAB channel, the texels of ``completed`` are mapped
       ``x → (x − μ_c) · σ_r / σ_c + μ_r`` with the robust weighted statistics of ``completed``
       over ``target_mask`` (its skin, without features) and of ``reference`` over
       ``reference_mask`` (the confidently seen skin, without eyes, brows, lips, nostrils, hair
       or frames); ``σ_r / σ_c`` is clipped to ``[1 / max_scale, max_scale]``. The result is
       blended in by ``weight`` (a smooth ramp: 1 on unseen skin, 0 on kept texels and
       features), so there is no step where the ramp ends.
    2. **Detail** (``detail > 0``): the completed albedo's own band-pass (the template's
       procedural grain) is replaced by the seen skin's (:func:`skin_detail` over
       ``reference_mask``, re-synthesised by :func:`synthesize_detail` with patches from
       :func:`detail_patches`, deterministic in ``seed``), times ``detail``, where
       ``detail_weight`` (default ``weight``) is 1.

    Differentiable in ``completed`` and ``reference`` (the patch positions are drawn from the
    masks outside the gradient). Under ``jit`` the masks must be concrete (closed over), since
    they choose the patches; the images may be traced.

    Args:
        completed: ``(R, R, 3)`` completed albedo, sRGB in ``[0, 1]``.
        reference: ``(R, R, 3)`` the portrait's (delighted) texture, sRGB.
        reference_mask: ``(R, R)`` weights of the reference skin texels.
        target_mask: ``(R, R)`` weights of the completed skin texels whose statistics are
            matched.
        weight: ``(R, R)`` in ``[0, 1]``, where the colour transfer applies.
        detail_weight: ``(R, R)`` in ``[0, 1]``, where the detail is replaced (default
            ``weight``).
        color: apply step 1.
        detail: amplitude of the transferred detail relative to the face's (``0`` = off).
        sigma: band-pass scale of the detail, texels.
        patch: synthesis tile size, texels (even; at most ``R``, larger is reduced to ``R``).
        max_scale: clip of the contrast ratio.
        seed: seed of the patch positions.

    Returns:
        ``(R, R, 3)`` sRGB in ``[0, 1]``.

    Raises:
        InputError: bad shapes or options, or fewer than 50 reference skin texels.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import transfer_skin
        >>> pale, warm = jnp.full((32, 32, 3), 0.8), jnp.full((32, 32, 3), jnp.array([0.8, 0.5, 0.4]))
        >>> ones = jnp.ones((32, 32))
        >>> out = transfer_skin(pale, warm, reference_mask=ones, target_mask=ones, weight=ones, detail=0.0)
        >>> bool(jnp.allclose(out, warm, atol=0.01))
        True
    """
    fn = "transfer_skin"
    comp = jnp.asarray(completed)
    ref = jnp.asarray(reference)
    if comp.ndim != 3 or comp.shape[-1] != 3 or comp.shape[0] != comp.shape[1]:
        raise InputError(f"{fn}: completed must have shape (R, R, 3), got {comp.shape}")
    if ref.shape != comp.shape:
        raise InputError(f"{fn}: reference must have shape {comp.shape}, got {ref.shape}")
    R = comp.shape[0]
    dt = comp.dtype if jnp.issubdtype(comp.dtype, jnp.floating) else jnp.float32
    masks = {}
    for name, m in (("reference_mask", reference_mask), ("target_mask", target_mask), ("weight", weight),
                    ("detail_weight", weight if detail_weight is None else detail_weight)):
        m = jnp.asarray(m)
        if m.shape != (R, R):
            raise InputError(f"{fn}: {name} must have shape {(R, R)}, got {m.shape}")
        masks[name] = m.astype(dt)
    if not max_scale >= 1 or not detail >= 0 or not sigma > 0:
        raise InputError(f"{fn}: need max_scale >= 1, detail >= 0, sigma > 0; got {max_scale!r}, {detail!r}, "
                         f"{sigma!r}")
    if not isinstance(patch, (int, np.integer)) or patch < 8 or patch % 2 or R < 8:
        raise InputError(f"{fn}: patch must be an even int >= 8 (and R >= 8), got {patch!r}, R = {R}")
    patch = min(int(patch), R - R % 2)
    ref_np = np.asarray(reference_mask)  # concrete: the masks pick the patches (outside any trace)
    n_ref = int(np.sum(ref_np > 0.5))
    if n_ref < 50:
        raise InputError(f"{fn}: only {n_ref:.0f} reference skin texels (need 50)")
    comp, ref = comp.astype(dt), ref.astype(dt)
    if detail > 0:
        corners = jnp.asarray(detail_patches(ref_np, patch=int(patch), seed=seed))
    else:
        corners = jnp.zeros((R // (patch // 2) + 2,) * 2 + (2,), jnp.int32)
    return _transfer_skin(comp, ref, masks["reference_mask"], masks["target_mask"], masks["weight"],
                          masks["detail_weight"], corners, jnp.asarray(detail, dt), color=bool(color),
                          use_detail=bool(detail > 0), sigma=float(sigma), patch=int(patch),
                          max_scale=float(max_scale))


@functools.partial(jax.jit, static_argnames=("color", "use_detail", "sigma", "patch", "max_scale"))
def _transfer_skin(comp, ref, ref_w, tgt_w, weight, detail_w, corners, amount, *, color, use_detail, sigma, patch,
                   max_scale):
    lab = srgb_to_lab(comp)
    out = lab
    if color:
        mu_c, sd_c = _stats(lab, tgt_w)
        mu_r, sd_r = _stats(srgb_to_lab(ref), ref_w)
        scale = jnp.clip(sd_r / sd_c, 1.0 / max_scale, max_scale)
        out = lab + weight[..., None] * ((lab - mu_c) * scale + mu_r - lab)
    if use_detail:
        own = out - _blur(out, sigma)  # the template's procedural grain
        src = _skin_detail(ref, ref_w, sigma, 3.0)
        new = _synthesize(src, corners, patch=patch)
        out = out + detail_w[..., None] * (amount * new - own)
    return jnp.clip(lab_to_srgb(out), 0.0, 1.0)
