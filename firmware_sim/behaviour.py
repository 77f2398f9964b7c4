"""What people do: the day profile of arrivals, store choice, dwell and purchase by category.

Figures are plausible values for a European shopping centre (dwell medians in minutes, basket
medians in EUR), not measurements; they only need to give analytics realistic shapes.
"""
from __future__ import annotations

import math

import numpy as np

# category: (dwell median min, dwell log-sd, purchase p max, basket median EUR)
CATEGORY = {
    "fashion": (12.0, 0.6, 0.45, 60.0),
    "shoes": (9.0, 0.6, 0.40, 70.0),
    "food": (25.0, 0.4, 0.92, 14.0),
    "cafe": (20.0, 0.5, 0.90, 7.0),
    "grocery": (15.0, 0.5, 0.85, 35.0),
    "department": (20.0, 0.6, 0.55, 55.0),
    "electronics": (10.0, 0.6, 0.30, 150.0),
    "beauty": (8.0, 0.6, 0.50, 30.0),
    "books": (10.0, 0.6, 0.40, 20.0),
    "home": (10.0, 0.6, 0.35, 45.0),
    "jewellery": (8.0, 0.6, 0.20, 200.0),
    "entertainment": (45.0, 0.4, 0.80, 25.0),
    "services": (6.0, 0.5, 0.50, 25.0),
    "sports": (10.0, 0.6, 0.40, 60.0),
    "toys": (8.0, 0.6, 0.45, 30.0),
    "health": (6.0, 0.5, 0.60, 20.0),
    "optical": (10.0, 0.5, 0.25, 120.0),
}
DEFAULT_CATEGORY = (8.0, 0.6, 0.40, 30.0)
BASKET_LOG_SD = 0.6
STORES_EXTRA_MEAN = 2.0  # stores visited = 1 + Poisson(this)


def category(cat: str | None) -> tuple[float, float, float, float]:
    return CATEGORY.get(cat or "", DEFAULT_CATEGORY)


def dwell_s(rng: np.random.Generator, cat: str | None) -> float:
    med, sd, _, _ = category(cat)
    return float(min(med * 60.0 * math.exp(sd * rng.standard_normal()), 4 * 3600.0))


def purchase(rng: np.random.Generator, cat: str | None, dwell: float) -> float | None:
    """Basket in EUR, or None: the chance grows with dwell, saturating at the category max."""
    med, _, pmax, basket = category(cat)
    p = pmax * (1.0 - math.exp(-dwell / (med * 60.0)))
    if rng.random() >= p:
        return None
    return round(basket * math.exp(BASKET_LOG_SD * rng.standard_normal()), 2)


def day_profile(hour: np.ndarray, open_h: float, close_h: float) -> np.ndarray:
    """Relative arrival intensity by local hour: a base with lunch and evening peaks, zero when
    closed. Mean 1 over the opening hours."""
    hour = np.asarray(hour, float) % 24.0
    f = (1.0 + 1.3 * np.exp(-0.5 * ((hour - 12.75) / 1.0) ** 2)
         + 1.6 * np.exp(-0.5 * ((hour - 18.25) / 1.3) ** 2))
    grid = np.linspace(open_h, close_h, 2001)
    g = (1.0 + 1.3 * np.exp(-0.5 * ((grid - 12.75) / 1.0) ** 2)
         + 1.6 * np.exp(-0.5 * ((grid - 18.25) / 1.3) ** 2))
    return np.where((hour >= open_h) & (hour < close_h), f / g.mean(), 0.0)


def arrivals(rng: np.random.Generator, t0: float, t1: float, hour0: float, rate_per_h: float,
             open_h: float, close_h: float, flat: bool = False) -> np.ndarray:
    """Arrival times in [t0, t1) of a non-homogeneous Poisson process (thinning).

    hour0: local hour at t0. rate_per_h: mean rate over the opening hours (flat: constant, all
    day)."""
    if rate_per_h <= 0 or t1 <= t0:
        return np.empty(0)
    peak = 1.0 if flat else float(day_profile(np.linspace(0, 24, 4801), open_h, close_h).max())
    lam = rate_per_h / 3600.0 * peak
    n = rng.poisson(lam * (t1 - t0))
    t = np.sort(rng.uniform(t0, t1, n))
    if flat:
        return t
    keep = rng.random(n) < day_profile(hour0 + (t - t0) / 3600.0, open_h, close_h) / peak
    return t[keep]
