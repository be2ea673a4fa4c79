"""Tiny tokenizers for tests of the diffusers/transformers backends (import as
``from tiny_models import ...``).

No tokenizer files ship with machlib or its tests: :func:`clip_tokenizer` builds a character-level
CLIP BPE tokenizer (every byte symbol, with and without the end-of-word marker, no merges) in code,
so a tiny randomly initialised CLIP text encoder can be saved and loaded like a real checkpoint.
"""

from __future__ import annotations

import os

__all__ = ["byte_symbols", "clip_vocab", "clip_tokenizer", "save_clip_tokenizer"]


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
