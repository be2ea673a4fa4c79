"""Where the Stable Diffusion and ControlNet weights live: flags, a config file, environment variables.

Portrait generation (:func:`~machlib.interop.load_portrait_pipeline`) needs three local folders
in the diffusers layout, none of which ship with machlib:

* ``base``: a Stable Diffusion 1.5-style text-to-image model (``model_index.json`` with ``unet/``,
  ``vae/``, ``text_encoder/``, ``tokenizer/`` and ``scheduler/`` sub-folders), e.g. a local copy
  of ``stable-diffusion-v1-5/stable-diffusion-v1-5`` or any SD 1.5 fine-tune saved with
  ``save_pretrained``;
* ``controlnet_openpose``: the OpenPose ControlNet for SD 1.5 (``config.json`` and weights), e.g.
  ``lllyasviel/control_v11p_sd15_openpose`` or ``lllyasviel/sd-controlnet-openpose``;
* ``controlnet_canny``: the Canny ControlNet for SD 1.5, e.g. ``lllyasviel/control_v11p_sd15_canny``
  or ``lllyasviel/sd-controlnet-canny``.

:func:`resolve_diffusion_weights` finds each folder with this precedence: a keyword argument (the
CLI's ``--sd-model``, ``--controlnet-openpose``, ``--controlnet-canny``) over a config file
(``--weights-config FILE`` or ``$MACHLIB_DIFFUSION_CONFIG``) over the environment variables
``MACHLIB_SD_MODEL``, ``MACHLIB_CONTROLNET_OPENPOSE`` and ``MACHLIB_CONTROLNET_CANNY``. A config
file is TOML (``.toml``) or JSON (``.json``) with any of the keys ``base``,
``controlnet_openpose`` and ``controlnet_canny``; relative paths in it are resolved against the
file's folder. A config file looks like::

    # machlib-diffusion.toml
    base = "sd15"                               # relative to this file's folder
    controlnet_openpose = "/models/control_v11p_sd15_openpose"
    controlnet_canny = "~/models/control_v11p_sd15_canny"

This module reads only JSON configs and folder listings: it imports neither torch nor diffusers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Union

from .._errors import InputError, WeightsMissingError

__all__ = [
    "DiffusionWeights",
    "DIFFUSION_SLOTS",
    "resolve_diffusion_weights",
    "diffusion_weights_status",
    "describe_diffusion_weights",
]


class _Slot(NamedTuple):
    flag: str
    env: str
    what: str
    fits: str


#: The three weight folders: name → (CLI flag, environment variable, description, checkpoints that fit).
_SLOTS: dict[str, _Slot] = {
    "base": _Slot(
        "--sd-model", "MACHLIB_SD_MODEL", "Stable Diffusion base model",
        "an SD 1.5-style base in diffusers format, e.g. stable-diffusion-v1-5/stable-diffusion-v1-5 "
        "or an SD 1.5 fine-tune saved with save_pretrained",
    ),
    "controlnet_openpose": _Slot(
        "--controlnet-openpose", "MACHLIB_CONTROLNET_OPENPOSE", "OpenPose ControlNet",
        "the OpenPose ControlNet for SD 1.5, e.g. lllyasviel/control_v11p_sd15_openpose or "
        "lllyasviel/sd-controlnet-openpose",
    ),
    "controlnet_canny": _Slot(
        "--controlnet-canny", "MACHLIB_CONTROLNET_CANNY", "Canny ControlNet",
        "the Canny ControlNet for SD 1.5, e.g. lllyasviel/control_v11p_sd15_canny or "
        "lllyasviel/sd-controlnet-canny",
    ),
}

#: The slots of :class:`DiffusionWeights`, in order.
DIFFUSION_SLOTS: tuple[str, ...] = tuple(_SLOTS)

_CONFIG_ENV = "MACHLIB_DIFFUSION_CONFIG"
_CONFIG_FLAG = "--weights-config"
# sub-folder -> config file that a diffusers Stable Diffusion folder has
_BASE_PARTS = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": None,
    "scheduler": "scheduler_config.json",
}
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
#: Largest weights config read, bytes (it holds three paths).
_MAX_CONFIG_BYTES = 2**20


@dataclasses.dataclass(frozen=True)
class DiffusionWeights:
    """The three local weight folders of portrait generation (see the module docstring).

    Build it with :func:`resolve_diffusion_weights`, which checks the folders; constructing it
    directly checks nothing until :func:`~machlib.interop.load_portrait_pipeline` runs.

    Attributes:
        base: Stable Diffusion 1.5-style folder in the diffusers layout (``model_index.json``).
        controlnet_openpose: OpenPose ControlNet folder (``config.json`` and weights).
        controlnet_canny: Canny ControlNet folder (``config.json`` and weights).

    Example:
        >>> from machlib.interop import DiffusionWeights
        >>> DiffusionWeights("sd15", "pose", "canny").base.name
        'sd15'
    """

    # str or os.PathLike on construction; a Path (``~`` expanded) afterwards
    base: Union[str, os.PathLike]
    controlnet_openpose: Union[str, os.PathLike]
    controlnet_canny: Union[str, os.PathLike]

    def __post_init__(self):
        for name in DIFFUSION_SLOTS:
            value = getattr(self, name)
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"DiffusionWeights: {name} must be a str or os.PathLike, got {type(value).__name__}")
            object.__setattr__(self, name, Path(value).expanduser())


class _Found(NamedTuple):
    path: Path | None
    source: str | None  # "--sd-model", "config FILE", "$MACHLIB_SD_MODEL"


def _as_path(value, what: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value.strip()):
        raise InputError(f"resolve_diffusion_weights: {what} must be a non-empty path, got {value!r}")
    return Path(value).expanduser()


def _toml():
    try:
        import tomllib  # Python ≥ 3.11
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise InputError(
                "resolve_diffusion_weights: reading a TOML weights config needs Python ≥ 3.11 (or the tomli "
                "package); use a .json config instead"
            ) from None
    return tomllib


def _read_config(path: Path) -> dict[str, Path]:
    """The slots a config file sets, as absolute-or-config-relative paths."""
    if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read
        raise InputError(f"resolve_diffusion_weights: the weights config {path} is not a regular file")
    if not path.is_file():
        raise WeightsMissingError(
            f"resolve_diffusion_weights: the weights config file {path} does not exist (given by "
            f"{_CONFIG_FLAG} or ${_CONFIG_ENV}); it should be a TOML or JSON file with the keys "
            f"{', '.join(DIFFUSION_SLOTS)}"
        )
    suffix = path.suffix.lower()
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        raise InputError(f"resolve_diffusion_weights: the weights config {path} is larger than "
                         f"{_MAX_CONFIG_BYTES // 2**20} MiB; it should hold three paths")
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = _toml().loads(text)
        else:
            raise InputError(
                f"resolve_diffusion_weights: the weights config {path} must end in .toml or .json, got {suffix or 'no suffix'!r}"
            )
    except OSError as e:
        raise InputError(f"resolve_diffusion_weights: cannot read the weights config {path}: {e.strerror or e}") \
            from None
    except (ValueError, RecursionError) as e:  # JSON/TOML/UTF-8 decoding errors are ValueErrors; deep nesting
        if isinstance(e, InputError):
            raise
        raise InputError(f"resolve_diffusion_weights: cannot read the weights config {path}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from None
    if not isinstance(data, dict):
        raise InputError(f"resolve_diffusion_weights: the weights config {path} must hold a table/object of paths")
    unknown = sorted(set(data) - set(DIFFUSION_SLOTS))
    if unknown:
        shown = [k if len(k) <= 40 else k[:39] + "…" for k in unknown[:5]]  # hostile files: keep it one line
        raise InputError(
            f"resolve_diffusion_weights: unknown key(s) {shown}{' …' if len(unknown) > 5 else ''} in the weights "
            f"config {path}; "
            f"the keys are {', '.join(DIFFUSION_SLOTS)}"
        )
    out = {}
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            got = repr(value) if len(repr(value)) <= 80 else repr(value)[:79] + "…"
            raise InputError(
                f"resolve_diffusion_weights: {key} in the weights config {path} must be a non-empty path string, got {got}"
            )
        p = Path(value).expanduser()
        out[key] = p if p.is_absolute() else path.parent / p
    return out


def _locate(flags: Mapping, config, environ: Mapping | None) -> dict[str, _Found]:
    env = os.environ if environ is None else environ
    config_source = None
    if config is not None:
        config_path, config_source = _as_path(config, "config"), _CONFIG_FLAG
    elif env.get(_CONFIG_ENV, "").strip():
        config_path, config_source = Path(env[_CONFIG_ENV]).expanduser(), f"${_CONFIG_ENV}"
    else:
        config_path = None
    from_config = _read_config(config_path) if config_path is not None else {}
    found = {}
    for name, slot in _SLOTS.items():
        if flags.get(name) is not None:
            found[name] = _Found(_as_path(flags[name], name), slot.flag)
        elif name in from_config:
            found[name] = _Found(from_config[name], f"{config_path} via {config_source}")
        elif env.get(slot.env, "").strip():
            found[name] = _Found(Path(env[slot.env]).expanduser(), f"${slot.env}")
        else:
            found[name] = _Found(None, None)
    return found


def _has_weights(folder: Path) -> bool:
    return any(p.suffix in _WEIGHT_SUFFIXES or p.name.endswith(".index.json") for p in folder.iterdir())


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _problem(name: str, path: Path | None) -> str | None:
    """Why a slot's folder is unusable, or None when it looks right."""
    if path is None:
        return "not given"
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a folder"
    if name == "base":
        index = _json(path / "model_index.json")
        if index is None:
            return f"{path} has no readable model_index.json (not a diffusers Stable Diffusion folder)"
        if "text_encoder_2" in index or "transformer" in index:
            return (f"{path} holds a {index.get('_class_name', 'different')} model; an SD 1.5-style base "
                    "(one text encoder, a UNet) is needed")
        for part, cfg in _BASE_PARTS.items():
            sub = path / part
            if not sub.is_dir():
                return f"{path} has no {part}/ folder"
            if cfg is not None and not (sub / cfg).is_file():
                return f"{path} has no {part}/{cfg}"
            if part in ("unet", "vae", "text_encoder") and not _has_weights(sub):
                return f"{path} has no weights (.safetensors or .bin) in {part}/"
        return None
    config = _json(path / "config.json")
    if config is None:
        return f"{path} has no readable config.json (not a diffusers ControlNet folder)"
    cls = config.get("_class_name", "ControlNetModel")
    if cls != "ControlNetModel":
        return f"{path} holds a {cls}, not a ControlNetModel"
    if not _has_weights(path):
        return f"{path} has no weights (.safetensors or .bin)"
    return None


def _mismatch(found: dict[str, Path]) -> dict[str, str]:
    """ControlNets whose cross-attention width differs from the base UNet's (e.g. SD 2.x vs 1.5)."""
    unet = _json(found["base"] / "unet" / "config.json") or {}
    want = unet.get("cross_attention_dim")
    out = {}
    for name in ("controlnet_openpose", "controlnet_canny"):
        got = (_json(found[name] / "config.json") or {}).get("cross_attention_dim")
        if want is not None and got is not None and got != want:
            out[name] = (f"{found[name]} has cross_attention_dim {got} but the base UNet has {want}: "
                         "the ControlNet was trained for another Stable Diffusion version")
    return out


class _Status(NamedTuple):
    path: Path | None
    source: str | None
    problem: str | None


def _statuses(flags: Mapping, config, environ) -> dict[str, _Status]:
    found = _locate(flags, config, environ)
    status = {n: _Status(f.path, f.source, _problem(n, f.path)) for n, f in found.items()}
    if all(s.problem is None for s in status.values()):
        for name, problem in _mismatch({n: s.path for n, s in status.items()}).items():
            status[name] = status[name]._replace(problem=problem)
    return status


def _howto() -> str:
    lines = ["Provide each folder with a flag, a config file or an environment variable "
             "(flags win over the config file, the config file over the environment):"]
    for name, slot in _SLOTS.items():
        lines.append(f"  {name}: {slot.flag} DIR or {slot.env}=DIR; {slot.fits}")
    lines.append(f"  or all three in a TOML/JSON file with the keys {', '.join(DIFFUSION_SLOTS)} (relative paths "
                 f"from the file's folder): {_CONFIG_FLAG} FILE or {_CONFIG_ENV}=FILE")
    lines.append("Folders are read locally only (diffusers layout, as save_pretrained writes it); machlib downloads nothing.")
    return "\n".join(lines)


def _check(status: dict[str, _Status], owner: str) -> None:
    bad = {n: s for n, s in status.items() if s.problem is not None}
    if not bad:
        return
    lines = [f"{owner}: portrait generation needs three local weight folders; "
             f"{len(bad)} {'is' if len(bad) == 1 else 'are'} missing or unusable:"]
    for name, s in bad.items():
        origin = f" (from {s.source})" if s.source else ""
        lines.append(f"  - {name} ({_SLOTS[name].what}): {s.problem}{origin}")
    lines.append(_howto())
    raise WeightsMissingError("\n".join(lines))


def resolve_diffusion_weights(
    *,
    base: str | os.PathLike | None = None,
    controlnet_openpose: str | os.PathLike | None = None,
    controlnet_canny: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> DiffusionWeights:
    """Find and check the Stable Diffusion and ControlNet folders (flags > config file > environment).

    Each slot takes the first of: its keyword argument; its key in the config file (``config``,
    else ``$MACHLIB_DIFFUSION_CONFIG``); its environment variable (``MACHLIB_SD_MODEL``,
    ``MACHLIB_CONTROLNET_OPENPOSE``, ``MACHLIB_CONTROLNET_CANNY``). ``~`` is expanded; relative
    paths in the config file are taken from the file's folder, others from the working directory.

    A folder is accepted when it looks like what diffusers' ``from_pretrained`` reads: the base
    has ``model_index.json`` and ``unet/``, ``vae/``, ``text_encoder/`` (with configs and weights),
    ``tokenizer/`` and ``scheduler/``, and is not an SDXL/transformer model; a ControlNet has a
    ``config.json`` of a ``ControlNetModel`` and a ``.safetensors``/``.bin`` weights file; and both
    ControlNets have the base UNet's ``cross_attention_dim`` (768 for SD 1.5).

    Args:
        base: the Stable Diffusion folder (CLI ``--sd-model``).
        controlnet_openpose: the OpenPose ControlNet folder (CLI ``--controlnet-openpose``).
        controlnet_canny: the Canny ControlNet folder (CLI ``--controlnet-canny``).
        config: a TOML (``.toml``) or JSON (``.json``) file with the keys ``base``,
            ``controlnet_openpose``, ``controlnet_canny`` (CLI ``--weights-config``).
        environ: the environment to read; default :data:`os.environ`.

    Returns:
        The checked :class:`DiffusionWeights`.

    Raises:
        WeightsMissingError: a folder (or the named config file) is missing or lacks the expected
            files; the message lists every such slot, where its path came from, and how to provide
            it (flags, config file, environment variables, the public checkpoints that fit).
        InputError: an unreadable config file, an unknown key in it, or a non-path value.

    Example:
        >>> from machlib.interop import resolve_diffusion_weights
        >>> try:
        ...     resolve_diffusion_weights(environ={})
        ... except FileNotFoundError as e:
        ...     print(str(e).splitlines()[1])
          - base (Stable Diffusion base model): not given
    """
    status = _statuses(
        {"base": base, "controlnet_openpose": controlnet_openpose, "controlnet_canny": controlnet_canny},
        config, environ,
    )
    _check(status, "resolve_diffusion_weights")
    return DiffusionWeights(**{n: s.path for n, s in status.items()})


def diffusion_weights_status(
    *,
    base: str | os.PathLike | None = None,
    controlnet_openpose: str | os.PathLike | None = None,
    controlnet_canny: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str | None]]:
    """Where each weight folder would come from and whether it is usable, without raising for it.

    Same arguments and precedence as :func:`resolve_diffusion_weights`.

    Returns:
        ``{slot: {"path": str | None, "source": str | None, "problem": str | None}}`` for the
        slots ``base``, ``controlnet_openpose``, ``controlnet_canny``; ``problem`` is ``None``
        for a usable folder. ``source`` names the flag, config file or environment variable.

    Raises:
        WeightsMissingError, InputError: only for a missing or malformed config file.

    Example:
        >>> from machlib.interop import diffusion_weights_status
        >>> diffusion_weights_status(environ={"MACHLIB_SD_MODEL": "/no/sd"})["base"]
        {'path': '/no/sd', 'source': '$MACHLIB_SD_MODEL', 'problem': '/no/sd does not exist'}
    """
    status = _statuses(
        {"base": base, "controlnet_openpose": controlnet_openpose, "controlnet_canny": controlnet_canny},
        config, environ,
    )
    return {n: {"path": None if s.path is None else str(s.path), "source": s.source, "problem": s.problem}
            for n, s in status.items()}


def describe_diffusion_weights(
    *,
    base: str | os.PathLike | None = None,
    controlnet_openpose: str | os.PathLike | None = None,
    controlnet_canny: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """A plain-text report of the three weight folders (found / missing, and from where), for the CLI.

    Same arguments and precedence as :func:`resolve_diffusion_weights`. When a slot is not usable
    the report ends with how to provide it.

    Returns:
        One line per slot (``"base: found /models/sd15 (from --sd-model)"`` or
        ``"base: MISSING (not given)"``), then the instructions if anything is missing.

    Example:
        >>> from machlib.interop import describe_diffusion_weights
        >>> print(describe_diffusion_weights(environ={}).splitlines()[0])
        base (Stable Diffusion base model): MISSING (not given)
    """
    status = _statuses(
        {"base": base, "controlnet_openpose": controlnet_openpose, "controlnet_canny": controlnet_canny},
        config, environ,
    )
    lines = []
    for name, s in status.items():
        origin = f" (from {s.source})" if s.source else ""
        head = f"{name} ({_SLOTS[name].what}): "
        lines.append(head + (f"found {s.path}{origin}" if s.problem is None else f"MISSING ({s.problem}){origin}"))
    if any(s.problem is not None for s in status.values()):
        lines.append(_howto())
    return "\n".join(lines)


def _validate(weights: DiffusionWeights, owner: str) -> None:
    """Raise :class:`WeightsMissingError` unless every folder of ``weights`` is usable."""
    status = {n: _Status(getattr(weights, n), "DiffusionWeights", _problem(n, getattr(weights, n)))
              for n in DIFFUSION_SLOTS}
    if all(s.problem is None for s in status.values()):
        for name, problem in _mismatch({n: s.path for n, s in status.items()}).items():
            status[name] = status[name]._replace(problem=problem)
    _check(status, owner)
