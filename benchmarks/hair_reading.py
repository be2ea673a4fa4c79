"""Hair reading against hand-drawn masks and labels (issue 17).

Run from the repository root::

    PYTHONPATH=. python benchmarks/hair_reading.py                      # the 8 look-test portraits
    PYTHONPATH=. python benchmarks/hair_reading.py --portraits hopper,astronaut --out /tmp/hr

For every portrait (``hopper``, ``astronaut``, ``t1_face0`` … ``t1_face5``, built and cached by
``benchmarks/identity.py``'s loader; portraits that cannot be built are left out) the script
detects the landmarks, runs :func:`machlib.hair.hair_mask`, the orientation map and
:func:`machlib.hair.read_hairstyle` (colour from :func:`machlib.hair.estimate_hair_color`,
white-balanced by :func:`machlib.hair.light_from_eyes`: the eye whites and teeth, with
:func:`machlib.hair.light_from_skin` as the prior where they show little) and
compares them with the hair region and the labels drawn by hand in
``tests/hair/data/hair_masks.json``: the IoU of the mask (``> 0.5``) with the drawn region,
its precision and recall, and the labels beside machlib's reading. Glasses and beard are the
drawn labels only (this script reads the hair).

Writes ``docs/benchmarks/hair_reading.md`` (``--doc``, the default when all eight ran),
``OUT/hair_reading.json`` and ``OUT/masks.png`` (per portrait: green = both, red = machlib
only, blue = drawn only). CPU seconds (``time.process_time``) of the mask per portrait are
reported beside the numbers.
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
import numpy as np

MASKS = _HERE.parent / "tests" / "hair" / "data" / "hair_masks.json"
DOC = _HERE.parent / "docs" / "benchmarks" / "hair_reading.md"


def drawn(entry: dict, shape: tuple[int, int]) -> np.ndarray:
    from skimage.draw import polygon

    out = np.zeros(shape, bool)
    for poly in entry["polygons"]:
        p = np.asarray(poly, np.float64)
        rr, cc = polygon(p[:, 1] - 0.5, p[:, 0] - 0.5, shape=shape)
        out[rr, cc] = True
    return out


def _same_colour(drawn_words: str, read) -> bool:
    if read is None:
        return False
    words = drawn_words.replace("/", " ").replace("grey", "gray").replace("blond ", "blonde ").split()
    return read in words


def portraits(names) -> dict:
    import identity

    ev = None
    if any(n.startswith("t1_") and not (identity.cache_dir() / f"{n}.png").is_file() for n in names):
        identity._require_dlib()
        ev = identity.FaceEvaluator()
    return identity.load_portraits(names, ev)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--portraits", help="comma-separated subset (default: all in the masks file)")
    p.add_argument("--out", default="/tmp/machlib_hair_reading")
    p.add_argument("--doc", action=argparse.BooleanOptionalAction, default=None,
                   help="write docs/benchmarks/hair_reading.md (default: when every portrait ran)")
    args = p.parse_args(argv)
    import jax

    import machlib
    from machlib.geometry import detect_landmarks
    from machlib.hair import (
        estimate_hair_color,
        hair_mask,
        light_from_eyes,
        light_from_skin,
        orientation_map,
        read_hairstyle,
    )

    spec = json.loads(MASKS.read_text())
    all_names = [k for k in spec if not k.startswith("_")]
    names = all_names if not args.portraits else [n.strip() for n in args.portraits.split(",") if n.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("machlib", machlib.__file__)
    photos = portraits(names)
    rows, entries, tiles = [], [], []
    for name in names:
        if name not in photos:
            continue
        img = photos[name]
        gt = drawn(spec[name], img.shape[:2])
        lm = detect_landmarks(img)
        t = time.process_time()
        hm = hair_mask(img, lm)
        t_mask = time.process_time() - t
        gray = img.astype(np.float32).mean(-1) / 255.0
        om = jax.tree_util.tree_map(np.asarray, orientation_map(gray, mask=hm.mask))
        try:
            light = light_from_eyes(img, lm.points, prior=light_from_skin(img, hm.face))
            color = estimate_hair_color(img, hm.mask, light=light.rgb).name
        except ValueError:
            color, light = None, None
        r = read_hairstyle(hm.mask, om, lm, color=color)
        m = hm.mask > 0.5
        inter = float((m & gt).sum())
        iou = inter / max(float((m | gt).sum()), 1.0)
        prec, rec = inter / max(float(m.sum()), 1.0), inter / max(float(gt.sum()), 1.0)
        lab = spec[name]["labels"]
        entries.append({"portrait": name, "labels": lab, "reading": r.to_dict(), "iou": round(iou, 3),
                        "precision": round(prec, 3), "recall": round(rec, 3), "mask_cpu_s": round(t_mask, 2),
                        "light": None if light is None else {
                            "rgb": [round(float(c), 3) for c in light.rgb], "sclera_pixels": light.sclera_pixels,
                            "teeth_pixels": light.teeth_pixels, "weight": round(light.weight, 2)}})
        rows.append([name, f"{lab['length']} / {r.length}", f"{lab['fringe']} / {r.fringe}",
                     f"{lab['parting']} / {r.parting}", f"{lab['color']} / {r.color}",
                     "-" if light is None else f"{light.sclera_pixels} / {light.teeth_pixels}", r.curl,
                     "yes" if lab["glasses"] else "no", "yes" if lab["beard"] else "no",
                     f"{iou:.3f}", f"{prec:.2f} / {rec:.2f}"])
        print(f"{name:10s} IoU {iou:.3f} P {prec:.2f} R {rec:.2f}  length {lab['length']}/{r.length} "
              f"fringe {lab['fringe']}/{r.fringe} parting {lab['parting']}/{r.parting} curl {r.curl} "
              f"colour {lab['color']}/{r.color}  ({t_mask:.2f} s)", flush=True)
        o = img.astype(np.float64).copy()
        for sel, col in ((m & ~gt, (255, 0, 0)), (gt & ~m, (0, 0, 255)), (m & gt, (0, 255, 0))):
            o[sel] = 0.4 * o[sel] + 0.6 * np.asarray(col, np.float64)
        tiles.append(o.astype(np.uint8))
    if tiles:
        from PIL import Image

        side = 256
        ims = [Image.fromarray(t).resize((side, round(side * t.shape[0] / t.shape[1]))) for t in tiles]
        hh = max(i.size[1] for i in ims)
        sheet = Image.new("RGB", (side * min(4, len(ims)), hh * ((len(ims) + 3) // 4)))
        for i, im in enumerate(ims):
            sheet.paste(im, ((i % 4) * side, (i // 4) * hh))
        sheet.save(out / "masks.png")
    mean_iou = float(np.mean([e["iou"] for e in entries])) if entries else float("nan")
    info = C.machine_info()
    (out / "hair_reading.json").write_text(json.dumps({"machine": info, "portraits": entries,
                                                       "mean_iou": round(mean_iou, 3)}, indent=1) + "\n")
    write_doc = args.doc if args.doc is not None else len(entries) == len(all_names)
    if write_doc:
        head = ["portrait", "length (drawn / read)", "fringe", "parting", "colour", "eye white / teeth px",
                "curl (read)",
                "glasses (drawn)", "beard (drawn)", "IoU", "precision / recall"]
        hits = {k: sum(e["labels"][k] == e["reading"][k] for e in entries) for k in ("length", "fringe", "parting")}
        hits["color"] = sum(_same_colour(e["labels"]["color"], e["reading"]["color"]) for e in entries)
        text = (f"# Hair reading against hand-drawn masks\n\n"
                f"`PYTHONPATH=. python benchmarks/hair_reading.py` — {info['date']}, {info['cpu']}.\n\n"
                f"Each portrait's hair drawn by hand as polygons with labels "
                f"(`tests/hair/data/hair_masks.json`); machlib's `hair_mask` (> 0.5) and "
                f"`read_hairstyle` beside them. Sides as seen in the image. The colour is white-balanced by "
                f"`light_from_eyes` (the eye-white and teeth pixels it accepted; with none it falls back "
                f"on `light_from_skin`).\n\n"
                + C.markdown_table(head, rows)
                + f"\n\nMean IoU {mean_iou:.3f}. Labels read right: length {hits['length']}/{len(entries)}, "
                f"fringe {hits['fringe']}/{len(entries)}, parting {hits['parting']}/{len(entries)}, colour "
                f"{hits['color']}/{len(entries)} (the drawn colour words name the read colour; grey = gray).\n")
        DOC.write_text(text)
        print("wrote", DOC)
    print(f"mean IoU {mean_iou:.3f}; outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
