"""machlib._cache: the XLA flags the CLI and the batch workers add before JAX starts."""

from __future__ import annotations

import os

from machlib import _cache


def test_xla_flags_are_added_once_and_the_users_win(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    _cache._add_xla_flags()
    assert _cache.XLA_CPU_FLAGS[0] in os.environ["XLA_FLAGS"]
    first = os.environ["XLA_FLAGS"]
    _cache._add_xla_flags()  # a second call (a second command in one process) adds nothing
    assert os.environ["XLA_FLAGS"] == first
    # a value the user set for the same flag is kept, other flags of theirs too
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true --xla_dump_to=/tmp/x")
    _cache._add_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true --xla_dump_to=/tmp/x"
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    _cache._add_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x " + " ".join(_cache.XLA_CPU_FLAGS)
