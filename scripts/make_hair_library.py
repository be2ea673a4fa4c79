"""Generate the procedural hairstyle library (Make-A-Character §2.5's offline hairstyle set),
reproducibly, on the default template head.

For every preset of :data:`machlib.hair.HAIR_STYLES` (except ``bald``) the script grows the
strands on the template (:func:`machlib.hair.grow_style`, seed 0 unless ``--seed``), cleans them
(:func:`machlib.hair.cleanup_strands`) and writes, into ``OUT_DIR``:

* ``<name>.data``: the strands in USC-HairSalon format (template head space, metres);
* ``<name>.usda``: the same strands as USD ``BasisCurves``;
* ``<name>.png``: front, side and back previews on the template (:func:`machlib.hair.hair_preview`);
* ``index.json``: one entry per style: name, file names, tags, the style's parameters, the
  strand and point counts, the fraction removed by clean-up, the seed and the machlib version.

It also builds the manifest's beard assets (:func:`machlib.assets.builtin_manifest`, kind
``beard``) into ``OUT_DIR/beard``: ``<id>.data`` and ``<id>.usda`` with the facial hair of the
matching :data:`machlib.hair.BEARD_STYLES` preset grown on the template
(:func:`machlib.hair.grow_beard`), ``<id>.png`` previews and an ``index.json``.

The library is not committed (it is tens of megabytes); this script rebuilds it bit for bit:

    python scripts/make_hair_library.py OUT_DIR [--strands 10000] [--points 64] [--seed 0]

``machlib match "PROMPT" --kind hairstyle`` ranks these styles against a description. Any
``<name>.data`` file can be tried on a fitted head with ``machlib hair IMAGE --style FILE``
(the strands are moved from the template to the fitted head by
:func:`machlib.hair.transfer_strands`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax

import machlib
from machlib._image import save_png
from machlib.assets import builtin_manifest
from machlib.geometry import default_template
from machlib.hair import (
    BEARD_STYLES,
    HAIR_STYLES,
    cleanup_strands,
    grow_beard,
    grow_style,
    hair_preview,
    head_sdf_grid,
    write_hair_data,
    write_usd_curves,
)


def slug(name: str) -> str:
    return name.replace(" ", "_")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output folder")
    p.add_argument("--strands", type=int, default=10000, help="strands per style (default 10000)")
    p.add_argument("--points", type=int, default=64, help="points per strand (default 64)")
    p.add_argument("--guides", type=int, default=1000, help="guide strands (default 1000; 0: grow every strand)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument("--preview-size", type=int, default=384, help="preview view size in pixels (default 384)")
    args = p.parse_args(argv)
    out = Path(args.out) / "hair"
    out.mkdir(parents=True, exist_ok=True)
    template = default_template()
    sdf = head_sdf_grid(template.mesh)
    index = []
    for name, style in HAIR_STYLES.items():
        if style.bald:
            continue
        t0 = time.perf_counter()
        grown = grow_style(jax.random.key(args.seed), style, template, n_strands=args.strands, n_points=args.points,
                           sdf=sdf, guides=args.guides or None)
        clean = cleanup_strands(grown, sdf=sdf, n_points=args.points, min_length=min(0.01, 0.5 * style.length))
        strands = clean.strands
        s = slug(name)
        write_hair_data(out / f"{s}.data", strands)
        write_usd_curves(out / f"{s}.usda", strands)
        save_png(out / f"{s}.png", hair_preview(strands, template.mesh, size=args.preview_size))
        params = {f.name: getattr(style, f.name) for f in dataclasses.fields(style) if f.name not in ("name", "tags")}
        index.append({
            "name": name, "data": f"{s}.data", "usd": f"{s}.usda", "preview": f"{s}.png",
            "tags": list(style.tags), "params": params, "strands": int(strands.num_strands),
            "points_per_strand": int(args.points), "removed_fraction": round(float(clean.removed_fraction), 4),
            "seed": args.seed, "seconds": round(time.perf_counter() - t0, 2),
        })
        print(f"{name:14s} {strands.num_strands:6d} strands  removed {clean.removed_fraction:.3f}  "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    meta = {"machlib": machlib.__version__, "space": "template head space, metres, +y up, +z front",
            "styles": index}
    (out / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(index)} styles to {out}/")
    beards = build_beards(Path(args.out), template, sdf, seed=args.seed, size=args.preview_size)
    print(f"wrote {len(beards)} beards to {Path(args.out) / 'beard'}/")
    return 0


#: the manifest's beard asset ids -> the hair package's beard presets
BEARD_ASSETS = {"beard_full": "full", "beard_stubble": "stubble", "beard_goatee": "goatee",
                "beard_mustache": "moustache"}


def build_beards(root: Path, template, sdf, *, seed: int = 0, size: int = 384, n_strands=None) -> list:
    """Grow every beard asset of the built-in manifest on the template and write its files at the
    manifest's paths under ``root``; returns the index entries (``n_strands``: override the
    presets' strand counts, for tests)."""
    entries = []
    for asset in builtin_manifest().of_kind("beard"):
        style = BEARD_STYLES[BEARD_ASSETS[asset.id]]
        strands = grow_beard(jax.random.key(seed), style, template, sdf=sdf, color="brown", n_strands=n_strands)
        path = root / asset.path
        path.parent.mkdir(parents=True, exist_ok=True)
        write_hair_data(path, strands)
        write_usd_curves(path.with_suffix(".usda"), strands)
        save_png(path.with_suffix(".png"), hair_preview(strands, template.mesh, size=size, views=("front", 60.0)))
        entries.append({"id": asset.id, "style": style.name, "data": path.name, "usd": path.with_suffix(".usda").name,
                        "preview": path.with_suffix(".png").name, "zones": list(style.zones),
                        "length_m": style.length, "strands": int(strands.num_strands), "seed": seed})
        print(f"{asset.id:16s} {strands.num_strands:6d} strands", flush=True)
    meta = {"machlib": machlib.__version__, "space": "template head space, metres, +y up, +z front",
            "beards": entries}
    (root / "beard" / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
    return entries


if __name__ == "__main__":
    raise SystemExit(main())
