"""A BiSeNet face parser (Yu et al., "BiSeNet: Bilateral Segmentation Network for Real-time
Semantic Segmentation", ECCV 2018) for the error-prone region masks of Make-A-Character §2.4.3.

Two paths meet in a feature fusion module:

* the *spatial path* keeps detail: three stride-2 conv–BN–ReLU layers (1/8 resolution);
* the *context path* gets a large receptive field: a small ResNet-style backbone (basic
  residual blocks, strides to 1/32), *attention refinement modules* (ARM: a global-pooled
  1×1 conv gate) on its 1/16 and 1/32 features, a global-average-pooled context added on top,
  and upsampling to 1/8;
* the *feature fusion module* (FFM) concatenates both, mixes them with a 1×1 conv–BN–ReLU and
  re-weights channels with a squeeze-and-excitation gate (``f + f · σ(W₂ ReLU(W₁ pool(f))))``;
* a 3×3 conv head predicts per-pixel class scores, upsampled ×8 to the input.

Labels follow the 19 CelebAMask-HQ classes of :data:`FACE_PARSING_CLASSES`; the parser's own
state-dict layout is machlib's (checkpoints trained elsewhere need their keys renamed).
machlib ships no weights: pass a local file to :func:`load_face_parser`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jaxtyping import Float, Int, Real
from torch import nn
from torch.nn import functional as F

from .._errors import InputError, WeightsMissingError
from .._typing import AnyArray
from ._torch import load_metadata, load_state_dict, save_state_dict, to_jax, to_torch

__all__ = [
    "FACE_PARSING_CLASSES",
    "FACE_REGIONS",
    "FaceParserConfig",
    "BiSeNet",
    "load_face_parser",
    "save_face_parser",
    "parse_face",
    "parsing_to_regions",
]

#: Class names by label index (CelebAMask-HQ's 19 classes; ``l_``/``r_`` are the subject's
#: left/right; ``eye_g`` glasses, ``ear_r`` earring, ``neck_l`` necklace).
FACE_PARSING_CLASSES = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)

#: Region name → the classes it merges (:func:`parsing_to_regions`). ``mouth`` is the whole
#: mouth (inner mouth and both lips); ``lips`` the lips only.
FACE_REGIONS = {
    "skin": ("skin",),
    "brows": ("l_brow", "r_brow"),
    "eyes": ("l_eye", "r_eye"),
    "nose": ("nose",),
    "lips": ("u_lip", "l_lip"),
    "mouth": ("mouth", "u_lip", "l_lip"),
    "hair": ("hair",),
    "ears": ("l_ear", "r_ear"),
    "neck": ("neck",),
    "glasses": ("eye_g",),
}

_CONFIG_KEY = "machlib.face_parser_config"
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class FaceParserConfig:
    """Architecture of a :class:`BiSeNet` face parser (JSON-serialisable).

    The defaults are ResNet-18-sized (widths 64–512, two blocks per stage) at 512² input, as
    common face-parsing models are; :meth:`tiny` is for tests.

    Attributes:
        num_classes: output classes (19 for :data:`FACE_PARSING_CLASSES`).
        widths: channels of the four backbone stages (1/4, 1/8, 1/16, 1/32 resolution).
        blocks: residual blocks per stage.
        spatial_width: output channels of the spatial path.
        context_width: channels of the context path's refined features.
        fusion_width: output channels of the feature fusion module.
        input_size: the square size images are resized to (a multiple of 32).
    """

    num_classes: int = 19
    widths: tuple = (64, 128, 256, 512)
    blocks: tuple = (2, 2, 2, 2)
    spatial_width: int = 128
    context_width: int = 128
    fusion_width: int = 256
    input_size: int = 512

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "blocks", tuple(self.blocks))
        for name in ("num_classes", "spatial_width", "context_width", "fusion_width", "input_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"FaceParserConfig: {name} must be a positive int, got {v!r}")
        for name in ("widths", "blocks"):
            v = getattr(self, name)
            if len(v) != 4 or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
                raise ValueError(f"FaceParserConfig: {name} must be 4 positive ints, got {v!r}")
        if self.input_size % 32:
            raise ValueError(f"FaceParserConfig: input_size must be a multiple of 32, got {self.input_size}")
        if self.fusion_width < 4:
            raise ValueError(f"FaceParserConfig: fusion_width must be >= 4, got {self.fusion_width}")

    @classmethod
    def tiny(cls) -> FaceParserConfig:
        """A ~44k-parameter parser at 64² input, for tests."""
        return cls(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), spatial_width=16, context_width=16,
                   fusion_width=16, input_size=64)

    def to_json(self) -> str:
        """The fields as a JSON object string.

        Example:
            >>> from machlib.interop import FaceParserConfig
            >>> c = FaceParserConfig.tiny()
            >>> FaceParserConfig.from_json(c.to_json()) == c
            True
        """
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FaceParserConfig:
        """Build from a JSON object; malformed input raises :class:`~machlib.InputError`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"FaceParserConfig.from_json: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise InputError("FaceParserConfig.from_json: expected a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        if set(data) - known:
            raise InputError(f"FaceParserConfig.from_json: unknown fields {sorted(set(data) - known)}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}  # JSON arrays → tuples
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise InputError(str(e)) from None


Tensor4 = Float[torch.Tensor, "B _ _ _"]


class _ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: Tensor4) -> Tensor4:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class _Backbone(nn.Module):
    """ResNet-style: 7×7/2 stem, 3×3/2 max pool, four stages (strides 1, 2, 2, 2)."""

    def __init__(self, widths: tuple, blocks: tuple):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
        stages, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layers = [_BasicBlock(cin, w, 1 if i == 0 else 2)] + [_BasicBlock(w, w, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            cin = w
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor4) -> tuple:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[1], feats[2], feats[3]  # 1/8, 1/16, 1/32


class _AttentionRefinement(nn.Module):
    """ARM: ``f = conv(x)``; ``f · σ(conv1×1(global_avg_pool(f)))``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _ConvBNReLU(cin, cout, 3)
        self.gate = nn.Conv2d(cout, cout, 1)

    def forward(self, x: Tensor4) -> Tensor4:
        f = self.conv(x)
        return f * torch.sigmoid(self.gate(F.adaptive_avg_pool2d(f, 1)))


class _ContextPath(nn.Module):
    def __init__(self, config: FaceParserConfig):
        super().__init__()
        w, c = config.widths, config.context_width
        self.backbone = _Backbone(w, config.blocks)
        self.arm16 = _AttentionRefinement(w[2], c)
        self.arm32 = _AttentionRefinement(w[3], c)
        self.global_context = nn.Conv2d(w[3], c, 1)
        self.head32 = _ConvBNReLU(c, c, 3)
        self.head16 = _ConvBNReLU(c, c, 3)

    def forward(self, x: Tensor4) -> Tensor4:
        f8, f16, f32 = self.backbone(x)
        ctx = F.relu(self.global_context(F.adaptive_avg_pool2d(f32, 1)))
        y32 = self.arm32(f32) + ctx
        y32 = self.head32(F.interpolate(y32, size=f16.shape[-2:], mode="nearest"))
        y16 = self.arm16(f16) + y32
        return self.head16(F.interpolate(y16, size=f8.shape[-2:], mode="nearest"))


class _SpatialPath(nn.Sequential):
    def __init__(self, width: int):
        mid = max(width // 2, 1)
        super().__init__(_ConvBNReLU(3, mid, 7, 2), _ConvBNReLU(mid, mid, 3, 2), _ConvBNReLU(mid, mid, 3, 2),
                         _ConvBNReLU(mid, width, 1))


class _FeatureFusion(nn.Module):
    """FFM: ``f = ConvBNReLU₁ₓ₁([s, c])``; ``f + f · σ(W₂ ReLU(W₁ pool(f)))``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.mix = _ConvBNReLU(cin, cout, 1)
        self.squeeze = nn.Conv2d(cout, max(cout // 4, 1), 1)
        self.excite = nn.Conv2d(max(cout // 4, 1), cout, 1)

    def forward(self, spatial: Tensor4, context: Tensor4) -> Tensor4:
        f = self.mix(torch.cat([spatial, context], 1))
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(F.adaptive_avg_pool2d(f, 1)))))
        return f + f * gate


class BiSeNet(nn.Module):
    """The BiSeNet face parser (module docstring).

    Args:
        config: the architecture (:class:`FaceParserConfig`, kept as ``self.config``).

    Example:
        >>> import torch
        >>> from machlib.interop import BiSeNet, FaceParserConfig
        >>> net = BiSeNet(FaceParserConfig.tiny()).eval()
        >>> tuple(net(torch.zeros(1, 3, 64, 64)).shape)
        (1, 19, 64, 64)
    """

    def __init__(self, config: FaceParserConfig):
        super().__init__()
        self.config = config
        self.spatial_path = _SpatialPath(config.spatial_width)
        self.context_path = _ContextPath(config)
        self.fusion = _FeatureFusion(config.spatial_width + config.context_width, config.fusion_width)
        self.head = nn.Sequential(_ConvBNReLU(config.fusion_width, config.fusion_width, 3),
                                  nn.Conv2d(config.fusion_width, config.num_classes, 1))

    def forward(self, x: Float[torch.Tensor, "B 3 H W"]) -> Float[torch.Tensor, "B K H W"]:
        """``(B, 3, H, W)`` ImageNet-normalised RGB (``H``, ``W`` multiples of 32) →
        ``(B, num_classes, H, W)`` class scores (logits)."""
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"BiSeNet: input height and width must be multiples of 32, got {tuple(x.shape)}")
        s = self.spatial_path(x)
        c = self.context_path(x)
        logits = self.head(self.fusion(s, c))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def save_face_parser(path: str | os.PathLike, parser: BiSeNet) -> Path:
    """Write a parser as ``.safetensors`` with its config in the header metadata, atomically.

    Args:
        path: destination ending in ``.safetensors``.
        parser: the :class:`BiSeNet`.

    Returns:
        The written path.
    """
    return save_state_dict(path, parser.state_dict(), metadata={_CONFIG_KEY: parser.config.to_json()})


def load_face_parser(
    path: str | os.PathLike, *, config: FaceParserConfig | None = None, device: str = "cpu"
) -> BiSeNet:
    """Load a user-supplied BiSeNet face parser.

    Args:
        path: weights file (``.safetensors``, or ``.pt``/``.pth``/``.bin`` read with
            ``torch.load(weights_only=True)``) in this module's state-dict layout.
        config: the architecture; default the file's metadata, else a sibling ``<name>.json``,
            else :class:`FaceParserConfig` ().
        device: torch device.

    Returns:
        The :class:`BiSeNet` in eval mode.

    Raises:
        WeightsMissingError: no file at ``path`` (the message says how to supply one).
        InputError: an unreadable or unsafe file, or weights that do not fit the config.
    """
    p = Path(path)
    if not p.exists():
        raise WeightsMissingError(
            f"load_face_parser: no face-parsing weights at {p}. machlib ships none: pass the path of a BiSeNet "
            "parser saved with machlib.interop.save_face_parser (or a state dict in its layout)"
        )
    metadata = load_metadata(p)
    state = load_state_dict(p)
    if config is None:
        if _CONFIG_KEY in metadata:
            config = FaceParserConfig.from_json(metadata[_CONFIG_KEY])
        elif p.with_suffix(".json").is_file():
            config = FaceParserConfig.from_json(p.with_suffix(".json").read_text())
        else:
            config = FaceParserConfig()
    net = BiSeNet(config)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = str(e).strip().splitlines()
        raise InputError(
            f"load_face_parser: the weights in {p} do not fit {config}: {' '.join(x.strip() for x in lines[:3])}"
        ) from None
    return net.to(device).eval()


def parse_face(
    image: Real[AnyArray, "H W 3"], parser: BiSeNet, *, size: int | None = None
) -> Int[AnyArray, "H W"]:
    """Per-pixel face-part labels of a portrait.

    The image is resized (bilinear, antialiased) to ``size²`` (default the parser's
    ``input_size``), normalised with the ImageNet mean and deviation, parsed, and the class
    scores are resized back to ``H × W`` before the argmax.

    Args:
        image: ``(H, W, 3)`` RGB, uint8 or float in ``[0, 1]``; numpy or JAX.
        parser: a :class:`BiSeNet` (e.g. from :func:`load_face_parser`).
        size: processing size, a multiple of 32.

    Returns:
        ``(H, W)`` int32 labels indexing :data:`FACE_PARSING_CLASSES`; JAX for a JAX input.

    Example:
        >>> import numpy as np
        >>> from machlib.interop import BiSeNet, FaceParserConfig, parse_face
        >>> parse_face(np.zeros((40, 30, 3), np.uint8), BiSeNet(FaceParserConfig.tiny()).eval()).shape
        (40, 30)
    """
    is_jax = isinstance(image, jax.Array)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"parse_face: image must have shape (H, W, 3), got {image.shape}")
    size = parser.config.input_size if size is None else size
    if not isinstance(size, int) or size < 32 or size % 32:
        raise ValueError(f"parse_face: size must be a positive multiple of 32, got {size!r}")
    if image.dtype == np.uint8:
        x = to_torch(np.asarray(image)).float() / 255.0
    elif np.issubdtype(np.dtype(image.dtype), np.floating):
        x = to_torch(image).float()
    else:
        raise TypeError(f"parse_face: image must be uint8 or float in [0, 1], got dtype {image.dtype}")
    device = next(parser.parameters()).device
    h, w = x.shape[:2]
    x = x.permute(2, 0, 1)[None].to(device)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_STD, device=device).view(1, 3, 1, 1)
    parser.eval()
    with torch.no_grad():
        logits = parser((x - mean) / std)
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    labels = logits[0].argmax(0).to(torch.int32)
    return to_jax(labels) if is_jax else labels.cpu().numpy()


def parsing_to_regions(
    labels: Int[AnyArray, "*shape"], *, classes: tuple = FACE_PARSING_CLASSES
) -> dict:
    """Boolean masks of the face regions in a label map (:data:`FACE_REGIONS`).

    Args:
        labels: integer labels (e.g. ``(H, W)`` from :func:`parse_face`), numpy or JAX.
        classes: the class name of each label index (default :data:`FACE_PARSING_CLASSES`);
            regions whose classes are all absent from it are all-False.

    Returns:
        ``{"skin", "brows", "eyes", "nose", "lips", "mouth", "hair", "ears", "neck",
        "glasses"}`` → bool masks of ``labels``' shape (JAX for a JAX input).

    Example:
        >>> import numpy as np
        >>> from machlib.interop import parsing_to_regions
        >>> parsing_to_regions(np.array([[4, 12], [11, 0]]))["mouth"].tolist()
        [[False, True], [True, False]]
    """
    xp = jnp if isinstance(labels, jax.Array) else np
    index = {name: i for i, name in enumerate(classes)}
    out = {}
    for region, names in FACE_REGIONS.items():
        ids = [index[n] for n in names if n in index]
        out[region] = xp.isin(labels, xp.asarray(ids, dtype=labels.dtype)) if ids else xp.zeros(labels.shape, bool)
    return out

