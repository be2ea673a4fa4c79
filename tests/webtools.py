"""Web tooling shared by the tests: the pinned Khronos glTF validator (npm) and headless Chromium
driven over the DevTools protocol (import as ``from webtools import ...``)."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

KHRONOS_VERSION = "2.0.0-dev.3.10"  # npm gltf-validator, pinned

__all__ = ["KHRONOS_VERSION", "khronos_validator", "khronos_reports", "khronos_summary", "chromium_path", "Chromium"]


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "machlib" / "npm" / f"gltf-validator-{KHRONOS_VERSION}"


_NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET", "ENETUNREACH",
                   "network", "getaddrinfo", "proxy")


@pytest.fixture(scope="session")
def khronos_validator() -> Path:
    """Path of the pinned npm ``gltf-validator`` package, installed once into the user cache."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Khronos glTF validator: node/npm are not on PATH")
    final = _cache_dir()
    pkg = final / "node_modules" / "gltf-validator"
    if not (pkg / "package.json").is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=final.parent))
        try:
            proc = subprocess.run(
                [npm, "install", "--prefix", str(tmp), "--no-audit", "--no-fund", "--no-save",
                 "--loglevel=error", f"gltf-validator@{KHRONOS_VERSION}"],
                capture_output=True, text=True, timeout=180,
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.skip("Khronos glTF validator: npm install timed out (no network?)")
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            out = proc.stdout + proc.stderr
            if any(e in out for e in _NETWORK_ERRORS):
                pytest.skip(f"Khronos glTF validator: npm install failed for lack of network: {out.strip()[-300:]}")
            pytest.fail(f"npm install gltf-validator@{KHRONOS_VERSION} failed:\n{out[-2000:]}")
        try:
            os.replace(tmp, final)  # atomic: parallel workers either win or find it installed
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    version = json.loads((pkg / "package.json").read_text())["version"]
    assert version == KHRONOS_VERSION, f"cached gltf-validator is {version}, expected {KHRONOS_VERSION}"
    return pkg


_RUNNER = """
const validator = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const out = {};
  for (const file of process.argv.slice(3)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {maxIssues: 200});
    out[file] = {validatorVersion: report.validatorVersion, issues: report.issues};
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e)); process.exit(2); });
"""


def khronos_reports(pkg: Path, files: dict[str, bytes], tmp_path: Path) -> dict[str, dict]:
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.glb"
        paths[name].write_bytes(data)
    script = tmp_path / "run_validator.js"
    script.write_text(_RUNNER)
    proc = subprocess.run([shutil.which("node"), str(script), str(pkg)] + [str(p) for p in paths.values()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    return {name: out[str(p)] for name, p in paths.items()}


def khronos_summary(report: dict) -> str:
    issues = report["issues"]
    lines = [f"{m['code']} (severity {m['severity']}) at {m.get('pointer', '')}: {m['message']}"
             for m in issues["messages"]]
    return (f"validator {report['validatorVersion']}: {issues['numErrors']} errors, {issues['numWarnings']} "
            f"warnings, {issues['numInfos']} infos, {issues['numHints']} hints\n" + "\n".join(lines))



def chromium_path() -> str | None:
    for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if p and os.path.exists(p):
            return p
    return None



class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``)."""

    def __init__(self, exe: str, profile: Path, *, width: int = 900, height: int = 700):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic", "--disable-extensions",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                "--remote-debugging-pipe", "about:blank"]
        # Chromium reads commands from fd 3 and writes replies to fd 4. bash moves our pipe ends
        # there (they are first moved above 9 so the redirections cannot clobber each other); a
        # plain spawn, no fork of this multithreaded (JAX) process.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = high
        shell = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self._proc = subprocess.Popen([shutil.which("bash") or "/bin/bash", "-c", shell, *args],
                                      pass_fds=(to_chrome_r, from_chrome_w),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        try:
            page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
            self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
            self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def call(self, method: str, *, session: bool = False, timeout: float = 60.0, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self._session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer {method} within {timeout} s")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (status {self._proc.poll()}) during {method}")
            self._buf += chunk

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)["result"].get("value")

    def load(self, url: str, *, timeout: float = 60.0) -> str:
        """Load ``url`` and wait until the viewer's title says ready or error; returns the title."""
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + timeout
        while True:
            title = self.evaluate("document.readyState === 'complete' ? document.title : ''")
            if title in ("machlib viewer: ready", "machlib viewer: error"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after {timeout} s (title {title!r})")
            time.sleep(0.1)
        return title

    def screenshot(self, url: str) -> np.ndarray:
        """Load ``url`` and return the canvas area once the viewer is ready, as (H, W, 3) uint8."""
        title = self.load(url)
        assert title == "machlib viewer: ready", self.evaluate("document.body.dataset.error")
        box = self.evaluate("(({x, y, width, height}) => [x, y, width, height])"
                            "(document.getElementById('view').getBoundingClientRect())")
        png = base64.b64decode(self.call("Page.captureScreenshot", session=True, format="png")["data"])
        x, y, w, h = (int(round(v)) for v in box)
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[y:y + h, x:x + w]

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._r)
        os.close(self._w)


