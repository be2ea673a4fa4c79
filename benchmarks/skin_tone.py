"""Skin tone read from the photo, with and without the light's colour divided out (issue 17).

Run from the repository root::

    PYTHONPATH=. python benchmarks/skin_tone.py                      # the 8 look-test portraits
    PYTHONPATH=. python benchmarks/skin_tone.py --portraits hopper,astronaut

For every portrait of ``tests/hair/data/hair_masks.json`` (built and cached by
``benchmarks/identity.py``'s loader) the script runs :func:`machlib.pipeline.fit_portrait` and
:func:`machlib.pipeline.texture_portrait` with their defaults, one portrait after the other, and
reports ``metrics["ita_degrees_unbalanced"]`` (the ITA of the seen, delighted albedo, the
photo's colour cast left in) beside ``metrics["ita_degrees"]`` (the cast read from the eye whites
and teeth by :func:`machlib.hair.light_from_eyes` divided out), the skin-tone word of each
(:func:`machlib.character.skin_tone_from_ita`), the light and the pixels it was read from, and the
CPU seconds (``time.process_time``) of fit + texture. All eight are light-skinned.

Writes ``docs/benchmarks/skin_tone.md`` (``--doc``, the default when all eight ran) and
``OUT/skin_tone.json``.
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
from hair_reading import MASKS, portraits

DOC = _HERE.parent / "docs" / "benchmarks" / "skin_tone.md"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--portraits", help="comma-separated subset (default: all in the masks file)")
    p.add_argument("--out", default="/tmp/machlib_skin_tone")
    p.add_argument("--doc", action=argparse.BooleanOptionalAction, default=None,
                   help="write docs/benchmarks/skin_tone.md (default: when every portrait ran)")
    args = p.parse_args(argv)
    from machlib.character import skin_tone_from_ita
    from machlib.pipeline import fit_portrait, texture_portrait

    spec = json.loads(MASKS.read_text())
    all_names = [k for k in spec if not k.startswith("_")]
    names = all_names if not args.portraits else [n.strip() for n in args.portraits.split(",") if n.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = portraits(names)
    rows, entries = [], []
    for name in names:
        if name not in photos:
            continue
        t = time.process_time()
        tex = texture_portrait(fit_portrait(photos[name]))
        cpu = time.process_time() - t
        m = tex.metrics
        before, after, light = m["ita_degrees_unbalanced"], m["ita_degrees"], m["light"]
        entries.append({"portrait": name, "ita_unbalanced": round(before, 2), "ita": round(after, 2),
                        "skin_tone_unbalanced": skin_tone_from_ita(before), "skin_tone": skin_tone_from_ita(after),
                        "light": light, "cpu_s": round(cpu, 1)})
        rows.append([name, f"{before:.1f}° {skin_tone_from_ita(before)}", f"{after:.1f}° {skin_tone_from_ita(after)}",
                     "(" + ", ".join(f"{c:.2f}" for c in light["rgb"]) + ")",
                     f"{light['sclera_pixels']} / {light['teeth_pixels']}", f"{cpu:.0f}"])
        print(" | ".join(rows[-1]), flush=True)
    info = C.machine_info()
    (out / "skin_tone.json").write_text(json.dumps({"machine": info, "portraits": entries}, indent=1) + "\n")
    write_doc = args.doc if args.doc is not None else len(entries) == len(all_names)
    if write_doc:
        light_words = ("light", "very light")
        n0 = sum(e["skin_tone_unbalanced"] in light_words for e in entries)
        n1 = sum(e["skin_tone"] in light_words for e in entries)
        head = ["portrait", "ITA, cast left in", "ITA, cast divided out", "light (linear RGB, mean 1)",
                "eye white / teeth px", "CPU s (fit + texture)"]
        text = (f"# Skin tone with the light's colour divided out\n\n"
                f"`PYTHONPATH=. python benchmarks/skin_tone.py` — {info['date']}, {info['cpu']}.\n\n"
                f"The ITA of the seen, delighted face albedo (`texture_portrait`'s "
                f"`metrics['ita_degrees_unbalanced']`) beside the same with the colour of the light read "
                f"from the eye whites and teeth (`light_from_eyes`, no prior) divided out "
                f"(`metrics['ita_degrees']`, which `read_attributes` turns into the skin-tone word). "
                f"All eight people are light-skinned; where no eye white or tooth passed the checks "
                f"the light is neutral and nothing changes.\n\n"
                + C.markdown_table(head, rows)
                + f"\n\nRead as light or very light: {n0}/{len(entries)} with the cast left in, "
                f"{n1}/{len(entries)} with it divided out.\n")
        DOC.write_text(text)
        print("wrote", DOC)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
