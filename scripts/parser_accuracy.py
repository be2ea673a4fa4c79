"""Per-attribute accuracy of a machlib.text prompt parser on the prompt sets, as Markdown tables.

For each field, a prompt counts when the field is expected or predicted; it is right when the
predicted value equals the expected one (a missing or extra value is wrong). By default both sets
are scored: tests/text/prompts.json (the paper's Figure 1 prompts and ours, written for the rule
parser) and tests/text/paraphrases.json (worded with phrases outside the lexicon).

Parsers: ``rule`` (RuleParser), ``embedding`` (EmbeddingParser with the default embedder: the
packaged all-MiniLM-L6-v2 when installed, else the lexical fallback; ``--model PATH`` for another
sentence-transformers folder, ``--model lexical`` for the fallback), ``llm`` (LLMParser on the
local chat-model folder ``--model PATH``).

Usage: python scripts/parser_accuracy.py [--parser rule|embedding|llm] [--model PATH]
       [--prompts FILE ...] [--only-figure1]
"""

import argparse
import json
import sys
import time
from pathlib import Path

from machlib.text import FIELDS, RuleParser

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETS = [ROOT / "tests" / "text" / "prompts.json", ROOT / "tests" / "text" / "paraphrases.json"]


def make_parser(kind: str, model: str | None):
    """The parser named on the command line."""
    if kind == "rule":
        return RuleParser()
    if kind == "embedding":
        from machlib.assets import LexicalEmbedder, SentenceTransformerEmbedder
        from machlib.text._embed_parse import EmbeddingParser

        if model is None:
            return EmbeddingParser()
        return EmbeddingParser(LexicalEmbedder() if model == "lexical" else SentenceTransformerEmbedder(model))
    if kind == "llm":
        from machlib.text._llm import LLMParser

        if model is None:
            sys.exit("parser_accuracy: --parser llm needs --model PATH (a local chat-model folder)")
        return LLMParser(model)
    raise ValueError(kind)


def score(parser, entries: list[dict]) -> tuple[dict, int, list]:
    """Per field [right, counted], the number of prompts parsed exactly, and the misses."""
    table = {f: [0, 0] for f in FIELDS}
    exact, misses = 0, []
    for e in entries:
        got = parser.parse(e["prompt"]).attributes.to_dict()
        exact += got == e["expected"]
        if got != e["expected"]:
            misses.append((e["prompt"], {f: (e["expected"].get(f), got.get(f))
                                         for f in set(got) | set(e["expected"]) if got.get(f) != e["expected"].get(f)}))
        for f in set(got) | set(e["expected"]):
            table[f][1] += 1
            table[f][0] += got.get(f) == e["expected"].get(f)
    return table, exact, misses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parser", choices=["rule", "embedding", "llm"], default="rule")
    ap.add_argument("--model", default=None, help="model folder (embedding: sentence-transformers or 'lexical'; "
                                                  "llm: a transformers chat model)")
    ap.add_argument("--prompts", type=Path, nargs="+", default=DEFAULT_SETS, help="prompt set JSON file(s)")
    ap.add_argument("--only-figure1", action="store_true", help="only the nine prompts of the paper's Fig. 1")
    ap.add_argument("--misses", action="store_true", help="list the prompts not parsed exactly right")
    args = ap.parse_args()
    t0 = time.perf_counter()
    parser = make_parser(args.parser, args.model)
    print(f"parser: {parser!r} (built in {time.perf_counter() - t0:.1f} s)\n")
    for path in args.prompts:
        entries = json.loads(path.read_text())["prompts"]
        if args.only_figure1:
            entries = [e for e in entries if e.get("figure1")]
        t0 = time.perf_counter()
        table, exact, misses = score(parser, entries)
        dt = time.perf_counter() - t0
        print(f"### {path.name}: {len(entries)} prompts, {exact} parsed exactly right ({dt:.1f} s)\n")
        print("| attribute | right | counted | accuracy |")
        print("|---|---:|---:|---:|")
        for f in FIELDS:
            right, counted = table[f]
            if counted:
                print(f"| {f} | {right} | {counted} | {right / counted:.2f} |")
        right = sum(r for r, _ in table.values())
        counted = sum(c for _, c in table.values())
        print(f"| **all** | {right} | {counted} | {right / counted:.2f} |\n")
        if args.misses:
            for prompt, diff in misses:
                print(f"- {prompt!r}: (expected, got) {diff}")
            print()


if __name__ == "__main__":
    main()
