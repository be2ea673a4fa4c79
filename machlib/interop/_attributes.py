"""Gender and age group from a face photo by zero-shot CLIP, from a local model folder.

CLIP (Radford et al. 2021) scores an image against text prompts: the image embedding's cosine
similarity with each prompt's embedding, times the model's logit scale, softmaxed over the
prompts of one question. For each field the prompts are ``"a photo of a {word}"`` over the field's
words (:data:`ATTRIBUTE_PROMPTS`), the words averaged over their prompts when a field has several
per value; the answer is the most probable value and its probability.

Nothing ships with machlib and nothing is downloaded: pass the folder of a saved
``transformers`` ``CLIPModel`` with its tokenizer (e.g. a local copy of
``openai/clip-vit-base-patch32``). The answers are a model's guess about appearance, used only to
fill attributes the prompt leaves open; nothing machlib builds depends on them.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from .._errors import InputError
from ._clip import _check_folder
from ._torch import TorchMissingError, require_torch

__all__ = ["ClipAttributeClassifier", "ATTRIBUTE_PROMPTS"]

#: Field → value (a :data:`machlib.text.VOCABULARY` word) → the prompts that describe it.
ATTRIBUTE_PROMPTS = {
    "gender": {
        "female": ("a photo of a woman", "a photo of a girl"),
        "male": ("a photo of a man", "a photo of a boy"),
    },
    "age_group": {
        "child": ("a photo of a child",),
        "teen": ("a photo of a teenager",),
        "young adult": ("a photo of a young adult in their twenties",),
        "adult": ("a photo of an adult in their thirties",),
        "middle-aged": ("a photo of a middle-aged person",),
        "elderly": ("a photo of an elderly person",),
    },
}


class ClipAttributeClassifier:
    """Zero-shot CLIP reading of ``gender`` and ``age_group`` (a
    :class:`machlib.character.AttributeClassifier`).

    Args:
        model_path: local folder of a saved ``transformers`` ``CLIPModel``: ``config.json``,
            ``model.safetensors`` (or ``pytorch_model.bin``), the tokenizer files and optionally
            ``preprocessor_config.json``.
        prompts: field → value → prompts (default :data:`ATTRIBUTE_PROMPTS`).
        device: torch device string.

    Raises:
        WeightsMissingError: the folder is missing or incomplete (checked before any import).
        TorchMissingError: torch or ``transformers`` is not installed.
        InputError: a prompt value outside the field's vocabulary.

    Example:
        >>> from machlib.interop import ClipAttributeClassifier
        >>> try:
        ...     ClipAttributeClassifier("/no/such/clip")
        ... except FileNotFoundError as e:
        ...     print(type(e).__name__)
        WeightsMissingError
    """

    def __init__(self, model_path: Union[str, os.PathLike], *, prompts: dict | None = None, device: str = "cpu"):
        from ..text import VOCABULARY

        self.model_path, tok_dir = _check_folder(model_path)
        prompts = ATTRIBUTE_PROMPTS if prompts is None else prompts
        for field, values in prompts.items():
            if field not in VOCABULARY:
                raise InputError(f"ClipAttributeClassifier: unknown field {field!r}")
            bad = [v for v in values if v not in VOCABULARY[field]]
            if bad or not values or not all(values.values()):
                raise InputError(f"ClipAttributeClassifier: {field} needs prompts for vocabulary words, "
                                 f"got {bad or values}")
        self.prompts = {f: {v: tuple(p) for v, p in vals.items()} for f, vals in prompts.items()}
        torch = require_torch("ClipAttributeClassifier")
        try:
            from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer
        except ImportError as e:
            raise TorchMissingError("ClipAttributeClassifier needs transformers, which is not installed; "
                                    "install it with: pip install 'machlib[diffusion]'") from e
        self._torch = torch
        self.device = device
        self.model = CLIPModel.from_pretrained(str(self.model_path), local_files_only=True)
        self.model.eval().requires_grad_(False).to(device)
        self.tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        if (self.model_path / "preprocessor_config.json").is_file():
            self.processor = CLIPImageProcessor.from_pretrained(str(self.model_path), local_files_only=True)
        else:
            n = int(self.model.config.vision_config.image_size)
            self.processor = CLIPImageProcessor(size={"shortest_edge": n}, crop_size={"height": n, "width": n})
        self._text = {}
        with torch.inference_mode():
            for field, values in self.prompts.items():
                texts = [p for v in values for p in values[v]]
                toks = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
                out = self.model.text_model(input_ids=toks["input_ids"].to(device),
                                            attention_mask=toks["attention_mask"].to(device)).pooler_output
                emb = self.model.text_projection(out).double().cpu().numpy()
                emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
                owner = np.repeat(np.arange(len(values)), [len(values[v]) for v in values])
                self._text[field] = (list(values), emb, owner)

    def probabilities(self, face: np.ndarray) -> dict:
        """Field → value → probability (softmax over the field's values) for an ``(H, W, 3)``
        uint8 face crop.

        Example:
            >>> # ClipAttributeClassifier(path).probabilities(crop)["gender"] == {"female": 0.9, "male": 0.1}
        """
        img = np.asarray(face)
        if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 2:
            raise InputError(f"ClipAttributeClassifier: face must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
        torch = self._torch
        with torch.inference_mode():
            pix = self.processor(images=[img], return_tensors="pt")["pixel_values"].to(self.device)
            e = self.model.visual_projection(self.model.vision_model(pixel_values=pix).pooler_output)
            e = e.double().cpu().numpy()[0]
            scale = float(self.model.logit_scale.exp().item())
        e /= max(float(np.linalg.norm(e)), 1e-12)
        out = {}
        for field, (values, emb, owner) in self._text.items():
            sims = emb @ e
            per_value = np.array([sims[owner == i].mean() for i in range(len(values))])
            z = scale * per_value
            p = np.exp(z - z.max())
            p /= p.sum()
            out[field] = {v: float(pi) for v, pi in zip(values, p)}
        return out

    def classify(self, face: np.ndarray) -> dict:
        """Field → ``(value, probability)``: the most probable value of each field.

        Example:
            >>> # ClipAttributeClassifier(path).classify(crop) == {"gender": ("female", 0.9), ...}
        """
        return {f: max(p.items(), key=lambda kv: kv[1]) for f, p in self.probabilities(face).items()}

    def __repr__(self) -> str:
        return f"ClipAttributeClassifier({str(self.model_path)!r}, fields={list(self.prompts)})"
