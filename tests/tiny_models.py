"""Tiny tokenizers for tests of the diffusers/transformers backends (import as
``from tiny_models import ...``).

No tokenizer files ship with machlib or its tests: :func:`clip_tokenizer` builds a character-level
CLIP BPE tokenizer (every byte symbol, with and without the end-of-word marker, no merges) in code,
so a tiny randomly initialised CLIP text encoder can be saved and loaded like a real checkpoint;
:func:`save_tiny_portrait_weights` writes a tiny random Stable Diffusion base and two ControlNets
in the diffusers folder layout.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["byte_symbols", "clip_vocab", "clip_tokenizer", "save_clip_tokenizer", "save_tiny_clip",
           "save_tiny_portrait_weights", "TINY_HIDDEN"]


def byte_symbols() -> list[str]:
    """GPT-2/CLIP's reversible byte → printable-unicode table, as 256 one-character strings."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def clip_vocab() -> dict[str, int]:
    """514 tokens: 256 byte symbols, the same with ``</w>``, then start and end of text."""
    symbols = byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": 256 + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    return vocab


def clip_tokenizer(model_max_length: int = 16):
    """A character-level ``transformers.CLIPTokenizer`` (vocabulary size 514)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=clip_vocab(), merges=[], model_max_length=model_max_length)


def save_clip_tokenizer(path: str | os.PathLike, model_max_length: int = 16) -> str:
    """Save :func:`clip_tokenizer` into the folder ``path`` (created) and return it as a string."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    clip_tokenizer(model_max_length).save_pretrained(path)
    return path


def save_tiny_clip(path: str | os.PathLike, *, image_size: int = 32, max_positions: int = 16) -> str:
    """Save a tiny randomly initialised CLIP (model, :func:`clip_tokenizer`, image processor) into
    the folder ``path`` in the transformers layout, seeded so that it is the same every time."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=514, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=max_positions, bos_token_id=512,
                         eos_token_id=513, pad_token_id=513),
        vision_config=dict(image_size=image_size, patch_size=8, hidden_size=32, intermediate_size=48,
                           num_hidden_layers=1, num_attention_heads=2),
        projection_dim=16,
    )
    path = os.fspath(path)
    CLIPModel(config).eval().save_pretrained(path)
    save_clip_tokenizer(path, model_max_length=max_positions)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(path)
    return path


# Stable Diffusion + ControlNets (tests/interop/test_diffusion.py, tests/test_cli.py)

#: Text-encoder width of the tiny Stable Diffusion = the UNet's and ControlNets' cross-attention width.
TINY_HIDDEN = 32
_BLOCKS = (16, 32)


def _unet_kwargs():
    return dict(in_channels=4, block_out_channels=_BLOCKS, layers_per_block=1, norm_num_groups=8,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), cross_attention_dim=TINY_HIDDEN,
                attention_head_dim=4)


def _controlnet(seed):
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    # four conditioning blocks: three stride-2 convolutions, the 8x of a real SD ControlNet
    net = ControlNetModel(**_unet_kwargs(), conditioning_embedding_out_channels=(8, 8, 8, 8))
    # a new ControlNet starts with zero convolutions (no effect on the UNet); a trained one has not
    for conv in [net.controlnet_cond_embedding.conv_out, *net.controlnet_down_blocks, net.controlnet_mid_block]:
        torch.nn.init.normal_(conv.weight, std=0.2)
    return net


def save_tiny_portrait_weights(root: str | os.PathLike) -> dict:
    """A tiny SD 1.5-shaped base (VAE factor 8) and two ControlNets, written with save_pretrained
    under ``root``; returns ``{"base", "controlnet_openpose", "controlnet_canny"}`` → folder."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = Path(root)

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**_unet_kwargs(), out_channels=4, sample_size=8,
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                        layers_per_block=1, norm_num_groups=4, sample_size=64,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=TINY_HIDDEN, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=16, bos_token_id=512,
                                        eos_token_id=513, pad_token_id=513))
    # SD 1.5's scheduler settings
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, set_alpha_to_one=False)
    base = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=clip_tokenizer(), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    paths = {"base": root / "sd15", "controlnet_openpose": root / "openpose", "controlnet_canny": root / "canny"}
    base.save_pretrained(paths["base"])
    _controlnet(1).save_pretrained(paths["controlnet_openpose"])
    _controlnet(2).save_pretrained(paths["controlnet_canny"])
    return paths
