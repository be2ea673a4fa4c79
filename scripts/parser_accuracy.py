"""Per-attribute accuracy of machlib.text.RuleParser on tests/text/prompts.json, as a Markdown table.

For each field, a prompt counts when the field is expected or predicted; it is right when the
predicted value equals the expected one (a missing or extra value is wrong).

Usage: python scripts/parser_accuracy.py [--prompts PATH] [--only-figure1]
"""

import argparse
import json
from pathlib import Path

from machlib.text import FIELDS, parse_prompt

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=Path, default=ROOT / "tests" / "text" / "prompts.json")
    ap.add_argument("--only-figure1", action="store_true", help="only the nine prompts of the paper's Fig. 1")
    args = ap.parse_args()
    entries = json.loads(args.prompts.read_text())["prompts"]
    if args.only_figure1:
        entries = [e for e in entries if e.get("figure1")]
    table = {f: [0, 0] for f in FIELDS}
    exact = 0
    for e in entries:
        got = parse_prompt(e["prompt"]).attributes.to_dict()
        exact += got == e["expected"]
        for f in set(got) | set(e["expected"]):
            table[f][1] += 1
            table[f][0] += got.get(f) == e["expected"].get(f)
    print(f"{len(entries)} prompts, {exact} parsed exactly right.\n")
    print("| attribute | right | counted | accuracy |")
    print("|---|---:|---:|---:|")
    for f in FIELDS:
        right, counted = table[f]
        if counted:
            print(f"| {f} | {right} | {counted} | {right / counted:.2f} |")
    right = sum(r for r, _ in table.values())
    counted = sum(c for _, c in table.values())
    print(f"| **all** | {right} | {counted} | {right / counted:.2f} |")


if __name__ == "__main__":
    main()
