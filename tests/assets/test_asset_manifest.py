"""Asset manifests: round trips and every validation error (machlib.assets._manifest)."""

import json
import os

import pytest

from machlib.assets import ASSET_KINDS, Asset, AssetManifest, builtin_manifest, load_manifest, save_manifest
from machlib.hair import HAIR_STYLES


def _write(path, assets, **top):
    path.write_text(json.dumps({"version": 1, "assets": assets, **top}))
    return path


def _entry(**kw):
    e = {"id": "bob", "kind": "hairstyle", "label": "short bob with bangs", "tags": ["bob"], "path": "hair/bob.data"}
    e.update(kw)
    return e


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_round_trip(tmp_path, suffix):
    m = builtin_manifest()
    p = save_manifest(tmp_path / f"assets{suffix}", m)
    back = load_manifest(p)
    assert back == m
    assert back.root == tmp_path
    assert [a.to_dict() for a in back] == [a.to_dict() for a in m]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # atomic write left no temp file


def test_round_trip_unicode_and_thumbnail(tmp_path):
    m = AssetManifest(
        (Asset("g1", "glasses", 'lunettes "rondes" — ø', "g/é.glb", tags=("a\\b", "ü"), thumbnail="g/é.png"),))
    for suffix in (".json", ".toml"):
        assert load_manifest(save_manifest(tmp_path / f"m{suffix}", m)) == m


def test_save_overwrites_atomically(tmp_path):
    p = tmp_path / "m.json"
    save_manifest(p, builtin_manifest())
    small = AssetManifest((Asset("x", "beard", "goatee", "beard/x.data"),))
    save_manifest(p, small)
    assert load_manifest(p) == small


def test_builtin_manifest_hairstyles():
    m = builtin_manifest()
    hair = m.of_kind("hairstyle")
    assert [a.id for a in hair] == [n.replace(" ", "_") for n in HAIR_STYLES]
    assert all(a.path == f"hair/{a.id}.data" for a in hair)
    assert set(a.kind for a in m) == set(ASSET_KINDS)
    assert m["afro"].tags == HAIR_STYLES["afro"].tags


def test_unknown_asset_field(tmp_path):
    p = _write(tmp_path / "m.json", [_entry(colour="red")])
    with pytest.raises(ValueError, match=r"load_manifest: .*m\.json: assets\[0\]: unknown field 'colour'"):
        load_manifest(p)


def test_unknown_top_level_field(tmp_path):
    p = _write(tmp_path / "m.json", [_entry()], author="me")
    with pytest.raises(ValueError, match=r"m\.json: unknown top-level field 'author'"):
        load_manifest(p)


def test_missing_field_and_bad_version(tmp_path):
    e = _entry()
    del e["label"]
    with pytest.raises(ValueError, match=r"missing field 'label'"):
        load_manifest(_write(tmp_path / "a.json", [e]))
    (tmp_path / "b.json").write_text(json.dumps({"version": 2, "assets": []}))
    with pytest.raises(ValueError, match=r"b\.json: field 'version'"):
        load_manifest(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"c\.json: cannot parse"):
        load_manifest(tmp_path / "c.json")


def test_duplicate_id(tmp_path):
    p = _write(tmp_path / "m.json", [_entry(), _entry(path="hair/other.data")])
    with pytest.raises(ValueError, match=r"m\.json: assets\[1\]: field 'id': duplicate id 'bob'"):
        load_manifest(p)
    a = Asset("bob", "hairstyle", "bob", "hair/bob.data")
    with pytest.raises(ValueError, match="AssetManifest: duplicate asset id 'bob'"):
        AssetManifest((a, a))


def test_bad_kind(tmp_path):
    p = _write(tmp_path / "m.json", [_entry(kind="hat")])
    with pytest.raises(ValueError, match=r"m\.json: assets\[0\]: .*kind must be one of .*'hat'"):
        load_manifest(p)


@pytest.mark.parametrize("bad", ["/etc/passwd", "C:/assets/x.glb", "hair\\bob.data"])
def test_absolute_path(tmp_path, bad):
    p = _write(tmp_path / "m.json", [_entry(path=bad)])
    with pytest.raises(ValueError, match=r"m\.json: assets\[0\]: .*path must be a relative POSIX path"):
        load_manifest(p)


@pytest.mark.parametrize("bad", ["../escape.data", "hair/../../escape.data"])
def test_dotdot_escape(tmp_path, bad):
    p = _write(tmp_path / "m.json", [_entry(path=bad)])
    with pytest.raises(ValueError, match=r"path must stay inside the library root"):
        load_manifest(p)
    with pytest.raises(ValueError, match=r"thumbnail must stay inside"):
        load_manifest(_write(tmp_path / "t.json", [_entry(thumbnail=bad)]))


def test_symlink_escaping_root(tmp_path):
    root = tmp_path / "lib"
    (root / "hair").mkdir(parents=True)
    outside = tmp_path / "secret.data"
    outside.write_text("x")
    (root / "hair" / "bob.data").symlink_to(outside)
    p = _write(root / "m.json", [_entry()])
    with pytest.raises(ValueError, match=r"m\.json: assets\[0\] \(bob\): path 'hair/bob.data' resolves outside"):
        load_manifest(p)
    # a directory symlink pointing outside is caught too, even without the file existing
    (root / "out").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="resolves outside"):
        load_manifest(_write(root / "m2.json", [_entry(path="out/nothing.data")]))


def test_symlink_inside_root_is_fine(tmp_path):
    (tmp_path / "hair").mkdir()
    (tmp_path / "hair" / "real.data").write_text("x")
    (tmp_path / "hair" / "bob.data").symlink_to(tmp_path / "hair" / "real.data")
    m = load_manifest(_write(tmp_path / "m.json", [_entry()]), check_files=True)
    assert m.resolve("bob") == (tmp_path / "hair" / "real.data").resolve()


def test_check_files(tmp_path):
    p = _write(tmp_path / "m.json", [_entry(thumbnail="hair/bob.png")])
    assert load_manifest(p)["bob"].thumbnail == "hair/bob.png"  # not checked by default
    with pytest.raises(ValueError, match=r"m\.json: assets\[0\] \(bob\): path 'hair/bob.data' does not exist"):
        load_manifest(p, check_files=True)
    (tmp_path / "hair").mkdir()
    (tmp_path / "hair" / "bob.data").write_text("x")
    with pytest.raises(ValueError, match=r"thumbnail 'hair/bob.png' does not exist"):
        load_manifest(p, check_files=True)
    (tmp_path / "hair" / "bob.png").write_text("x")
    assert len(load_manifest(p, check_files=True)) == 1


def test_asset_validation_in_memory():
    with pytest.raises(ValueError, match="Asset: id must match"):
        Asset("", "hairstyle", "x", "x.data")
    with pytest.raises((ValueError, TypeError), match="tags"):
        Asset("a", "hairstyle", "x", "x.data", tags=["not", "a", "tuple"])
    with pytest.raises(ValueError, match="AssetManifest.resolve: the manifest has no root"):
        builtin_manifest().resolve("bob")
    with pytest.raises(ValueError, match="of_kind: kind must be one of"):
        builtin_manifest().of_kind("hat")
    with pytest.raises((ValueError, TypeError), match="save_manifest"):
        save_manifest("x.json", {"version": 1})
