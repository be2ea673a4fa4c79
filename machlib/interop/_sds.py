"""Score distillation (SDS) from JAX: timestep schedules, noise schedules, weights, the SDS loss,
and JAX-callable noise predictors and VAE encoders/decoders built from diffusers models.

Score distillation (DreamFusion, Poole et al. 2022; DreamFace §4.2 eq. 6, §5.2.1 eq. 11,
§5.2.2 eq. 14) optimises a latent code ``z`` (or anything that renders to it) so that a frozen
text-to-image diffusion model finds it plausible. One step draws a timestep ``t`` and a noise
``ε``, forms ``z_t = √ᾱ_t z + √(1 − ᾱ_t) ε``, asks the model for its noise estimate
``ε̂(z_t; t, prompt)`` and uses

    ∇_z L_SDS = w(t) (ε̂(z_t; t, prompt) − ε)

as the gradient, *without* the model's Jacobian ``∂ε̂/∂z_t``. :func:`sds_loss` returns a scalar
whose JAX gradient is exactly this, so it composes with ``jax.grad`` and optax, and gradients
continue into whatever produced the latents (a renderer, :func:`vae_encoder` for image-space SDS
as in DreamFace eq. 6: ``∂z/∂I``).

Layout: latents and images are channels-last and unbatched, ``(H, W, C)`` (DreamFace's
``z ∈ R^{64×64×4}``); batch with ``jax.vmap``. The torch side transposes to diffusers' NCHW.

Only the functions that build torch-backed callables (:func:`unet_denoiser`,
:func:`vae_encoder`, :func:`vae_decoder`) need torch, and they import it when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .._errors import InputError, error_if
from ._torch import require_torch, to_torch, torch_function

__all__ = [
    "TIMESTEP_SCHEDULES",
    "SDS_WEIGHTS",
    "timestep_schedule",
    "alphas_cumprod",
    "scheduler_alphas_cumprod",
    "sds_weight",
    "sds_loss",
    "gaussian_denoiser",
    "unet_denoiser",
    "vae_encoder",
    "vae_decoder",
]

#: Kinds accepted by :func:`timestep_schedule`.
TIMESTEP_SCHEDULES = ("uniform", "decreasing")
#: Kinds accepted by :func:`sds_weight` (and the ``weight`` of :func:`sds_loss`).
SDS_WEIGHTS = ("sigma2", "uniform", "snr")
_BETA_SCHEDULES = ("scaled_linear", "linear", "squaredcos_cap_v2")

EpsFn = Callable[[Array, Array], Array]


# ------------------------------------------------------------------------------------------------
# timestep schedules


def _check_int(name: str, arg: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: {arg} must be an int, got {value!r}")
    if value < minimum:
        raise InputError(f"{name}: {arg} must be >= {minimum}, got {value}")
    return int(value)


def _t_index(fraction: float, num_train_timesteps: int) -> int:
    return min(int(round(fraction * num_train_timesteps)), num_train_timesteps - 1)


def timestep_schedule(
    kind: str,
    *,
    n_steps: int | None = None,
    t_min: float = 0.02,
    t_max: float = 0.98,
    num_train_timesteps: int = 1000,
) -> Callable[..., Int[Array, ""]]:
    """The diffusion timestep to use at each optimisation step of score distillation.

    * ``"uniform"`` (DreamFusion): ``t`` uniform over the integers ``[t_lo, t_hi]``, drawn from
      ``key``; ``step`` is ignored.
    * ``"decreasing"`` (DreamFace §5.2.1): ``t`` decreases in equal intervals from ``t_hi`` at
      step ``0`` to ``t_lo`` at step ``n_steps − 1``, "as in a real denoising process"
      (``round(t_hi − (t_hi − t_lo)·step/(n_steps − 1))``); deterministic, ``key`` is ignored;
      steps outside ``[0, n_steps − 1]`` are clamped to the ends.

    The fractions map to integer timesteps ``t_lo = round(t_min·T)``, ``t_hi = round(t_max·T)``
    (each capped at ``T − 1``), with ``T = num_train_timesteps``: 20 and 980 for the defaults.
    DreamFace decreases ``t`` "to 0": pass ``t_min=0.0`` for that.

    Args:
        kind: ``"uniform"`` or ``"decreasing"``.
        n_steps: number of optimisation steps (required for ``"decreasing"``; ``>= 1``).
        t_min: smallest timestep as a fraction of ``T``, in ``[0, 1]``.
        t_max: largest timestep as a fraction of ``T``, in ``[t_min, 1]``.
        num_train_timesteps: ``T``, the diffusion model's number of training timesteps.

    Returns:
        ``schedule(step, key=None) -> int32 scalar``: pure and jit-compatible; ``step`` (an int
        or an int array scalar) may be traced, and the function can be ``vmap``-ed over steps
        and keys.

    Raises:
        InputError: an unknown kind, a missing or non-positive ``n_steps`` for
            ``"decreasing"``, or fractions outside ``0 <= t_min <= t_max <= 1``.

    Example:
        >>> import jax
        >>> from machlib.interop import timestep_schedule
        >>> down = timestep_schedule("decreasing", n_steps=5)
        >>> [int(down(s)) for s in range(5)]
        [980, 740, 500, 260, 20]
        >>> t = timestep_schedule("uniform")(0, jax.random.key(0))
        >>> 20 <= int(t) <= 980
        True
    """
    name = "timestep_schedule"
    if kind not in TIMESTEP_SCHEDULES:
        raise InputError(f"{name}: kind must be one of {TIMESTEP_SCHEDULES}, got {kind!r}")
    T = _check_int(name, "num_train_timesteps", num_train_timesteps, minimum=1)
    t_min, t_max = float(t_min), float(t_max)
    if not (0.0 <= t_min <= t_max <= 1.0):
        raise InputError(f"{name}: need 0 <= t_min <= t_max <= 1, got t_min={t_min}, t_max={t_max}")
    lo, hi = _t_index(t_min, T), _t_index(t_max, T)

    if kind == "uniform":
        if n_steps is not None:
            _check_int(name, "n_steps", n_steps, minimum=1)

        def uniform(step: Any = 0, key: PRNGKeyArray | None = None) -> Array:
            if key is None:
                raise InputError(f"{name}: the 'uniform' schedule needs a PRNG key: schedule(step, key)")
            return jax.random.randint(key, (), lo, hi + 1, dtype=jnp.int32)

        uniform.__doc__ = f"Uniform random timestep in [{lo}, {hi}] from key (step ignored)."
        return uniform

    if n_steps is None:
        raise InputError(f"{name}: the 'decreasing' schedule needs n_steps (the number of optimisation steps)")
    n = _check_int(name, "n_steps", n_steps, minimum=1)

    def decreasing(step: Any, key: PRNGKeyArray | None = None) -> Array:
        s = jnp.clip(jnp.asarray(step), 0, n - 1).astype(jnp.float32)
        frac = s / (n - 1) if n > 1 else jnp.zeros_like(s)
        return jnp.round(hi - (hi - lo) * frac).astype(jnp.int32)

    decreasing.__doc__ = f"Timestep decreasing in equal intervals from {hi} (step 0) to {lo} (step {n - 1})."
    return decreasing


# ------------------------------------------------------------------------------------------------
# noise schedules and weights


def _alphas_cumprod_np(beta_schedule: str, beta_start: float, beta_end: float, T: int, name: str) -> np.ndarray:
    if beta_schedule == "scaled_linear":  # Stable Diffusion: linear in sqrt(beta)
        betas = np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=np.float64) ** 2
    elif beta_schedule == "linear":  # DDPM
        betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    elif beta_schedule == "squaredcos_cap_v2":  # Nichol & Dhariwal 2021, eq. 17, betas capped at 0.999

        def abar(u):
            return np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2

        i = np.arange(T, dtype=np.float64)
        betas = np.minimum(1.0 - abar((i + 1) / T) / abar(i / T), 0.999)
    else:
        raise InputError(f"{name}: beta_schedule must be one of {_BETA_SCHEDULES}, got {beta_schedule!r}")
    if not (np.all(betas > 0) and np.all(betas < 1)):
        raise InputError(f"{name}: betas must lie in (0, 1); got beta_start={beta_start}, beta_end={beta_end}")
    return np.cumprod(1.0 - betas)


def alphas_cumprod(
    *,
    beta_start: float = 0.00085,
    beta_end: float = 0.012,
    num_train_timesteps: int = 1000,
    beta_schedule: str = "scaled_linear",
) -> Float[Array, " T"]:
    """The cumulative signal fractions ``ᾱ_t = ∏_{s ≤ t} (1 − β_s)`` of a diffusion noise schedule.

    The defaults are Stable Diffusion's (v1/v2): "scaled linear" betas, ``√β`` linear from
    ``√0.00085`` to ``√0.012`` over 1000 steps. ``"linear"`` is DDPM's (β linear), and
    ``"squaredcos_cap_v2"`` the cosine schedule of improved DDPM. Computed in float64, returned
    in JAX's default float type.

    Args:
        beta_start: β at ``t = 0``.
        beta_end: β at ``t = T − 1``.
        num_train_timesteps: ``T``.
        beta_schedule: ``"scaled_linear"``, ``"linear"`` or ``"squaredcos_cap_v2"`` (the last
            ignores ``beta_start``/``beta_end``).

    Returns:
        ``ᾱ``, shape ``(T,)``, decreasing from ``1 − β_0`` towards 0.

    Raises:
        InputError: an unknown schedule, ``T < 1``, or betas outside ``(0, 1)``.

    Example:
        >>> from machlib.interop import alphas_cumprod
        >>> a = alphas_cumprod()
        >>> a.shape, round(float(a[0]), 5), round(float(a[-1]), 5)
        ((1000,), 0.99915, 0.00466)
    """
    name = "alphas_cumprod"
    T = _check_int(name, "num_train_timesteps", num_train_timesteps, minimum=1)
    out = _alphas_cumprod_np(beta_schedule, float(beta_start), float(beta_end), T, name)
    return jnp.asarray(out, dtype=jnp.result_type(float))


def scheduler_alphas_cumprod(scheduler: Any) -> Float[Array, " T"]:
    """``ᾱ_t`` of a diffusers scheduler, read from its configuration (no torch needed).

    Args:
        scheduler: a diffusers scheduler (anything with a ``.config`` mapping), or the config
            itself as a mapping (e.g. the parsed ``scheduler/scheduler_config.json`` of a Stable
            Diffusion checkpoint). Read keys: ``num_train_timesteps`` (1000), ``beta_start``
            (0.0001), ``beta_end`` (0.02), ``beta_schedule`` (``"linear"``), ``trained_betas``
            (used when given); defaults as diffusers'.

    Returns:
        ``ᾱ``, shape ``(T,)``, JAX's default float type.

    Raises:
        InputError: not a scheduler or mapping, or an unsupported ``beta_schedule``.

    Example:
        >>> from machlib.interop import scheduler_alphas_cumprod
        >>> cfg = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
        >>> round(float(scheduler_alphas_cumprod(cfg)[500]), 4)
        0.2763
    """
    name = "scheduler_alphas_cumprod"
    config = getattr(scheduler, "config", scheduler)
    if not isinstance(config, Mapping):
        raise InputError(f"{name}: expected a diffusers scheduler or its config mapping, got {type(scheduler).__name__}")
    T = _check_int(name, "num_train_timesteps", config.get("num_train_timesteps", 1000), minimum=1)
    trained = config.get("trained_betas")
    if trained is not None:
        betas = np.asarray(trained, dtype=np.float64).reshape(-1)
        if betas.shape != (T,) or not (np.all(betas > 0) and np.all(betas < 1)):
            raise InputError(f"{name}: trained_betas must be {T} values in (0, 1), got shape {betas.shape}")
        out = np.cumprod(1.0 - betas)
    else:
        out = _alphas_cumprod_np(
            config.get("beta_schedule", "linear"),
            float(config.get("beta_start", 0.0001)),
            float(config.get("beta_end", 0.02)),
            T,
            name,
        )
    return jnp.asarray(out, dtype=jnp.result_type(float))


def _check_alphas(alphas: Any, name: str) -> Array:
    a = jnp.asarray(alphas)
    if a.ndim != 1 or a.shape[0] < 1 or not jnp.issubdtype(a.dtype, jnp.floating):
        raise InputError(f"{name}: alphas_cumprod must be a 1-D float array (one ᾱ per timestep), got {a.dtype}{a.shape}")
    return a


def _check_t(t: Any, name: str, T: int) -> Array:
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise InputError(f"{name}: t must be an integer timestep (an index into alphas_cumprod), got dtype {t.dtype}")
    if not isinstance(t, jax.core.Tracer):  # eager: a plain InputError
        bad = np.asarray(t)
        if np.any((bad < 0) | (bad >= T)):
            raise InputError(f"{name}: timestep t outside [0, {T - 1}]: {bad.tolist()}")
        return t
    return error_if(t, jnp.any((t < 0) | (t >= T)), f"{name}: timestep t outside [0, {T - 1}]")


def sds_weight(
    t: Int[ArrayLike, "*batch"],
    alphas_cumprod: Float[ArrayLike, " T"],
    *,
    kind: str = "sigma2",
) -> Float[Array, "*batch"]:
    """The weight ``w(t)`` of the SDS gradient ``w(t)(ε̂ − ε)``.

    * ``"sigma2"``: ``1 − ᾱ_t`` (the noise variance; DreamFusion's choice),
    * ``"uniform"``: ``1``,
    * ``"snr"``: ``ᾱ_t / (1 − ᾱ_t)`` (the signal-to-noise ratio).

    Args:
        t: integer timestep(s), any shape, in ``[0, T − 1]`` (checked, also under ``jit``).
        alphas_cumprod: ``ᾱ``, shape ``(T,)`` (:func:`alphas_cumprod`).
        kind: one of :data:`SDS_WEIGHTS`.

    Returns:
        ``w(t)``, the shape of ``t``, the dtype of ``alphas_cumprod``.

    Raises:
        InputError: an unknown kind, a non-integer ``t`` or a malformed ``alphas_cumprod``.

    Example:
        >>> from machlib.interop import alphas_cumprod, sds_weight
        >>> a = alphas_cumprod()
        >>> round(float(sds_weight(500, a)), 4), float(sds_weight(500, a, kind="uniform"))
        (0.7237, 1.0)
    """
    name = "sds_weight"
    if kind not in SDS_WEIGHTS:
        raise InputError(f"{name}: kind must be one of {SDS_WEIGHTS}, got {kind!r}")
    a = _check_alphas(alphas_cumprod, name)
    t = _check_t(t, name, a.shape[0])
    ab = a[t]
    if kind == "sigma2":
        return 1.0 - ab
    if kind == "uniform":
        return jnp.ones_like(ab)
    return ab / (1.0 - ab)


# ------------------------------------------------------------------------------------------------
# the loss


def sds_loss(
    latents: Float[ArrayLike, "..."],
    key: PRNGKeyArray,
    t: Int[ArrayLike, ""],
    eps_fn: EpsFn,
    alphas_cumprod: Float[ArrayLike, " T"],
    *,
    weight: str = "sigma2",
) -> Float[Array, ""]:
    """Score-distillation loss: a scalar whose gradient w.r.t. ``latents`` is ``w(t)(ε̂ − ε)``.

    With ``ε ~ N(0, I)`` drawn from ``key`` and ``z_t = √ᾱ_t z + √(1 − ᾱ_t) ε``, the gradient is
    ``g = w(t) (ε̂(z_t, t) − ε)`` exactly, with no Jacobian of the noise predictor (DreamFusion's
    SDS; DreamFace eqs. 6, 11 and 14). It is built as a surrogate: ``ε̂`` is computed from
    ``stop_gradient(z_t)`` and the loss is ``½‖z − stop_gradient(z − g)‖²``. So the noise
    predictor runs once, forward only: for a :func:`unet_denoiser` the UNet's backward is never
    run (not even its ``custom_vjp``). Gradients flow on through ``latents`` into whatever made
    them (a renderer, :func:`vae_encoder` for image-space SDS).

    The returned *value* is ``½‖g‖²`` (summed over all elements): a measure of the size of the
    SDS gradient, handy for logging. It is not the objective whose gradient SDS follows (there is
    none in closed form), so do not compare it across timesteps as a loss curve, and do not
    differentiate it twice.

    Args:
        latents: ``z``, float, shape ``(H, W, C)`` for :func:`unet_denoiser` (e.g. ``64×64×4``
            for Stable Diffusion); any shape the ``eps_fn`` accepts. Batch with ``jax.vmap``.
        key: PRNG key for ``ε`` (same key, same ``ε``, same loss).
        t: integer timestep in ``[0, T − 1]`` (a :func:`timestep_schedule` output); may be traced.
        eps_fn: the noise predictor ``eps_fn(z_t, t) -> ε̂`` (same shape as ``z_t``), e.g.
            :func:`unet_denoiser` or :func:`gaussian_denoiser`. Under ``jax.jit`` close over
            it (``jax.jit(lambda z, k, t: sds_loss(z, k, t, eps_fn, a))``) or mark it static.
        alphas_cumprod: ``ᾱ``, shape ``(T,)``.
        weight: ``w(t)``, one of :data:`SDS_WEIGHTS` (see :func:`sds_weight`).

    Returns:
        A float scalar, ``½‖g‖²``, whose gradient w.r.t. ``latents`` is ``g``.

    Raises:
        InputError: non-float latents, a non-integer ``t``, a malformed ``alphas_cumprod``, an
            unknown weight, or an ``eps_fn`` output of another shape; ``t`` out of range raises
            at run time (also under ``jit``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from machlib.interop import alphas_cumprod, gaussian_denoiser, sds_loss
        >>> a = alphas_cumprod()
        >>> eps_fn = gaussian_denoiser(jnp.ones((4, 4, 4)), a, std=0.1)
        >>> z = jnp.zeros((4, 4, 4))
        >>> g = jax.grad(sds_loss)(z, jax.random.key(0), 500, eps_fn, a)
        >>> g.shape, bool(jnp.mean(g) < 0)   # pushes z up, towards the data mean 1
        ((4, 4, 4), True)
    """
    name = "sds_loss"
    if weight not in SDS_WEIGHTS:
        raise InputError(f"{name}: weight must be one of {SDS_WEIGHTS}, got {weight!r}")
    z = jnp.asarray(latents)
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise InputError(f"{name}: latents must be float, got dtype {z.dtype}")
    a = _check_alphas(alphas_cumprod, name)
    t = _check_t(t, name, a.shape[0])
    if t.ndim != 0:
        raise InputError(f"{name}: t must be a scalar timestep (vmap for several), got shape {t.shape}")
    eps = jax.random.normal(key, z.shape, z.dtype)
    ab = a[t].astype(z.dtype)
    # stop_gradient on z_t: the noise predictor gets no tangent, so its backward never runs
    z_t = jax.lax.stop_gradient(jnp.sqrt(ab) * z + jnp.sqrt(1.0 - ab) * eps)
    eps_hat = eps_fn(z_t, t)
    if jnp.shape(eps_hat) != z.shape:
        raise InputError(f"{name}: eps_fn returned shape {jnp.shape(eps_hat)}, expected the latents' shape {z.shape}")
    eps_hat = jax.lax.stop_gradient(jnp.asarray(eps_hat).astype(z.dtype))
    w = sds_weight(t, a, kind=weight).astype(z.dtype)
    g = w * (eps_hat - eps)
    target = jax.lax.stop_gradient(z - g)
    return 0.5 * jnp.sum((z - target) ** 2)


# ------------------------------------------------------------------------------------------------
# noise predictors


def gaussian_denoiser(
    mean: Float[ArrayLike, "*shape"],
    alphas_cumprod: Float[ArrayLike, " T"],
    *,
    std: float = 1.0,
) -> EpsFn:
    """The optimal (posterior-mean) noise predictor for Gaussian data ``x ~ N(mean, std² I)``.

    With ``z_t = √ᾱ x + σ ε`` and ``σ² = 1 − ᾱ``, ``z_t ~ N(√ᾱ μ, (ᾱ s² + σ²) I)`` and
    ``Cov(ε, z_t) = σ I``, so ``E[ε | z_t] = σ (z_t − √ᾱ μ) / (ᾱ s² + σ²)``: the predictor a
    perfectly trained diffusion model would learn. In SDS its expected gradient is
    ``w σ √ᾱ (z − μ) / (ᾱ s² + σ²)``, which points from the mode ``μ`` to ``z``: descent moves
    ``z`` to the mode. Pure JAX; a stand-in for a UNet in tests, examples and benchmarks.

    Args:
        mean: ``μ``, the data mean (the shape of the latents; broadcasts).
        alphas_cumprod: ``ᾱ``, shape ``(T,)``.
        std: ``s > 0``, the data's standard deviation.

    Returns:
        ``eps_fn(z_t, t) -> ε̂``, differentiable, jit- and vmap-compatible.

    Raises:
        InputError: ``std <= 0`` or a malformed ``alphas_cumprod``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.interop import alphas_cumprod, gaussian_denoiser
        >>> eps_fn = gaussian_denoiser(jnp.zeros(3), alphas_cumprod(), std=1.0)
        >>> [round(v, 4) for v in eps_fn(jnp.ones(3), 999).tolist()]   # ᾱ s² + σ² = 1
        [0.9977, 0.9977, 0.9977]
    """
    name = "gaussian_denoiser"
    a = _check_alphas(alphas_cumprod, name)
    if not float(std) > 0:
        raise InputError(f"{name}: std must be > 0, got {std}")
    mu = jnp.asarray(mean)
    s2 = float(std) ** 2

    def eps_fn(z_t: ArrayLike, t: ArrayLike) -> Array:
        ab = a[jnp.asarray(t)].astype(jnp.result_type(z_t))
        sigma = jnp.sqrt(1.0 - ab)
        return sigma * (z_t - jnp.sqrt(ab) * mu) / (ab * s2 + sigma**2)

    return eps_fn


def _device_dtype(module: Any, torch: Any) -> tuple[Any, Any]:
    for p in module.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def _concrete(x: Any, name: str, arg: str, torch: Any) -> Any:
    if isinstance(x, jax.core.Tracer):
        raise InputError(f"{name}: {arg} must be a concrete array (build the function outside jit), not a traced value")
    if isinstance(x, torch.Tensor):
        return x.detach()
    return to_torch(np.asarray(x)).clone()


def _embeddings(e: Any, name: str, arg: str, torch: Any, dim: int | None) -> Any:
    e = _concrete(e, name, arg, torch)
    if e.ndim == 3 and e.shape[0] == 1:
        e = e[0]
    if e.ndim != 2 or not e.is_floating_point():
        raise InputError(f"{name}: {arg} must be float of shape (L, D) or (1, L, D) (prompt length × width), got {tuple(e.shape)}")
    if dim is not None and e.shape[1] != dim:
        raise InputError(f"{name}: {arg} has width {e.shape[1]}, the UNet's cross_attention_dim is {dim}")
    return e


def _flatten_leading(x: Any, core: int) -> tuple[tuple[int, ...], Any]:
    lead = tuple(x.shape[: x.ndim - core])
    return lead, x.reshape((math.prod(lead),) + tuple(x.shape[x.ndim - core:]))


def unet_denoiser(
    unet: Any,
    cond_embeddings: Any,
    *,
    uncond_embeddings: Any = None,
    guidance_scale: float = 7.5,
) -> EpsFn:
    """A JAX-callable noise predictor from a diffusers ``UNet2DConditionModel``, with
    classifier-free guidance.

    ``eps_fn(z_t, t)`` runs the UNet through :func:`~machlib.interop.torch_function` (a
    ``pure_callback``; differentiable through torch autograd via its ``custom_vjp``, although
    :func:`sds_loss` never asks for that). With ``uncond_embeddings`` it makes one UNet call on a
    batch of two, ``[unconditional, conditional]``, and returns
    ``ε̂ = ε_u + guidance_scale·(ε_c − ε_u)``; without, it returns ``ε_c`` (no guidance, and
    ``guidance_scale`` is not used). Under ``jax.vmap`` the batch goes to the UNet in one call.

    The UNet runs on its own device and dtype (inputs are cast to it, outputs cast back); put it
    in ``eval()`` mode. The embeddings are copied to the UNet's device once, here.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` (or a module with its call signature
            ``unet(sample, timestep, encoder_hidden_states=..., return_dict=False)[0]`` and a
            ``config`` with ``in_channels``), predicting ε.
        cond_embeddings: the prompt's text-encoder hidden states, shape ``(L, D)`` or
            ``(1, L, D)`` (e.g. ``77 × 768`` for SD 1.5); JAX/numpy array or torch tensor.
        uncond_embeddings: the same for the empty (or negative) prompt, ``None`` for no
            guidance. Its length may differ from the prompt's only if both are padded alike:
            shapes must be equal.
        guidance_scale: the classifier-free guidance weight (DreamFusion uses 100, the SD
            pipeline 7.5).

    Returns:
        ``eps_fn(z_t, t) -> ε̂``: ``z_t`` float ``(H, W, C)`` with ``C`` the UNet's input
        channels, ``t`` an integer scalar; returns ``ε̂`` of ``z_t``'s shape and dtype.

    Raises:
        InputError: embeddings of the wrong shape or width, or of different shapes.
        TorchMissingError: torch is not installed.

    Example:
        >>> import jax.numpy as jnp, torch
        >>> from diffusers import UNet2DConditionModel
        >>> from machlib.interop import unet_denoiser
        >>> _ = torch.manual_seed(0)
        >>> unet = UNet2DConditionModel(
        ...     sample_size=8, block_out_channels=(8, 16), norm_num_groups=8, layers_per_block=1,
        ...     down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        ...     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        ...     cross_attention_dim=16, attention_head_dim=4).eval()
        >>> eps_fn = unet_denoiser(unet, jnp.ones((5, 16)), uncond_embeddings=jnp.zeros((5, 16)))
        >>> eps = eps_fn(jnp.zeros((8, 8, 4)), 500)   # then: jax.grad(sds_loss)(z, key, t, eps_fn, ...)
        >>> eps.shape, bool(jnp.all(jnp.isfinite(eps)))
        ((8, 8, 4), True)
    """
    name = "unet_denoiser"
    torch = require_torch(name)
    if not callable(unet):
        raise InputError(f"{name}: unet must be a diffusers UNet2DConditionModel, got {type(unet).__name__}")
    config = getattr(unet, "config", {})
    get = config.get if isinstance(config, Mapping) else (lambda k, d=None: getattr(config, k, d))
    in_channels = get("in_channels", None)
    dim = get("cross_attention_dim", None)
    dim = dim if isinstance(dim, int) else None
    device, dtype = _device_dtype(unet, torch)
    cond = _embeddings(cond_embeddings, name, "cond_embeddings", torch, dim).to(device=device, dtype=dtype)
    uncond = None
    if uncond_embeddings is not None:
        uncond = _embeddings(uncond_embeddings, name, "uncond_embeddings", torch, dim).to(device=device, dtype=dtype)
        if uncond.shape != cond.shape:
            raise InputError(
                f"{name}: uncond_embeddings {tuple(uncond.shape)} and cond_embeddings {tuple(cond.shape)} must have the same shape"
            )
    scale = float(guidance_scale)

    def predict(z: Any, t: Any) -> Any:
        # under vmap ("expand_dims") z and t carry leading batch axes, size 1 where unbatched
        lead = tuple(torch.broadcast_shapes(tuple(z.shape[:-3]), tuple(t.shape)))
        z = z.expand(lead + tuple(z.shape[-3:]))
        _, x = _flatten_leading(z, 3)
        n = x.shape[0]
        x = x.permute(0, 3, 1, 2).to(dtype)
        tt = torch.broadcast_to(t, lead).reshape(n)
        if uncond is None:
            out = unet(x, tt, encoder_hidden_states=cond.expand(n, *cond.shape), return_dict=False)[0]
        else:
            emb = torch.cat([uncond.expand(n, *uncond.shape), cond.expand(n, *cond.shape)])
            out = unet(torch.cat([x, x]), torch.cat([tt, tt]), encoder_hidden_states=emb, return_dict=False)[0]
            e_u, e_c = out[:n], out[n:]
            out = e_u + scale * (e_c - e_u)
        return out.permute(0, 2, 3, 1).reshape(tuple(z.shape)).to(z.dtype)

    call = torch_function(
        predict,
        out_shape=lambda z, t: jax.ShapeDtypeStruct(z.shape, z.dtype),
        device=device,
        vmap_method="expand_dims",
    )

    def eps_fn(z_t: ArrayLike, t: ArrayLike) -> Array:
        z_t = jnp.asarray(z_t)
        t = jnp.asarray(t)
        if z_t.ndim != 3 or not jnp.issubdtype(z_t.dtype, jnp.floating):
            raise InputError(f"{name}: z_t must be float of shape (H, W, C) (vmap for a batch), got {z_t.dtype}{z_t.shape}")
        if isinstance(in_channels, int) and z_t.shape[-1] != in_channels:
            raise InputError(f"{name}: z_t has {z_t.shape[-1]} channels, the UNet takes {in_channels}")
        if t.ndim != 0 or not jnp.issubdtype(t.dtype, jnp.integer):
            raise InputError(f"{name}: t must be an integer scalar timestep, got {t.dtype}{t.shape}")
        return call(z_t, t.astype(jnp.int32))

    eps_fn.__doc__ = f"ε̂(z_t, t) of {type(unet).__name__} (guidance {'off' if uncond is None else scale})."
    return eps_fn


def _vae_config(vae: Any, name: str) -> tuple[Any, Any]:
    config = getattr(vae, "config", None)
    if config is None:
        raise InputError(f"{name}: vae must be a diffusers AutoencoderKL (with a config), got {type(vae).__name__}")
    get = config.get if isinstance(config, Mapping) else (lambda k, d=None: getattr(config, k, d))
    return config, get


def _range(value_range: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise InputError(f"{name}: value_range must be a pair (low, high), got {value_range!r}") from None
    if not hi > lo:
        raise InputError(f"{name}: value_range must have high > low, got {value_range!r}")
    return lo, hi


def _vae_setup(vae: Any, value_range: Any, scaling_factor: float | None, name: str) -> tuple:
    """What both VAE wrappers need: torch, the config getter, the value range, the latent factors
    (scale, shift, downsampling, channels) and the VAE's device and dtype."""
    torch = require_torch(name)
    _, get = _vae_config(vae, name)
    return (torch, get, _range(value_range, name), _factors(get, scaling_factor, name),
            _device_dtype(vae, torch))


def _factors(get: Callable, scaling_factor: float | None, name: str) -> tuple[float, float, int, int]:
    scale = get("scaling_factor", 0.18215) if scaling_factor is None else scaling_factor
    shift = get("shift_factor", None) or 0.0
    blocks = get("block_out_channels", None)
    if blocks is None:
        raise InputError(f"{name}: the VAE config has no block_out_channels (expected a diffusers AutoencoderKL)")
    return float(scale), float(shift), 2 ** (len(blocks) - 1), int(get("latent_channels", 4))


def vae_encoder(
    vae: Any,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    scaling_factor: float | None = None,
) -> Callable[[Array], Array]:
    """A JAX-callable, differentiable VAE encoder ``I ↦ z`` (Stable Diffusion's ``ℰ``), for
    image-space SDS (DreamFace eqs. 6 and 14).

    ``encode(image)`` maps the image linearly from ``value_range`` to ``[−1, 1]``, runs
    ``vae.encode`` and returns the latent distribution's *mean* (deterministic; no sampling),
    shifted and scaled to the diffusion model's latent space:
    ``(mean − shift_factor)·scaling_factor`` (SD: shift 0, scale 0.18215). Through
    :func:`~machlib.interop.torch_function` its gradient ``∂z/∂I`` comes from torch autograd, so
    ``jax.grad(lambda I: sds_loss(encode(I), ...))`` carries the SDS gradient back to a rendered
    image and on into the renderer. (The backward re-runs the encoder's forward.)

    Args:
        vae: a diffusers ``AutoencoderKL``.
        value_range: ``(low, high)`` of the image values: ``(0, 1)`` (machlib's images) or
            ``(-1, 1)`` (diffusers').
        scaling_factor: overrides ``vae.config.scaling_factor``.

    Returns:
        ``encode(image) -> latents``: ``image`` float ``(H, W, 3)`` channels-last (``H``, ``W``
        multiples of the VAE's downsampling factor ``f``, 8 for SD), ``latents``
        ``(H/f, W/f, latent_channels)`` in the image's dtype. Works under ``jit``, ``vmap`` (one
        batched VAE call) and ``grad``.

    Raises:
        InputError: not an AutoencoderKL, a bad ``value_range``, or (when called) an image of
            the wrong shape.
        TorchMissingError: torch is not installed.

    Example:
        >>> import jax.numpy as jnp, torch
        >>> from diffusers import AutoencoderKL
        >>> from machlib.interop import vae_encoder
        >>> _ = torch.manual_seed(0)
        >>> vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=8, layers_per_block=1,
        ...     down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2).eval()
        >>> vae_encoder(vae)(jnp.full((16, 16, 3), 0.5)).shape
        (8, 8, 4)
    """
    name = "vae_encoder"
    torch, get, (lo, hi), (scale, shift, f, c_lat), (device, dtype) = _vae_setup(vae, value_range, scaling_factor, name)
    c_in = int(get("in_channels", 3))

    def encode(img: Any) -> Any:
        lead, x = _flatten_leading(img, 3)
        x = x.permute(0, 3, 1, 2).to(dtype)
        x = (x - lo) * (2.0 / (hi - lo)) - 1.0
        mean = vae.encode(x).latent_dist.mean
        z = (mean - shift) * scale
        return z.permute(0, 2, 3, 1).reshape(lead + tuple(z.shape[2:]) + (z.shape[1],)).to(img.dtype)

    call = torch_function(
        encode,
        out_shape=lambda i: jax.ShapeDtypeStruct((i.shape[0] // f, i.shape[1] // f, c_lat), i.dtype),
        device=device,
        vmap_method="expand_dims",
    )

    def encoder(image: ArrayLike) -> Array:
        image = jnp.asarray(image)
        if image.ndim != 3 or image.shape[-1] != c_in or not jnp.issubdtype(image.dtype, jnp.floating):
            raise InputError(f"{name}: image must be float of shape (H, W, {c_in}), got {image.dtype}{image.shape}")
        if image.shape[0] % f or image.shape[1] % f:
            raise InputError(f"{name}: image size {image.shape[:2]} must be a multiple of the VAE's factor {f}")
        return call(image)

    encoder.__doc__ = f"VAE encoder: image (H, W, {c_in}) in {value_range} -> latents (H/{f}, W/{f}, {c_lat})."
    return encoder


def vae_decoder(
    vae: Any,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    scaling_factor: float | None = None,
) -> Callable[[Array], Array]:
    """A JAX-callable, differentiable VAE decoder ``z ↦ I`` (Stable Diffusion's ``𝒟``), the
    inverse companion of :func:`vae_encoder` (DreamFace §5.2.2 decodes the texture latent with it).

    ``decode(latents)`` undoes the scaling (``z/scaling_factor + shift_factor``), runs
    ``vae.decode`` and maps the result linearly from ``[−1, 1]`` to ``value_range``; values are
    not clipped (clipping would zero gradients).

    Args:
        vae: a diffusers ``AutoencoderKL``.
        value_range: ``(low, high)`` of the returned image values.
        scaling_factor: overrides ``vae.config.scaling_factor``.

    Returns:
        ``decode(latents) -> image``: ``latents`` float ``(h, w, latent_channels)``, ``image``
        ``(h·f, w·f, out_channels)``; works under ``jit``, ``vmap`` and ``grad``.

    Raises:
        InputError: not an AutoencoderKL, a bad ``value_range``, or (when called) latents of
            the wrong shape.
        TorchMissingError: torch is not installed.

    Example:
        >>> import jax.numpy as jnp, torch
        >>> from diffusers import AutoencoderKL
        >>> from machlib.interop import vae_decoder
        >>> _ = torch.manual_seed(0)
        >>> vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=8, layers_per_block=1,
        ...     down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2).eval()
        >>> vae_decoder(vae)(jnp.zeros((8, 8, 4))).shape
        (16, 16, 3)
    """
    name = "vae_decoder"
    torch, get, (lo, hi), (scale, shift, f, c_lat), (device, dtype) = _vae_setup(vae, value_range, scaling_factor, name)
    c_out = int(get("out_channels", 3))

    def decode(z: Any) -> Any:
        lead, x = _flatten_leading(z, 3)
        x = x.permute(0, 3, 1, 2).to(dtype) / scale + shift
        img = vae.decode(x, return_dict=False)[0]
        img = lo + (img + 1.0) * (0.5 * (hi - lo))
        return img.permute(0, 2, 3, 1).reshape(lead + tuple(img.shape[2:]) + (img.shape[1],)).to(z.dtype)

    call = torch_function(
        decode,
        out_shape=lambda z: jax.ShapeDtypeStruct((z.shape[0] * f, z.shape[1] * f, c_out), z.dtype),
        device=device,
        vmap_method="expand_dims",
    )

    def decoder(latents: ArrayLike) -> Array:
        latents = jnp.asarray(latents)
        if latents.ndim != 3 or latents.shape[-1] != c_lat or not jnp.issubdtype(latents.dtype, jnp.floating):
            raise InputError(f"{name}: latents must be float of shape (h, w, {c_lat}), got {latents.dtype}{latents.shape}")
        return call(latents)

    decoder.__doc__ = f"VAE decoder: latents (h, w, {c_lat}) -> image (h*{f}, w*{f}, {c_out}) in {value_range}."
    return decoder
