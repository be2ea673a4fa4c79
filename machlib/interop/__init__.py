"""The torch bridge: the only part of machlib that imports PyTorch, and only when used.

* Conversion and wrapping (:func:`to_torch`, :func:`to_jax`, :func:`torch_function`): zero-copy
  DLPack exchange, and torch modules callable from JAX under ``jit``/``vmap``/``grad``.
* Safe weights (:func:`load_state_dict`, :func:`save_state_dict`): ``.safetensors``, or
  ``torch.load(weights_only=True)``; nothing is ever unpickled.
* nvdiffrast (:func:`rasterize_nvdiffrast`, :func:`interpolate_nvdiffrast`,
  :func:`texture_nvdiffrast`, :func:`antialias_nvdiffrast`): the CUDA renderer behind the API and
  conventions of :mod:`machlib.render`, for machines with an NVIDIA GPU; elsewhere they raise
  :class:`NvdiffrastMissingError` (see :func:`nvdiffrast_available`).
* Networks: pix2pixHD (:class:`LocalEnhancer`, :class:`MultiscaleDiscriminator`, losses), the
  learned texture delighter of Make-A-Character §2.4.2 (:class:`Delighter`,
  :func:`delight_learned`, :func:`train_delighter`), and a BiSeNet face parser
  (:class:`BiSeNet`, :func:`parse_face`). No weights ship with machlib: train them
  (``scripts/train_delighter.py``) or supply local files.
* Portrait generation (Make-A-Character §2.1): Stable Diffusion with OpenPose + Canny ControlNets
  from local folders (:func:`resolve_diffusion_weights`, :class:`DiffusionWeights`,
  :func:`load_portrait_pipeline`, :func:`generate_portrait`).
* Text models from local folders: the code of :class:`machlib.assets.SentenceTransformerEmbedder`
  and :class:`machlib.assets.ClipTextEmbedder` (documented and exported there), and
  :class:`ChatModel`, the local chat LLM behind :class:`machlib.text.LLMParser`.
* DreamFace's score distillation (SDS): :func:`sds_loss` (gradient ``w(t)(ε̂ − ε)``, no UNet
  Jacobian), timestep schedules (:func:`timestep_schedule`: uniform, or DreamFace's decreasing),
  a diffusers UNet as a JAX noise predictor with classifier-free guidance (:func:`unet_denoiser`),
  and the VAE encoder/decoder through the ``custom_vjp`` bridge (:func:`vae_encoder`).
* DreamFace's CLIP shape selection: :class:`ClipShapeScorer` renders candidate shapes and scores
  them against the prompt with the relative score :func:`relative_clip_score`.
* Gender and age group of a face photo by zero-shot CLIP (:class:`ClipAttributeClassifier`), for
  ``machlib make --image`` when a local CLIP folder is configured.

``import machlib.interop`` does not import torch: the network classes are loaded on first
attribute access, and a missing torch raises :class:`TorchMissingError` with the install hint
``pip install 'machlib[torch]'``.
"""

import importlib

from ._attributes import ATTRIBUTE_PROMPTS, ClipAttributeClassifier
from ._clip import CLIP_ANCHOR_TEXT, ClipShapeScorer, relative_clip_score
from ._diffusion_config import (
    DIFFUSION_SLOTS,
    DiffusionWeights,
    describe_diffusion_weights,
    diffusion_weights_status,
    resolve_diffusion_weights,
)
from ._sds import (
    SDS_WEIGHTS,
    TIMESTEP_SCHEDULES,
    alphas_cumprod,
    gaussian_denoiser,
    scheduler_alphas_cumprod,
    sds_loss,
    sds_weight,
    timestep_schedule,
    unet_denoiser,
    vae_decoder,
    vae_encoder,
)
from ._text_models import CHAT_FALLBACK_TEMPLATE, ChatModel, ClipTextEmbedder, SentenceTransformerEmbedder  # noqa: F401
from ._nvdiffrast import (
    NvdiffrastMissingError,
    antialias_nvdiffrast,
    interpolate_nvdiffrast,
    nvdiffrast_available,
    rasterize_nvdiffrast,
    texture_nvdiffrast,
)
from ._torch import (
    WEIGHT_SUFFIXES,
    TorchMissingError,
    jax_device_for,
    load_metadata,
    load_state_dict,
    require_torch,
    save_state_dict,
    to_jax,
    to_torch,
    torch_available,
    torch_device_for,
    torch_function,
)

# name -> private module; imported (with torch) on first access
_LAZY = {
    **dict.fromkeys(
        [
            "Pix2PixHDConfig", "GlobalGenerator", "LocalEnhancer", "ResnetBlock", "NLayerDiscriminator",
            "MultiscaleDiscriminator", "VGG19Features", "build_generator", "build_discriminator",
            "load_vgg19", "lsgan_loss", "feature_matching_loss", "vgg_loss", "pix2pixhd_step",
        ],
        "._pix2pixhd",
    ),
    **dict.fromkeys(
        ["Delighter", "TrainResult", "new_delighter", "load_delighter", "save_delighter", "delight_learned",
         "train_delighter"],
        "._delighter",
    ),
    **dict.fromkeys(
        ["FACE_PARSING_CLASSES", "FACE_REGIONS", "FaceParserConfig", "BiSeNet", "load_face_parser",
         "save_face_parser", "parse_face", "parsing_to_regions"],
        "._face_parsing",
    ),
    **dict.fromkeys(["PortraitResult", "PORTRAIT_SCHEDULERS", "load_portrait_pipeline", "generate_portrait"],
                    "._diffusion"),
}

__all__ = [
    "WEIGHT_SUFFIXES", "TorchMissingError", "jax_device_for", "load_metadata", "load_state_dict",
    "require_torch", "save_state_dict", "to_jax", "to_torch", "torch_available", "torch_device_for",
    "torch_function",
    "NvdiffrastMissingError", "nvdiffrast_available", "rasterize_nvdiffrast", "interpolate_nvdiffrast",
    "texture_nvdiffrast", "antialias_nvdiffrast",
    "DIFFUSION_SLOTS", "DiffusionWeights", "resolve_diffusion_weights", "diffusion_weights_status",
    "describe_diffusion_weights",
    "ChatModel", "CHAT_FALLBACK_TEMPLATE",
    "ClipShapeScorer", "relative_clip_score", "CLIP_ANCHOR_TEXT", "ClipAttributeClassifier", "ATTRIBUTE_PROMPTS",
    "SDS_WEIGHTS", "TIMESTEP_SCHEDULES", "alphas_cumprod", "scheduler_alphas_cumprod", "sds_weight", "sds_loss",
    "timestep_schedule", "gaussian_denoiser", "unet_denoiser", "vae_encoder", "vae_decoder",
    *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'machlib.interop' has no attribute {name!r}")
    require_torch(f"machlib.interop.{name}")  # a clear TorchMissingError rather than a bare ImportError
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
