"""Capped exponential backoff with jitter, as a pure object: time is passed in, never read."""
from __future__ import annotations

import random


class Backoff:
    """delay(n) = min(cap, initial * factor**n) * (1 - jitter * U[0,1)), n = failures so far.

    Full jitter spreads a mall's gateways reconnecting after a broker restart so they do not
    arrive in lock-step.
    """

    def __init__(self, initial_s: float = 1.0, cap_s: float = 60.0, factor: float = 2.0,
                 jitter: float = 0.5, rng: random.Random | None = None) -> None:
        if not (0 < initial_s <= cap_s and factor >= 1 and 0 <= jitter < 1):
            raise ValueError("need 0 < initial_s <= cap_s, factor >= 1, 0 <= jitter < 1")
        self.initial_s, self.cap_s, self.factor, self.jitter = initial_s, cap_s, factor, jitter
        self._rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        base = min(self.cap_s, self.initial_s * self.factor ** min(self.failures, 64))
        self.failures += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.failures = 0
