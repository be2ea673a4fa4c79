"""The learned texture delighter of Make-A-Character §2.4.2: a pix2pixHD generator mapping a lit
UV texture to its diffuse albedo, with its training loop and weight files.

Weight files are ``.safetensors`` holding the generator's state dict; the architecture
(:class:`~machlib.interop.Pix2PixHDConfig`) is stored as JSON in the header metadata under
``"machlib.pix2pixhd_config"`` (or, for files from elsewhere, in a sibling ``<name>.json``).
machlib ships no weights: train them with ``scripts/train_delighter.py`` (or
:func:`train_delighter` on your own albedos) and pass the file to :func:`load_delighter`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import torch
from jaxtyping import Float, Real
from torch.nn import functional as F

from .._errors import InputError, WeightsMissingError
from .._typing import AnyArray
from ._pix2pixhd import Pix2PixHDConfig, VGG19Features, build_discriminator, build_generator, pix2pixhd_step
from ._torch import load_metadata, load_state_dict, save_state_dict, to_jax, to_torch

__all__ = [
    "Delighter",
    "TrainResult",
    "new_delighter",
    "load_delighter",
    "save_delighter",
    "delight_learned",
    "train_delighter",
]

_CONFIG_KEY = "machlib.pix2pixhd_config"
_FORMAT_KEY = "machlib.format"
_FORMAT = "delighter/1"


@dataclasses.dataclass(frozen=True, eq=False)
class Delighter:
    """A pix2pixHD generator trained to delight textures, with its architecture.

    Attributes:
        generator: the ``torch.nn.Module`` (:class:`~machlib.interop.LocalEnhancer` or
            :class:`~machlib.interop.GlobalGenerator`), mapping ``(B, 3, H, W)`` lit textures in
            ``[-1, 1]`` to albedos in ``[-1, 1]``.
        config: its :class:`~machlib.interop.Pix2PixHDConfig`.
    """

    generator: Any
    config: Pix2PixHDConfig

    @property
    def device(self) -> torch.device:
        """The torch device of the generator's parameters."""
        return next(self.generator.parameters()).device


class TrainResult(NamedTuple):
    """What :func:`train_delighter` returns.

    Attributes:
        delighter: the trained :class:`Delighter` (generator in eval mode).
        losses: one dict per step (``G_GAN``, ``G_feat``, ``G_VGG``, ``G_L1``, ``G_total``,
            ``D_real``, ``D_fake``; see :func:`~machlib.interop.pix2pixhd_step`).
        discriminator: the trained multi-scale discriminator (to resume training).
    """

    delighter: Delighter
    losses: list
    discriminator: Any


def new_delighter(*, config: Pix2PixHDConfig | None = None, seed: int = 0, device: str = "cpu") -> Delighter:
    """A randomly initialised delighter (deterministic in ``seed``; torch's global RNG is left
    as it was).

    Args:
        config: architecture; default :class:`~machlib.interop.Pix2PixHDConfig` () (the paper's).
        seed: initialisation seed.
        device: torch device.

    Returns:
        The :class:`Delighter`, generator in eval mode.

    Example:
        >>> from machlib.interop import Pix2PixHDConfig, new_delighter
        >>> d = new_delighter(config=Pix2PixHDConfig.tiny(), seed=1)
        >>> d.config.size_multiple
        8
    """
    config = config or Pix2PixHDConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = build_generator(config)
    return Delighter(generator.to(device).eval(), config)


def save_delighter(path: str | os.PathLike, delighter: Delighter) -> Path:
    """Write a delighter as ``.safetensors`` with its config in the header, atomically.

    Args:
        path: destination ending in ``.safetensors``.
        delighter: the :class:`Delighter`.

    Returns:
        The written path.
    """
    metadata = {_FORMAT_KEY: _FORMAT, _CONFIG_KEY: delighter.config.to_json()}
    return save_state_dict(path, delighter.generator.state_dict(), metadata=metadata)


def _find_config(p: Path, metadata: dict) -> Pix2PixHDConfig:
    if _CONFIG_KEY in metadata:
        return Pix2PixHDConfig.from_json(metadata[_CONFIG_KEY])
    for sibling in (p.with_suffix(".json"), p.with_name(p.name + ".json")):
        if sibling.is_file():
            try:
                return Pix2PixHDConfig.from_json(sibling.read_text())
            except InputError as e:
                raise InputError(f"load_delighter: config {sibling}: {e}") from None
    raise InputError(
        f"load_delighter: {p} carries no pix2pixHD config (header metadata {_CONFIG_KEY!r}) and there is no "
        f"sibling {p.with_suffix('.json').name}; pass config=Pix2PixHDConfig(...) or write that JSON file"
    )


def load_delighter(
    path: str | os.PathLike, *, config: Pix2PixHDConfig | None = None, device: str = "cpu"
) -> Delighter:
    """Load a delighter from a weights file.

    Args:
        path: ``.safetensors`` (config in the metadata or a sibling JSON), or a ``.pt``/``.pth``/
            ``.bin`` state dict read with ``torch.load(weights_only=True)`` plus a sibling JSON or
            ``config``.
        config: the architecture, overriding whatever the file says.
        device: torch device.

    Returns:
        The :class:`Delighter`, generator in eval mode.

    Raises:
        WeightsMissingError: no file at ``path`` (the message says how to get one).
        InputError: an unreadable or unsafe file, no config, or weights that do not fit it.
    """
    p = Path(path)
    if not p.exists():
        raise WeightsMissingError(
            f"load_delighter: no delighter weights at {p}. machlib ships none: train them with "
            f"`python scripts/train_delighter.py --output {p}` or pass your own pix2pixHD delighter "
            "(.safetensors with its config)"
        )
    metadata = load_metadata(p)
    state = load_state_dict(p)
    config = config or _find_config(p, metadata)
    generator = build_generator(config)
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise InputError(
            f"load_delighter: the weights in {p} do not match the config {config.to_json()}: "
            f"{' '.join(line.strip() for line in first[:3])}"
        ) from None
    return Delighter(generator.to(device).eval(), config)


def _pad_mode(pad: tuple, h: int, w: int) -> str:
    left, right, top, bottom = pad
    return "reflect" if max(left, right) < w and max(top, bottom) < h else "replicate"


def delight_learned(
    texture: Real[AnyArray, "*batch H W 3"],
    delighter: Delighter,
    *,
    resolution: int | None = None,
) -> Float[AnyArray, "*batch H W 3"]:
    """Remove baked lighting from a UV texture with a trained :class:`Delighter`.

    The texture is mapped to ``[-1, 1]``, optionally resized to ``resolution²`` (e.g. the
    training resolution), padded by reflection to a multiple of the generator's
    :attr:`~machlib.interop.Pix2PixHDConfig.size_multiple`, run through the generator, cropped,
    resized back and mapped to ``[0, 1]``. Not differentiable and not for ``jit``; wrap
    ``delighter.generator`` with :func:`~machlib.interop.torch_function` for that.

    Args:
        texture: ``(H, W, 3)`` or ``(B, H, W, 3)`` sRGB texture, float in ``[0, 1]`` or uint8;
            numpy or JAX.
        delighter: the network.
        resolution: run at this square size (``None``: the input's own size).

    Returns:
        The albedo, same shape, float32 in ``[0, 1]``; a JAX array for a JAX input, numpy for
        numpy.

    Example:
        >>> import numpy as np
        >>> from machlib.interop import Pix2PixHDConfig, new_delighter, delight_learned
        >>> d = new_delighter(config=Pix2PixHDConfig.tiny())
        >>> delight_learned(np.full((20, 20, 3), 0.5, np.float32), d).shape
        (20, 20, 3)
    """
    is_jax = isinstance(texture, jax.Array)
    if texture.ndim not in (3, 4) or texture.shape[-1] != 3:
        raise ValueError(f"delight_learned: texture must have shape (H, W, 3) or (B, H, W, 3), got {texture.shape}")
    if texture.dtype == np.uint8:
        x = to_torch(np.asarray(texture)).float() / 255.0
    elif np.issubdtype(np.dtype(texture.dtype), np.floating):
        x = to_torch(texture).float()
    else:
        raise TypeError(f"delight_learned: texture must be float in [0, 1] or uint8, got dtype {texture.dtype}")
    if resolution is not None and (not isinstance(resolution, int) or resolution < delighter.config.size_multiple):
        raise ValueError(
            f"delight_learned: resolution must be an int >= {delighter.config.size_multiple}, got {resolution!r}"
        )
    single = x.ndim == 3
    x = (x[None] if single else x).permute(0, 3, 1, 2).to(delighter.device) * 2.0 - 1.0
    h, w = x.shape[-2:]
    if resolution is not None and (h, w) != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    hh, ww = x.shape[-2:]
    m = delighter.config.size_multiple
    pad_h, pad_w = (-hh) % m, (-ww) % m
    pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    if pad_h or pad_w:
        x = F.pad(x, pad, mode=_pad_mode(pad, hh, ww))
    delighter.generator.eval()
    with torch.no_grad():
        y = delighter.generator(x)
    y = y[..., pad[2] : pad[2] + hh, pad[0] : pad[0] + ww]
    if (hh, ww) != (h, w):
        y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    y = ((y.clamp(-1.0, 1.0) + 1.0) * 0.5).permute(0, 2, 3, 1).contiguous()
    y = y[0] if single else y
    return to_jax(y) if is_jax else y.cpu().numpy()


def _images(name: str, x: Any) -> torch.Tensor:
    """``(N, R, R, 3)`` float [0, 1] or uint8 (numpy/JAX/tensor) → ``(N, 3, R, R)`` float32 in [-1, 1]."""
    a = np.asarray(x)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"train_delighter: {name} must have shape (N, H, W, 3), got {a.shape}")
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous() * 2.0 - 1.0


def train_delighter(
    lit: Real[AnyArray, "N H W 3"],
    albedo: Real[AnyArray, "N H W 3"],
    *,
    steps: int,
    config: Pix2PixHDConfig | None = None,
    delighter: Delighter | None = None,
    discriminator: Any = None,
    batch_size: int = 4,
    lr: float = 2e-4,
    beta1: float = 0.5,
    lambda_feat: float = 10.0,
    lambda_vgg: float = 10.0,
    lambda_l1: float = 10.0,
    vgg: VGG19Features | None = None,
    seed: int = 0,
    device: str = "cpu",
    on_step: Callable[[int, dict], Any] | None = None,
) -> TrainResult:
    """Train a delighter on ``(lit, albedo)`` pairs: pix2pixHD with an extra L1 term.

    Adam (``lr``, ``β = (beta1, 0.999)``) on the generator and the multi-scale discriminator;
    generator loss ``GAN + λ_feat·FM (+ λ_vgg·VGG when vgg is given) + λ_L1·L1``
    (:func:`~machlib.interop.pix2pixhd_step`). Batches are drawn as shuffled epochs. With the
    same seed, data and device (and torch thread count), runs on the CPU repeat exactly; torch's
    global RNG is left as it was.

    Args:
        lit: ``(N, H, W, 3)`` textures with baked light (e.g. from
            :func:`machlib.texture.delighting_pairs`), float in ``[0, 1]`` or uint8; ``H`` and
            ``W`` multiples of the config's ``size_multiple``.
        albedo: ``(N, H, W, 3)`` the ground-truth albedos.
        steps: optimisation steps.
        config: architecture of a new network (default the paper's); ignored with ``delighter``.
        delighter: continue training this one instead.
        discriminator: continue with this discriminator (from a previous :class:`TrainResult`).
        batch_size: pairs per step (at most ``N``).
        lr: Adam learning rate (pix2pixHD: 2e-4).
        beta1: Adam ``β₁`` (pix2pixHD: 0.5).
        lambda_feat: feature-matching weight.
        lambda_vgg: VGG weight (used only with ``vgg``).
        lambda_l1: L1 weight.
        vgg: optional :class:`~machlib.interop.VGG19Features` from
            :func:`~machlib.interop.load_vgg19`.
        seed: initialisation and batching seed.
        device: torch device.
        on_step: called as ``on_step(step, losses)`` after each step (progress, logging).

    Returns:
        :class:`TrainResult` ``(delighter, losses, discriminator)``.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"train_delighter: steps must be a non-negative int, got {steps!r}")
    x_all, y_all = _images("lit", lit), _images("albedo", albedo)
    if x_all.shape != y_all.shape:
        raise ValueError(f"train_delighter: lit {tuple(x_all.shape)} and albedo {tuple(y_all.shape)} must match")
    n = x_all.shape[0]
    if not isinstance(batch_size, int) or not 1 <= batch_size <= n:
        raise ValueError(f"train_delighter: batch_size must be an int in [1, {n}], got {batch_size!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if delighter is None:
            delighter = Delighter(build_generator(config or Pix2PixHDConfig()).to(device), config or Pix2PixHDConfig())
        cfg = delighter.config
        m = cfg.size_multiple
        if x_all.shape[2] % m or x_all.shape[3] % m:
            raise ValueError(
                f"train_delighter: texture size {tuple(x_all.shape[2:])} must be a multiple of {m} for this config"
            )
        if discriminator is None:
            discriminator = build_discriminator(cfg)
    generator = delighter.generator.to(device)
    discriminator = discriminator.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(beta1, 0.999))
    batches = torch.Generator().manual_seed(seed + 1)
    order, cursor = torch.randperm(n, generator=batches), 0
    history = []
    for step in range(steps):
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=batches), 0
        idx = order[cursor : cursor + batch_size]
        cursor += batch_size
        losses = pix2pixhd_step(
            generator, discriminator, opt_g, opt_d, x_all[idx].to(device), y_all[idx].to(device),
            lambda_feat=lambda_feat, lambda_vgg=lambda_vgg, lambda_l1=lambda_l1, vgg=vgg,
        )
        history.append(losses)
        if on_step is not None:
            on_step(step, losses)
    generator.eval()
    return TrainResult(Delighter(generator, cfg), history, discriminator)

