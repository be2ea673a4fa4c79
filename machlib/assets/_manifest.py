"""Tagged asset manifests (Make-A-Character §2.6): :class:`Asset`, :class:`AssetManifest`,
:func:`load_manifest`, :func:`save_manifest` and :func:`builtin_manifest`.

A manifest is a JSON (or TOML) file next to the assets it describes::

    {"version": 1,
     "assets": [{"id": "bob", "kind": "hairstyle", "label": "chin-length bob with bangs",
                 "tags": ["bob", "bangs"], "path": "hair/bob.data", "thumbnail": "hair/bob.png"}]}

Paths are POSIX-style, relative to the manifest's folder (the library root) and must stay inside
it: absolute paths, ``..`` escapes and symbolic links that resolve outside the root are rejected.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Optional, Union

from .._errors import InputError

__all__ = ["ASSET_KINDS", "Asset", "AssetManifest", "load_manifest", "save_manifest", "builtin_manifest"]

#: The asset kinds a manifest may hold.
ASSET_KINDS: tuple[str, ...] = ("hairstyle", "glasses", "garment", "iris", "eyelashes", "beard")

_MANIFEST_VERSION = 1
_TOP_FIELDS = ("version", "assets")
_ASSET_FIELDS = ("id", "kind", "label", "tags", "path", "thumbnail")
_REQUIRED_ASSET_FIELDS = ("id", "kind", "label", "path")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _check_relative(where: str, name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {name} must be a non-empty string, got {value!r}")
    if "\\" in value or PurePosixPath(value).is_absolute() or PureWindowsPath(value).drive:
        raise ValueError(f"{where}: {name} must be a relative POSIX path, got absolute or Windows path {value!r}")
    if ".." in PurePosixPath(value).parts:
        raise ValueError(f"{where}: {name} must stay inside the library root, got {value!r} (contains '..')")


@dataclass(frozen=True)
class Asset:
    """One tagged asset: a hairstyle, glasses, a garment, an iris texture, eyelashes or a beard.

    Attributes:
        id: unique identifier (letters, digits, ``_``, ``-``, ``.``; starts with a letter or digit).
        kind: one of :data:`ASSET_KINDS`.
        label: a short English description, the text that prompts are matched against.
        path: the asset file, a POSIX path relative to the library root (no ``..``, not absolute).
        tags: extra descriptive words (a tuple of strings), also used for matching (keyword-only).
        thumbnail: an optional preview image, relative like ``path`` (keyword-only).

    Raises:
        ValueError: a field has the wrong type or value (the message names the field).

    Example:
        >>> from machlib.assets import Asset
        >>> a = Asset("bob", "hairstyle", "chin-length bob with bangs", "hair/bob.data", tags=("bob", "bangs"))
        >>> a.kind, a.tags
        ('hairstyle', ('bob', 'bangs'))
        >>> Asset("x", "hat", "a hat", "x.glb")
        Traceback (most recent call last):
        ...
        ValueError: Asset 'x': kind must be one of hairstyle, glasses, garment, iris, eyelashes, beard, got 'hat'
    """

    id: str
    kind: str
    label: str
    path: str
    tags: tuple[str, ...] = field(default=(), kw_only=True)
    thumbnail: Optional[str] = field(default=None, kw_only=True)

    def __post_init__(self):
        if not isinstance(self.id, str) or not _ID_RE.match(self.id):
            raise ValueError(f"Asset: id must match {_ID_RE.pattern}, got {self.id!r}")
        where = f"Asset {self.id!r}"
        if self.kind not in ASSET_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(ASSET_KINDS)}, got {self.kind!r}")
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"{where}: label must be a non-empty string, got {self.label!r}")
        if not isinstance(self.tags, tuple) or not all(isinstance(t, str) and t.strip() for t in self.tags):
            raise ValueError(f"{where}: tags must be a tuple of non-empty strings, got {self.tags!r}")
        _check_relative(where, "path", self.path)
        if self.thumbnail is not None:
            _check_relative(where, "thumbnail", self.thumbnail)

    @property
    def text(self) -> str:
        """The text matched against prompts: the label followed by the tags not already in it.

        Example:
            >>> from machlib.assets import Asset
            >>> Asset("bob", "hairstyle", "bob", "hair/bob.data", tags=("bob", "bangs")).text
            'bob; bangs'
        """
        low = self.label.lower()
        extra = [t for t in self.tags if t.lower() not in low]
        return "; ".join([self.label, *extra]) if extra else self.label

    def to_dict(self) -> dict[str, Any]:
        """The asset as a JSON-ready dictionary (``thumbnail`` left out when absent).

        Example:
            >>> from machlib.assets import Asset
            >>> Asset("bob", "hairstyle", "bob", "hair/bob.data").to_dict()
            {'id': 'bob', 'kind': 'hairstyle', 'label': 'bob', 'tags': [], 'path': 'hair/bob.data'}
        """
        d: dict[str, Any] = {"id": self.id, "kind": self.kind, "label": self.label, "tags": list(self.tags),
                             "path": self.path}
        if self.thumbnail is not None:
            d["thumbnail"] = self.thumbnail
        return d


@dataclass(frozen=True)
class AssetManifest:
    """A versioned collection of :class:`Asset` with unique ids.

    Attributes:
        assets: the assets, a tuple in file order.
        version: the manifest format version (only ``1`` exists; keyword-only).
        root: the library root that asset paths are relative to (the manifest's folder when
            loaded; ``None`` when built in memory; keyword-only). Not part of equality.

    Raises:
        ValueError: duplicate ids, an unsupported version, or non-:class:`Asset` entries.

    Example:
        >>> from machlib.assets import Asset, AssetManifest
        >>> m = AssetManifest((Asset("bob", "hairstyle", "bob", "hair/bob.data"),
        ...                    Asset("round", "glasses", "round glasses", "glasses/round.glb")))
        >>> [a.id for a in m.of_kind("glasses")], m["bob"].path
        (['round'], 'hair/bob.data')
    """

    assets: tuple[Asset, ...]
    version: int = field(default=_MANIFEST_VERSION, kw_only=True)
    root: Optional[Path] = field(default=None, compare=False, kw_only=True)

    def __post_init__(self):
        if self.version != _MANIFEST_VERSION:
            raise ValueError(f"AssetManifest: version must be {_MANIFEST_VERSION}, got {self.version!r}")
        if not isinstance(self.assets, tuple) or not all(isinstance(a, Asset) for a in self.assets):
            raise ValueError("AssetManifest: assets must be a tuple of Asset")
        seen: set[str] = set()
        for a in self.assets:
            if a.id in seen:
                raise ValueError(f"AssetManifest: duplicate asset id {a.id!r}")
            seen.add(a.id)

    def __len__(self) -> int:
        return len(self.assets)

    def __iter__(self):
        return iter(self.assets)

    def __getitem__(self, asset_id: str) -> Asset:
        for a in self.assets:
            if a.id == asset_id:
                return a
        raise KeyError(asset_id)

    def of_kind(self, kind: str) -> tuple[Asset, ...]:
        """The assets of one kind, in manifest order.

        Raises:
            ValueError: ``kind`` is not in :data:`ASSET_KINDS`.

        Example:
            >>> from machlib.assets import builtin_manifest
            >>> len(builtin_manifest().of_kind("hairstyle"))
            12
        """
        if kind not in ASSET_KINDS:
            raise ValueError(f"AssetManifest.of_kind: kind must be one of {', '.join(ASSET_KINDS)}, got {kind!r}")
        return tuple(a for a in self.assets if a.kind == kind)

    def resolve(self, asset: Union[Asset, str]) -> Path:
        """The absolute file path of an asset (by :class:`Asset` or id), under :attr:`root`.

        Raises:
            ValueError: the manifest has no root (it was built in memory).

        Example:
            >>> from pathlib import Path
            >>> from machlib.assets import builtin_manifest
            >>> builtin_manifest(root="/lib").resolve("bob") == Path("/lib/hair/bob.data").resolve()
            True
        """
        if self.root is None:
            raise ValueError("AssetManifest.resolve: the manifest has no root (pass root= or load it from a file)")
        a = self[asset] if isinstance(asset, str) else asset
        return (Path(self.root) / a.path).resolve()


#: Largest manifest read, bytes.
_MAX_MANIFEST_BYTES = 64 * 2**20


def _fail(path: Path, where: str, msg: str) -> InputError:
    """The one-line error of a bad manifest (an :class:`~machlib.InputError`, so a ValueError too)."""
    return InputError(f"load_manifest: {path}: {where}{msg}")


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_inside(root: Path, rel: str, *, manifest_path: Path, where: str, name: str, check_files: bool) -> None:
    try:
        real_root = root.resolve()
        target = (root / rel).resolve()  # follows symbolic links
    except (OSError, RuntimeError, ValueError) as e:  # a symbolic-link loop, a NUL byte
        raise _fail(manifest_path, where, f"{name} {_short(rel)} cannot be resolved ({e})") from None
    if target != real_root and real_root not in target.parents:
        raise _fail(manifest_path, where, f"{name} {rel!r} resolves outside the library root {real_root} "
                                          f"(to {target}; a symbolic link pointing outside?)")
    if check_files and not target.is_file():
        raise _fail(manifest_path, where, f"{name} {rel!r} does not exist (looked for {target})")


def load_manifest(path: Union[str, os.PathLike], *, check_files: bool = False) -> AssetManifest:
    """Read and validate an asset manifest (``.json``, or ``.toml`` with ``[[assets]]`` tables).

    Args:
        path: the manifest file; its folder is the library root.
        check_files: also require every ``path`` and ``thumbnail`` to be an existing file.

    Returns:
        The :class:`AssetManifest`, with :attr:`~AssetManifest.root` set to the manifest's folder.

    Raises:
        InputError: (a ValueError) the file is not a regular file or cannot be read or parsed, or
            has an unknown or missing field, a field of the wrong type, a duplicate id, an unknown
            kind, an absolute path, a ``..`` escape, a symbolic link resolving outside the root,
            or (``check_files``) a missing file. The message names the file and field.
        FileNotFoundError: the manifest itself does not exist.

    Example:
        >>> import json, tempfile, pathlib
        >>> from machlib.assets import load_manifest
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "m.json").write_text(json.dumps({"version": 1, "assets": [
        ...     {"id": "bob", "kind": "hairstyle", "label": "bob with bangs", "path": "hair/bob.data"}]}))
        >>> load_manifest(d / "m.json")["bob"].label
        'bob with bangs'
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_manifest: no such manifest {path}")
    try:
        if not path.is_file():  # a folder, or a FIFO that would block the read
            raise _fail(path, "", "not a regular file")
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise _fail(path, "", f"larger than {_MAX_MANIFEST_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except OSError as e:
        raise _fail(path, "", f"cannot read: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # JSON/TOML/UTF-8 decoding errors are ValueErrors; deep nesting
        if isinstance(e, InputError):
            raise
        raise _fail(path, "", f"cannot parse: {_short(str(e), 200)}") from None
    if not isinstance(data, dict):
        raise _fail(path, "", "the top level must be an object")
    for k in data:
        if k not in _TOP_FIELDS:
            raise _fail(path, "", f"unknown top-level field {k!r} (allowed: {', '.join(_TOP_FIELDS)})")
    if "version" not in data:
        raise _fail(path, "", "missing field 'version'")
    if isinstance(data["version"], bool) or data["version"] != _MANIFEST_VERSION:
        raise _fail(path, "", f"field 'version' must be {_MANIFEST_VERSION}, got {data['version']!r}")
    entries = data.get("assets", [])
    if not isinstance(entries, list):
        raise _fail(path, "", "field 'assets' must be a list")
    root = path.parent
    assets = []
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        where = f"assets[{i}]: "
        if not isinstance(e, dict):
            raise _fail(path, where, "each asset must be an object")
        for k in e:
            if k not in _ASSET_FIELDS:
                raise _fail(path, where, f"unknown field {k!r} (allowed: {', '.join(_ASSET_FIELDS)})")
        for k in _REQUIRED_ASSET_FIELDS:
            if k not in e:
                raise _fail(path, where, f"missing field {k!r}")
            if not isinstance(e[k], str):
                raise _fail(path, where, f"field {k!r} must be a string, got {type(e[k]).__name__} {_short(e[k])}")
        if e.get("thumbnail") is not None and not isinstance(e["thumbnail"], str):
            raise _fail(path, where, f"field 'thumbnail' must be a string, got {_short(e['thumbnail'])}")
        tags = e.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _fail(path, where, f"field 'tags' must be a list of strings, got {_short(tags)}")
        if e["id"] in seen:
            raise _fail(path, where, f"field 'id': duplicate id {e['id']!r} (first at assets[{seen[e['id']]}])")
        try:
            a = Asset(e["id"], e["kind"], e["label"], e["path"], tags=tuple(tags), thumbnail=e.get("thumbnail"))
        except ValueError as err:
            raise _fail(path, where, str(err)) from None
        seen[a.id] = i
        where = f"assets[{i}] ({a.id}): "
        _check_inside(root, a.path, manifest_path=path, where=where, name="path", check_files=check_files)
        if a.thumbnail is not None:
            _check_inside(root, a.thumbnail, manifest_path=path, where=where, name="thumbnail",
                          check_files=check_files)
        assets.append(a)
    return AssetManifest(tuple(assets), version=data["version"], root=root)


def _toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=True)  # a JSON string is a valid TOML basic string


def _to_toml(manifest: AssetManifest) -> str:
    lines = [f"version = {manifest.version}", ""]
    for a in manifest.assets:
        lines.append("[[assets]]")
        for k, v in a.to_dict().items():
            val = "[" + ", ".join(_toml_string(t) for t in v) + "]" if isinstance(v, list) else _toml_string(v)
            lines.append(f"{k} = {val}")
        lines.append("")
    return "\n".join(lines)


def save_manifest(path: Union[str, os.PathLike], manifest: AssetManifest) -> Path:
    """Write a manifest atomically (a temporary file in the same folder, then a rename).

    The format follows the suffix: ``.toml`` writes TOML, anything else JSON (indented, UTF-8).

    Args:
        path: the destination file; its folder must exist and is the library root when reloaded.
        manifest: the :class:`AssetManifest` to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``manifest`` is not an :class:`AssetManifest`.

    Example:
        >>> import tempfile, pathlib
        >>> from machlib.assets import builtin_manifest, load_manifest, save_manifest
        >>> p = save_manifest(pathlib.Path(tempfile.mkdtemp()) / "assets.json", builtin_manifest())
        >>> load_manifest(p) == builtin_manifest()
        True
    """
    if not isinstance(manifest, AssetManifest):
        raise ValueError(f"save_manifest: manifest must be an AssetManifest, got {type(manifest).__name__}")
    path = Path(path)
    if path.suffix.lower() == ".toml":
        text = _to_toml(manifest)
    else:
        text = json.dumps({"version": manifest.version, "assets": [a.to_dict() for a in manifest.assets]},
                          indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------------------------
# machlib's own (generated) assets

_HAIR_LABELS = {
    "bald": "bald, shaved head with no hair",
    "buzz cut": "very short buzz cut",
    "crop": "short men's crop, the top a little longer",
    "pixie": "short cropped pixie cut with side-swept bangs",
    "bob": "short chin-length straight bob with bangs",
    "long straight": "long straight sleek hair with a center part",
    "long curly": "long curly voluminous hair",
    "wavy": "shoulder-length wavy hair with a side part",
    "ponytail": "long hair tied back in a ponytail",
    "bun": "hair pulled back into a bun",
    "low bun": "hair pulled back into a low bun at the nape, a chignon",
    "afro": "big round curly afro",
}

# (id, label, tags) per kind; files are produced by asset-generation scripts into the library root.
_OTHER_ASSETS: dict[str, tuple[str, tuple[tuple[str, str, tuple[str, ...]], ...]]] = {
    "glasses": ("glb", (
        ("glasses_round", "round wire-rimmed glasses", ("round", "metal", "thin frame", "spectacles")),
        ("glasses_rectangular", "rectangular black-framed glasses",
         ("rectangular", "square", "thick frame", "spectacles")),
        ("glasses_aviator", "aviator sunglasses with tinted lenses", ("aviator", "sunglasses", "shades", "tinted")),
        ("glasses_cat_eye", "cat-eye glasses", ("cat eye", "retro", "vintage", "spectacles")),
    )),
    "garment": ("glb", (
        ("garment_tshirt", "plain crew-neck t-shirt", ("t-shirt", "tee", "casual", "short sleeve")),
        ("garment_hoodie", "hooded sweatshirt", ("hoodie", "sweatshirt", "casual", "sporty")),
        ("garment_suit", "dark business suit with shirt and tie", ("suit", "jacket", "tie", "formal", "business")),
        ("garment_dress", "sleeveless summer dress", ("dress", "sleeveless", "summer", "elegant")),
        ("garment_sweater", "knitted wool sweater", ("sweater", "jumper", "knit", "wool", "warm")),
    )),
    "iris": ("png", (
        ("iris_brown", "dark brown eyes", ("brown", "dark")),
        ("iris_blue", "light blue eyes", ("blue", "light")),
        ("iris_green", "green eyes", ("green",)),
        ("iris_hazel", "hazel eyes", ("hazel", "amber", "light brown")),
        ("iris_gray", "gray eyes", ("gray", "grey", "silver")),
    )),
    "eyelashes": ("data", (
        ("eyelashes_natural", "natural short eyelashes", ("natural", "short", "subtle")),
        ("eyelashes_long", "long thick curled eyelashes", ("long", "thick", "curled", "dramatic")),
    )),
    "beard": ("data", (
        ("beard_full", "full thick beard", ("full", "thick", "bushy", "beard")),
        ("beard_stubble", "light stubble", ("stubble", "unshaven", "short")),
        ("beard_goatee", "goatee on the chin", ("goatee", "chin")),
        ("beard_mustache", "mustache", ("mustache", "moustache")),
    )),
}


def builtin_manifest(*, root: Union[str, os.PathLike, None] = None) -> AssetManifest:
    """The manifest of machlib's own generated assets (the library need not exist yet).

    Hairstyles are the twelve presets of :data:`machlib.hair.HAIR_STYLES`, at ``hair/<name>.data``
    with ``hair/<name>.png`` previews (spaces become ``_``), as written by
    ``scripts/make_hair_library.py hair/``; ``bald`` has no strands file and points at
    ``hair/bald.data`` for uniformity. Glasses, garments, irises, eyelashes and beards are
    described by labels and tags at ``<kind>/<id>.<ext>``. Files are not checked.

    Args:
        root: the library root to record in :attr:`AssetManifest.root` (``None``: unset).

    Returns:
        The :class:`AssetManifest` (12 hairstyles first, then the other kinds).

    Example:
        >>> from machlib.assets import builtin_manifest
        >>> m = builtin_manifest()
        >>> m["long_straight"].path, m["long_straight"].label
        ('hair/long_straight.data', 'long straight sleek hair with a center part')
    """
    from machlib.hair import HAIR_STYLES

    assets = []
    for name, style in HAIR_STYLES.items():
        slug = name.replace(" ", "_")
        label = _HAIR_LABELS.get(name, f"{name} hairstyle")
        assets.append(Asset(slug, "hairstyle", label, f"hair/{slug}.data", tags=tuple(style.tags),
                            thumbnail=f"hair/{slug}.png"))
    for kind, (ext, items) in _OTHER_ASSETS.items():
        for aid, label, tags in items:
            assets.append(Asset(aid, kind, label, f"{kind}/{aid}.{ext}", tags=tags))
    return AssetManifest(tuple(assets), root=None if root is None else Path(root))
