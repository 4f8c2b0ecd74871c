"""Exponential backoff with full jitter, for retry loops outside the engine's own schedule
(the event stream's reconnects, a test's push loop)."""
from __future__ import annotations

import random


class Backoff:
    """Delay uniform in [0, min(cap, base·2^n)] after the n-th consecutive failure."""

    def __init__(self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.failures = base, cap, 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 32))
        self.failures += 1
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.failures = 0
