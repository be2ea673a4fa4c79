"""machlib._cache: the XLA flags the CLI and the batch workers add before JAX starts."""

from __future__ import annotations

import os

from machlib import _cache


def test_xla_flags_are_added_once_and_the_users_win(monkeypatch):
    monkeypatch.setattr(_cache, "FLAGS_CHECKED_ON", ("",))  # whatever jaxlib runs the suite
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    _cache._add_xla_flags()
    assert _cache.XLA_CPU_FLAGS[0] in os.environ["XLA_FLAGS"]
    first = os.environ["XLA_FLAGS"]
    _cache._add_xla_flags()  # a second call (a second command in one process) adds nothing
    assert os.environ["XLA_FLAGS"] == first
    # a value the user set for the same flag is kept, other flags of theirs too
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true --xla_dump_to=/tmp/x")
    _cache._add_xla_flags()
    assert os.environ["XLA_FLAGS"] == ("--xla_cpu_use_fusion_emitters=true --xla_dump_to=/tmp/x "
                                       "--xla_backend_optimization_level=2")
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    _cache._add_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=3 --xla_cpu_use_fusion_emitters=false"
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    _cache._add_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x " + " ".join(_cache.XLA_CPU_FLAGS)


def test_no_flags_on_a_jaxlib_they_were_not_checked_on(monkeypatch):
    # XLA aborts the process on a flag it does not know: an unchecked jaxlib gets none of ours
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(_cache, "FLAGS_CHECKED_ON", ("0.0.",))
    assert not _cache.classic_emitters_known()
    _cache._add_xla_flags()
    assert "XLA_FLAGS" not in os.environ
    monkeypatch.setattr(_cache, "FLAGS_CHECKED_ON", ("",))
    assert _cache.classic_emitters_known()
