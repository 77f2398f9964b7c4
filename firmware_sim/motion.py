"""Vectorized movement: where every agent is at a time, interpolated from its knots."""
from __future__ import annotations

import numpy as np

from firmware_sim.crowd import Crowd


class Mover:
    """Steps all agents forward in time with one set of array operations per step.

    Time must not go backwards between calls to :meth:`at`.
    """

    def __init__(self, crowd: Crowd) -> None:
        self.c = crowd
        self.ptr = crowd.offsets[:-1].copy()
        self.last = crowd.offsets[1:] - 1
        self.t_in = crowd.t_in
        self.t_out = crowd.t_out

    def at(self, t: float):
        """(x, y, floor, active) arrays over all agents at time t. Inactive rows are stale."""
        c = self.c
        active = (self.t_in <= t) & (t <= self.t_out)
        ptr = self.ptr
        while True:
            nxt = np.minimum(ptr + 1, self.last)
            adv = (ptr < self.last) & (c.kt[nxt] <= t)
            if not adv.any():
                break
            ptr[adv] += 1
        nxt = np.minimum(ptr + 1, self.last)
        t0, t1 = c.kt[ptr], c.kt[nxt]
        span = t1 - t0
        frac = np.where(span > 0, np.clip((t - t0) / np.where(span > 0, span, 1.0), 0, 1), 0.0)
        x = c.kx[ptr] + frac * (c.kx[nxt] - c.kx[ptr])
        y = c.ky[ptr] + frac * (c.ky[nxt] - c.ky[ptr])
        floor = np.where(frac < 0.5, c.kf[ptr], c.kf[nxt])
        return x, y, floor, active
