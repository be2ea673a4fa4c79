"""Suite-wide pytest configuration: hypothesis profiles.

* ``ci`` (the default): hypothesis's usual 100 examples for property tests that do not set their
  own count; the readers' fuzzers (``tests/hostile``) run ten times that, 1,000 per reader.
* ``nightly``: ten times more of everything (``pytest --hypothesis-profile nightly``).

A test that sets ``max_examples`` itself keeps its count in both profiles; the fuzzers scale
theirs with the profile (``10 * settings.default.max_examples``, see
``tests/hostile/test_hostile_fuzz.py``).
"""

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("nightly", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")  # --hypothesis-profile, applied after this file is read, overrides it
