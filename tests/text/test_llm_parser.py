"""The LLM prompt parser (machlib.text._llm) and the chat model behind it (machlib.interop._text_models)."""

import json

import pytest

from machlib._errors import MachlibError, ParserError, WeightsMissingError
from machlib.text import FIELDS, VOCABULARY, FaceAttributes, Parser
from machlib.text._llm import LLMParser, llm_system_prompt, read_llm_reply


class Scripted:
    """A generate callable that answers from a list and records what it was asked."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.seen = []

    def __call__(self, messages):
        self.seen.append(messages)
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def test_is_a_parser():
    assert isinstance(LLMParser(Scripted("{}")), Parser)


def test_system_prompt_lists_every_field_and_value():
    p = llm_system_prompt()
    for field in FIELDS:
        line = next(l for l in p.splitlines() if l.startswith(f"- {field}: "))
        for value in VOCABULARY[field]:
            assert value in line
    assert '"attributes"' in p and '"unknown"' in p and '"ambiguous"' in p


def test_retries_feed_the_error_back():
    gen = Scripted(
        "Sure, here you go: {attributes: hair_color=red",                       # not JSON
        '```json\n{"attributes": {"hair_color": "crimson-ish"}}\n```',          # outside the vocabulary
        'Here: ```json\n{"attributes": {"hair_color": "Ginger", "gender": "woman"}, "unknown": ["sly grin"],'
        ' "ambiguous": [{"phrase": "round", "candidates": [["face_shape", "round"], ["glasses", "round"]]}],'
        ' "evidence": {"hair_color": "ginger hair", "beard": "ignored"}}\n``` Hope it helps!',
    )
    r = LLMParser(gen, max_retries=2).parse("a woman with ginger hair, round, and a sly grin")
    assert r.attributes == FaceAttributes(gender="female", hair_color="red")
    assert r.unknown == ["sly grin"]
    assert r.ambiguous[0].phrase == "round"
    assert r.ambiguous[0].candidates == (("face_shape", "round"), ("glasses", "round"))
    assert r.evidence == {"hair_color": "ginger hair"}
    assert len(gen.seen) == 3
    first, second, third = gen.seen
    assert [m["role"] for m in first] == ["system", "user"]
    assert "ginger hair" in first[1]["content"]
    # each retry carries the bad reply and the reason
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"].startswith("Sure, here you go")
    assert "no JSON object" in second[3]["content"]
    assert "'crimson-ish' is not allowed for 'hair_color'" in third[-1]["content"]
    assert "auburn" in third[-1]["content"]  # the allowed values are listed


def test_always_invalid_raises_parser_error():
    gen = Scripted('{"attributes": {"eye_colour": "blue"}} ' + "x" * 1000)
    with pytest.raises(ParserError, match=r"no valid reply after 3 attempt\(s\): unknown field 'eye_colour'") as e:
        LLMParser(gen, max_retries=2).parse("blue eyes")
    assert isinstance(e.value, MachlibError) and isinstance(e.value, ValueError)
    assert "last reply: '{\"attributes\"" in str(e.value) and str(e.value).endswith("...'")
    assert "x" * 300 not in str(e.value)  # the reply is truncated
    assert len(gen.seen) == 3


def test_no_retries():
    gen = Scripted("no idea")
    with pytest.raises(ParserError, match="after 1 attempt"):
        LLMParser(gen, max_retries=0).parse("x")
    assert len(gen.seen) == 1


@pytest.mark.parametrize("reply, msg", [
    ("[1, 2]", "no JSON object"),
    ('{"attributes": {"gender": 3}}', "must be a string"),
    ('{"attributes": [], "unknown": "x"}', '"attributes" must be an object'),
    ('{"attributes": {}, "unknown": "x"}', '"unknown" must be a list of strings'),
    ('{"attributes": {}, "extra": 1}', "unexpected key"),
    ('{"attributes": {}, "ambiguous": [{"phrase": "p", "candidates": [["nose", "blue"]]}]}',
     r"ambiguous\[0\].candidates\[0\]: value 'blue' is not allowed for 'nose'"),
])
def test_reply_validation(reply, msg):
    with pytest.raises(ValueError, match=msg):
        read_llm_reply(reply)


def test_reply_leniency():
    # a bare attribute object, synonyms and null values
    r = read_llm_reply('{"hair_color": "grey", "glasses": null, "eyebrow": "Willow Leaf"}')
    assert r.attributes.to_dict() == {"eyebrow": "willow-leaf", "hair_color": "gray"}
    # the first *object* is used, after a stray brace
    assert read_llm_reply('{ oops } {"attributes": {"beard": "goatee"}}').attributes.beard == "goatee"


@pytest.mark.parametrize("kwargs, msg", [({"max_retries": -1}, "max_retries"), ({"system_prompt": 3}, "system_prompt")])
def test_bad_options(kwargs, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        LLMParser(Scripted("{}"), **kwargs)


def test_bad_generate_and_prompt():
    with pytest.raises((ValueError, TypeError), match="generate"):
        LLMParser(3)
    with pytest.raises((ValueError, TypeError), match="prompt"):
        LLMParser(Scripted("{}")).parse(3)
    with pytest.raises((ValueError, TypeError), match="generate must return a str"):
        LLMParser(lambda m: 3).parse("x")


def test_missing_model_folder(tmp_path):
    with pytest.raises(WeightsMissingError, match="ChatModel: no chat model folder"):
        LLMParser(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WeightsMissingError, match=r"lacks the weights .* tokenizer files"):
        LLMParser(tmp_path)


# ---------------------------------------------------------------------------------------------
# A tiny random chat model, saved and loaded like a real checkpoint

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def _save_tiny_chat_model(path, *, template=True):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    special = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400, special_tokens=special,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    corpus = [llm_system_prompt(), '{"attributes": {"hair_color": "red"}, "unknown": [], "ambiguous": []}',
              "A young woman with long ginger hair and round glasses."] * 3
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>")
    if template:
        fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(fast), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=8192, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    return _save_tiny_chat_model(tmp_path_factory.mktemp("tiny_chat"))


@pytest.mark.slow
def test_tiny_chat_model_end_to_end(tiny_chat):
    from machlib.interop._text_models import ChatModel

    model = ChatModel(tiny_chat, max_new_tokens=6)
    assert model.has_chat_template
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    assert model.format(messages) == "<|system|>sys<|end|><|user|>hi<|end|><|assistant|>"
    a = model(messages)
    assert isinstance(a, str) and model(messages) == a  # greedy: deterministic
    assert model.calls == 2 and 1 <= model.last_new_tokens <= 6
    with pytest.raises((ValueError, TypeError), match="messages"):
        model([{"role": "robot", "content": "x"}])

    # random weights do not write schema JSON: the parser retries, then fails clearly
    parser = LLMParser(tiny_chat, max_retries=1, max_new_tokens=6)
    with pytest.raises(ParserError, match=r"after 2 attempt\(s\): .*last reply: "):
        parser.parse("A young woman with long ginger hair.")
    assert parser.generate.calls == 2  # generation really ran, once per attempt
    assert parser.generate.last_new_tokens >= 1


@pytest.mark.slow
def test_tiny_chat_model_without_template(tmp_path):
    from machlib.interop._text_models import CHAT_FALLBACK_TEMPLATE, ChatModel

    model = ChatModel(_save_tiny_chat_model(tmp_path, template=False), max_new_tokens=3)
    assert not model.has_chat_template
    text = model.format([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == (CHAT_FALLBACK_TEMPLATE.format(role="System", content="S")
                    + CHAT_FALLBACK_TEMPLATE.format(role="User", content="U") + "### Assistant:\n")
    assert isinstance(model([{"role": "user", "content": "U"}]), str)


def test_chat_model_missing_transformers(tmp_path, monkeypatch):
    import sys

    from machlib.interop._text_models import ChatModel

    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"pip install 'machlib\[diffusion\]'"):
        ChatModel(tmp_path)


def test_reply_round_trip_of_schema_json():
    a = FaceAttributes(gender="male", beard="goatee", glasses="round")
    assert read_llm_reply(json.dumps({"attributes": a.to_dict()})).attributes == a
