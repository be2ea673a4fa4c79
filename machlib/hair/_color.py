"""Hair colour of a portrait: the melanin concentrations whose fibre colour best explains the
hair pixels (:func:`estimate_hair_color`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jax import Array
from jax.typing import ArrayLike
from jaxtyping import Float, UInt8

from .._errors import InputError
from ._styles import EUMELANIN_ABSORPTION, HAIR_COLORS, PHEOMELANIN_ABSORPTION, fibre_d, hair_color

__all__ = ["HairColorEstimate", "estimate_hair_color", "fit_melanin", "hair_shading_from_sh", "light_from_skin",
           "strand_colors_from_photo"]


class HairColorEstimate(NamedTuple):
    """The result of :func:`estimate_hair_color`.

    Attributes:
        rgb: ``(3,)`` linear RGB albedo to give the strands: the nearest named colour when it
            explains the pixels better than the melanin fit (grey and white hair, whose fibres
            have no pigment), else the melanin model's colour when it explains them
            (``error < 0.25``, or the nearest named colour is a natural one: black, brown,
            blonde, red, auburn), otherwise the observed colour divided by the assumed shading
            (dyed hair), clipped to ``[0, 1]``. Hair *named* grey, white or black gets a
            neutral colour (grey's or white's) at the albedo's luminance: a photo's leftover
            colour cast would otherwise tint the unpigmented fibres beige and black hair, whose
            lightness is its cuticle's neutral reflection, olive or brown.
        melanin: fitted eumelanin concentration.
        pheomelanin: fitted pheomelanin concentration.
        error: RMS difference of the log colours (natural log of linear RGB) between the fit
            and the observation.
        name: the nearest :data:`~machlib.hair.HAIR_COLORS` name to the albedo (observed colour
            divided by the light and the shading), in CIELAB.
        observed: ``(3,)`` the mean linear RGB of the hair pixels used.
        pixels: number of hair pixels used.
    """

    rgb: np.ndarray
    melanin: float
    pheomelanin: float
    error: float
    name: str
    observed: np.ndarray
    pixels: int


_MEL = np.concatenate([[0.0], np.geomspace(0.01, 16.0, 160)])
_PHE = np.concatenate([[0.0], np.geomspace(0.01, 3.0, 60)])
_GRID: np.ndarray | None = None


def _grid() -> np.ndarray:
    global _GRID
    if _GRID is None:
        m, p = np.meshgrid(_MEL, _PHE, indexing="ij")
        _GRID = np.log(np.maximum(np.asarray(hair_color(m, p), np.float64), 1e-4))  # (M, P, 3)
    return _GRID


def estimate_hair_color(
    image: UInt8[np.ndarray, "H W 3"],
    mask: Float[np.ndarray, "H W"],
    *,
    threshold: float = 0.5,
    shading=0.7,
    light=None,
    statistic: str = "mean",
    erode: int = 0,
    keep_hue: bool = False,
) -> HairColorEstimate:
    """Estimate the hair colour of a portrait from its hair pixels.

    The pixels where ``mask ≥ threshold`` (eroded by ``erode`` pixels: the mask's edge mixes
    hair with the background, which lifts dark hair on a light background) are converted to
    linear RGB; the darkest quarter (shadows between strands) and the brightest tenth (specular
    highlights) by luminance are dropped and the rest averaged (``statistic="mean"``) or their
    per-channel median taken (``"median"``: a few dyed or sunlit strands do not move it). A
    photographed colour is albedo × shading; the shading is the constant ``shading`` (by default
    0.7: a frontal portrait's hair is lit from above and the front), or, given the light
    estimated for the portrait, the strands' shading under it per channel
    (:func:`hair_shading_from_sh`: exposure and white balance at once). The albedo is then
    fitted by the melanin model of :func:`~machlib.hair.hair_color`: a grid search over
    eumelanin ``[0, 16]`` and pheomelanin ``[0, 3]`` (geometric steps) minimising the RMS
    difference of log colours, which weighs dark hair's small channel values as much as blonde
    hair's large ones.

    With ``light`` (the colour of the light on the hair, e.g. :func:`light_from_skin`), the
    observed colour is divided by ``light / mean(light)`` first: a warm room light no longer turns
    grey hair blonde or dark brown hair red. The name is the named colour nearest the albedo in
    CIELAB (perceptual distance, so dark hair is named by its lightness first, not by the ratios
    of its small channel values). Dark hair whose nearest name is brown or auburn is named black
    when its L* is below the midpoint (≈ 29) of black's and brown's L* as photographed and its
    chroma C* below brown's as photographed (≈ 9): each fibre's cuticle reflects about 4.65 % of
    the light unpigmented (Fresnel, refractive index 1.55), which lifts black hair to L* ≈ 26,
    a dark grey that nearest-colour naming alone called brown.

    Args:
        image: ``(H, W, 3)`` uint8 sRGB portrait.
        mask: ``(H, W)`` hair mask in ``[0, 1]`` (e.g. :func:`~machlib.hair.hair_mask`).
        threshold: mask level counted as hair, in ``(0, 1]``.
        shading: the mean shading of the hair: a number in ``(0, 1]`` or a ``(3,)`` linear RGB
            shading (positive, e.g. :func:`hair_shading_from_sh`).
        light: optional ``(3,)`` linear RGB colour of the light (positive; only its ratios
            count).
        statistic: ``"mean"`` or ``"median"`` of the kept pixels.
        erode: pixels by which the hair region is eroded first, ``≥ 0`` (the region is kept
            uneroded when erosion would leave fewer than 20 pixels).
        keep_hue: pull a natural colour that the melanin model fits loosely towards the
            albedo itself, in log space: not at all up to an error of ``0.1``, fully from
            ``0.25``. Strands are drawn with the albedo as their colour, and vivid red or
            strawberry-blonde hair is more saturated than any fibre colour of the model, whose
            fit turns it brown; with an exposure and white balance from the portrait's light
            (``shading`` from :func:`hair_shading_from_sh`) the albedo is trustworthy enough
            to keep its hue. ``False``: the melanin fit, as described above.

    Returns:
        A :class:`HairColorEstimate`.

    Raises:
        InputError: mismatched shapes, a non-uint8 image, a bad option, or fewer than 20 hair
            pixels.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import HAIR_COLORS, estimate_hair_color
        >>> lin = 0.7 * np.array(HAIR_COLORS["brown"])               # brown hair, shaded
        >>> srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
        >>> img = np.broadcast_to((srgb * 255 + 0.5).astype(np.uint8), (16, 16, 3)).copy()
        >>> est = estimate_hair_color(img, np.ones((16, 16), np.float32))
        >>> est.name, round(est.melanin, 1)
        ('brown', 0.6)
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise InputError(f"estimate_hair_color: image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise InputError(f"estimate_hair_color: mask must have shape {image.shape[:2]}, got {mask.shape}")
    if not 0.0 < float(threshold) <= 1.0:
        raise InputError(f"estimate_hair_color: threshold must be in (0, 1], got {threshold}")
    shade = np.asarray(shading, np.float64)
    if shade.shape == ():
        if not 0.0 < float(shade) <= 1.0:
            raise InputError(f"estimate_hair_color: shading must be in (0, 1], got {shading}")
    elif shade.shape != (3,) or not np.isfinite(shade).all() or shade.min() <= 0:
        raise InputError(f"estimate_hair_color: shading must be a number or 3 positive finite numbers, got {shading!r}")
    if statistic not in ("mean", "median"):
        raise InputError(f"estimate_hair_color: statistic must be 'mean' or 'median', got {statistic!r}")
    if isinstance(erode, bool) or not isinstance(erode, (int, np.integer)) or erode < 0:
        raise InputError(f"estimate_hair_color: erode must be an integer >= 0, got {erode!r}")
    cast = np.ones(3)
    if light is not None:
        cast = np.asarray(light, np.float64)
        if cast.shape != (3,) or not np.isfinite(cast).all() or cast.min() <= 0:
            raise InputError(f"estimate_hair_color: light must be 3 positive finite numbers, got {light!r}")
        cast = cast / cast.mean()
    region = mask >= threshold
    if erode > 0:
        from scipy import ndimage

        inner = ndimage.binary_erosion(region, iterations=int(erode))
        region = inner if inner.sum() >= 20 else region
    srgb = image[region].astype(np.float64) / 255.0
    if len(srgb) < 20:
        raise InputError(f"estimate_hair_color: only {len(srgb)} hair pixels; need at least 20")
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    lum = lin @ np.array([0.2126, 0.7152, 0.0722])
    lo, hi = np.quantile(lum, [0.25, 0.9])
    keep = (lum >= lo) & (lum <= hi)
    kept = lin[keep] if keep.sum() >= 10 else lin
    observed = np.median(kept, 0) if statistic == "median" else kept.mean(0)
    albedo = np.clip(observed / cast / shade, 1e-4, 1.0)
    target = np.log(albedo)
    grid = _grid()
    err = np.sqrt(np.mean((grid - target) ** 2, -1))
    i, j = np.unravel_index(np.argmin(err), err.shape)
    error = float(err[i, j])
    fitted = np.exp(grid[i, j])
    names = sorted(HAIR_COLORS)
    dist = [np.sqrt(np.mean((np.log(np.maximum(HAIR_COLORS[n], 1e-4)) - target) ** 2)) for n in names]
    lab = _lab(albedo)
    nearest = names[int(np.argmin([np.linalg.norm(_lab(HAIR_COLORS[n]) - lab) for n in names]))]
    l_black, c_brown = _black_limits()
    if nearest in _DARK_NAMES and lab[0] < l_black and np.hypot(lab[1], lab[2]) < c_brown:
        nearest = "black"  # very dark, nearly grey: the cuticle's sheen, not pigment, gives it its L*
    if min(dist) < error:  # grey and white hair are unpigmented fibres: no melanin fit explains them
        nearest = names[int(np.argmin(dist))]
        rgb = np.asarray(HAIR_COLORS[nearest], np.float64)
    else:
        # a natural-looking colour keeps the melanin fit even when it fits loosely (an
        # overexposed blonde's clipped albedo would be a saturated orange); a dyed one is kept
        rgb = fitted if error < 0.25 or nearest in _NATURAL_NAMES else albedo
        if keep_hue and nearest in _NATURAL_NAMES:
            w = float(np.clip((error - 0.1) / 0.15, 0.0, 1.0))
            rgb = np.exp((1.0 - w) * np.log(np.maximum(fitted, 1e-4)) + w * target)
        if nearest in _NEUTRAL_NAMES:  # no hue of its own: a neutral at the albedo's luminance
            ref = np.asarray(HAIR_COLORS[_NEUTRAL_NAMES[nearest]], np.float64)
            rgb = np.clip(ref * float(albedo @ _LUMA) / float(ref @ _LUMA), 0.0, 1.0)
    return HairColorEstimate(
        rgb=np.asarray(rgb, np.float32), melanin=float(_MEL[i]), pheomelanin=float(_PHE[j]), error=error,
        name=nearest, observed=np.asarray(observed, np.float32), pixels=int(keep.sum()),
    )


def _lab(linear) -> np.ndarray:
    """CIELAB (D65) of a linear RGB colour."""
    from skimage.color import rgb2lab

    lin = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return rgb2lab(srgb[None, None])[0, 0]


_NATURAL_NAMES = ("black", "brown", "blonde", "red", "auburn")
#: Names whose strands get a neutral colour (the value's hue) at the albedo's luminance: grey and
#: white fibres have no pigment, and black hair photographs as a dark neutral (its cuticle's
#: reflection, not its pigment, gives it its lightness), so the hue of their albedo is the
#: photo's leftover colour cast (t1_face1's black hair came out olive, t1_face4's green).
_NEUTRAL_NAMES = {"gray": "gray", "white": "white", "black": "gray"}
_LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 luminance of linear RGB
_DARK_NAMES = ("black", "brown", "auburn")
#: Fresnel reflectance of the hair cuticle at normal incidence (refractive index 1.55): light
#: every fibre reflects unpigmented, so even black hair photographs at L* ≈ 26, not 0.
_CUTICLE = ((1.55 - 1.0) / (1.55 + 1.0)) ** 2
_BLACK: tuple[float, float] | None = None


def _black_limits() -> tuple[float, float]:
    """(L*, C*) limits under which dark hair is named black: the L* midway between black's and
    brown's as photographed (each albedo plus the cuticle's unpigmented reflection
    :data:`_CUTICLE`), and the CIELAB chroma of brown as photographed."""
    global _BLACK
    if _BLACK is None:
        black = _lab(np.asarray(HAIR_COLORS["black"]) + _CUTICLE)
        brown = _lab(np.asarray(HAIR_COLORS["brown"]) + _CUTICLE)
        _BLACK = (0.5 * float(black[0] + brown[0]), float(np.hypot(brown[1], brown[2])))
    return _BLACK


#: Median chromaticity (linear RGB, sums to 1) of the skin of machlib's procedural template
#: albedo: the reference that :func:`light_from_skin` compares a face's skin with.
_SKIN_CHROMA = (0.532, 0.281, 0.187)


def light_from_skin(image: UInt8[np.ndarray, "H W 3"], face: Float[np.ndarray, "H W"]) -> np.ndarray:
    """The colour of the light on a face, from its skin: a white balance for the hair colour.

    The median linear RGB of the face pixels (``face > 0.5``, e.g. :attr:`HairMask.face`), as a
    chromaticity, divided by the median skin chromaticity of machlib's procedural template
    albedo ``(0.532, 0.281, 0.187)``, normalised to mean 1. Skin varies far less in chromaticity
    than in lightness, so what remains is mostly the light's colour (a warm room light gives
    red > 1 > blue). Pass it as ``light`` to :func:`estimate_hair_color`.

    Args:
        image: ``(H, W, 3)`` uint8 sRGB portrait.
        face: ``(H, W)`` face mask in ``[0, 1]``.

    Returns:
        ``(3,)`` float64 light colour with mean 1, each channel clipped to ``[0.5, 1.5]`` (a
        skin-coloured background or a coloured face light cannot swing it further).

    Raises:
        InputError: mismatched shapes, a non-uint8 image, or fewer than 20 face pixels.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import light_from_skin
        >>> img = np.zeros((8, 8, 3), np.uint8); img[...] = (220, 160, 130)
        >>> light = light_from_skin(img, np.ones((8, 8), np.float32))
        >>> light.round(2).tolist(), bool(light[0] > light[2])   # a little warmer than the template skin
        ([1.06, 0.99, 0.94], True)
    """
    image = np.asarray(image)
    face = np.asarray(face)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise InputError(f"light_from_skin: image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if face.shape != image.shape[:2]:
        raise InputError(f"light_from_skin: face must have shape {image.shape[:2]}, got {face.shape}")
    srgb = image[face > 0.5].astype(np.float64) / 255.0
    if len(srgb) < 20:
        raise InputError(f"light_from_skin: only {len(srgb)} face pixels; need at least 20")
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    med = np.median(lin, 0)
    chroma = med / max(float(med.sum()), 1e-9)
    light = chroma / np.asarray(_SKIN_CHROMA)
    light = light / light.mean()
    return np.clip(light, 0.5, 1.5)


def hair_shading_from_sh(sh, *, ambient: float = 0.3) -> np.ndarray:
    """The mean shading of hair strands under a spherical-harmonics light, per channel.

    The light a portrait was taken under, as the texture stage estimates it from the skin
    (:attr:`machlib.pipeline.TextureOutput.lighting`, normalised to a mean shading of 1 per
    channel over the face), gives the hair the exposure and white balance of the skin albedo
    delit with it: one ``(3,)`` shading for both. Strands are shaded as
    :func:`machlib._scene.render_scene` shades them under that light: with ``hi`` and ``lo`` the
    SH shading towards the light's dominant direction (its luminance's band 1) and away from it,
    a strand receives ``lo + (hi − lo) · (ambient + (1 − ambient) · sin(T, L))``; over strands
    whose tangents point evenly in all directions, ``sin(T, L)`` averages ``π/4`` (tangents spread
    evenly in a plane through ``L`` would average ``2/π``).
    Dividing a photographed hair colour by this shading gives the albedo that machlib's renderer
    shows as the photographed colour under the same light.

    Args:
        sh: ``(9, 3)`` SH radiance coefficients (machlib's order and normalisation,
            :func:`machlib.render.sh_shading`).
        ambient: the strands' ambient fraction (:attr:`machlib._scene.StrandShading.ambient`).

    Returns:
        ``(3,)`` float64 linear RGB shading, each channel at least ``1e-3``.

    Raises:
        InputError: ``sh`` not a finite ``(9, 3)`` array, or ``ambient`` outside ``[0, 1]``.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import hair_shading_from_sh
        >>> from machlib.render import sh_constant
        >>> hair_shading_from_sh(np.asarray(sh_constant(np.ones(3)))).round(3).tolist()  # uniform light 1
        [1.0, 1.0, 1.0]
    """
    from .._scene import _make_light

    coeffs = np.asarray(sh, np.float64)
    if coeffs.shape != (9, 3) or not np.isfinite(coeffs).all():
        raise InputError(f"hair_shading_from_sh: sh must be a finite (9, 3) array, got shape {coeffs.shape}")
    if not 0.0 <= float(ambient) <= 1.0:
        raise InputError(f"hair_shading_from_sh: ambient must be in [0, 1], got {ambient!r}")
    light = _make_light(None, coeffs, np.eye(3), "hair_shading_from_sh")
    mean_sin = np.pi / 4.0
    shade = light.hair_lo + (light.hair_hi - light.hair_lo) * (ambient + (1.0 - ambient) * mean_sin)
    return np.maximum(shade, 1e-3)


def fit_melanin(
    albedo: Float[ArrayLike, 3],
    *,
    roughness: float = 0.3,
    steps: int = 12,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """The eumelanin and pheomelanin concentrations whose fibre colour best explains an albedo.

    The continuous, differentiable counterpart of :func:`estimate_hair_color`'s grid search: the
    fibre colour of :func:`~machlib.hair.hair_color` is ``exp(−D(β)·√σ)`` with
    ``σ = m·(0.419, 0.697, 1.37) + p·(0.187, 0.4, 1.05)``, so the log-colour error is ``D`` times
    ``√σ_c(m, p) − s_c`` with ``s = −log(albedo) / D``. The fit minimises
    ``Σ_c (√σ_c − s_c)²`` over ``m, p ≥ 0``: a start from the weighted linear least squares of
    ``σ ≈ s²`` (weights ``1 / (4 s²)``, the linearisation of the square root; a negative
    concentration is set to 0 and the other refitted), then ``steps`` projected Gauss-Newton
    steps (damped by ``1e-9`` of the normal matrix's trace; concentrations clipped at 0). Pure
    JAX: jit-able, vmap-able over albedos, and differentiable in the albedo where both
    concentrations are positive (at the boundary the derivative of the clipped one is 0).
    :func:`estimate_hair_color` keeps its grid (numpy, nothing to compile in ``machlib make``);
    the two agree to the grid's resolution.

    Args:
        albedo: ``(3,)`` linear RGB fibre albedo, clipped to ``[1e-4, 1]``.
        roughness: fibre roughness ``β`` in ``(0, 1]`` (as :func:`~machlib.hair.hair_color`).
        steps: Gauss-Newton steps, ``≥ 0``.

    Returns:
        ``(melanin, pheomelanin)``: two scalar arrays ``≥ 0`` of the albedo's dtype.

    Raises:
        InputError: an albedo that is not ``(3,)``, a roughness outside ``(0, 1]`` or a
            negative ``steps``.

    Example:
        >>> from machlib.hair import HAIR_COLORS, fit_melanin
        >>> m, p = fit_melanin(HAIR_COLORS["blonde"])      # melanin 0.12, pheomelanin 0.05
        >>> round(float(m), 3), round(float(p), 3)
        (0.12, 0.05)
    """
    import jax.numpy as jnp

    a = jnp.asarray(albedo)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))  # integers: the default float; floats keep their dtype
    if a.shape != (3,):
        raise InputError(f"fit_melanin: albedo must have shape (3,), got {a.shape}")
    if not 0.0 < float(roughness) <= 1.0:
        raise InputError(f"fit_melanin: roughness must be in (0, 1], got {roughness!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InputError(f"fit_melanin: steps must be an integer >= 0, got {steps!r}")
    x = _fit_melanin_jit()(a, d=fibre_d(roughness), steps=int(steps))
    return x[0], x[1]


_FIT_MELANIN = None


def _fit_melanin_jit():
    """:func:`fit_melanin`'s core, compiled once per dtype, roughness and step count."""
    global _FIT_MELANIN
    if _FIT_MELANIN is None:
        import functools

        import jax

        _FIT_MELANIN = functools.partial(jax.jit, static_argnames=("d", "steps"))(_fit_melanin_core)
    return _FIT_MELANIN


def _fit_melanin_core(a, *, d: float, steps: int):
    import jax
    import jax.numpy as jnp

    A = jnp.stack([jnp.asarray(EUMELANIN_ABSORPTION, a.dtype), jnp.asarray(PHEOMELANIN_ABSORPTION, a.dtype)], 1)  # (3, 2)
    s = -jnp.log(jnp.clip(a, 1e-4, 1.0)) / d
    eps = jnp.asarray(1e-12, a.dtype)

    def solve_nonneg(w, target):
        """argmin Σ w (A x − target)² over x ≥ 0 (two unknowns: the free, then each single one)."""
        Aw = A * w[:, None]
        N = A.T @ Aw
        r = Aw.T @ target
        det = N[0, 0] * N[1, 1] - N[0, 1] ** 2
        det = jnp.where(jnp.abs(det) > eps, det, eps)
        both = jnp.stack([N[1, 1] * r[0] - N[0, 1] * r[1], N[0, 0] * r[1] - N[0, 1] * r[0]]) / det
        only_m = jnp.stack([jnp.maximum(r[0], 0.0) / jnp.maximum(N[0, 0], eps), jnp.zeros((), a.dtype)])
        only_p = jnp.stack([jnp.zeros((), a.dtype), jnp.maximum(r[1], 0.0) / jnp.maximum(N[1, 1], eps)])

        def cost(x):
            res = A @ x - target
            return jnp.sum(w * res * res)

        best_single = jnp.where(cost(only_m) <= cost(only_p), only_m, only_p)
        return jnp.where(jnp.all(both >= 0.0), both, best_single)

    x = solve_nonneg(1.0 / (4.0 * jnp.maximum(s * s, 1e-6)), s * s)

    def cost(x):
        res = jnp.sqrt(jnp.maximum(A @ x, eps)) - s
        return jnp.sum(res * res)

    def step(_, x):
        sigma = A @ x
        root = jnp.sqrt(jnp.maximum(sigma, eps))
        J = A / (2.0 * root)[:, None]
        g = J.T @ (root - s)
        N = J.T @ J
        N = N + 1e-9 * jnp.trace(N) * jnp.eye(2, dtype=a.dtype)
        # the full step, or one concentration alone (the other held, e.g. at its bound of 0):
        # whichever lowers the cost most (a projected full step alone stalls on the boundary)
        full = jnp.maximum(x - jnp.linalg.solve(N, g), 0.0)
        only_m = jnp.stack([jnp.maximum(x[0] - g[0] / N[0, 0], 0.0), x[1]])
        only_p = jnp.stack([x[0], jnp.maximum(x[1] - g[1] / N[1, 1], 0.0)])
        cands = jnp.stack([full, only_m, only_p, x])
        costs = jax.vmap(cost)(cands)
        return cands[jnp.argmin(costs)]

    x = jax.lax.fori_loop(0, steps, step, x)
    return x


#: Share of the person band above the face that the hair mask must cover for the crown to count
#: as seen (as :func:`~machlib.hair.hair_mask` decides on a hat); below it, a hat or a bald crown.
_HAT_COVER = 0.1


def _hair_beside_hat(
    image: UInt8[np.ndarray, "H W 3"], mask, points: Float[np.ndarray, "K 2"]
) -> np.ndarray | None:
    """``(H, W)`` bool: the pixels to read the hair colour from when a hat hides the crown, or
    ``None`` when the crown shows hair (the hair mask's own pixels are then used).

    Under a hat, :func:`~machlib.hair.hair_mask` seeds its hair colour at the temples, which
    under a brim show mostly shaded skin, so its mask holds skin, the hat's edge and only a few
    wisps of the hair itself (Hopper: 95 % of the eroded mask has the skin's hue and chroma; the
    melanin fit read it as red). Here the hair is looked for where it shows under a hat — in the
    mask and in a band beside the face oval (2–14 % of the face width out, from the oval top to
    15 % of the face height above the chin), inside the person (eroded by 2 pixels, off the
    background's edge) — less what is explained by the skin or by the hat:

    * *skin*: a hue (CIELAB) within 30° of the face's median and a chroma above 0.6 of the face's
      median ``C*/L*`` at the pixel's lightness (the face oval eroded by 5 % of its width, its
      brightest three quarters): shaded skin keeps the skin's hue and its ``C*/L*``, grey or white
      hair has a low chroma for its lightness;
    * *hat*: within Mahalanobis distance 3 of a Gaussian (CIELAB, plus a unit² diagonal) of the
      person band above the face (0.05–0.35 face heights above the oval top, within 0.3 face
      widths of its centre).

    A hat is recognised as :func:`~machlib.hair.hair_mask` recognises it: the mask covers under
    10 % of that band. ``None`` also when fewer than 20 pixels remain.
    """
    from scipy import ndimage
    from skimage.color import rgb2lab

    from ..geometry import face_oval

    hair = np.asarray(mask.mask) > 0.5
    person = np.asarray(mask.person) > 0.5
    face = np.asarray(mask.face) > 0.5
    oval = np.asarray(points, np.float64)[np.asarray(face_oval())]
    x0, x1 = oval[:, 0].min(), oval[:, 0].max()
    y_top, y_chin = oval[:, 1].min(), oval[:, 1].max()
    fw, fh = max(x1 - x0, 4.0), max(y_chin - y_top, 4.0)
    cx = 0.5 * (x0 + x1)
    h, w = hair.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    top = person & (yy > y_top - 0.35 * fh) & (yy < y_top - 0.05 * fh) & (np.abs(xx - cx) < 0.3 * fw)
    if top.sum() < 20 or hair[top].mean() >= _HAT_COVER:
        return None
    core = ndimage.binary_erosion(face, iterations=max(1, int(round(0.05 * fw))))
    if core.sum() < 20:
        return None
    lab = rgb2lab(image).astype(np.float64)
    L = lab[..., 0]
    C = np.hypot(lab[..., 1], lab[..., 2])
    hue = np.arctan2(lab[..., 2], lab[..., 1])
    lit = core & (L >= np.percentile(L[core], 25))
    ratio = float(np.median(C[lit] / np.maximum(L[lit], 1.0)))
    skin_hue = float(np.angle(np.mean(np.exp(1j * hue[lit]))))
    dh = np.abs(np.angle(np.exp(1j * (hue - skin_hue))))
    skin_like = (dh < np.radians(30.0)) & (C > 0.6 * ratio * L)
    hat_px = lab[top]
    mu = np.median(hat_px, 0)
    cov = np.cov((hat_px - mu).T) + np.eye(3)
    d = lab - mu
    hat_like = np.einsum("hwi,ij,hwj->hw", d, np.linalg.inv(cov), d) < 9.0
    dist = ndimage.distance_transform_edt(~face)
    band = (dist > 0.02 * fw) & (dist < 0.14 * fw) & (yy > y_top) & (yy < y_chin - 0.15 * fh)
    inner = ndimage.binary_erosion(person, iterations=2)
    out = (band | hair) & inner & ~face & ~skin_like & ~hat_like
    return out if out.sum() >= 20 else None


def strand_colors_from_photo(
    points: Float[ArrayLike, "..."],
    camera,
    image: ArrayLike,
    mask: Float[ArrayLike, "..."],
    rgb,
    *,
    mesh=None,
    min_pixels: int = 3,
    clip: tuple[float, float] = (0.5, 2.0),
) -> Float[np.ndarray, "S 3"]:
    """Per-strand colours that carry the photo's variation around one hair colour.

    One albedo for a whole head of hair (:func:`estimate_hair_color`'s median) renders as one
    flat colour: a blond crown's pale highlight and the darker lengths underneath all come out
    as the median's orange. Here the strands are z-buffered in the photo's ``camera`` (against
    ``mesh``, the head that hides strands behind it) and every strand that is the visible
    surface on at least ``min_pixels`` pixels of the hair ``mask`` (``> 0.5``) takes
    ``rgb × (median of the photo over its pixels) / (median of the photo over all of them)``,
    per channel in linear RGB, the ratio clipped to ``clip``; the other strands (hidden, or
    over the face, background or another strand's pixels) keep ``rgb``. The median colour of the
    visible hair stays the photo's; the photo's light is in the ratios (the crown lit from
    above is paler), as it is in the colour read from the photo.

    Args:
        points: ``(S, P, 3)`` strand points, metres, head space.
        camera: the photo's :class:`~machlib.Camera` (its ``image_size`` is the image's).
        image: ``(H, W, 3)`` ``uint8`` sRGB photo.
        mask: ``(H, W)`` hair mask in ``[0, 1]`` (:func:`~machlib.hair.hair_mask`).
        rgb: ``(3,)`` linear RGB hair albedo in ``[0, 1]`` (e.g. ``HairColorEstimate.rgb``).
        mesh: the head :class:`~machlib.Mesh` hiding strands behind it, or ``None``.
        min_pixels: visible hair pixels a strand needs to take its own colour, ``≥ 1``.
        clip: ``(low, high)`` bounds of the per-channel ratio, ``0 < low ≤ 1 ≤ high``.

    Returns:
        ``(S, 3)`` float32 linear RGB in ``[0, 1]``.

    Raises:
        InputError: bad shapes, an image size other than the camera's, or a bad option.

    Example:
        >>> import numpy as np
        >>> from machlib._preview import orbit_camera
        >>> from machlib.hair import strand_colors_from_photo
        >>> cam = orbit_camera(0.0, image_size=(64, 64))
        >>> ys = np.linspace(0.1, -0.1, 8)
        >>> strands = np.stack([np.stack([np.full(8, x), ys, np.zeros(8)], 1) for x in (-0.03, 0.03)])
        >>> photo = np.zeros((64, 64, 3), np.uint8)
        >>> photo[:, :32], photo[:, 32:] = 200, 100  # a lit half and a shaded half
        >>> rgb = strand_colors_from_photo(strands, cam, photo, np.ones((64, 64)), [0.4, 0.3, 0.2])
        >>> bool(rgb[0, 0] > rgb[1, 0])  # the strand on the lit half is paler
        True
    """
    from .._camera import rotation_matrix
    from .._scene import ScenePart, depth_map
    from .._strand_raster import _strand_pass

    pts = np.asarray(points, np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 3 or pts.shape[1] < 2:
        raise InputError(f"strand_colors_from_photo: points must have shape (S, P >= 2, 3), got {pts.shape}")
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise InputError(f"strand_colors_from_photo: image must be (H, W, 3) uint8, got {img.dtype} {img.shape}")
    w, h = camera.image_size
    if img.shape[:2] != (h, w):
        raise InputError(f"strand_colors_from_photo: image is {img.shape[1]} x {img.shape[0]}, the camera's "
                         f"image_size {w} x {h}")
    m = np.asarray(mask, np.float64)
    if m.shape != (h, w):
        raise InputError(f"strand_colors_from_photo: mask must have shape {(h, w)}, got {m.shape}")
    base = np.asarray(rgb, np.float64)
    if base.shape != (3,) or not np.isfinite(base).all() or base.min() < 0.0 or base.max() > 1.0:
        raise InputError(f"strand_colors_from_photo: rgb must be 3 values in [0, 1], got {np.asarray(rgb)!r}")
    lo, hi = (float(c) for c in clip)
    if not 0.0 < lo <= 1.0 <= hi:
        raise InputError(f"strand_colors_from_photo: clip must be (low, high) with 0 < low <= 1 <= high, got {clip!r}")
    if int(min_pixels) < 1:
        raise InputError(f"strand_colors_from_photo: min_pixels must be >= 1, got {min_pixels!r}")
    s, p = pts.shape[:2]
    out = np.broadcast_to(base, (s, 3)).astype(np.float64)
    if s == 0:
        return out.astype(np.float32)
    R = np.asarray(rotation_matrix(camera.rotation), np.float64)
    zhead = (depth_map([ScenePart(mesh, two_sided=False)], camera) if mesh is not None
             else np.full((h, w), np.inf))
    hit, seg, _ = _strand_pass(pts, R, np.asarray(camera.translation, np.float64),
                               np.asarray(camera.focal, np.float64), np.asarray(camera.principal, np.float64),
                               (w, h), zhead, 5e-4)
    on_hair = (m > 0.5)[hit]
    if not on_hair.any():
        return out.astype(np.float32)
    c = img[hit][on_hair].astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    strand = (seg // (p - 1))[on_hair]
    ref = np.maximum(np.median(lin, 0), 1e-4)
    order = np.argsort(strand, kind="stable")
    ids, start, count = np.unique(strand[order], return_index=True, return_counts=True)
    keep = count >= int(min_pixels)
    for i, a, n in zip(ids[keep], start[keep], count[keep]):
        out[i] = base * np.clip(np.median(lin[order[a:a + n]], 0) / ref, lo, hi)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
