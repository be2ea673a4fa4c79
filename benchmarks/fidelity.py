"""Texture fidelity: how close is the portrait's albedo, relit and re-rendered, to the photo?

Run from the repository root::

    PYTHONPATH=. python benchmarks/fidelity.py                                  # all 8 portraits
    PYTHONPATH=. python benchmarks/fidelity.py --portraits hopper,t1_face2 --out /tmp/fid
    PYTHONPATH=. python benchmarks/fidelity.py --label baseline --md docs/benchmarks/fidelity_run.md

For every portrait (the ones ``benchmarks/identity.py`` builds offline and caches under
``~/.cache/machlib/portraits/``: the bundled default portrait, scikit-image's astronaut and the
six faces of insightface 2.1's ``t1.jpg``) the texture stage runs as ``machlib texture --image
PHOTO`` runs it (:func:`machlib.pipeline.fit_portrait` then
:func:`machlib.pipeline.texture_portrait`, default settings) and is scored:

* **relit PSNR / SSIM**: face-region PSNR (dB) and SSIM of the completed albedo under the
  estimated SH lighting, rendered in the fitted camera, against the photo (the numbers of the
  run's ``report.json``, ``quality.relit_albedo``; face region = the landmarks' face oval where
  the head covers the pixel);
* **delit PSNR**: the same render of the delighted texture *before* completion (a diagnostic:
  how much completion loses; unseen texels hold whatever the fit left there);
* **identity distance**: dlib's ResNet face descriptor of the photo's face against the face in
  the relit head render (head mesh only, no hair or eyeballs, grey background, 512²), in the
  fitted camera cropped square around the head (``input``) and turned −30° / +30° about the
  head's vertical axis (same cameras as ``identity.py``); same person below ~0.6;
* **seen**: the fraction of texels the portrait observes (``seen > 0.5``).

The table gives each portrait and the medians. Output (``--out``, default
``/tmp/machlib_fidelity``): ``fidelity.json``, ``fidelity.md`` and ``sheet_<portrait>.png``
(photo crop | input view | −30° | +30° | albedo), which are the pictures to look at. ``--md``
also writes the Markdown table there (e.g. into ``docs/benchmarks/``).

Needs ``dlib`` and ``face-recognition-models`` (exit 2 without them). About 30 s per portrait
on 2 cores once compiled (the XLA cache of ``machlib`` commands is used).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

import _common as C  # noqa: E402

DEVICE = C.select_device()  # before JAX is imported

import numpy as np  # noqa: E402

import identity as ID  # noqa: E402  (portraits, dlib evaluator, cameras)

SIZE = ID.SIZE
BACKGROUND = 0.55


def head_centre(mesh) -> np.ndarray:
    """The head's turning centre: the middle of the upper half of the fitted head mesh."""
    v = np.asarray(mesh.vertices, np.float64)
    top = v[v[:, 1] >= np.median(v[:, 1])]
    return (top.min(0) + top.max(0)) / 2


def render_head(mesh, texture, camera, lighting) -> np.ndarray:
    """uint8 ``(S, S, 3)``: the textured head under ``lighting`` on a grey background."""
    import jax.numpy as jnp

    from machlib.render import render_textured

    rgba = np.asarray(render_textured(mesh.vertices, mesh.faces, mesh.uv, mesh.faces_uv, jnp.asarray(texture),
                                      camera, lighting=jnp.asarray(lighting)))
    rgb = rgba[..., :3] * rgba[..., 3:] + BACKGROUND * (1.0 - rgba[..., 3:])
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def region_pixels(fit) -> dict:
    """``(H, W)`` float masks of the photo's eyes, brows and mouth: the landmarks' lid, brow and
    outer lip polygons, each grown by 3 % of the face width (lids, lashes and the skin around)."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    from machlib.geometry import face_oval
    from machlib.texture._regions import LIPS_OUTER, RIGHT_BROW, RIGHT_EYE, mirrored

    pts = np.asarray(fit.landmarks.points, np.float64)[:, :2]
    h, w = fit.image.shape[:2]
    grow = max(1, round(0.03 * float(np.ptp(pts[np.asarray(face_oval())][:, 0]))))
    out = {}
    for name, polys in (("eyes", (RIGHT_EYE, mirrored(RIGHT_EYE))), ("brows", (RIGHT_BROW, mirrored(RIGHT_BROW))),
                        ("mouth", (LIPS_OUTER,))):
        img = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(img)
        for idx in polys:
            draw.polygon([tuple(pts[i]) for i in idx], fill=1)
        out[name] = ndimage.binary_dilation(np.asarray(img) > 0, iterations=grow).astype(np.float32)
    return out


def face_scores(fit, tex, texture) -> dict:
    """Face-region PSNR/SSIM of ``texture`` relit in the fitted camera (as ``texture_portrait``),
    and PSNR over the eyes, brows and mouth (:func:`region_pixels`) within the face region."""
    import jax.numpy as jnp

    from machlib.render import render_textured
    from machlib.texture import TextureFitConfig, psnr, ssim

    mesh, cam = fit.result.mesh, fit.result.camera
    # bilinear, as texture_portrait samples for its metrics (the fit's filter)
    img = np.asarray(render_textured(mesh.vertices, mesh.faces, mesh.uv, mesh.faces_uv, jnp.asarray(texture), cam,
                                     lighting=jnp.asarray(tex.lighting), filter=TextureFitConfig().filter))
    photo = fit.image.astype(np.float32) / 255.0
    mask = tex.face_mask * (img[..., 3] > 0.999)
    out = {"face_psnr_db": float(psnr(img[..., :3], photo, mask=mask)),
           "face_ssim": float(ssim(img[..., :3], photo, mask=mask))}
    for name, region in region_pixels(fit).items():
        m = mask * region
        out[f"{name}_psnr_db"] = float(psnr(img[..., :3], photo, mask=m)) if m.sum() >= 20 else None
    return out


def _fmt(d) -> str:
    return "no face" if d is None else f"{d:.3f}"


def _db(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def _med(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return C.median(xs) if xs else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/tmp/machlib_fidelity", help="output folder (default /tmp/machlib_fidelity)")
    p.add_argument("--portraits", help=f"comma-separated subset of {','.join(ID.ALL_PORTRAITS)}")
    p.add_argument("--label", default="", help="a name for this run in the table title (e.g. baseline)")
    p.add_argument("--md", help="also write the Markdown table to this path")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = p.parse_args(argv)
    names = ID.ALL_PORTRAITS if not args.portraits else tuple(
        n.strip() for n in args.portraits.split(",") if n.strip())
    bad = [n for n in names if n not in ID.ALL_PORTRAITS]
    if bad:
        print(f"unknown portrait(s) {', '.join(bad)}; known: {', '.join(ID.ALL_PORTRAITS)}", file=sys.stderr)
        return 2
    ID._require_dlib()

    import jax
    import machlib
    from machlib import pipeline

    ID.enable_compilation_cache()
    info = C.machine_info()
    commit = ID.machlib_commit()
    print(f"machlib {getattr(machlib, '__version__', '?')} from {machlib.__file__} (commit {commit})")
    print(f"{info['cpu']} · {jax.default_backend()} · {info['date']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ev = ID.FaceEvaluator()
    photos = ID.load_portraits(names, ev, required=names)

    rows, entries, failed = [], [], 0
    for name in names:
        image = photos[name]
        print(f"\n== {name} ({image.shape[1]}×{image.shape[0]})", flush=True)
        entry = {"portrait": name, "size": [int(image.shape[1]), int(image.shape[0])]}
        desc_photo, _ = ev.describe(image)
        t0 = time.perf_counter()
        try:
            fit = pipeline.fit_portrait(image)
            tex = pipeline.texture_portrait(fit)
            secs = time.perf_counter() - t0
            delit = face_scores(fit, tex, np.clip(tex.delit, 0, 1))
            mesh = fit.result.mesh
            cams, (x0, y0, s), pose = ID.view_cameras(fit.result.camera, head_centre(mesh), image.shape[:2])
            renders = {view: render_head(mesh, tex.albedo, cam, tex.lighting) for view, cam in cams.items()}
        except Exception as e:  # one portrait's failure must not hide the others' numbers
            import traceback

            traceback.print_exc()
            failed += 1
            entry["error"] = f"{type(e).__name__}: {e}"
            entries.append(entry)
            rows.append([name, "error", "", "", "", "", "", "", "", "", "", type(e).__name__])
            continue
        dist, boxes = {}, {}
        for view, img in renders.items():
            ID._save_png(out / name / f"render_{view}.png", img)
            d, box = ev.describe(img)
            boxes[view] = box
            dist[view] = None if d is None or desc_photo is None else float(np.linalg.norm(d - desc_photo))
        relit = tex.metrics["relit_albedo"]
        regions = {k: v for k, v in face_scores(fit, tex, tex.albedo).items() if k.split("_")[0] in
                   ("eyes", "brows", "mouth")}
        seen = tex.metrics["seen_texel_fraction"]
        entry.update({
            "relit": relit, "raw": tex.metrics["raw"], "delit": delit, "seen_texel_fraction": seen,
            "relit_regions": regions, "eye_openness": tex.metrics.get("eye_openness"),
            "distance": {k: None if v is None else round(v, 4) for k, v in dist.items()},
            "photo_yaw_degrees": pose["yaw_degrees"], "seconds": round(secs, 1),
            "texture_timings": {k: round(float(v), 3) for k, v in tex.timings.items()},
        })
        entries.append(entry)
        rows.append([name, f"{pose['yaw_degrees']:+.0f}°", f"{relit['face_psnr_db']:.2f}",
                     f"{relit['face_ssim']:.3f}", f"{delit['face_psnr_db']:.2f}",
                     *(_db(regions.get(f"{k}_psnr_db")) for k in ("eyes", "brows", "mouth")),
                     _fmt(dist["input"]), _fmt(dist["yaw-30"]), _fmt(dist["yaw+30"]), f"{seen:.3f}"])
        from PIL import Image

        crop = np.asarray(Image.fromarray(image[y0:y0 + s, x0:x0 + s]).resize((SIZE, SIZE), Image.LANCZOS))
        alb = np.asarray(Image.fromarray((np.clip(tex.albedo, 0, 1) * 255 + 0.5).astype(np.uint8)).resize(
            (SIZE, SIZE), Image.LANCZOS))
        ID._save_png(out / f"sheet_{name}.png", np.concatenate([crop] + [renders[k] for k, _ in ID.YAWS] + [alb], 1))
        ID._save_png(out / name / "albedo.png", (np.clip(tex.albedo, 0, 1) * 255 + 0.5).astype(np.uint8))
        print(f"  {secs:6.1f} s  relit {relit['face_psnr_db']:.2f} dB / {relit['face_ssim']:.3f}, delit "
              f"{delit['face_psnr_db']:.2f} dB, dist " + ", ".join(f"{k} {_fmt(v)}" for k, v in dist.items())
              + f", seen {seen:.3f}", flush=True)

    ok = [e for e in entries if "error" not in e]
    med = {
        "relit_psnr_db": _med([e["relit"]["face_psnr_db"] for e in ok]),
        "relit_ssim": _med([e["relit"]["face_ssim"] for e in ok]),
        "delit_psnr_db": _med([e["delit"]["face_psnr_db"] for e in ok]),
        **{f"{k}_psnr_db": _med([e["relit_regions"].get(f"{k}_psnr_db") for e in ok])
           for k in ("eyes", "brows", "mouth")},
        **{f"distance_{k}": _med([e["distance"][k] for e in ok]) for k, _ in ID.YAWS},
        "seen_texel_fraction": _med([e["seen_texel_fraction"] for e in ok]),
    }
    f2 = lambda x, f: "–" if x is None else format(x, f)  # noqa: E731
    rows.append(["**median**", "", f2(med["relit_psnr_db"], ".2f"), f2(med["relit_ssim"], ".3f"),
                 f2(med["delit_psnr_db"], ".2f"), *(f2(med[f"{k}_psnr_db"], ".2f") for k in ("eyes", "brows", "mouth")),
                 f2(med["distance_input"], ".3f"),
                 f2(med["distance_yaw-30"], ".3f"), f2(med["distance_yaw+30"], ".3f"),
                 f2(med["seen_texel_fraction"], ".3f")])
    label = f" · {args.label}" if args.label else ""
    title = f"Texture fidelity{label} · machlib {commit} · {info['cpu']} · {jax.default_backend()} · {info['date']}"
    headers = ["portrait", "photo yaw", "relit PSNR dB", "relit SSIM", "delit PSNR dB (before completion)",
               "eyes dB", "brows dB", "mouth dB", "dlib dist input", "dlib dist −30°", "dlib dist +30°", "seen texels"]
    md = [f"### {title}", "", C.markdown_table(headers, rows), "",
          "Relit: the completed albedo under the estimated SH lighting, rendered in the fitted camera, against "
          "the photo over the face oval (report.json `quality.relit_albedo`). Delit: the delighted texture before "
          "completion, rendered the same way. Eyes, brows, mouth: the relit PSNR over the photo's lid, brow and "
          "outer lip polygons (landmarks) grown by 3 % of the face width, within the face region. dlib: distance of the photo's face descriptor to the relit head "
          "render's (head mesh only, 512², fitted camera and ±30° yaw; same person < 0.6; \"no face\": dlib finds "
          "none). Seen: fraction of texels observed. "
          "Command: `PYTHONPATH=. python benchmarks/fidelity.py`."]
    C.write_text(out / "fidelity.md", "\n".join(md))
    if args.md:
        C.write_text(args.md, "\n".join(md))
    doc = {"title": title, "label": args.label, "machine": info, "machlib_commit": commit, "dlib": ev.version,
           "medians": med, "portraits": entries}
    (out / "fidelity.json").write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print()
    print("\n".join(md))
    print(f"\nwrote {out}/fidelity.md, fidelity.json and sheet_*.png" + (f", {args.md}" if args.md else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
