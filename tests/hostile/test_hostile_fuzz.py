"""Fuzzing machlib's readers of user data files (issue 18): whatever the bytes or JSON, a reader
returns a valid result or raises machlib's own error (:class:`~machlib.InputError`), never a
TypeError, OverflowError, KeyError, RecursionError, ... and never allocates without bound.

Readers covered: the landmark table of a user template (its JSON and the table checks), asset
manifests (JSON and TOML), the diffusion weights config (TOML and JSON) and safetensors headers
(with the delighter config they carry). Each gets 10 × the profile's ``max_examples``: 1,000 in
the default ``ci`` profile, 10,000 with ``--hypothesis-profile nightly`` (profiles in
``tests/conftest.py``); the whole-file template reader and the ``attributes`` command end to
end get 2 × (200 and 2,000).

The mesh and strand file readers (OBJ, GLB, ``.data``, ``.hair``) are fuzzed in
``tests/hostile/test_fuzz_files.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import small_mesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machlib import InputError
from machlib.assets import load_manifest
from machlib.geometry._template import _read_table, load_template
from machlib.interop._diffusion_config import _read_config

FUZZ = settings(max_examples=10 * settings.default.max_examples, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# JSON values, with the numbers that break naive readers: huge, negative, fractional, infinite
_numbers = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([0, 1, -1, 477, 478, 479, 10**13, -5, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e400, -1e400, 0.5, 1e13]),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=20),
                     st.sampled_from(["abc", "", "uv", "vertex", "index", "face.png", "../x", "/etc/passwd"]))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                     max_leaves=12)


def _field(name, value=_json):
    return st.tuples(st.just(name), value)


# a landmark entry: usually the right keys, with values of any type
_entry = st.one_of(
    st.fixed_dictionaries({}, optional={"index": st.one_of(st.integers(-5, 500), _json),
                                        "uv": st.one_of(st.lists(st.one_of(st.floats(-0.5, 1.5), _json),
                                                                 max_size=3), _json),
                                        "vertex": st.one_of(st.integers(-5, 1000), _json)}),
    _json,
)
_table = st.one_of(
    st.fixed_dictionaries({"landmarks": st.lists(_entry, max_size=40)},
                          optional={"num_landmarks": st.one_of(st.integers(-10, 1000), _json),
                                    "symmetric": _json, "regions": _json}),
    _json,
)


@pytest.fixture(scope="module")
def mesh():
    return small_mesh()


@FUZZ
@given(data=_table)
def test_landmark_table_fuzz(mesh, data):
    try:
        uv, valid = _read_table(data, mesh, "fuzz.json")
    except InputError as e:
        assert "\n" not in str(e) and len(str(e)) < 1000
        return
    assert uv.shape == (valid.shape[0], 2) and np.isfinite(uv).all() and valid.sum() >= 6
    assert ((uv >= 0) & (uv <= 1)).all()


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory):
    from machlib import save_obj

    d = tmp_path_factory.mktemp("fuzz_template")
    save_obj(d / "head.obj", small_mesh())
    return d


@settings(FUZZ, max_examples=2 * settings.default.max_examples)
@given(text=st.one_of(st.text(max_size=300), _table.map(lambda t: json.dumps(t, allow_nan=True)),
                      st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_landmark_table_file_fuzz(template_dir, text):
    """The whole file path of :func:`load_template`: bytes → JSON → table → regions."""
    path = template_dir / "table.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_template(template_dir / "head.obj", path)
    except InputError:
        pass


_asset = st.one_of(
    st.fixed_dictionaries({"id": st.one_of(st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True), _json),
                           "kind": st.one_of(st.sampled_from(["hairstyle", "glasses", "hat"]), _json),
                           "label": st.one_of(st.text(max_size=10), _json),
                           "path": st.one_of(st.sampled_from(["a.data", "../a", "/abs", "a/b.glb", "", "a\x00b"]),
                                             _json)},
                          optional={"tags": st.one_of(st.lists(st.text(max_size=6), max_size=3), _json),
                                    "thumbnail": st.one_of(st.sampled_from(["t.png", "../t.png"]), _json),
                                    "extra": _json}),
    _json,
)
_manifest = st.one_of(
    st.fixed_dictionaries({"version": st.one_of(st.just(1), _json), "assets": st.lists(_asset, max_size=4)}),
    _json,
)


def _toml_value(v):
    """A TOML rendering of a JSON-like value (inline tables/arrays), or None when TOML cannot hold it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -(2**63) <= v < 2**63 else None
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        items = [_toml_value(x) for x in v]
        return None if None in items else "[" + ", ".join(items) + "]"
    if isinstance(v, dict):
        items = [(json.dumps(k), _toml_value(x)) for k, x in v.items()]
        return None if any(x is None for _, x in items) else "{" + ", ".join(f"{k} = {x}" for k, x in items) + "}"
    return None  # null


@pytest.fixture(scope="module")
def manifest_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_manifest")


@FUZZ
@given(data=_manifest, fmt=st.sampled_from(["json", "toml", "raw"]), raw=st.binary(max_size=200))
def test_manifest_fuzz(manifest_dir, data, fmt, raw):
    if fmt == "json":
        path = manifest_dir / "m.json"
        path.write_text(json.dumps(data, allow_nan=True))
    elif fmt == "toml":
        path = manifest_dir / "m.toml"
        body = ([f"{json.dumps(k)} = {_toml_value(v)}" for k, v in data.items() if _toml_value(v) is not None]
                if isinstance(data, dict) else [])
        path.write_text("\n".join(body) + "\n")
    else:
        path = manifest_dir / "raw.toml"
        path.write_bytes(raw)
    try:
        manifest = load_manifest(path)
    except InputError as e:
        assert "\n" not in str(e).rstrip() or "cannot parse" in str(e)
        return
    for asset in manifest:
        assert isinstance(asset.id, str) and isinstance(asset.path, str)


_config = st.one_of(
    st.dictionaries(st.sampled_from(["base", "controlnet_openpose", "controlnet_canny", "unet", "x" * 100]),
                    st.one_of(st.sampled_from(["sd15", "/models/x", "~/x", "", " ", "a\x00b"]), _json), max_size=3),
    _json,
)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_config")


@FUZZ
@given(data=_config, fmt=st.sampled_from(["json", "toml", "raw"]), raw=st.binary(max_size=200))
def test_weights_config_fuzz(config_dir, data, fmt, raw):
    if fmt == "json":
        path = config_dir / "w.json"
        path.write_text(json.dumps(data, allow_nan=True))
    elif fmt == "toml":
        path = config_dir / "w.toml"
        body = ([f"{json.dumps(k)} = {_toml_value(v)}" for k, v in data.items() if _toml_value(v) is not None]
                if isinstance(data, dict) else [])
        path.write_text("\n".join(body) + "\n")
    else:
        path = config_dir / "raw.toml"
        path.write_bytes(raw)
    try:
        found = _read_config(path)
    except InputError as e:
        assert len(str(e)) < 2000
        return
    assert set(found) <= {"base", "controlnet_openpose", "controlnet_canny"}


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_weights")


def _safetensors(header: bytes, length: int | None = None) -> bytes:
    return (len(header) if length is None else length).to_bytes(8, "little", signed=False) + header


_header = st.one_of(
    st.fixed_dictionaries({}, optional={"__metadata__": st.one_of(
        st.dictionaries(st.sampled_from(["pix2pixhd_config", "format", "x"]),
                        st.one_of(_json.map(json.dumps), _json), max_size=3), _json),
        "weight": _json}),
    _json,
).map(lambda h: json.dumps(h, allow_nan=True).encode())


@FUZZ
@given(header=st.one_of(_header, st.binary(max_size=200), st.just(b"[" * 3000)),
       length=st.one_of(st.none(), st.integers(0, 2**64 - 1)), tail=st.binary(max_size=16))
def test_safetensors_header_fuzz(weights_dir, header, length, tail):
    """The torch-free part of loading a delighter (what ``--delighter`` checks before the fit):
    the safetensors header and the pix2pixHD config it carries."""
    from machlib.interop._delighter import _find_config
    from machlib.interop._torch import load_metadata

    path = weights_dir / "d.safetensors"
    path.write_bytes(_safetensors(header, length) + tail)
    try:
        _find_config(path, load_metadata(path))
    except InputError as e:
        assert len(str(e)) < 2000


_tokens = st.sampled_from(["--size", "--parser", "rule", "llm", "embedding", "--llm", "-1", "0", "64", "1e9",
                           "nan", "abc", "", "--", "-h2", "--sizes", "a man", "--json", "x" * 300])


@settings(FUZZ, max_examples=2 * settings.default.max_examples)  # ~35 ms each: the parser is built per run
@given(prompt=st.text(max_size=200), extra=st.lists(_tokens, max_size=5))
def test_attributes_command_fuzz(monkeypatch, capsys, prompt, extra):
    """``machlib attributes`` end to end on any prompt and flags: exit 0, or 2 with one line."""
    from machlib.cli import main

    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", "lexical")
    monkeypatch.delenv("MACHLIB_LLM", raising=False)
    code = main(["attributes", prompt, *extra])
    captured = capsys.readouterr()
    assert code in (0, 2), captured.err
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("machlib: error: "), lines
    else:
        assert json.loads(captured.out)["attributes"] is not None
