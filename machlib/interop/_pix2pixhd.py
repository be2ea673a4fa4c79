"""pix2pixHD (Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with
Conditional GANs", CVPR 2018) in torch: the coarse-to-fine generator, the multi-scale
discriminator and their losses. Make-A-Character §2.4.2 uses it to delight textures.

Images are ``(B, C, H, W)`` float tensors in ``[-1, 1]``. Architecture (``c7s1-k`` = 7×7 conv
stride 1 with ``k`` filters, instance norm and ReLU; ``dk`` = 3×3 stride-2 conv; ``Rk`` = residual
block of two 3×3 convs; ``uk`` = 3×3 stride-½ transposed conv; reflection padding throughout):

* :class:`GlobalGenerator` G1: ``c7s1-ngf, d(2·ngf) … d(2^n·ngf), R × n_blocks, u … u, c7s1-out,
  tanh``.
* :class:`LocalEnhancer` G = {G1, G2, …}: G1 (with ``ngf · 2^N`` filters, no output layer) runs
  on the input downsampled ``2^N`` times; each local branch ``n`` downsamples the input at its
  own scale (``c7s1, d``), *adds* the coarser branch's features, and upsamples
  (``R × n_blocks_local, u``); the last branch ends in ``c7s1-out, tanh``. Inputs must be a
  multiple of :attr:`Pix2PixHDConfig.size_multiple` in both sides.
* :class:`NLayerDiscriminator`: a PatchGAN of 4×4 convs with leaky ReLU (0.2), returning every
  layer's activations (for feature matching); :class:`MultiscaleDiscriminator` runs ``num_D``
  of them on the image average-pooled 1, 2, 4… times.
* Losses: least-squares GAN (:func:`lsgan_loss`), discriminator feature matching
  (:func:`feature_matching_loss`), and a VGG19 perceptual loss (:func:`vgg_loss`) that needs
  user-supplied VGG19 weights (:func:`load_vgg19`): machlib ships none.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
import torch
from jaxtyping import Float
from torch import nn
from torch.nn import functional as F

from .._errors import InputError
from ._torch import load_state_dict

__all__ = [
    "Pix2PixHDConfig",
    "ResnetBlock",
    "GlobalGenerator",
    "LocalEnhancer",
    "NLayerDiscriminator",
    "MultiscaleDiscriminator",
    "VGG19Features",
    "build_generator",
    "build_discriminator",
    "load_vgg19",
    "lsgan_loss",
    "feature_matching_loss",
    "vgg_loss",
    "pix2pixhd_step",
]

Image = Float[torch.Tensor, "B C H W"]
ImageIn = Float[torch.Tensor, "B Cin H W"]
ImageOut = Float[torch.Tensor, "B Cout H W"]
Features = Float[torch.Tensor, "B _ _ _"]


@dataclasses.dataclass(frozen=True)
class Pix2PixHDConfig:
    """Architecture of a pix2pixHD generator/discriminator pair (JSON-serialisable).

    The defaults are the paper's 1024² setting (a global generator with 64 filters, 4
    downsamplings and 9 residual blocks inside one local enhancer with 32 filters and 3 blocks;
    two 3-layer discriminators with 64 filters). :meth:`tiny` gives a network small enough to
    train in tests on a CPU.

    Attributes:
        input_nc: input channels (3: the lit texture).
        output_nc: output channels (3: the albedo).
        ngf: filters of the finest generator branch (the global generator has
            ``ngf · 2^n_local_enhancers``).
        n_downsample_global: stride-2 convolutions in the global generator.
        n_blocks_global: residual blocks in the global generator.
        n_local_enhancers: local enhancer branches (0: the global generator alone).
        n_blocks_local: residual blocks per local branch.
        ndf: filters of each discriminator's first layer.
        n_layers_D: stride-2 layers per discriminator.
        num_D: discriminators (scales).
    """

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 32
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    ndf: int = 64
    n_layers_D: int = 3
    num_D: int = 2

    def __post_init__(self):
        minimum = {"n_downsample_global": 0, "n_blocks_global": 0, "n_local_enhancers": 0, "n_blocks_local": 0}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"Pix2PixHDConfig: {f.name} must be an int, got {type(v).__name__}")
            if v < minimum.get(f.name, 1):
                raise ValueError(f"Pix2PixHDConfig: {f.name} must be >= {minimum.get(f.name, 1)}, got {v}")

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (``2^(n_downsample_global +
        n_local_enhancers)``)."""
        return 2 ** (self.n_downsample_global + self.n_local_enhancers)

    @classmethod
    def tiny(cls) -> Pix2PixHDConfig:
        """A ~34k-parameter network for tests and smoke runs (size multiple 8).

        Example:
            >>> from machlib.interop import Pix2PixHDConfig
            >>> Pix2PixHDConfig.tiny().size_multiple
            8
        """
        return cls(ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=1, n_blocks_local=1,
                   ndf=4, n_layers_D=2, num_D=2)

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The fields as a JSON object string (what :meth:`from_json` reads).

        Example:
            >>> from machlib.interop import Pix2PixHDConfig
            >>> c = Pix2PixHDConfig.tiny()
            >>> Pix2PixHDConfig.from_json(c.to_json()) == c
            True
        """
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Pix2PixHDConfig:
        """Build from a dict; unknown keys raise :class:`~machlib.InputError`."""
        if not isinstance(data, dict):
            raise InputError(f"Pix2PixHDConfig.from_dict: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"Pix2PixHDConfig.from_dict: unknown fields {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise InputError(str(e)) from None

    @classmethod
    def from_json(cls, text: str) -> Pix2PixHDConfig:
        """Build from a JSON object string; malformed JSON raises :class:`~machlib.InputError`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"Pix2PixHDConfig.from_json: not valid JSON ({e})") from None
        return cls.from_dict(data)


# ------------------------------------------------------------------------------------------------
# generator


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False)


def _c7s1(cin: int, cout: int) -> list:
    return [nn.ReflectionPad2d(3), nn.Conv2d(cin, cout, 7), _norm(cout), nn.ReLU()]


def _down(cin: int, cout: int) -> list:
    return [nn.Conv2d(cin, cout, 3, stride=2, padding=1), _norm(cout), nn.ReLU()]


def _up(cin: int, cout: int) -> list:
    return [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1), _norm(cout), nn.ReLU()]


def _to_image(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, cout, 7), nn.Tanh())


class ResnetBlock(nn.Module):
    """``x + (pad, conv3, norm, relu, pad, conv3, norm)(x)`` with reflection padding.

    Args:
        dim: channels in and out.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim),
        )

    def forward(self, x: Image) -> Image:
        """``(B, dim, H, W)`` → same shape."""
        return x + self.body(x)


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator G1 (module docstring).

    Args:
        input_nc: input channels.
        output_nc: output channels.
        ngf: filters of the first layer (doubling at each downsampling).
        n_downsample: stride-2 convolutions (the input must be a multiple of ``2^n_downsample``).
        n_blocks: residual blocks at the bottleneck.
        final: end with the ``c7s1-output_nc, tanh`` layer; without it the output is the
            ``ngf``-channel feature map a :class:`LocalEnhancer` adds to its branch.

    Example:
        >>> import torch
        >>> from machlib.interop import GlobalGenerator
        >>> g = GlobalGenerator(3, 3, ngf=4, n_downsample=2, n_blocks=1)
        >>> tuple(g(torch.zeros(1, 3, 16, 16)).shape)
        (1, 3, 16, 16)
    """

    def __init__(self, input_nc: int, output_nc: int, *, ngf: int = 64, n_downsample: int = 3,
                 n_blocks: int = 9, final: bool = True):
        super().__init__()
        layers = _c7s1(input_nc, ngf)
        for i in range(n_downsample):
            layers += _down(ngf * 2**i, ngf * 2 ** (i + 1))
        layers += [ResnetBlock(ngf * 2**n_downsample) for _ in range(n_blocks)]
        for i in range(n_downsample, 0, -1):
            layers += _up(ngf * 2**i, ngf * 2 ** (i - 1))
        self.features = nn.Sequential(*layers)
        self.output = _to_image(ngf, output_nc) if final else None

    def forward(self, x: ImageIn) -> ImageOut:
        """``(B, input_nc, H, W)`` → ``(B, output_nc, H, W)`` in ``[-1, 1]`` (or ``ngf``
        feature channels when built with ``final=False``)."""
        y = self.features(x)
        return y if self.output is None else self.output(y)


def _pool(x: Features) -> Features:
    """The 3×3 stride-2 average pool pix2pixHD uses between scales (padding not counted)."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class LocalEnhancer(nn.Module):
    """pix2pixHD's coarse-to-fine generator (module docstring).

    Args:
        input_nc: input channels.
        output_nc: output channels.
        ngf: filters of the finest branch.
        n_downsample_global: downsamplings inside the global generator.
        n_blocks_global: residual blocks of the global generator.
        n_local_enhancers: local branches ``N`` (each doubles the resolution the global
            generator sees relative to the input, i.e. it runs at ``1/2^N``).
        n_blocks_local: residual blocks per branch.

    Example:
        >>> import torch
        >>> from machlib.interop import LocalEnhancer
        >>> g = LocalEnhancer(3, 3, ngf=4, n_downsample_global=2, n_blocks_global=1)
        >>> tuple(g(torch.zeros(1, 3, 16, 16)).shape)
        (1, 3, 16, 16)
    """

    def __init__(self, input_nc: int, output_nc: int, *, ngf: int = 32, n_downsample_global: int = 3,
                 n_blocks_global: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3):
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError(f"LocalEnhancer: n_local_enhancers must be >= 1, got {n_local_enhancers}")
        n = n_local_enhancers
        self.n_local_enhancers = n
        self.global_generator = GlobalGenerator(
            input_nc, output_nc, ngf=ngf * 2**n, n_downsample=n_downsample_global, n_blocks=n_blocks_global,
            final=False,
        )
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(1, n + 1):
            width = ngf * 2 ** (n - i)
            self.down.append(nn.Sequential(*_c7s1(input_nc, width), *_down(width, 2 * width)))
            self.up.append(nn.Sequential(*[ResnetBlock(2 * width) for _ in range(n_blocks_local)], *_up(2 * width, width)))
        self.output = _to_image(ngf, output_nc)

    def forward(self, x: ImageIn) -> ImageOut:
        """``(B, input_nc, H, W)`` → ``(B, output_nc, H, W)`` in ``[-1, 1]``; ``H`` and ``W``
        multiples of ``2^(n_downsample_global + n_local_enhancers)``."""
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(_pool(pyramid[-1]))
        y = self.global_generator(pyramid[-1])
        for i, (down, up) in enumerate(zip(self.down, self.up)):
            y = up(down(pyramid[self.n_local_enhancers - 1 - i]) + y)
        return self.output(y)


def build_generator(config: Pix2PixHDConfig) -> nn.Module:
    """The generator a config describes (randomly initialised by torch's default init).

    Args:
        config: the architecture.

    Returns:
        A :class:`LocalEnhancer`, or a :class:`GlobalGenerator` when ``n_local_enhancers == 0``.
    """
    if config.n_local_enhancers == 0:
        return GlobalGenerator(config.input_nc, config.output_nc, ngf=config.ngf,
                               n_downsample=config.n_downsample_global, n_blocks=config.n_blocks_global)
    return LocalEnhancer(
        config.input_nc, config.output_nc, ngf=config.ngf, n_downsample_global=config.n_downsample_global,
        n_blocks_global=config.n_blocks_global, n_local_enhancers=config.n_local_enhancers,
        n_blocks_local=config.n_blocks_local,
    )


# ------------------------------------------------------------------------------------------------
# discriminator


class NLayerDiscriminator(nn.Module):
    """A PatchGAN discriminator that returns the activations of every layer.

    ``C64 – C128 – … – C512(stride 1) – conv to 1 channel``, 4×4 kernels with padding 2, instance
    norm from the second layer on, leaky ReLU (slope 0.2). Filters double per layer up to 512.

    Args:
        input_nc: input channels (condition and image concatenated).
        ndf: filters of the first layer.
        n_layers: stride-2 layers.

    Example:
        >>> import torch
        >>> from machlib.interop import NLayerDiscriminator
        >>> feats = NLayerDiscriminator(6, ndf=4, n_layers=2)(torch.zeros(1, 6, 32, 32))
        >>> len(feats), tuple(feats[-1].shape)
        (4, (1, 1, 11, 11))
    """

    def __init__(self, input_nc: int, *, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        stages = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2))]
        nf = ndf
        for i in range(1, n_layers + 1):
            prev, nf = nf, min(nf * 2, 512)
            stride = 2 if i < n_layers else 1
            stages.append(nn.Sequential(nn.Conv2d(prev, nf, 4, stride=stride, padding=2), _norm(nf), nn.LeakyReLU(0.2)))
        stages.append(nn.Sequential(nn.Conv2d(nf, 1, 4, stride=1, padding=2)))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Image) -> list:
        """``(B, input_nc, H, W)`` → list of ``n_layers + 2`` activations; the last is the
        ``(B, 1, h, w)`` patch realism map."""
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` :class:`NLayerDiscriminator` s at scales 1, ½, ¼, … (3×3 average pooling).

    Args:
        input_nc: input channels.
        ndf: filters of each discriminator's first layer.
        n_layers: stride-2 layers per discriminator.
        num_D: number of scales.
    """

    def __init__(self, input_nc: int, *, ndf: int = 64, n_layers: int = 3, num_D: int = 2):
        super().__init__()
        self.discriminators = nn.ModuleList(NLayerDiscriminator(input_nc, ndf=ndf, n_layers=n_layers) for _ in range(num_D))

    def forward(self, x: Image) -> list:
        """``(B, input_nc, H, W)`` → per scale (finest first) the list of activations."""
        out = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = _pool(x)
            out.append(d(x))
        return out


def build_discriminator(config: Pix2PixHDConfig) -> MultiscaleDiscriminator:
    """The conditional multi-scale discriminator of a config (input: condition ⊕ image).

    Args:
        config: the architecture; the discriminator sees ``input_nc + output_nc`` channels.

    Returns:
        A randomly initialised :class:`MultiscaleDiscriminator`.
    """
    return MultiscaleDiscriminator(config.input_nc + config.output_nc, ndf=config.ndf,
                                   n_layers=config.n_layers_D, num_D=config.num_D)


# ------------------------------------------------------------------------------------------------
# losses


def lsgan_loss(predictions: Sequence, *, real: bool) -> torch.Tensor:
    """Least-squares GAN loss summed over scales: ``Σ_s mean((D_s − t)²)``, ``t = 1`` for real.

    Args:
        predictions: :class:`MultiscaleDiscriminator` output (per scale a list of activations
            whose last entry is the realism map), or a list of realism maps.
        real: the target label.

    Returns:
        Scalar tensor.
    """
    total = 0.0
    for p in predictions:
        p = p[-1] if isinstance(p, (list, tuple)) else p
        total = total + F.mse_loss(p, torch.full_like(p, 1.0 if real else 0.0))
    return total


def feature_matching_loss(fake: Sequence, real: Sequence) -> torch.Tensor:
    """pix2pixHD's discriminator feature-matching loss (without ``λ_FM``).

    ``Σ_s Σ_l (1/num_D) · (4/L) · mean|D_s^l(fake) − D_s^l(real)|`` over the ``L`` intermediate
    activations of each scale (the realism map excluded); ``real`` is detached.

    Args:
        fake: :class:`MultiscaleDiscriminator` output on generated images.
        real: its output on real images.

    Returns:
        Scalar tensor.
    """
    if len(fake) != len(real):
        raise ValueError(f"feature_matching_loss: {len(fake)} fake scales vs {len(real)} real ones")
    total = 0.0
    for f_scale, r_scale in zip(fake, real):
        n = len(f_scale) - 1
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            total = total + (4.0 / n) / len(fake) * F.l1_loss(f, r.detach())
    return total


_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
_VGG_TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in `features`
_VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """The convolutional layers of VGG19 up to ``relu5_1``, frozen, for the perceptual loss.

    Layer indices match the common ``features.<i>`` layout of VGG19 state dicts (convs at 0, 2,
    5, 7, 10, …, 28), so such a file converted to ``.safetensors`` loads with :func:`load_vgg19`.
    The input is in ``[-1, 1]`` and is normalised with the ImageNet mean and deviation here.
    """

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in _VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Image) -> list:
        """``(B, 3, H, W)`` in ``[-1, 1]`` → the five ``relu*_1`` activations."""
        x = ((x + 1.0) * 0.5 - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG_TAPS:
                taps.append(x)
        return taps


def load_vgg19(path: str | os.PathLike, *, device: str = "cpu") -> VGG19Features:
    """VGG19 feature layers with user-supplied ImageNet weights (machlib ships none).

    Args:
        path: weights file (see :func:`~machlib.interop.load_state_dict`) with keys
            ``features.<i>.weight``/``.bias`` (or ``<i>.weight``); other keys (the classifier,
            deeper layers) are ignored.
        device: torch device.

    Returns:
        The frozen :class:`VGG19Features` in eval mode.

    Raises:
        WeightsMissingError: no file at ``path``.
        InputError: an unreadable file, or missing or mis-shaped layers.
    """
    state = load_state_dict(path)
    vgg = VGG19Features()
    wanted = vgg.features.state_dict()
    picked = {}
    for key, ref in wanted.items():
        for candidate in (f"features.{key}", key, f"vgg.features.{key}"):
            if candidate in state:
                if tuple(state[candidate].shape) != tuple(ref.shape):
                    raise InputError(
                        f"load_vgg19: {path}: {candidate} has shape {tuple(state[candidate].shape)}, "
                        f"VGG19 needs {tuple(ref.shape)}"
                    )
                picked[key] = state[candidate]
                break
        else:
            raise InputError(f"load_vgg19: {path} has no VGG19 layer 'features.{key}'")
    vgg.features.load_state_dict(picked)
    return vgg.to(device)


def vgg_loss(vgg: VGG19Features, fake: Image, real: Image) -> torch.Tensor:
    """pix2pixHD's VGG loss: ``Σ_i w_i · mean|φ_i(fake) − φ_i(real)|`` with ``w = 1/32, 1/16,
    1/8, 1/4, 1`` over ``relu1_1 … relu5_1``; ``real`` is detached.

    Args:
        vgg: :class:`VGG19Features` (from :func:`load_vgg19`).
        fake: ``(B, 3, H, W)`` in ``[-1, 1]``.
        real: same shape.

    Returns:
        Scalar tensor.
    """
    total = 0.0
    for w, f, r in zip(_VGG_WEIGHTS, vgg(fake), vgg(real)):
        total = total + w * F.l1_loss(f, r.detach())
    return total


def pix2pixhd_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer_g: torch.optim.Optimizer,
    optimizer_d: torch.optim.Optimizer,
    condition: Float[torch.Tensor, "B1 C1 H1 W1"],
    target: Float[torch.Tensor, "B2 C2 H2 W2"],
    *,
    lambda_feat: float = 10.0,
    lambda_vgg: float = 10.0,
    lambda_l1: float = 0.0,
    vgg: VGG19Features | None = None,
) -> dict:
    """One pix2pixHD training step: update the generator, then the discriminator.

    Generator loss ``L_G = GAN(D(c, G(c)) → real) + λ_feat · FM + λ_vgg · VGG + λ_L1 · |G(c) − y|``
    (VGG only when ``vgg`` is given); discriminator loss
    ``L_D = ½ (GAN(D(c, y) → real) + GAN(D(c, G(c)) → fake))``. The discriminator sees the
    condition and the image concatenated along channels.

    Args:
        generator: maps ``condition`` to an image of ``target``'s shape.
        discriminator: a :class:`MultiscaleDiscriminator` over ``C_cond + C_target`` channels.
        optimizer_g: optimiser of the generator's parameters.
        optimizer_d: optimiser of the discriminator's parameters.
        condition: ``(B, C_cond, H, W)`` in ``[-1, 1]`` (the lit texture).
        target: ``(B, C_target, H, W)`` in ``[-1, 1]`` (the albedo).
        lambda_feat: feature-matching weight (pix2pixHD: 10).
        lambda_vgg: VGG weight (pix2pixHD: 10).
        lambda_l1: weight of a direct L1 term.
        vgg: optional :class:`VGG19Features`.

    Returns:
        Floats: ``G_GAN``, ``G_feat``, ``G_VGG``, ``G_L1`` (unweighted mean absolute error),
        ``G_total``, ``D_real``, ``D_fake``.
    """
    if condition.shape[0] != target.shape[0] or condition.shape[2:] != target.shape[2:]:
        raise ValueError(
            f"pix2pixhd_step: condition {tuple(condition.shape)} and target {tuple(target.shape)} must share "
            "batch and spatial sizes"
        )
    generator.train()
    discriminator.train()
    fake = generator(condition)
    pred_real = discriminator(torch.cat([condition, target], 1))
    pred_fake_g = discriminator(torch.cat([condition, fake], 1))
    g_gan = lsgan_loss(pred_fake_g, real=True)
    g_feat = feature_matching_loss(pred_fake_g, pred_real)
    g_l1 = F.l1_loss(fake, target)
    g_vgg = vgg_loss(vgg, fake, target) if vgg is not None else torch.zeros((), device=fake.device)
    g_total = g_gan + lambda_feat * g_feat + lambda_vgg * g_vgg + lambda_l1 * g_l1
    optimizer_g.zero_grad(set_to_none=True)
    g_total.backward()
    optimizer_g.step()

    pred_fake_d = discriminator(torch.cat([condition, fake.detach()], 1))
    d_real = lsgan_loss(pred_real, real=True)
    d_fake = lsgan_loss(pred_fake_d, real=False)
    optimizer_d.zero_grad(set_to_none=True)
    (0.5 * (d_real + d_fake)).backward()
    optimizer_d.step()
    return {
        "G_GAN": g_gan.item(), "G_feat": g_feat.item(), "G_VGG": g_vgg.item(), "G_L1": g_l1.item(),
        "G_total": g_total.item(), "D_real": d_real.item(), "D_fake": d_fake.item(),
    }

