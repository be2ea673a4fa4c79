"""The LLM prompt parser (paper §2.1): a chat model answers with JSON, validated against the schema.

Make-A-Character asks an LLM (Qwen-14B) to read the prompt into facial attributes.
:class:`LLMParser` does that with any ``generate(messages) -> str`` callable (e.g. a
:class:`machlib.interop.ChatModel` loaded from a local folder); the reply must hold one JSON object
whose values are in :data:`~machlib.text.VOCABULARY`, otherwise the error is sent back to the model
and it tries again, up to ``max_retries`` times, before a :class:`~machlib.ParserError`.

This module imports no torch; a model path is loaded through :mod:`machlib.interop` on demand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, Union

from .._errors import InputError, ParserError
from ._parse import Ambiguity, ParseResult
from ._schema import FIELDS, VOCABULARY, FaceAttributes, canonical_value

__all__ = ["LLMParser", "llm_system_prompt", "read_llm_reply"]

_REPLY_KEYS = ("attributes", "unknown", "ambiguous", "evidence")
_QUOTE_CHARS = 300

_NOTES = {
    "wrinkles": "amount", "freckles": "amount", "moles": "amount", "makeup": "amount",
    "glasses": "'present' = glasses of unspecified type", "beard": "'present' = a beard of unspecified type",
    "moustache": "'present' = unspecified type", "bangs": "'present' = bangs of unspecified type",
    "lipstick_color": "'none' = no lipstick", "skin_tone": "lightest to darkest",
    "ancestry": "only as the description states it, e.g. 'a Black man', 'an Asian woman'",
    "hairstyle": "library styles; set it only when the prompt names one",
}


def llm_system_prompt() -> str:
    """The system message :class:`LLMParser` sends: the task, every field with its allowed values,
    and the reply format.

    Returns:
        The prompt text (deterministic; built from :data:`~machlib.text.VOCABULARY`).

    Example:
        >>> from machlib.text._llm import llm_system_prompt
        >>> p = llm_system_prompt()
        >>> "- eyebrow: willow-leaf | sword-like | straight" in p, '"attributes"' in p
        (True, True)
    """
    lines = [
        "You read an English description of a person and return their facial attributes as JSON.",
        "",
        "Fields and their allowed values (use these exact strings; leave out every field the "
        "description does not state):",
    ]
    for field in FIELDS:
        note = f"  ({_NOTES[field]})" if field in _NOTES else ""
        lines.append(f"- {field}: {' | '.join(VOCABULARY[field])}{note}")
    lines += [
        "",
        "Reply with exactly one JSON object and nothing else:",
        '{"attributes": {"<field>": "<value>", ...}, "unknown": ["<phrase>", ...], '
        '"ambiguous": [{"phrase": "<phrase>", "candidates": [["<field>", "<value>"], ...]}, ...], '
        '"evidence": {"<field>": "<phrase of the description>", ...}}',
        "- attributes: only fields and values from the list above;",
        "- unknown: phrases about the person's appearance that fit no field or value;",
        "- ambiguous: phrases that could mean several field values (leave those fields out of attributes);",
        "- evidence: for each attribute, the words of the description it comes from.",
        "",
        'Example: for "A young woman with long ginger hair and a sly grin" reply',
        '{"attributes": {"gender": "female", "age_group": "young adult", "hair_length": "long", '
        '"hair_color": "red"}, "unknown": ["sly grin"], "ambiguous": [], "evidence": {"gender": "woman", '
        '"age_group": "young", "hair_length": "long hair", "hair_color": "ginger hair"}}',
    ]
    return "\n".join(lines)


def _first_json_object(text: str) -> dict:
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            return obj
        start = text.find("{", start + 1)
    raise InputError("the reply contains no JSON object ({...})")


def _pair(item: Any, where: str, errors: list[str]) -> tuple[str, str] | None:
    if not (isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item)):
        errors.append(f"{where} must be a [field, value] pair of strings, got {json.dumps(item)}")
        return None
    field, value = item
    if field not in FIELDS:
        errors.append(f"{where}: unknown field {field!r}")
        return None
    canon = canonical_value(field, value)
    if canon is None:
        errors.append(f"{where}: value {value!r} is not allowed for {field!r}")
        return None
    return field, canon


def read_llm_reply(reply: str) -> ParseResult:
    """Read a model reply into a :class:`ParseResult`, or raise ``ValueError`` saying what is wrong.

    The first JSON object in ``reply`` is used (code fences and prose around it are ignored). It
    has the keys ``attributes`` (``{field: value}``), and optionally ``unknown`` (list of phrases),
    ``ambiguous`` (list of ``{"phrase", "candidates": [[field, value], ...]}`` or bare phrases) and
    ``evidence`` (``{field: phrase}``); an object without ``attributes`` whose keys are all fields
    is read as the attributes themselves. Values are matched case-insensitively, hyphens as spaces,
    and synonyms of :data:`~machlib.text.VOCABULARY` are canonicalised (``"grey"`` → ``"gray"``);
    ``null`` or ``""`` means unset. Unknown fields, values outside the vocabulary, other keys and
    wrong types are errors, all listed in one message.

    Args:
        reply: the model's text.

    Returns:
        The validated :class:`ParseResult` (evidence only for set fields).

    Raises:
        InputError: no JSON object, or one that does not follow the schema.

    Example:
        >>> from machlib.text._llm import read_llm_reply
        >>> r = read_llm_reply('Sure! ```json\\n{"attributes": {"hair_color": "Grey"}}\\n```')
        >>> r.attributes.to_dict()
        {'hair_color': 'gray'}
    """
    if not isinstance(reply, str):
        raise InputError(f"the reply must be text, got {type(reply).__name__}")
    obj = _first_json_object(reply)
    if "attributes" not in obj and obj and all(k in FIELDS for k in obj):
        obj = {"attributes": obj}
    errors: list[str] = []
    extra = [k for k in obj if k not in _REPLY_KEYS]
    if extra:
        errors.append(f"unexpected key(s) {extra}; the object has only {list(_REPLY_KEYS)}")
    attrs = obj.get("attributes")
    values: dict[str, str] = {}
    if not isinstance(attrs, dict):
        errors.append(f'"attributes" must be an object {{field: value}}, got {json.dumps(attrs)}')
    else:
        for field, value in attrs.items():
            if field not in FIELDS:
                errors.append(f"unknown field {field!r} (fields: {', '.join(FIELDS)})")
            elif value is None or value == "":
                continue
            elif not isinstance(value, str):
                errors.append(f"the value of {field!r} must be a string, got {json.dumps(value)}")
            elif canonical_value(field, value) is None:
                errors.append(f"value {value!r} is not allowed for {field!r} "
                              f"(allowed: {', '.join(VOCABULARY[field])})")
            else:
                values[field] = canonical_value(field, value)
    unknown = obj.get("unknown", [])
    if not isinstance(unknown, list) or not all(isinstance(u, str) for u in unknown):
        errors.append(f'"unknown" must be a list of strings, got {json.dumps(unknown)}')
        unknown = []
    ambiguous: list[Ambiguity] = []
    raw_amb = obj.get("ambiguous", [])
    if not isinstance(raw_amb, list):
        errors.append(f'"ambiguous" must be a list, got {json.dumps(raw_amb)}')
        raw_amb = []
    for i, item in enumerate(raw_amb):
        if isinstance(item, str):
            ambiguous.append(Ambiguity(item, ()))
        elif isinstance(item, dict) and isinstance(item.get("phrase"), str):
            cands = item.get("candidates", [])
            if not isinstance(cands, list):
                errors.append(f"ambiguous[{i}].candidates must be a list, got {json.dumps(cands)}")
                continue
            pairs = [_pair(c, f"ambiguous[{i}].candidates[{j}]", errors) for j, c in enumerate(cands)]
            ambiguous.append(Ambiguity(item["phrase"], tuple(dict.fromkeys(p for p in pairs if p is not None))))
        else:
            errors.append(f"ambiguous[{i}] must be a phrase or {{\"phrase\", \"candidates\"}}, got {json.dumps(item)}")
    evidence_raw = obj.get("evidence", {})
    if not isinstance(evidence_raw, dict):
        errors.append(f'"evidence" must be an object {{field: phrase}}, got {json.dumps(evidence_raw)}')
        evidence_raw = {}
    if errors:
        raise InputError("; ".join(errors))
    evidence = {f: evidence_raw[f] for f in FIELDS if f in values and isinstance(evidence_raw.get(f), str)}
    return ParseResult(attributes=FaceAttributes(**values), unknown=list(unknown), ambiguous=ambiguous,
                       evidence=evidence)


def _quote(text: str) -> str:
    text = text if isinstance(text, str) else repr(text)
    return repr(text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + " ...")


class LLMParser:
    """A :class:`~machlib.text.Parser` backed by a chat LLM that must answer with schema-valid JSON.

    The conversation is a system message (:func:`llm_system_prompt`: every field with its allowed
    values and the reply format) and the prompt as the user message. The reply is read with
    :func:`read_llm_reply` (first JSON object; fields and values checked against
    :data:`~machlib.text.VOCABULARY`, synonyms canonicalised). When it is invalid, the reply and
    a user message naming the errors are appended and the model asked again, at most
    ``max_retries`` times; then :class:`~machlib.ParserError` is raised with the last reason and
    the last reply (truncated to 300 characters). Phrases the model lists as unknown or ambiguous
    are reported in the :class:`~machlib.text.ParseResult`; evidence is kept where it gives some.

    Args:
        generate: ``generate(messages) -> str`` where ``messages`` is a list of
            ``{"role": "system" | "user" | "assistant", "content": str}``; or the local folder of a
            ``transformers`` chat model, loaded as :class:`machlib.interop.ChatModel` (needs
            ``pip install 'machlib[diffusion]'``).
        max_retries: how many times an invalid reply is sent back (0: one attempt only).
        max_new_tokens: generation limit, when ``generate`` is a folder.
        device: torch device, when ``generate`` is a folder.
        system_prompt: replaces :func:`llm_system_prompt`.

    Raises:
        InputError: ``max_retries`` < 0, or ``generate`` neither callable nor a path.
        WeightsMissingError: a model folder that does not exist or lacks files.

    Example:
        >>> from machlib.text import LLMParser
        >>> replies = iter(['{"attributes": {"hair_color": "purple hair"}}',
        ...                 '{"attributes": {"hair_color": "purple", "gender": "woman"}}'])
        >>> parser = LLMParser(lambda messages: next(replies))
        >>> parser.parse("a woman with purple hair").attributes.to_dict()
        {'gender': 'female', 'hair_color': 'purple'}
    """

    def __init__(
        self,
        generate: Union[Callable[[list[dict]], str], str, os.PathLike],
        *,
        max_retries: int = 2,
        max_new_tokens: int = 512,
        device: str = "cpu",
        system_prompt: str | None = None,
    ):
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InputError(f"LLMParser: max_retries must be an int >= 0, got {max_retries!r}")
        if isinstance(generate, (str, os.PathLike)):
            from ..interop._text_models import ChatModel

            generate = ChatModel(generate, max_new_tokens=max_new_tokens, device=device)
        elif not callable(generate):
            raise InputError(f"LLMParser: generate must be a callable or a model folder, got {type(generate).__name__}")
        if system_prompt is not None and not isinstance(system_prompt, str):
            raise InputError(f"LLMParser: system_prompt must be a str, got {type(system_prompt).__name__}")
        self.generate = generate
        self.max_retries = max_retries
        self.system_prompt = llm_system_prompt() if system_prompt is None else system_prompt

    def messages(self, prompt: str) -> list[dict]:
        """The first request for ``prompt``: the system message and the prompt as the user message.

        Example:
            >>> from machlib.text import LLMParser
            >>> [m["role"] for m in LLMParser(lambda m: "{}").messages("a boy")]
            ['system', 'user']
        """
        return [{"role": "system", "content": self.system_prompt},
                {"role": "user", "content": f"Description: {prompt}"}]

    def parse(self, prompt: str) -> ParseResult:
        """Ask the model for the attributes of ``prompt``, retrying on invalid replies.

        Args:
            prompt: free text in English.

        Returns:
            The :class:`~machlib.text.ParseResult` of the first valid reply.

        Raises:
            ParserError: no valid reply after ``1 + max_retries`` attempts (a ``ValueError``).
            TypeError: ``prompt`` is not a string.

        Example:
            >>> from machlib.text import LLMParser
            >>> p = LLMParser(lambda m: '{"attributes": {"beard": "goatee"}, "evidence": {"beard": "goatee"}}')
            >>> p.parse("a man with a goatee").evidence
            {'beard': 'goatee'}
        """
        if not isinstance(prompt, str):
            raise TypeError(f"LLMParser.parse: prompt must be a str, got {type(prompt).__name__}")
        messages = self.messages(prompt)
        reply, reason = "", ""
        for attempt in range(self.max_retries + 1):
            reply = self.generate([dict(m) for m in messages])
            if not isinstance(reply, str):
                raise TypeError(f"LLMParser: generate must return a str, got {type(reply).__name__}")
            try:
                return read_llm_reply(reply)
            except ValueError as e:
                reason = str(e)
            messages += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"Your reply is not valid: {reason}. Reply again with only the "
                                            "JSON object, using only the fields and values listed."},
            ]
        raise ParserError(f"LLMParser: no valid reply after {self.max_retries + 1} attempt(s): {reason}; "
                          f"last reply: {_quote(reply)}")

    def __repr__(self) -> str:
        return f"LLMParser({self.generate!r}, max_retries={self.max_retries})"
