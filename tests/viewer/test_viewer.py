"""machlib.viewer: the static three.js page, its server, and a headless-Chromium pixel check."""

import http.client
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from machlib.animation import ARKIT_BLENDSHAPES, EMOTIONS, emotion_basis
from machlib.export import GltfBuilder, Lines, Triangles
from webtools import Chromium, chromium_path
from machlib.viewer import THREE_VERSION, ViewerError, build_viewer, install_three, module_imports, serve_viewer

SKIN = (0.80, 0.52, 0.38)  # linear base colour of the sample head (warm)
HAIR = (0.0, 1.0, 0.0)     # linear vertex colour of the sample hair (pure green)


def _have_npm() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None


def _sample_glb() -> bytes:
    """An ellipsoid "head" (textured, 2 morph targets) and a "hair" node of green line strands."""
    nu, nv = 48, 32
    th = np.linspace(0, np.pi, nv + 1)[:, None]            # polar angle from +y
    ph = np.linspace(0, 2 * np.pi, nu + 1)[None, :]         # azimuth, 0 at +z
    d = np.stack(np.broadcast_arrays(np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)), -1).reshape(-1, 3)
    radii = np.array([0.08, 0.11, 0.09])
    pos = d * radii
    normals = d / radii
    uv = np.stack(np.broadcast_arrays(ph / (2 * np.pi), th / np.pi), -1).reshape(-1, 2)
    g = np.arange((nv + 1) * (nu + 1)).reshape(nv + 1, nu + 1)
    a, b, c, e = g[:-1, :-1], g[1:, :-1], g[1:, 1:], g[:-1, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, e], -1).reshape(-1, 3)])
    faces = faces[(pos[faces[:, 0]] != pos[faces[:, 1]]).any(1) & (pos[faces[:, 1]] != pos[faces[:, 2]]).any(1)
                  & (pos[faces[:, 0]] != pos[faces[:, 2]]).any(1)]
    jaw = np.zeros_like(pos)   # lower front half drops by up to 6 cm and pushes forward
    low = np.clip(-pos[:, 1] / 0.11, 0, 1) * (pos[:, 2] > -0.02)
    jaw[:, 1] = -0.06 * low
    jaw[:, 2] = 0.02 * low
    blink = np.zeros_like(pos)
    blink[:, 1] = -0.01 * ((pos[:, 0] > 0.02) & (pos[:, 1] > 0) & (pos[:, 2] > 0.05))
    tex = np.repeat(np.linspace(255, 200, 16).astype(np.uint8)[:, None, None], 16, 1).repeat(3, 2)  # darker chin
    bld = GltfBuilder(generator="test")
    skin = bld.add_material(name="skin", base_color=(*SKIN, 1.0), base_color_texture=tex, roughness=0.6)
    head = Triangles(pos, faces, normals=normals, uv=uv, material=skin, target_positions=np.stack([jaw, blink]))
    bld.add_node(name="head", mesh=bld.add_mesh([head], name="head", target_names=["jawOpen", "eyeBlinkLeft"]))
    rng = np.random.default_rng(0)
    n = 800
    roots = rng.normal(size=(n, 3))
    roots[:, 1] = np.abs(roots[:, 1]) + 0.3            # upper half ...
    roots[:, 2] = -np.abs(roots[:, 2]) + 0.2           # ... mostly at the back: the face stays bare
    roots /= np.linalg.norm(roots, axis=1, keepdims=True)
    pts, idx = [], []
    for k, r in enumerate(roots):
        for s in range(6):                           # 6-point strand: outwards, then drooping
            pts.append(r * radii * 1.03 + r * 0.006 * s + np.array([0.0, -0.004 * s * s, -0.002 * s]))
        idx.extend(v for s in range(5) for v in (6 * k + s, 6 * k + s + 1))
    pts = np.asarray(pts)
    hair = Lines(pts, np.asarray(idx), mode="lines", colors=np.tile(HAIR, (len(pts), 1)))
    bld.add_node(name="hair", mesh=bld.add_mesh([hair], name="hair_strands"))
    return bld.to_glb()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("viewer_out")
    (out / "avatar.glb").write_bytes(_sample_glb())
    (out / "avatar.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip archive
    (out / "secret.txt").write_text("not a viewer file")
    return out


@pytest.fixture(scope="module")
def built(out_dir):
    if not _have_npm():
        pytest.skip("Node.js/npm not installed (apt-get install nodejs npm): cannot fetch three.js")
    return build_viewer(out_dir)


@pytest.fixture(scope="module")
def server(built, out_dir):
    srv, url = serve_viewer(out_dir)
    yield srv, url
    srv.shutdown()
    srv.server_close()


def test_build_viewer_files_and_imports(built, out_dir):
    assert built == out_dir / "viewer"
    for name in ("index.html", "app.js", "style.css", "character.json", "vendor/three/LICENSE",
                 "vendor/three/build/three.module.js", "vendor/three/examples/jsm/loaders/GLTFLoader.js",
                 "vendor/three/examples/jsm/controls/OrbitControls.js",
                 "vendor/three/examples/jsm/utils/BufferGeometryUtils.js"):
        assert (built / name).is_file(), name
    assert not list(out_dir.glob(".viewer-*")), "temporary folders left behind"
    html = (built / "index.html").read_text()
    imap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))["imports"]
    assert set(imap) == {"three", "three/addons/"} and THREE_VERSION in html

    def resolve(spec, importer):
        for key, target in imap.items():
            if spec == key or (key.endswith("/") and spec.startswith(key)):
                return (built / (target + spec[len(key):])).resolve()
        assert spec.startswith(("./", "../")), f"{importer} imports bare {spec!r}"
        return (importer.parent / spec).resolve()

    checked = 0
    for js in [built / "app.js", *(built / "vendor").rglob("*.js")]:
        for spec in module_imports(js.read_text()):
            target = resolve(spec, js)
            assert target.is_file() and built in target.parents, f"{js.name}: {spec!r} -> {target}"
            checked += 1
    assert checked >= 8
    assert "three" in module_imports((built / "app.js").read_text())
    char = json.loads((built / "character.json").read_text())
    assert char["blendshapes"] == list(ARKIT_BLENDSHAPES)
    assert list(char["emotions"]) == list(EMOTIONS)
    np.testing.assert_allclose(np.array([char["emotions"][e] for e in EMOTIONS]), emotion_basis(), atol=1e-6)
    # a rebuild replaces the old viewer in place
    (built / "stale.txt").write_text("old")
    assert build_viewer(out_dir) == built and not (built / "stale.txt").exists()


def _get(url_base, path, method="GET"):
    host, port = url_base.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path)  # sent verbatim: no client-side normalisation of ".."
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", body


def test_server_mime_types_and_confinement(server, out_dir, tmp_path_factory):
    _, url = server
    assert url.endswith("/viewer/index.html")
    for path, mime in (("/viewer/index.html", "text/html"), ("/viewer/app.js", "text/javascript"),
                       ("/viewer/vendor/three/build/three.module.js", "text/javascript"),
                       ("/avatar.glb", "model/gltf-binary"), ("/viewer/character.json", "application/json"),
                       ("/avatar.zip", "application/zip"), ("/viewer/style.css", "text/css")):
        status, ctype, body = _get(url, path)
        assert status == 200 and ctype.split(";")[0] == mime and body, (path, status, ctype)
    assert _get(url, "/avatar.zip", "HEAD")[0] == 200
    assert _get(url, "/missing.zip", "HEAD")[0] == 404
    assert _get(url, "/")[0] == 302
    outside = tmp_path_factory.mktemp("outside")
    (outside / "private.txt").write_text("private")
    link = out_dir / "link"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)
    for path in ("/viewer/vendor/", "/../" + outside.name + "/private.txt", "/%2e%2e/%2e%2e/etc/passwd",
                 "/viewer/../../etc/passwd", "/link/private.txt", "/link/"):
        status, _, body = _get(url, path)
        assert status == 404 and b"private" not in body, (path, status)
    assert _get(url, "/avatar.glb", "POST")[0] == 501  # read-only


def test_build_viewer_errors(tmp_path):
    with pytest.raises((ValueError, TypeError), match="avatar.glb"):
        build_viewer(tmp_path)
    (tmp_path / "avatar.glb").write_bytes(b"not a glb")
    with pytest.raises((ValueError, TypeError), match="binary glTF"):
        build_viewer(tmp_path)
    with pytest.raises((ValueError, TypeError), match="not a folder"):
        build_viewer(tmp_path / "nope")


def test_install_three_needs_npm(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ViewerError, match="npm"):
        install_three(cache=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_browser_shows_model(built, server, tmp_path):
    """Headless Chromium (software WebGL) draws the head, its hair, and a morph target; a broken
    avatar.glb gives an error message."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium not installed (apt-get install chromium): browser check skipped")
    _, url = server
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "avatar.glb").write_bytes(b"glTF" + bytes(60))
    build_viewer(broken)
    srv, broken_url = serve_viewer(broken)
    browser = Chromium(exe, tmp_path / "profile")
    try:
        full = browser.screenshot(url)
        bald = browser.screenshot(url + "?hair=0")
        jaw = browser.screenshot(url + "?hair=0&morph=jawOpen:1")
        assert browser.load(broken_url) == "machlib viewer: error"
        message = browser.evaluate("document.getElementById('status').textContent")
        assert message.startswith("Could not show the avatar:") and browser.evaluate("!document.getElementById('status').hidden")
    finally:
        browser.close()
        srv.shutdown()
        srv.server_close()
    for name, img in (("full", full), ("bald", bald), ("jaw", jaw)):
        Image.fromarray(img).save(tmp_path / f"{name}.png")  # kept by pytest for a look on failure
    assert full.shape[0] > 400 and full.shape[1] > 400 and full.shape == bald.shape == jaw.shape
    img = full.astype(int)
    corners = np.concatenate([img[:8, :8].reshape(-1, 3), img[-8:, -8:].reshape(-1, 3)])
    bg = np.median(corners, 0)
    np.testing.assert_allclose(bg, (0x3A, 0x3E, 0x44), atol=3)  # the page's studio background

    def fraction(mask):
        return float(mask.mean())

    def stats(a):
        a = a.astype(int)
        r, g, b = a[..., 0], a[..., 1], a[..., 2]
        model = np.abs(a - bg).max(-1) > 12
        skin = (r > 90) & (r > g + 15) & (g > b) & model
        hair = (g > 150) & (g > r + 80) & (g > b + 80)
        return model, skin, hair

    model, skin, hair = stats(full)
    assert 0.04 < fraction(model) < 0.6, fraction(model)
    assert fraction(skin) > 0.03, fraction(skin)
    assert hair.sum() > 300, hair.sum()
    _, skin_bald, hair_bald = stats(bald)
    assert hair_bald.sum() < 5 and skin_bald.sum() >= skin.sum()
    ys = np.nonzero(skin_bald)[0]
    changed = np.abs(jaw.astype(int) - bald.astype(int)).max(-1) > 12
    assert changed.sum() > 400, changed.sum()
    # jawOpen drops the lower half: the changes lie below the head's centre
    assert np.median(np.nonzero(changed)[0]) > np.median(ys)
