"""Sync engine pieces that need no platform: backoff with jitter."""
from __future__ import annotations

import random

from app.sync import Backoff


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap():
    backoff = Backoff(base=1.0, cap=30.0, rng=random.Random(7))
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30]
    samples = [Backoff(1.0, 30.0, random.Random(seed)) for seed in range(200)]
    for ceiling in ceilings:
        delays = [b.next_delay() for b in samples]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # spread up to the ceiling: jitter, not a fixed delay
        assert min(delays) < 0.2 * ceiling
    assert backoff.next_delay() <= 1.0
    backoff.reset()
    assert backoff.failures == 0
