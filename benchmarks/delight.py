"""Delighting: the learned flax delighter against SH delighting (issue 15 item 3).

Run from the repository root::

    PYTHONPATH=. python benchmarks/delight.py                       # writes docs/benchmarks/delight.md
    PYTHONPATH=. python benchmarks/delight.py --heldout 12 --portraits hopper --md /tmp/d.md

Two comparisons, side by side in one run:

* **held-out synthetic split** (``delighting_batch(..., split="heldout")``, seed 0: never seen in
  training, ITA-balanced, the same scene as the training script): the albedo each delighter
  recovers against the true one, over the seen texels (seen > 0.5), per ITA bin: MAE (sRGB, in
  1/255) and PSNR (dB); and the same after one gain per channel fitted by least squares over
  those texels ("gain-free"), since SH delighting normalises the shading to mean 1 and so keeps
  the light's colour and exposure in the albedo by design;
* **real portraits** (cached by ``benchmarks/identity.py`` under ``~/.cache/machlib/portraits/``):
  one :func:`machlib.pipeline.fit_portrait` each, then :func:`machlib.pipeline.texture_portrait`
  with ``delighter="sh"`` and ``"flax"``; the relit face PSNR/SSIM of the run's report (the
  completed albedo under the lighting estimated for it, in the fitted camera, against the photo)
  and the delit PSNR before completion (``benchmarks/fidelity.py``'s ``face_scores``).

Writes ``--out`` (default ``/tmp/machlib_delight``): ``delight.json``, ``delight.md``,
``heldout.png`` (lit | true | SH | flax, one row per bin) and ``portrait_<name>.png``
(photo crop of the relit render | SH | flax, and both delit textures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

import _common as C

DEVICE = C.select_device()  # before JAX is imported

import numpy as np

DEFAULT_PORTRAITS = ("hopper", "astronaut", "t1_face0", "t1_face3")


def _gain_fit(pred, true, w):
    """``pred`` times the per-channel gain that best fits ``true`` over weights ``w``."""
    num = np.sum(pred * true * w[..., None], axis=(0, 1))
    den = np.maximum(np.sum(pred * pred * w[..., None], axis=(0, 1)), 1e-12)
    return np.clip(pred * (num / den), 0.0, 1.0)


def _scores(pred, true, w):
    m = w[..., None] > 0.5
    err = np.abs(pred - true)[np.broadcast_to(m, pred.shape)]
    mse = float(np.mean(err**2))
    return 255.0 * float(err.mean()), 10.0 * np.log10(1.0 / max(mse, 1e-12))


def heldout(model, count: int, seed: int, out: Path):
    import jax

    from machlib.texture import (
        ITA_BINS,
        delight_flax,
        delight_scene,
        delight_sh,
        delighting_batch,
    )

    scene = delight_scene(resolution=model.config.resolution)
    batch = delighting_batch(jax.random.key(seed), scene, count=count, split="heldout")
    lit, albedo, seen = (np.asarray(a) for a in (batch.lit, batch.albedo, batch.seen))
    names = list(ITA_BINS)
    per = {n: {"sh": [], "flax": [], "sh_gain": [], "flax_gain": []} for n in names}
    tiles = {}
    for i in range(count):
        w = seen[i]
        sh = np.clip(delight_sh(lit[i], scene.normals, w * scene.skin).albedo, 0, 1)
        fx = np.clip(delight_flax(lit[i], scene.normals, w, model=model).albedo, 0, 1)
        b = names[int(batch.bin[i])]
        for k, pred in (("sh", sh), ("flax", fx)):
            per[b][k].append(_scores(pred, albedo[i], w))
            per[b][k + "_gain"].append(_scores(_gain_fit(pred, albedo[i], w), albedo[i], w))
        if b not in tiles:
            m = (w > 0.5)[..., None]
            tiles[b] = np.concatenate([lit[i], albedo[i] * m, sh * m, fx * m], 1)
    from PIL import Image

    sheet = np.concatenate([tiles[n] for n in names if n in tiles], 0)
    Image.fromarray((sheet * 255 + 0.5).astype(np.uint8)).resize((sheet.shape[1] * 2, sheet.shape[0] * 2)).save(
        out / "heldout.png")
    table = {}
    for n in names + ["all"]:
        rows = per[n] if n != "all" else {k: [r for m in names for r in per[m][k]] for k in per[names[0]]}
        table[n] = {k: [float(np.mean([r[0] for r in v])), float(np.mean([r[1] for r in v]))] for k, v in rows.items()}
        table[n]["count"] = len(rows["sh"])
    return table


def portraits(names, model_path, out: Path):
    import fidelity as FI
    import identity as ID
    from PIL import Image

    from machlib import pipeline

    ID.enable_compilation_cache()
    res = {}
    for name in names:
        png = ID.cache_dir() / f"{name}.png"
        if not png.is_file():
            print(f"  {name}: not cached at {png} (run benchmarks/identity.py once); left out", file=sys.stderr)
            continue
        image = ID._load_png(png)
        t0 = time.perf_counter()
        fit = pipeline.fit_portrait(image)
        entry, imgs = {}, []
        for which in ("sh", "flax"):
            tex = pipeline.texture_portrait(fit, delighter=which if which == "sh" or model_path is None else model_path)
            delit = FI.face_scores(fit, tex, np.clip(tex.delit, 0, 1))
            entry[which] = {"relit": tex.metrics["relit_albedo"], "delit": delit,
                            "delight_seconds": round(float(tex.timings["delight"]), 3)}
            imgs.append(np.clip(tex.render[..., :3], 0, 1))
            imgs.append(np.asarray(Image.fromarray((np.clip(tex.delit, 0, 1) * 255 + 0.5).astype(np.uint8)).resize(
                image.shape[1::-1]), np.float32) / 255.0)
        res[name] = entry
        sheet = np.concatenate([image.astype(np.float32) / 255.0] + imgs, 1)
        Image.fromarray((sheet * 255 + 0.5).astype(np.uint8)).save(out / f"portrait_{name}.png")
        print(f"  {name}: {time.perf_counter() - t0:.0f} s  relit sh {entry['sh']['relit']['face_psnr_db']:.2f} dB / "
              f"{entry['sh']['relit']['face_ssim']:.3f}, flax {entry['flax']['relit']['face_psnr_db']:.2f} dB / "
              f"{entry['flax']['relit']['face_ssim']:.3f}", flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", help="flax delighter .json (default: the bundled weights)")
    p.add_argument("--heldout", type=int, default=48, help="held-out pairs (a multiple of 6; default 48)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--portraits", default=",".join(DEFAULT_PORTRAITS), help="comma-separated; '' for none")
    p.add_argument("--out", default="/tmp/machlib_delight")
    p.add_argument("--md", default="docs/benchmarks/delight.md")
    args = p.parse_args(argv)

    import jax

    from machlib.texture import load_flax_delighter

    model = load_flax_delighter(path=args.weights)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = C.machine_info()
    t0 = time.process_time()
    syn = heldout(model, args.heldout, args.seed, out)
    syn_cpu = time.process_time() - t0
    names = [n.strip() for n in args.portraits.split(",") if n.strip()]
    real = portraits(names, args.weights, out) if names else {}

    f = lambda x, fmt: format(x, fmt)
    rows = [[n, str(v["count"]), f(v["sh"][0], ".1f"), f(v["flax"][0], ".1f"), f(v["sh"][1], ".2f"),
             f(v["flax"][1], ".2f"), f(v["sh_gain"][1], ".2f"), f(v["flax_gain"][1], ".2f")] for n, v in syn.items()]
    rows[-1][0] = "**all**"
    md = [f"### Delighting: flax vs SH · {info['cpu']} · {jax.default_backend()} · {info['date']}", "",
          (f"Weights: `{args.weights or 'machlib/data/flax_delighter.json'}` (trained by "
           f"`{model.meta.get('command', '?')}`, seed {model.meta.get('seed', '?')}, {model.meta.get('steps', '?')} "
           f"steps, {model.meta.get('cpu_seconds', '?')} s CPU)."), "",
          (f"**Held-out synthetic split** ({args.heldout} pairs, seed {args.seed}, ITA-balanced; "
           f"{syn_cpu:.0f} s CPU): albedo error over the seen texels."), "",
          C.markdown_table(["ITA bin", "pairs", "MAE SH (/255)", "MAE flax (/255)", "PSNR SH dB", "PSNR flax dB",
                            "gain-free PSNR SH dB", "gain-free PSNR flax dB"], rows), ""]
    if real:
        prow = []
        for n, e in real.items():
            prow.append([n, f(e["sh"]["relit"]["face_psnr_db"], ".2f"), f(e["flax"]["relit"]["face_psnr_db"], ".2f"),
                         f(e["sh"]["relit"]["face_ssim"], ".3f"), f(e["flax"]["relit"]["face_ssim"], ".3f"),
                         f(e["sh"]["delit"]["face_psnr_db"], ".2f"), f(e["flax"]["delit"]["face_psnr_db"], ".2f")])
        med = lambda k, m: C.median([e[k]["relit"][m] for e in real.values()])
        prow.append(["**median**", f(med("sh", "face_psnr_db"), ".2f"), f(med("flax", "face_psnr_db"), ".2f"),
                     f(med("sh", "face_ssim"), ".3f"), f(med("flax", "face_ssim"), ".3f"), "", ""])
        md += [(f"**Real portraits** ({', '.join(real)}): relit face PSNR/SSIM of `texture_portrait` with each "
                "delighter (the completed albedo under the SH lighting estimated for it, in the fitted camera), "
                "and the delit texture's PSNR before completion."), "",
               C.markdown_table(["portrait", "relit PSNR SH", "relit PSNR flax", "relit SSIM SH", "relit SSIM flax",
                                 "delit PSNR SH", "delit PSNR flax"], prow), ""]
    md.append("Command: `PYTHONPATH=. python benchmarks/delight.py`.")
    text = "\n".join(md) + "\n"
    C.write_text(out / "delight.md", text)
    if args.md:
        C.write_text(args.md, text)
    (out / "delight.json").write_text(json.dumps({"machine": info, "heldout": syn, "portraits": real,
                                                  "meta": model.meta}, indent=2, default=float) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
