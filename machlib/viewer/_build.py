"""Build and serve the static three.js viewer of an output folder (``machlib view OUT/``)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import webbrowser
from pathlib import Path
from typing import Union

from .._errors import InputError, MachlibError
from ..animation import ARKIT_BLENDSHAPES, EMOTIONS, emotion_basis

__all__ = [
    "THREE_VERSION", "ViewerError", "install_three", "build_viewer", "serve_viewer", "run_viewer",
    "module_imports",
]

THREE_VERSION = "0.187.0"
"""The exact three.js version the viewer installs from npm and serves (pinned)."""

_STATIC = Path(__file__).with_name("static")
_STATIC_FILES = ("index.html", "app.js", "style.css")
# three.js modules the page imports; whatever they import is copied too (see _vendor_closure).
_ENTRIES = (
    "build/three.module.js",
    "examples/jsm/loaders/GLTFLoader.js",
    "examples/jsm/controls/OrbitControls.js",
    "examples/jsm/utils/BufferGeometryUtils.js",
)
_IMPORT_MAP = {
    "three": "./vendor/three/build/three.module.js",
    "three/addons/": "./vendor/three/examples/jsm/",
}
_STAMP = "build.json"

# Static ``import``/``export ... from`` statements, anchored at the start of a line so that code
# examples inside doc comments (`` * import { X } from 'three';``) are not taken for imports.
_IMPORT_RE = re.compile(
    r"""^[ \t]*(?:import|export)\b[^;'"`]*?\bfrom\s*(['"])([^'"\n]+)\1"""
    r"""|^[ \t]*import\s*(['"])([^'"\n]+)\3""",
    re.MULTILINE,
)


class ViewerError(MachlibError, RuntimeError):
    """The viewer cannot be set up on this machine (Node.js/npm missing, npm install failed).

    Unlike :class:`~machlib.InputError` this is about the environment, not the user's files; the
    message says what to install or check.
    """


PathLike = Union[str, os.PathLike]


def module_imports(source: str) -> list[str]:
    """The module specifiers of the static import and export-from statements of ES module code.

    Only statements that start a line count (the way three.js and the viewer's ``app.js`` are
    written); dynamic ``import()`` is not followed.

    Args:
        source: JavaScript source text.

    Returns:
        The specifiers in order of appearance, e.g. ``["three", "./x.js"]``.

    Example:
        >>> from machlib.viewer import module_imports
        >>> module_imports("import * as THREE from 'three';\\nexport { a } from './a.js';")
        ['three', './a.js']
    """
    return [m.group(2) or m.group(4) for m in _IMPORT_RE.finditer(source)]


def _cache_root(cache: PathLike | None) -> Path:
    if cache is not None:
        return Path(cache)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "machlib" / "npm"


def _three_ok(pkg: Path) -> bool:
    try:
        meta = json.loads((pkg / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("version") == THREE_VERSION and all((pkg / e).is_file() for e in _ENTRIES)


def install_three(*, cache: PathLike | None = None) -> Path:
    """Install three.js (:data:`THREE_VERSION`) from npm once, into a user cache.

    The package goes to ``CACHE/three-<version>/node_modules/three``. npm installs into a
    temporary folder next to it, renamed into place only when complete, so an interrupted or
    failed install leaves nothing behind and the next call retries. Later calls only check the
    cached copy.

    Args:
        cache: folder holding the installs; default ``$XDG_CACHE_HOME/machlib/npm`` (or
            ``~/.cache/machlib/npm``).

    Returns:
        The three.js package folder (with ``build/`` and ``examples/jsm/``).

    Raises:
        ViewerError: Node.js or npm is not installed, or ``npm install`` failed (e.g. offline);
            the message says what to do.

    Example:
        >>> from machlib.viewer import install_three
        >>> pkg = install_three()  # doctest: +SKIP
        >>> (pkg / "build" / "three.module.js").is_file()  # doctest: +SKIP
        True
    """
    root = _cache_root(cache)
    final = root / f"three-{THREE_VERSION}"
    pkg = final / "node_modules" / "three"
    if _three_ok(pkg):
        return pkg
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        missing = " and ".join(n for n, p in (("Node.js (node)", node), ("npm", npm)) if p is None)
        raise ViewerError(
            f"the viewer needs {missing} to fetch three.js {THREE_VERSION} once: install them "
            "(e.g. `apt-get install nodejs npm`, or from https://nodejs.org) and run again")
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".three-{THREE_VERSION}-", dir=root))
    except OSError as e:
        raise ViewerError(f"cannot create the npm cache folder {root}: {e}; pass another cache folder") from e
    try:
        cmd = [npm, "install", "--prefix", str(tmp), "--no-audit", "--no-fund", "--no-save",
               "--loglevel=error", f"three@{THREE_VERSION}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise ViewerError(f"`npm install three@{THREE_VERSION}` took more than 10 minutes; "
                              "check the network connection and the npm registry (npm config get registry)") from None
        if proc.returncode != 0 or not _three_ok(tmp / "node_modules" / "three"):
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            detail = (": " + " | ".join(tail)) if tail else ""
            raise ViewerError(
                f"`npm install three@{THREE_VERSION}` failed (exit status {proc.returncode}){detail}; "
                "check the network connection and the npm registry (npm config get registry), then run again")
        if final.exists():  # a broken earlier copy (or a concurrent install that just finished)
            if _three_ok(pkg):
                return pkg
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not _three_ok(pkg):  # not a concurrent install that won the race
                raise
        return pkg
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _resolve(spec: str, importer: str) -> str:
    """Package-relative path of the module ``spec`` imported by ``importer`` (package-relative)."""
    if spec == "three":
        return "build/three.module.js"
    if spec.startswith("three/addons/"):
        return "examples/jsm/" + spec[len("three/addons/"):]
    if spec.startswith(("./", "../")):
        out = os.path.normpath(os.path.join(os.path.dirname(importer), spec)).replace(os.sep, "/")
        if out.startswith("../"):
            raise ViewerError(f"three.js module {importer} imports {spec!r}, outside the package")
        return out
    raise ViewerError(f"three.js module {importer} imports {spec!r}, which the viewer's import map cannot resolve")


def _vendor_closure(pkg: Path) -> list[str]:
    """The entry modules and everything they import, as sorted package-relative paths."""
    todo, seen = list(_ENTRIES), set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        path = pkg / rel
        if not path.is_file():
            raise ViewerError(f"three.js {THREE_VERSION} in {pkg} lacks {rel}; delete {pkg.parent.parent} and run again")
        seen.add(rel)
        todo.extend(_resolve(s, rel) for s in module_imports(path.read_text(encoding="utf-8")))
    return sorted(seen)


def _character_json() -> dict:
    basis = emotion_basis()
    return {
        "blendshapes": list(ARKIT_BLENDSHAPES),
        "emotions": {e: [round(float(v), 6) for v in basis[i]] for i, e in enumerate(EMOTIONS)},
    }


def _stamp() -> dict:
    h = hashlib.sha256()
    for name in _STATIC_FILES:
        h.update((_STATIC / name).read_bytes())
    h.update(json.dumps(_character_json(), sort_keys=True).encode())
    return {"three": THREE_VERSION, "assets": h.hexdigest()}


def _check_out(out_dir: PathLike) -> Path:
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"{out} is not a folder: give the output folder of `machlib make` (it holds avatar.glb)")
    glb = out / "avatar.glb"
    if not glb.is_file():
        raise InputError(f"{out} holds no avatar.glb: give the output folder of `machlib make`")
    with open(glb, "rb") as f:
        if f.read(4) != b"glTF":
            raise InputError(f"{glb} is not a binary glTF file (it does not start with 'glTF')")
    return out


def build_viewer(out_dir: PathLike, *, cache: PathLike | None = None) -> Path:
    """Write the static viewer page of an output folder to ``OUT/viewer/``.

    ``OUT/viewer/`` gets ``index.html`` (with an import map for ``three`` and
    ``three/addons/``), ``app.js``, ``style.css``, ``character.json`` (the 52 ARKit blendshape
    names and each emotion's blendshape vector, :func:`machlib.animation.emotion_basis`) and
    ``vendor/three/`` (three.js's LICENSE and only the modules the page needs, with everything
    they import). The page loads ``../avatar.glb`` and links ``../avatar.zip``. The folder is
    written next to its final place and renamed, replacing an earlier viewer in one step.

    Args:
        out_dir: the output folder; must contain ``avatar.glb``.
        cache: npm cache folder for :func:`install_three`.

    Returns:
        The viewer folder ``OUT/viewer``.

    Raises:
        InputError: ``out_dir`` is not a folder or has no (valid) ``avatar.glb``.
        ViewerError: three.js cannot be installed (see :func:`install_three`).

    Example:
        >>> from machlib.viewer import build_viewer
        >>> build_viewer("out/")  # doctest: +SKIP
        PosixPath('out/viewer')
    """
    out = _check_out(out_dir)
    pkg = install_three(cache=cache)
    files = _vendor_closure(pkg)
    final = out / "viewer"
    tmp = Path(tempfile.mkdtemp(prefix=".viewer-", dir=out))
    try:
        for name in _STATIC_FILES:
            text = (_STATIC / name).read_text(encoding="utf-8")
            if name == "index.html":
                text = text.replace("__IMPORT_MAP__", json.dumps({"imports": _IMPORT_MAP}, indent=2))
                text = text.replace("__THREE_VERSION__", THREE_VERSION)
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "character.json").write_text(json.dumps(_character_json()), encoding="utf-8")
        vendor = tmp / "vendor" / "three"
        for rel in files:
            dst = vendor / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pkg / rel, dst)
        shutil.copyfile(pkg / "LICENSE", vendor / "LICENSE")
        (tmp / _STAMP).write_text(json.dumps(_stamp()), encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = None
        if final.exists() or final.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=".viewer-old-", dir=out))
            os.rename(final, old / "viewer")
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Read-only static files under one root: no listings, no escape through ``..`` or links."""

    extensions_map = {
        "": "application/octet-stream",
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".json": "application/json",
        ".glb": "model/gltf-binary",
        ".gltf": "model/gltf+json",
        ".zip": "application/zip",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".txt": "text/plain; charset=utf-8",
        ".obj": "text/plain; charset=utf-8",
    }

    def __init__(self, *args, directory=None, **kwargs):
        super().__init__(*args, directory=directory, **kwargs)

    def log_message(self, format, *args):  # noqa: A002 - quiet server
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _inside(self) -> Path | None:
        root = Path(self.directory).resolve()
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if ".." in raw.replace("\\", "/").split("/") or "\0" in raw:
            return None
        target = Path(self.translate_path(self.path)).resolve()
        if target != root and root not in target.parents:
            return None
        return target

    def send_head(self):
        path = urllib.parse.urlsplit(self.path).path
        if path in ("", "/"):
            self.send_response(302)
            self.send_header("Location", "/viewer/index.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        target = self._inside()
        if target is None or target.is_dir() and not (target / "index.html").is_file():
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "Not found")
        return None


def serve_viewer(out_dir: PathLike, *, host: str = "127.0.0.1", port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve an output folder over HTTP in a background (daemon) thread.

    Files under ``out_dir`` are served read-only with the MIME types browsers need (``.js`` as
    ``text/javascript``, ``.glb`` as ``model/gltf-binary``); directory listings, paths with
    ``..`` and links leading outside the folder answer 404. ``/`` redirects to the viewer.

    Args:
        out_dir: the output folder (with ``viewer/`` from :func:`build_viewer`).
        host: interface to listen on; the default only accepts local connections.
        port: TCP port; 0 picks a free one.

    Returns:
        ``(server, url)``: the running server (stop it with ``server.shutdown()`` and
        ``server.server_close()``) and the URL of ``viewer/index.html``.

    Raises:
        InputError: ``out_dir`` is not a folder.

    Example:
        >>> from machlib.viewer import serve_viewer
        >>> server, url = serve_viewer("out/")  # doctest: +SKIP
        >>> url  # doctest: +SKIP
        'http://127.0.0.1:40123/viewer/index.html'
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"{out} is not a folder")
    root = str(out.resolve())

    def handler(*args, **kwargs):
        return _Handler(*args, directory=root, **kwargs)

    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="machlib-viewer", daemon=True)
    thread.start()
    h, p = server.server_address[:2]
    shown = "localhost" if h in ("127.0.0.1", "::1") else ("127.0.0.1" if h in ("0.0.0.0", "::") else h)
    return server, f"http://{shown}:{p}/viewer/index.html"


def _viewer_current(out: Path) -> bool:
    try:
        stamp = json.loads((out / "viewer" / _STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp == _stamp() and (out / "viewer" / "index.html").is_file()


def run_viewer(out_dir: PathLike, *, port: int = 8000, open_browser: bool = False) -> None:
    """Build the viewer when missing or out of date, serve it and block until Ctrl-C.

    Prints the URL to open. The page shows the avatar with orbit controls, a hair toggle,
    emotion and blendshape sliders and a link to ``avatar.zip``; query parameters such as
    ``?hair=0&expression=happiness=0.8&morph=jawOpen:1&yaw=30`` set the view for scripting.

    Args:
        out_dir: the output folder; must contain ``avatar.glb``.
        port: TCP port on 127.0.0.1 (0 picks a free one).
        open_browser: also open the page in the default web browser.

    Raises:
        InputError: ``out_dir`` has no ``avatar.glb``, or the port is taken.
        ViewerError: three.js cannot be installed (see :func:`install_three`).

    Example:
        >>> from machlib.viewer import run_viewer
        >>> run_viewer("out/", port=8000)  # doctest: +SKIP
        machlib viewer: http://localhost:8000/viewer/index.html (Ctrl-C to stop)
    """
    out = _check_out(out_dir)
    if not _viewer_current(out):
        build_viewer(out)
    try:
        server, url = serve_viewer(out, port=port)
    except OSError as e:
        raise InputError(f"cannot listen on 127.0.0.1:{port} ({e.strerror or e}); pick another port") from e
    print(f"machlib viewer: {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("machlib viewer: stopped", file=sys.stderr)
    finally:
        server.shutdown()
        server.server_close()
