"""A learned delighter in flax: a compact U-Net on the UV texture that predicts log-shading (§2.4.2).

Mach's delighting is a network trained on albedos with lights baked in. This one is trained by
``scripts/train_flax_delighter.py`` on data machlib generates itself
(:func:`~machlib.texture.delighting_batch`: the human base's UV layout, procedural albedos across
ITA bins with freckles, blemishes and make-up, SH environments times ambient occlusion plus a
directional light with cast shadows and a specular highlight, all baked from the template's
geometry). Inputs per texel, at the network's resolution ``r`` (128 shipped): the lit texture
where seen (sRGB, 3), the head-space normals (3), the seen weight (1) and the template's ambient
occlusion (1). Output: the log of the linear shading (3 channels), normalised to mean 1 per
channel over the seen texels (the light's overall colour and exposure stay in the albedo, as
with :func:`~machlib.texture.delight_sh`: they cannot be told from the skin's tone). The
full-resolution albedo divides the texture by the predicted shading upsampled bilinearly to the
texture's size (:func:`delight_flax`), so detail finer than ``r`` stays the texture's own.

flax is imported at first use, never by ``import machlib`` or ``import machlib.texture``.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from ..render import linear_to_srgb, srgb_to_linear

__all__ = [
    "BUNDLED_FLAX_DELIGHTER",
    "FlaxDelight",
    "FlaxDelighter",
    "FlaxDelighterConfig",
    "delight_flax",
    "flax_delighter_apply",
    "flax_delighter_inputs",
    "init_flax_delighter",
    "load_flax_delighter",
    "save_flax_delighter",
]

#: The weights shipped with the package (written by ``scripts/train_flax_delighter.py``).
BUNDLED_FLAX_DELIGHTER = Path(__file__).resolve().parent.parent / "data" / "flax_delighter.json"

_FORMAT = "machlib-flax-delighter/1"
_IN_CHANNELS = 8


@dataclasses.dataclass(frozen=True)
class FlaxDelighterConfig:
    """Architecture of the flax delighter (a U-Net).

    Attributes:
        features: channels per level, finest first; each level has two 3×3 convolutions
            (GELU), levels are joined by stride-2 convolutions down and resize + convolution up,
            with skip connections.
        resolution: the UV size ``r`` the network runs at (a multiple of
            ``2 ** (len(features) - 1)``).
    """

    features: tuple[int, ...] = (16, 32, 64, 64)
    resolution: int = 128

    def __post_init__(self):
        feats = tuple(self.features)
        if not feats or not all(isinstance(f, int) and f > 0 for f in feats):
            raise InputError(f"FlaxDelighterConfig: features must be positive ints, got {self.features!r}")
        step = 2 ** (len(feats) - 1)
        if not isinstance(self.resolution, int) or self.resolution < step or self.resolution % step:
            raise InputError(f"FlaxDelighterConfig: resolution must be a positive multiple of {step}, "
                             f"got {self.resolution!r}")
        object.__setattr__(self, "features", feats)

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict."""
        return {"features": list(self.features), "resolution": self.resolution}


class FlaxDelighter(NamedTuple):
    """A flax delighter ready to use: config, parameters and its ambient-occlusion input.

    Attributes:
        config: the :class:`FlaxDelighterConfig`.
        params: the flax parameter pytree (float32).
        ao: ``(r, r)`` ambient occlusion of the template in UV space, the network's fourth input
            (baked by :func:`~machlib.texture.delight_scene`, stored with the weights).
        meta: training facts (command, seed, steps, loss), as stored.
    """

    config: FlaxDelighterConfig
    params: dict
    ao: np.ndarray
    meta: dict


class FlaxDelight(NamedTuple):
    """Result of :func:`delight_flax`.

    Attributes:
        albedo: ``(R, R, 3)`` delit texture, sRGB in ``[0, 1]``.
        shading: ``(R, R, 3)`` predicted linear shading at the texture's size.
    """

    albedo: np.ndarray
    shading: np.ndarray


@functools.cache
def _unet():
    import flax.linen as nn

    class UNet(nn.Module):
        features: tuple

        @nn.compact
        def __call__(self, x):
            def block(h, f):
                h = nn.gelu(nn.Conv(f, (3, 3))(h))
                return nn.gelu(nn.Conv(f, (3, 3))(h))

            skips = []
            for i, f in enumerate(self.features):
                if i:
                    x = nn.gelu(nn.Conv(f, (3, 3), strides=(2, 2))(x))
                x = block(x, f)
                skips.append(x)
            for f, skip in zip(reversed(self.features[:-1]), reversed(skips[:-1])):
                x = jax.image.resize(x, skip.shape[:-1] + (x.shape[-1],), "linear")
                x = block(jnp.concatenate([nn.gelu(nn.Conv(f, (3, 3))(x)), skip], -1), f)
            return nn.Conv(3, (1, 1), kernel_init=nn.initializers.zeros)(x)

    return UNet


def init_flax_delighter(
    key: PRNGKeyArray, *, config: FlaxDelighterConfig | None = None, ao: Float[ArrayLike, "r r"] | None = None
) -> FlaxDelighter:
    """A randomly initialised delighter (the output layer starts at zero: shading 1).

    Args:
        key: PRNG key.
        config: the architecture (default :class:`FlaxDelighterConfig`).
        ao: ``(r, r)`` ambient occlusion input (default ones).

    Returns:
        A :class:`FlaxDelighter`.
    """
    config = config or FlaxDelighterConfig()
    r = config.resolution
    ao = np.ones((r, r), np.float32) if ao is None else np.asarray(ao, np.float32)
    if ao.shape != (r, r):
        raise InputError(f"init_flax_delighter: ao must have shape ({r}, {r}), got {ao.shape}")
    params = _unet()(config.features).init(key, jnp.zeros((1, r, r, _IN_CHANNELS), jnp.float32))["params"]
    return FlaxDelighter(config, jax.device_get(params), ao, {})


def flax_delighter_inputs(
    lit: Float[ArrayLike, "r r 3"],
    normals: Float[ArrayLike, "r r 3"],
    seen: Float[ArrayLike, "r r"],
    ao: Float[ArrayLike, "r r"],
) -> Float[Array, "r r 8"]:
    """Stack the network's input channels: ``lit · seen`` (3), normals (3), seen (1), AO (1).

    Args:
        lit: ``(r, r, 3)`` sRGB texture.
        normals: ``(r, r, 3)`` unit head-space normals.
        seen: ``(r, r)`` observation weight in ``[0, 1]`` (0: never seen).
        ao: ``(r, r)`` ambient occlusion.

    Returns:
        ``(r, r, 8)`` network input.
    """
    lit, normals, seen, ao = (jnp.asarray(a) for a in (lit, normals, seen, ao))
    s = seen[..., None]
    return jnp.concatenate([lit * s, normals, s, ao[..., None]], -1)


def flax_delighter_apply(
    params,
    lit: Float[ArrayLike, "r r 3"],
    normals: Float[ArrayLike, "r r 3"],
    seen: Float[ArrayLike, "r r"],
    ao: Float[ArrayLike, "r r"],
    *,
    config: FlaxDelighterConfig,
) -> Float[Array, "r r 3"]:
    """The network: log of the linear shading per texel, at the network's resolution. Pure.

    Unbatched (``jax.vmap`` over the array arguments batches it); ``jit``-safe with ``config``
    static; differentiable in the parameters and the inputs. The dtype follows the inputs and
    parameters (float64 works with ``jax_enable_x64``).

    Args:
        params: the parameter pytree (:attr:`FlaxDelighter.params`).
        lit: ``(r, r, 3)`` sRGB texture (as extracted, lit).
        normals: ``(r, r, 3)`` head-space unit normals.
        seen: ``(r, r)`` observation weights.
        ao: ``(r, r)`` ambient occlusion (:attr:`FlaxDelighter.ao`).
        config: the :class:`FlaxDelighterConfig` the parameters belong to.

    Returns:
        ``(r, r, 3)`` log-shading, normalised so that the shading's mean over the seen texels
        (weighted by ``seen``) is 1 per channel, as in :func:`~machlib.texture.delight_sh`;
        ``linear albedo = linear(lit) / exp(log-shading)``.
    """
    x = flax_delighter_inputs(lit, normals, seen, ao)
    r = config.resolution
    if x.shape != (r, r, _IN_CHANNELS):
        raise InputError(f"flax_delighter_apply: inputs must be ({r}, {r}) texels, got lit {jnp.shape(lit)}, "
                         f"normals {jnp.shape(normals)}, seen {jnp.shape(seen)}, ao {jnp.shape(ao)}")
    log_s = _unet()(config.features).apply({"params": params}, x[None])[0]
    # the light's overall colour and exposure cannot be told from the albedo's (a dark skin in
    # bright light looks like a light skin in dim light): as delight_sh does, the shading is
    # normalised to mean 1 per channel over the seen texels, and the skin keeps the photo's tone
    w = x[..., 6:7]
    wsum = jnp.maximum(jnp.sum(w), 1e-6)
    peak = jax.lax.stop_gradient(jnp.max(log_s, axis=(0, 1)))  # a stable log-mean-exp
    mean = jnp.sum(jnp.exp(log_s - peak) * w, axis=(0, 1)) / wsum
    return log_s - peak - jnp.log(jnp.maximum(mean, 1e-12))


def _resize(a, size):
    a = jnp.asarray(a, jnp.float32)
    return jax.image.resize(a, (size, size) + a.shape[2:], "linear", antialias=True)


@functools.partial(jax.jit, static_argnames=("config", "floor"))
def _delight_jit(params, ao, texture, normals, seen, *, config, floor):
    r, R = config.resolution, texture.shape[0]
    lit = _resize(texture, r)
    n = _resize(normals, r)
    n = n / jnp.maximum(jnp.linalg.norm(n, axis=-1, keepdims=True), 1e-6)
    log_s = flax_delighter_apply(params, lit, n, _resize(seen, r), ao, config=config)
    shading = jnp.exp(jax.image.resize(log_s, (R, R, 3), "linear"))
    k = 0.05  # the same soft floor as delight_sh
    soft = 0.5 * (shading + floor + jnp.sqrt((shading - floor) ** 2 + k * k))
    return linear_to_srgb(srgb_to_linear(texture) / soft), shading


def delight_flax(
    texture: Float[ArrayLike, "R R 3"],
    normals: Float[ArrayLike, "R R 3"],
    seen: Float[ArrayLike, "R R"],
    *,
    model: FlaxDelighter | None = None,
    floor: float = 0.2,
) -> FlaxDelight:
    """Delight an extracted texture with the flax network (jit-compiled, CPU is fine).

    The texture, normals and seen weights are resized to the network's resolution, the
    predicted log-shading is upsampled bilinearly to ``R`` and divided out in linear RGB.

    Args:
        texture: ``(R, R, 3)`` sRGB texture in the human base's UV layout.
        normals: ``(R, R, 3)`` head-space normals (:func:`~machlib.texture.normal_map`).
        seen: ``(R, R)`` observation weights (0 where the photo never saw the texel).
        model: a :class:`FlaxDelighter` (default: the bundled weights, :func:`load_flax_delighter`).
        floor: smallest shading divided by (soft), as in :func:`~machlib.texture.delight_sh`.

    Returns:
        A :class:`FlaxDelight`.
    """
    tex = jnp.asarray(texture, jnp.float32)
    nrm = jnp.asarray(normals, jnp.float32)
    w = jnp.asarray(seen, jnp.float32)
    if tex.ndim != 3 or tex.shape[-1] != 3 or tex.shape[0] != tex.shape[1] or nrm.shape != tex.shape \
            or w.shape != tex.shape[:2]:
        raise InputError(f"delight_flax: need texture (R, R, 3), normals of the same shape and seen (R, R); got "
                         f"{tex.shape}, {nrm.shape}, {w.shape}")
    model = model if model is not None else load_flax_delighter()
    albedo, shading = _delight_jit(model.params, jnp.asarray(model.ao), tex, nrm, w, config=model.config,
                                   floor=float(floor))
    return FlaxDelight(np.asarray(albedo, np.float32), np.asarray(shading, np.float32))


def save_flax_delighter(path: str | os.PathLike, model: FlaxDelighter) -> Path:
    """Write a delighter as one JSON file: config, meta, AO and the flax-serialised (msgpack)
    parameters, both stored as float16 and base64-encoded (a 435k-parameter model is 1.2 MB).

    Args:
        path: output ``.json`` path.
        model: the :class:`FlaxDelighter`.

    Returns:
        The path written.
    """
    from flax import serialization

    # float16 halves the file (the package ships it); inference runs in float32 after loading
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float16), model.params)
    doc = {
        "format": _FORMAT,
        "config": model.config.to_dict(),
        "meta": dict(model.meta),
        "ao_float16": base64.b64encode(np.asarray(model.ao, np.float16).tobytes()).decode("ascii"),
        "params_msgpack": base64.b64encode(serialization.msgpack_serialize(params)).decode("ascii"),
    }
    path = Path(path)
    path.write_text(json.dumps(doc, indent=1))
    return path


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, stamp: tuple[int, int]) -> FlaxDelighter:
    # stamp: (st_mtime_ns, st_size): a file rewritten in place is read again
    from flax import serialization

    where = f"load_flax_delighter: {path}"
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{where}: not a readable delighter JSON file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise InputError(f"{where}: not a flax delighter file (format must be {_FORMAT!r}; write it with "
                         "scripts/train_flax_delighter.py)")
    try:
        cfg = doc["config"]
        config = FlaxDelighterConfig(features=tuple(int(f) for f in cfg["features"]), resolution=int(cfg["resolution"]))
        r = config.resolution
        ao = np.frombuffer(base64.b64decode(doc["ao_float16"], validate=True), np.float16).astype(np.float32)
        ao = ao.reshape(r, r)
        loaded = serialization.msgpack_restore(base64.b64decode(doc["params_msgpack"], validate=True))
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001  (any corruption: missing key, bad base64/msgpack, wrong size)
        raise InputError(f"{where}: corrupt delighter file ({type(e).__name__}: {e})") from None
    r = config.resolution
    shapes = jax.eval_shape(lambda: _unet()(config.features).init(
        jax.random.key(0), jnp.zeros((1, r, r, _IN_CHANNELS), jnp.float32))["params"])  # no compute
    want = jax.tree_util.tree_map(lambda a: tuple(a.shape), shapes)
    try:
        got = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), loaded)
    except Exception:  # noqa: BLE001
        got = None
    if got != want:
        raise InputError(f"{where}: parameters do not match the config {config.to_dict()}")
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), loaded)
    if not all(np.isfinite(a).all() for a in jax.tree_util.tree_leaves(params)) or not np.isfinite(ao).all():
        raise InputError(f"{where}: parameters are not finite")
    for a in (*jax.tree_util.tree_leaves(params), ao):
        a.flags.writeable = False  # shared by every caller of the cache: read-only, not changeable
    return FlaxDelighter(config, params, ao, dict(doc.get("meta") or {}))


def load_flax_delighter(*, path: str | os.PathLike | None = None) -> FlaxDelighter:
    """Read a delighter written by :func:`save_flax_delighter` (default: the bundled weights).

    Args:
        path: a ``.json`` weights file, or ``None`` for :data:`BUNDLED_FLAX_DELIGHTER`.

    Returns:
        A :class:`FlaxDelighter` (cached per path and modification time; its arrays are
        read-only, copy them to change them).

    Raises:
        InputError: the file is missing, not a delighter file, corrupt, or its parameters do not
            match its config.
    """
    p = Path(BUNDLED_FLAX_DELIGHTER if path is None else path)
    if not p.is_file():
        hint = " (run scripts/train_flax_delighter.py to build it)" if path is None else ""
        raise InputError(f"load_flax_delighter: no such file {p}{hint}")
    st = p.stat()
    model = _load_cached(str(p.resolve()), (st.st_mtime_ns, st.st_size))
    return model._replace(meta=dict(model.meta))  # arrays read-only and shared; the dict a copy
