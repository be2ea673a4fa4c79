"""DreamFace's CLIP coarse-shape score (§4.1, eqs. 2–3) from a local CLIP checkpoint.

Every candidate shape is rendered with machlib's own renderer
(:func:`machlib.geometry.render_shape`: grey material, front and left/right 3/4 views, several
directional lights); CLIP's image encoder (with its projection) embeds the renders and the mean
is the candidate's embedding ``e_i`` (eq. 2). The prompt's embedding ``e_t`` comes from CLIP's
text encoder (with its projection). The score is relative, following AvatarCLIP (eq. 3)::

    s = λ_d · ẽ_i · ẽ_t  +  λ_r · (e_i − ē_i)~ · (e_t − ē_t)~

where ``x̃`` is ``x / ‖x‖`` (a zero vector stays zero), ``ē_t`` embeds the anchor text
``"the face"`` and ``ē_i`` is the mean embedding of the unvaried template (``β = 0``) rendered
the same way. torch and ``transformers`` are imported in the constructor (``pip install
'machlib[diffusion]'``); nothing is downloaded (``local_files_only``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
from jaxtyping import Float

from .._errors import WeightsMissingError
from ..geometry._select import render_shape
from ..geometry._variations import NUM_SHAPE_PARAMS
from ._torch import TorchMissingError, require_torch

__all__ = ["ClipShapeScorer", "relative_clip_score", "CLIP_ANCHOR_TEXT"]

_HINT = "pip install 'machlib[diffusion]'"
#: DreamFace's anchor text for the relative score (eq. 3).
CLIP_ANCHOR_TEXT = "the face"
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))


def _unit(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(n > eps, x / np.where(n > eps, n, 1.0), 0.0)


def relative_clip_score(
    image_embeddings: Float[np.ndarray, "n d"],
    text_embedding: Float[np.ndarray, "d"],
    anchor_image_embedding: Float[np.ndarray, "d"],
    anchor_text_embedding: Float[np.ndarray, "d"],
    *,
    lambda_d: float = 1.0,
    lambda_r: float = 1.0,
) -> Float[np.ndarray, "n"]:
    """DreamFace eq. 3: ``s = λ_d ẽ_i·ẽ_t + λ_r (e_i − ē_i)~·(e_t − ē_t)~`` for every candidate.

    Args:
        image_embeddings: ``(n, d)`` per-candidate image embeddings ``e_i`` (means over views and lights).
        text_embedding: ``(d,)`` prompt embedding ``e_t``.
        anchor_image_embedding: ``(d,)`` embedding ``ē_i`` of the mean mesh.
        anchor_text_embedding: ``(d,)`` embedding ``ē_t`` of the anchor text (``"the face"``).
        lambda_d: weight of the direct cosine similarity.
        lambda_r: weight of the relative (direction) similarity.

    Returns:
        ``(n,)`` float64 scores; a candidate equal to the anchor has ``s_r = 0``.

    Example:
        >>> import numpy as np
        >>> from machlib.interop import relative_clip_score
        >>> e = np.array([[1.0, 0.0], [1.0, 1.0]])
        >>> relative_clip_score(e, np.array([1.0, 1.0]), np.array([1.0, 0.0]), np.array([1.0, 0.0])).round(3).tolist()
        [0.707, 2.0]
    """
    e_i = np.asarray(image_embeddings, np.float64)
    e_t = np.asarray(text_embedding, np.float64)
    a_i = np.asarray(anchor_image_embedding, np.float64)
    a_t = np.asarray(anchor_text_embedding, np.float64)
    if e_i.ndim != 2 or e_t.shape != (e_i.shape[1],) or a_i.shape != e_t.shape or a_t.shape != e_t.shape:
        raise ValueError(f"relative_clip_score: expected (n, d) and three (d,) embeddings, got {e_i.shape}, "
                         f"{e_t.shape}, {a_i.shape}, {a_t.shape}")
    s_d = _unit(e_i) @ _unit(e_t)
    s_r = _unit(e_i - a_i) @ _unit(e_t - a_t)
    return float(lambda_d) * s_d + float(lambda_r) * s_r


def _check_folder(model_path) -> tuple[Path, Path]:
    path = Path(model_path).expanduser()
    what = ("a saved transformers CLIPModel: config.json, model.safetensors (or pytorch_model.bin), the "
            "tokenizer files (tokenizer.json, or vocab.json + merges.txt; a tokenizer/ sub-folder is used "
            "when present) and optionally preprocessor_config.json, e.g. a local copy of "
            "openai/clip-vit-large-patch14 as DreamFace uses; no model hub is contacted")
    if not path.is_dir():
        raise WeightsMissingError(
            f"ClipShapeScorer: no CLIP model folder at {str(path)!r}; pass the local folder of {what}")
    tok = path / "tokenizer" if (path / "tokenizer").is_dir() else path
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / w).is_file() for w in _WEIGHTS):
        missing.append(" or ".join(_WEIGHTS))
    if not any(all((tok / f).is_file() for f in files) for files in _TOKENIZER_SETS):
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if missing:
        raise WeightsMissingError(
            f"ClipShapeScorer: the CLIP folder {str(path)!r} is incomplete, missing {', '.join(missing)}; "
            f"it must hold {what}")
    return path, tok


class ClipShapeScorer:
    """DreamFace's CLIP image–text shape score, a :class:`~machlib.geometry.ShapeScorer`.

    Renders every candidate with :func:`~machlib.geometry.render_shape` (``views`` camera yaws ×
    ``lights`` directional lights, grey material), embeds the renders with CLIP's image encoder and
    visual projection, averages them per candidate (eq. 2), embeds the prompt with CLIP's text
    encoder and text projection, and scores with :func:`relative_clip_score` (eq. 3) against the
    anchor text ``"the face"`` and the anchor image embedding of the unvaried template. Candidate
    embeddings are cached (by parameters), so ranking one pool against several prompts renders
    it once.

    DreamFace renders 3 views × 10 lights; the default here is 3 × 4 to keep CPU runs short
    (``lights=10`` reproduces the paper). DreamFace does not publish ``λ_d, λ_r``: the defaults
    weigh both terms equally (``1, 1``); the direct term varies little between grey heads, so the
    relative term decides most rankings.

    Args:
        model_path: local folder of a saved ``transformers`` ``CLIPModel`` (see Raises).
        views: 1 (front), 3 (front and ±45° yaw, the paper's) or a sequence of yaws in degrees.
        lights: number of directional lights (:func:`~machlib.geometry.directional_lights`) or
            ``(L, 3)`` directions.
        size: render size in pixels (the image processor then resizes to the model's input).
        device: torch device string.
        template: the head to deform; ``None``: :func:`~machlib.geometry.default_template`.
        lambda_d: weight of the direct similarity ``s_d``.
        lambda_r: weight of the relative similarity ``s_r``.
        anchor_text: the anchor prompt.
        batch_size: images per forward pass.

    Raises:
        WeightsMissingError: the folder is missing or lacks ``config.json``, the weights or the
            tokenizer files (checked before any import).
        TorchMissingError: torch or ``transformers`` is not installed (``pip install 'machlib[diffusion]'``).

    Example:
        >>> from machlib.interop import ClipShapeScorer
        >>> try:
        ...     ClipShapeScorer("/no/such/clip")
        ... except FileNotFoundError as e:
        ...     print(type(e).__name__, str(e)[:46])
        WeightsMissingError ClipShapeScorer: no CLIP model folder at '/no/
    """

    def __init__(
        self,
        model_path: Union[str, os.PathLike],
        *,
        views: Union[int, Sequence[float]] = 3,
        lights: Union[int, np.ndarray] = 4,
        size: int = 224,
        device: str = "cpu",
        template=None,
        lambda_d: float = 1.0,
        lambda_r: float = 1.0,
        anchor_text: str = CLIP_ANCHOR_TEXT,
        batch_size: int = 16,
    ):
        self.model_path, tok_dir = _check_folder(model_path)
        if isinstance(views, (int, np.integer)) and not isinstance(views, bool):
            yaws = {1: (0.0,), 3: (0.0, -45.0, 45.0)}.get(int(views))
            if yaws is None:
                raise ValueError(f"ClipShapeScorer: views must be 1, 3 or a sequence of yaws, got {views!r}")
        else:
            yaws = tuple(float(y) for y in views)
            if not yaws:
                raise ValueError("ClipShapeScorer: views must not be empty")
        torch = require_torch("ClipShapeScorer")
        try:
            from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer
        except ImportError as e:
            raise TorchMissingError(f"ClipShapeScorer needs transformers, which is not installed; install it with: "
                                    f"{_HINT}") from e
        self._torch = torch
        self.yaws = yaws
        self.lights = lights
        self.size = int(size)
        self.device = device
        self.template = template
        self.lambda_d = float(lambda_d)
        self.lambda_r = float(lambda_r)
        self.anchor_text = str(anchor_text)
        self.batch_size = max(int(batch_size), 1)
        self.model = CLIPModel.from_pretrained(str(self.model_path), local_files_only=True)
        self.model.eval().requires_grad_(False).to(device)
        self.tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        if (self.model_path / "preprocessor_config.json").is_file():
            self.processor = CLIPImageProcessor.from_pretrained(str(self.model_path), local_files_only=True)
        else:  # CLIP's standard preprocessing at the model's input size
            n = int(self.model.config.vision_config.image_size)
            self.processor = CLIPImageProcessor(size={"shortest_edge": n}, crop_size={"height": n, "width": n})
        self._cache: dict[bytes, np.ndarray] = {}
        self._anchor_image = None

    # -- embeddings --------------------------------------------------------------------------

    def embed_images(self, images: np.ndarray) -> Float[np.ndarray, "n d"]:
        """CLIP image embeddings (visual projection, not normalised) of ``(n, H, W, 3)`` uint8 images.

        Example:
            >>> # ClipShapeScorer(path).embed_images(renders).shape == (len(renders), projection_dim)
        """
        torch = self._torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                batch = [np.asarray(im) for im in images[i:i + self.batch_size]]
                pix = self.processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
                pooled = self.model.vision_model(pixel_values=pix).pooler_output
                out.append(self.model.visual_projection(pooled).float().cpu().numpy())
        return np.concatenate(out, 0).astype(np.float64)

    def embed_texts(self, texts: list[str]) -> Float[np.ndarray, "n d"]:
        """CLIP text embeddings (text projection, not normalised) of ``texts``.

        Example:
            >>> # ClipShapeScorer(path).embed_texts(["the face"]).shape == (1, projection_dim)
        """
        torch = self._torch
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"ClipShapeScorer.embed_texts: texts must be a list of strings, got {texts!r}")
        toks = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            pooled = self.model.text_model(input_ids=toks["input_ids"].to(self.device),
                                           attention_mask=toks["attention_mask"].to(self.device)).pooler_output
            return self.model.text_projection(pooled).float().cpu().numpy().astype(np.float64)

    def renders(self, params: np.ndarray, *, human=None) -> np.ndarray:
        """The ``(views · lights, size, size, 3)`` uint8 renders of one candidate's parameters
        (``human``: a human candidate's :class:`~machlib.human.HumanParams`).

        Example:
            >>> # ClipShapeScorer(path, lights=2).renders(params).shape == (6, 224, 224, 3)
        """
        return render_shape(np.asarray(params, np.float32), template=self.template, yaws=self.yaws,
                            lights=self.lights, size=self.size, human=human)

    def candidate_embedding(self, params: np.ndarray, *, human=None) -> Float[np.ndarray, "d"]:
        """Eq. 2: the mean CLIP image embedding of a candidate's renders (cached by parameters).

        Example:
            >>> # ClipShapeScorer(path).candidate_embedding(np.zeros(NUM_SHAPE_PARAMS)).shape == (d,)
        """
        key = np.asarray(params, np.float32).tobytes()
        if human is not None:
            key += np.asarray(human.phenotype, np.float32).tobytes() + np.asarray(human.modifiers, np.float32).tobytes()
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self.embed_images(self.renders(params, human=human)).mean(0)
        return hit

    def anchor_image_embedding(self) -> Float[np.ndarray, "d"]:
        """``ē_i``: the mean embedding of the unvaried template (``β = 0``).

        Example:
            >>> # ClipShapeScorer(path).anchor_image_embedding().shape == (projection_dim,)
        """
        return self.candidate_embedding(np.zeros(NUM_SHAPE_PARAMS, np.float32))

    # -- the ShapeScorer protocol ------------------------------------------------------------

    def score(self, prompt: str, candidates, *, attributes=None) -> Float[np.ndarray, "n"]:
        """Eq. 3 scores ``(n,)`` of the candidates for ``prompt`` (``attributes`` is ignored).

        Example:
            >>> # ClipShapeScorer(path).score("a round face", candidate_pool()).shape == (len(pool),)
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"ClipShapeScorer.score: prompt must be a non-empty string, got {prompt!r}")
        candidates = list(candidates)
        if not candidates:
            return np.zeros(0)
        e_i = np.stack([self.candidate_embedding(c.params, human=getattr(c, "human", None)) for c in candidates])
        e_t, a_t = self.embed_texts([prompt, self.anchor_text])
        return relative_clip_score(e_i, e_t, self.anchor_image_embedding(), a_t,
                                   lambda_d=self.lambda_d, lambda_r=self.lambda_r)

    def __repr__(self) -> str:
        return (f"ClipShapeScorer({str(self.model_path)!r}, views={self.yaws}, lights={self.lights!r}, "
                f"size={self.size}, lambda_d={self.lambda_d}, lambda_r={self.lambda_r})")
