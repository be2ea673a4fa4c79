"""Reference portraits with Stable Diffusion and two ControlNets (Make-A-Character §2.1–2.2).

:func:`load_portrait_pipeline` builds a diffusers ``StableDiffusionControlNetPipeline`` whose
ControlNet is a ``MultiControlNetModel`` of the OpenPose ControlNet (steered by the face keypoint
image of :func:`~machlib.text.keypoint_image`) and the Canny ControlNet (steered by the edge map
of :func:`~machlib.text.edge_image`), all read from local folders (:class:`DiffusionWeights`).
:func:`generate_portrait` turns facial attributes or a text prompt into a seeded portrait: the
prompt pair comes from :func:`~machlib.text.portrait_prompt` and the control images from
:func:`~machlib.text.visual_clues`.

Typical use, with the weight folders given by flags, a config file or the environment::

    from machlib.interop import generate_portrait, load_portrait_pipeline, resolve_diffusion_weights

    pipe = load_portrait_pipeline(resolve_diffusion_weights(), device="cuda", dtype="float16")
    result = generate_portrait(pipe, "A girl, she is thin, willow leaf eyebrow, oval face, long curly hair.",
                               seed=7)
    result.image        # (512, 512, 3) uint8, frontal and neutral
    result.clues        # the OpenPose keypoint and canny edge images that steered it

torch, ``diffusers`` and ``transformers`` are imported inside the functions (install them with
``pip install 'machlib[diffusion]'``); nothing is downloaded: every ``from_pretrained`` call is
``local_files_only``, and diffusers reads ``.safetensors`` or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import UInt8

from .._errors import InputError
from ..text import FaceAttributes, parse_prompt, visual_clues
from ..text._prompting import PortraitPrompt, portrait_prompt
from ._diffusion_config import DiffusionWeights, _validate
from ._torch import TorchMissingError, require_torch

__all__ = ["PortraitResult", "PORTRAIT_SCHEDULERS", "load_portrait_pipeline", "generate_portrait"]

_HINT = "pip install 'machlib[diffusion]'"

#: Scheduler names :func:`load_portrait_pipeline` accepts → diffusers class (``"base"`` keeps the
#: scheduler saved in the base folder).
PORTRAIT_SCHEDULERS: dict[str, str] = {
    "unipc": "UniPCMultistepScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-a": "EulerAncestralDiscreteScheduler",
    "pndm": "PNDMScheduler",
    "base": "",
}
_DTYPES = ("float32", "float16", "bfloat16")
_CLUE_NAMES = ("openpose", "canny")


def _require_diffusers(feature: str) -> Any:
    require_torch(feature)
    try:
        import diffusers
        import transformers  # noqa: F401  (diffusers imports the CLIP classes lazily)
    except ImportError as e:
        raise TorchMissingError(
            f"{feature} needs diffusers and transformers ({e.name} is not installed); install them with: {_HINT}"
        ) from e
    return diffusers


def _dtype_keyword() -> str:
    """``from_pretrained``'s dtype argument: ``dtype`` in diffusers ≥ 0.42 (``torch_dtype`` is
    deprecated there), ``torch_dtype`` before."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


@dataclasses.dataclass(frozen=True)
class PortraitResult:
    """A generated reference portrait and what made it.

    Attributes:
        image: ``(size, size, 3)`` ``uint8`` RGB, row 0 at the top.
        prompt: the prompt given to Stable Diffusion.
        negative_prompt: the negative prompt.
        seed: the seed of the ``torch.Generator`` (CPU) that drew the initial noise.
        clues: ``{"openpose": keypoint image, "canny": edge image}``, each ``(size, size, 3)``
            ``uint8``: the control images of the two ControlNets.
        attributes: the facial attributes the prompt and clues came from.
        settings: ``size``, ``steps``, ``guidance_scale``, ``controlnet_scale`` and ``scheduler``
            (the diffusers class name), for the record.
    """

    image: UInt8[np.ndarray, "H W 3"]
    prompt: str
    negative_prompt: str
    seed: int
    clues: dict
    attributes: FaceAttributes
    settings: dict


def load_portrait_pipeline(
    weights: DiffusionWeights,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    scheduler: str = "unipc",
    variant: str | None = None,
) -> Any:
    """Load Stable Diffusion with the OpenPose and Canny ControlNets from local folders.

    The result is a diffusers ``StableDiffusionControlNetPipeline`` whose ``controlnet`` is a
    ``MultiControlNetModel`` of ``(openpose, canny)``, in that order. The **safety checker is
    off** (not loaded, not run): the pipeline draws reference portraits from machlib's own
    prompts, and the NSFW filter would blank images on false positives; add your own filter if you
    expose the pipeline to arbitrary prompts. The progress bar is disabled.

    Args:
        weights: the three folders, from :func:`resolve_diffusion_weights` (checked again here).
        device: torch device, e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        dtype: ``"float32"`` (default; needed on CPU), ``"float16"`` or ``"bfloat16"`` (GPU;
            half the memory).
        scheduler: sampler, one of :data:`PORTRAIT_SCHEDULERS`: ``"unipc"`` (default: good
            images in 20–30 steps, the usual choice with ControlNet), ``"dpm++"``, ``"ddim"``,
            ``"euler"``, ``"euler-a"``, ``"pndm"``, or ``"base"`` for the one saved in the base
            folder. Built from the base folder's scheduler config (same noise schedule).
        variant: weights variant to read, e.g. ``"fp16"`` for folders holding only
            ``*.fp16.safetensors`` files.

    Returns:
        The pipeline, on ``device``, in ``dtype``.

    Raises:
        WeightsMissingError: a folder is missing or incomplete (the message says which and how to
            provide it).
        InputError: an unknown scheduler or dtype, ``float16`` on the CPU, or weights diffusers
            cannot load (the message names the folder).
        TorchMissingError: torch, diffusers or transformers is not installed.

    Example:
        >>> from machlib.interop import DiffusionWeights, load_portrait_pipeline
        >>> try:
        ...     load_portrait_pipeline(DiffusionWeights("/no/sd", "/no/pose", "/no/canny"))
        ... except FileNotFoundError as e:
        ...     print(str(e).splitlines()[1])
          - base (Stable Diffusion base model): /no/sd does not exist (from DiffusionWeights)
    """
    if scheduler not in PORTRAIT_SCHEDULERS:
        raise InputError(
            f"load_portrait_pipeline: unknown scheduler {scheduler!r}; choose one of {', '.join(PORTRAIT_SCHEDULERS)}"
        )
    if dtype not in _DTYPES:
        raise InputError(f"load_portrait_pipeline: dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    if not isinstance(device, str):
        raise TypeError(f"load_portrait_pipeline: device must be a string such as 'cpu' or 'cuda', got {device!r}")
    if not isinstance(weights, DiffusionWeights):
        raise TypeError(f"load_portrait_pipeline: weights must be a DiffusionWeights, got {type(weights).__name__}")
    _validate(weights, "load_portrait_pipeline")
    torch = require_torch("load_portrait_pipeline")
    diffusers = _require_diffusers("load_portrait_pipeline")
    try:
        torch_device = torch.device(device)
    except RuntimeError as e:
        raise InputError(f"load_portrait_pipeline: invalid device {device!r} ({e})") from None
    if dtype == "float16" and torch_device.type == "cpu":
        raise InputError("load_portrait_pipeline: float16 needs a GPU; use dtype='float32' (or 'bfloat16') on the CPU")
    torch_dtype = getattr(torch, dtype)
    common = dict(local_files_only=True, variant=variant)
    common[_dtype_keyword()] = torch_dtype

    def load(what: str, path: os.PathLike, fn):
        try:
            return fn()
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            hint = ""
            if variant is None and any(".fp16." in p.name for p in Path(path).rglob("*.fp16.*")):
                hint = " (the folder holds *.fp16.* weights: pass variant='fp16')"
            raise InputError(f"load_portrait_pipeline: cannot load the {what} from {path}: {first}{hint}") from None

    controlnets = [
        load(name, getattr(weights, name),
             lambda name=name: diffusers.ControlNetModel.from_pretrained(getattr(weights, name), **common))
        for name in ("controlnet_openpose", "controlnet_canny")
    ]
    multi_cls = getattr(diffusers, "MultiControlNetModel", None)
    if multi_cls is None:  # diffusers < 0.32 kept it with the pipeline
        from diffusers.pipelines.controlnet.multicontrolnet import MultiControlNetModel as multi_cls
    multi = multi_cls(controlnets)
    pipe = load("Stable Diffusion base model", weights.base, lambda: diffusers.StableDiffusionControlNetPipeline.from_pretrained(
        weights.base, controlnet=multi, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        **common))
    if PORTRAIT_SCHEDULERS[scheduler]:
        cls = getattr(diffusers, PORTRAIT_SCHEDULERS[scheduler])
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch_device)


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"generate_portrait: {name} must be an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"≥ {low}" if high is None else f"in [{low}, {high}]"
        raise InputError(f"generate_portrait: {name} must be {bound}, got {value}")
    return int(value)


def _check_float(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"generate_portrait: {name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and low <= value <= high):
        raise InputError(f"generate_portrait: {name} must be in [{low}, {high}], got {value}")
    return float(value)


def _check_clues(clues: Mapping, size: int) -> dict:
    if not isinstance(clues, Mapping) or set(clues) != set(_CLUE_NAMES):
        keys = sorted(clues) if isinstance(clues, Mapping) else type(clues).__name__
        raise InputError(f"generate_portrait: clues must be a dict with the keys 'openpose' and 'canny', got {keys}")
    out = {}
    for name in _CLUE_NAMES:
        img = np.asarray(clues[name])
        if img.shape != (size, size, 3) or img.dtype != np.uint8:
            raise InputError(
                f"generate_portrait: clues[{name!r}] must be a ({size}, {size}, 3) uint8 image, "
                f"got shape {img.shape} and dtype {img.dtype}"
            )
        out[name] = img
    return out


def generate_portrait(
    pipeline: Any,
    attributes: FaceAttributes | str,
    *,
    size: int = 512,
    steps: int = 30,
    guidance_scale: float = 7.5,
    controlnet_scale: Sequence[float] = (1.0, 0.5),
    seed: int = 0,
    clues: Mapping[str, np.ndarray] | None = None,
    prompt: PortraitPrompt | None = None,
    include_glasses: bool = True,
) -> PortraitResult:
    """Generate a frontal, neutral reference portrait from facial attributes or a text prompt.

    A text prompt is parsed with :func:`~machlib.text.parse_prompt`; the prompt pair is
    :func:`~machlib.text.portrait_prompt` of the attributes (unless ``prompt`` is given) and the
    control images are :func:`~machlib.text.visual_clues` of the attributes at ``size`` (unless
    ``clues`` is given). The initial noise is drawn by a CPU ``torch.Generator`` seeded with
    ``seed``, so a seed gives the same image on every run with the same weights, scheduler, dtype
    and device (across devices the noise is the same, the arithmetic is not bit-identical).

    Args:
        pipeline: from :func:`load_portrait_pipeline` (a ``StableDiffusionControlNetPipeline``
            with two ControlNets: OpenPose, then Canny).
        attributes: :class:`~machlib.text.FaceAttributes` or a text prompt.
        size: side of the square image in pixels, in ``[64, 4096]`` and a multiple of the VAE's
            downsampling (8 for Stable Diffusion). Default 512, SD 1.5's training resolution.
        steps: denoising steps (default 30; 20–30 suffice with UniPC).
        guidance_scale: classifier-free guidance weight (default 7.5); ``≤ 1`` disables guidance
            and with it the negative prompt.
        controlnet_scale: ``(openpose, canny)`` ControlNet weights, each in ``[0, 2]``. The
            default ``(1.0, 0.5)`` holds the face layout firmly with the keypoints and lets the
            synthetic edge map shape the features without drawing its thin lines into the skin.
        seed: an integer in ``[0, 2**63)``.
        clues: ``{"openpose": image, "canny": image}``, each ``(size, size, 3)`` ``uint8``, to
            replace the default control images.
        prompt: a :class:`~machlib.text.PortraitPrompt` to use instead of the one built from the
            attributes.
        include_glasses: passed to :func:`~machlib.text.portrait_prompt`.

    Returns:
        The :class:`PortraitResult` (image, prompts, seed, clues, attributes, settings).

    Raises:
        InputError: a size outside ``[64, 4096]`` or not a multiple of the VAE factor,
            steps outside ``[1, num_train_timesteps]``, a guidance or ControlNet scale out of range,
            a negative seed, malformed clues, or a pipeline without the two ControlNets.
        TypeError: arguments of the wrong type.

    Example:
        >>> from machlib.interop import generate_portrait
        >>> try:
        ...     generate_portrait(object(), "a girl with red hair")
        ... except ValueError as e:
        ...     print(str(e)[:71])
        generate_portrait: pipeline must be a StableDiffusionControlNetPipeline
    """
    controlnet = getattr(pipeline, "controlnet", None)
    nets = getattr(controlnet, "nets", None)
    if controlnet is None or getattr(pipeline, "vae_scale_factor", None) is None:
        raise InputError(
            "generate_portrait: pipeline must be a StableDiffusionControlNetPipeline from load_portrait_pipeline, "
            f"got {type(pipeline).__name__}"
        )
    if nets is None or len(nets) != 2:
        raise InputError(
            "generate_portrait: the pipeline needs a MultiControlNetModel of two ControlNets (OpenPose, Canny), "
            f"got {type(controlnet).__name__}{'' if nets is None else f' of {len(nets)}'}"
        )
    if isinstance(attributes, str):
        attrs = parse_prompt(attributes).attributes
    elif isinstance(attributes, FaceAttributes):
        attrs = attributes
    else:
        raise TypeError(
            f"generate_portrait: attributes must be a FaceAttributes or a prompt string, got {type(attributes).__name__}"
        )
    factor = int(pipeline.vae_scale_factor)
    size = _check_int("size", size, 64, 4096)
    if size % max(factor, 8):
        raise InputError(f"generate_portrait: size must be a multiple of {max(factor, 8)}, got {size}")
    steps = _check_int("steps", steps, 1, int(pipeline.scheduler.config.num_train_timesteps))
    guidance_scale = _check_float("guidance_scale", guidance_scale, 0.0, 100.0)
    if isinstance(controlnet_scale, (str, bytes)) or not isinstance(controlnet_scale, Sequence) or len(controlnet_scale) != 2:
        raise InputError(f"generate_portrait: controlnet_scale must be (openpose, canny), got {controlnet_scale!r}")
    scales = [_check_float("controlnet_scale", s, 0.0, 2.0) for s in controlnet_scale]
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    if prompt is None:
        prompt = portrait_prompt(attributes, include_glasses=include_glasses)
    elif not isinstance(prompt, PortraitPrompt):
        raise TypeError(f"generate_portrait: prompt must be a PortraitPrompt, got {type(prompt).__name__}")
    clue_images = _check_clues(clues, size) if clues is not None else visual_clues(attrs.to_dict(), size=size)

    torch = require_torch("generate_portrait")
    generator = torch.Generator("cpu").manual_seed(seed)
    control = [torch.from_numpy(np.ascontiguousarray(clue_images[n])).permute(2, 0, 1)[None].float() / 255.0
               for n in _CLUE_NAMES]
    out = pipeline(
        prompt=prompt.prompt,
        negative_prompt=prompt.negative_prompt,
        image=control,
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        controlnet_conditioning_scale=scales,
        generator=generator,
        output_type="np",
    )
    pixels = np.asarray(out.images[0], dtype=np.float32)
    image = np.clip(np.round(np.nan_to_num(pixels) * 255.0), 0, 255).astype(np.uint8)
    settings = {"size": size, "steps": steps, "guidance_scale": guidance_scale, "controlnet_scale": tuple(scales),
                "scheduler": type(pipeline.scheduler).__name__}
    return PortraitResult(image=image, prompt=prompt.prompt, negative_prompt=prompt.negative_prompt, seed=seed,
                          clues=clue_images, attributes=attrs, settings=settings)
