"""Benchmark: the texture stage's separable Gaussian blur against XLA's convolution (issue 14).

Run from the repository root::

    PYTHONPATH=. python benchmarks/blur.py               # writes docs/benchmarks/blur.md
    PYTHONPATH=. python benchmarks/blur.py --quick --md ''

Every mask feathering, low-pass, normalised convolution and detail band-pass of
:mod:`machlib.texture` goes through one separable Gaussian blur with edge padding
(``machlib.texture._regions._blur``; public as :func:`machlib.texture.feather_mask`). Two
implementations, side by side in one process, on ``1024²`` images (the texture resolution):

* **XLA convolution** (the previous implementation, written out here for the comparison): the
  image's channels as a batch of one-channel images, edge-padded, two
  :func:`jax.lax.conv_general_dilated` passes with a column and a row kernel;
* **machlib** (now): along each axis, a kernel of at most 31 taps as a sum of shifted copies of
  the edge-padded image (XLA fuses them into one loop over the image; a colour image's channels
  are moved first for it, so each copy is a contiguous plane), a longer one as a product with a
  banded matrix whose first and last columns hold the edge padding.

Both are jit-compiled once per shape and ``σ``; compile time is left out. The answers are
compared first (largest absolute difference on random images in ``[0, 1]``). Then
:func:`machlib.texture.complete_texture` at ``1024²`` (mirror fill, confidence, detail
transfer: the texture stage's completion, the blur's main caller) is timed with either blur
in place (JAX's caches cleared between them, so every program that inlines the blur is traced
again), in CPU seconds (user + system: robust to other load on the machine) and wall seconds.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

import _common as C
import jax
import jax.numpy as jnp
import numpy as np

import machlib.texture._regions as regions

DOCS = _HERE.parent / "docs" / "benchmarks"


@functools.partial(jax.jit, static_argnums=1)
def conv_blur(x, sigma):
    """The previous ``_blur_jit``: two ``conv_general_dilated`` passes over the channels as a batch."""
    k = regions._gaussian_kernel(sigma, x.dtype)
    half = (k.shape[0] - 1) // 2
    squeeze = x.ndim == 2
    y = x[..., None] if squeeze else x
    c = y.shape[-1]
    y = jnp.pad(y, ((half, half), (half, half), (0, 0)), mode="edge")
    y = jnp.moveaxis(y, -1, 0)[:, None]  # (C, 1, H, W)
    dn = ("NCHW", "OIHW", "NCHW")
    y = jax.lax.conv_general_dilated(y, k[None, None, :, None], (1, 1), "VALID", dimension_numbers=dn)
    y = jax.lax.conv_general_dilated(y, k[None, None, None, :], (1, 1), "VALID", dimension_numbers=dn)
    y = jnp.moveaxis(y[:, 0], 0, -1)
    return y[..., 0] if squeeze else y.reshape(y.shape[:2] + (c,))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def completion_inputs(R: int):
    """A face texture seen on the face oval only, with a confidence falling off to one side
    (a turned head: the mirror fill has work to do)."""
    from machlib.geometry import default_template
    from machlib.texture import region_masks, skin_albedo

    template = default_template()
    raw = np.asarray(skin_albedo(R, ita=25.0, seed=3, template=template))
    face = np.asarray(region_masks(template.landmark_uv, R)["face"])
    ramp = np.clip(1.2 - np.linspace(0.0, 1.0, R)[None, :], 0.0, 1.0)
    confidence = (face * ramp).astype(np.float32)
    return template, raw * (face[..., None] > 0.5), face > 0.5, confidence


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="256² images, one repeat (a check of the script)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--md", default=str(DOCS / "blur.md"), help="Markdown report ('' to skip)")
    args = p.parse_args(argv)
    R = 256 if args.quick else 1024
    repeats = 1 if args.quick else args.repeats
    info = C.machine_info()
    rng = np.random.default_rng(0)
    images = {c: jnp.asarray(rng.random((R, R, c) if c > 1 else (R, R), np.float32)) for c in (1, 3)}

    rows = []
    for sigma in (1.0, 3.0, 5.0, 10.0, 15.0, 30.0):
        for c, x in images.items():
            a, b = conv_blur(x, sigma), regions._blur_jit(x, sigma)
            err = float(jnp.max(jnp.abs(a - b)))
            C.check(err < 1e-5, f"blur σ={sigma} C={c}: the two implementations differ by {err}")
            t_conv, _ = C.repeat(lambda: jax.block_until_ready(conv_blur(x, sigma)), repeats)
            t_new, _ = C.repeat(lambda: jax.block_until_ready(regions._blur_jit(x, sigma)), repeats)
            taps = 2 * max(1, int(np.ceil(3 * sigma))) + 1
            how = "shifted copies" if taps <= regions._SHIFT_TAPS else "banded matrix"
            rows.append([f"{sigma:g}", str(c), f"{taps} ({how})", f"{1e3 * C.median(t_conv):.1f}",
                         f"{1e3 * C.median(t_new):.1f}", f"{C.median(t_conv) / C.median(t_new):.1f}×",
                         f"{err:.1e}"])
            print(rows[-1], flush=True)

    # the completion with either blur: every program that inlines it is traced again
    template, raw, seen, conf = completion_inputs(R)
    from machlib.texture import complete_texture

    new_impl = regions._blur_jit
    done = {}
    for name, impl in (("XLA convolution", conv_blur), ("machlib", new_impl)):
        regions._blur_jit = impl
        jax.clear_caches()
        run = lambda: np.asarray(complete_texture(raw, seen, template=template, confidence=conf,  # noqa: E731
                                                  mirror=True).albedo)
        run()  # compile
        walls, cpus = [], []
        for _ in range(max(1, repeats // 2)):
            c0 = cpu_seconds()
            w, albedo = C.timed(run)
            walls.append(w)
            cpus.append(cpu_seconds() - c0)
        done[name] = (C.median(cpus), C.median(walls), albedo)
        print(name, done[name][:2], flush=True)
    regions._blur_jit = new_impl
    diff = np.abs(done["XLA convolution"][2] - done["machlib"][2])
    C.check(float(diff.max()) < 1e-3, f"complete_texture differs by {diff.max()} between the blurs")

    md = [f"### Separable Gaussian blur, {R}² · {info['cpu']} · {info['date']}", "",
          C.markdown_table(["σ (texels)", "channels", "taps", "XLA conv (ms)", "machlib (ms)", "speed-up",
                            "max |difference|"], rows), "",
          f"`complete_texture` at {R}² (mirror fill, confidence, detail transfer), median of "
          f"{max(1, repeats // 2)}:", "",
          C.markdown_table(["blur", "CPU s (user + sys)", "wall s"],
                           [[k, f"{v[0]:.2f}", f"{v[1]:.2f}"] for k, v in done.items()]), "",
          f"- The completed albedos differ by at most {diff.max() * 255:.3f}/255 (mean {diff.mean() * 255:.4f}/255).",
          f"- Load average (1 min) at the end: {os.getloadavg()[0]:.2f} (the benchmark's own two threads "
          "count in it: well above 2 means other work was running).",
          "- Command: `PYTHONPATH=. python benchmarks/blur.py`. CPU seconds are the process's user + system "
          "time: other load on the machine inflates wall time more than them."]
    C.emit_tables(md, [], args.md or None, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
