"""Per-attribute accuracy of the rule parser on tests/text/prompts.json (Fig. 1 prompts + our own)."""

import json
from pathlib import Path

from machlib.text import FIELDS, parse_prompt

PROMPTS = json.loads((Path(__file__).parent / "prompts.json").read_text())["prompts"]


def field_accuracy(entries):
    """Per field: (correct, counted) over prompts where the field is expected or predicted."""
    table = {f: [0, 0] for f in FIELDS}
    for e in entries:
        got = parse_prompt(e["prompt"]).attributes.to_dict()
        for f in set(got) | set(e["expected"]):
            table[f][1] += 1
            table[f][0] += got.get(f) == e["expected"].get(f)
    return table


def test_prompt_set_is_well_formed():
    assert sum(e.get("figure1", False) for e in PROMPTS) == 9
    assert len(PROMPTS) >= 39
    assert len({e["prompt"] for e in PROMPTS}) == len(PROMPTS)
    for e in PROMPTS:
        assert set(e["expected"]) <= set(FIELDS), e["prompt"]


def test_figure1_prompts_are_fully_right():
    for e in PROMPTS:
        if e.get("figure1"):
            assert parse_prompt(e["prompt"]).attributes.to_dict() == e["expected"], e["prompt"]


def test_overall_accuracy():
    table = field_accuracy(PROMPTS)
    correct = sum(c for c, _ in table.values())
    counted = sum(n for _, n in table.values())
    assert counted > 0 and correct / counted >= 0.9, table
