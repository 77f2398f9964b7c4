"""Radio signatures: which of two pseudonyms is the same phone at the same place.

A phone's readings across the gateways, each less the gateway's RSSI at 1 m, form a pattern
that the place sets: path loss *and* the shadowing of every wall and shelf between phone and
gateway, which is the same for any radio at that spot and for the same phone a few seconds
later. Two ids of one phone (an address rotation, a Wi-Fi burst of a phone we follow over BLE)
therefore show nearly the same pattern; another phone a few metres away shows another, because
shadowing decorrelates over a few metres. Comparing patterns gateway by gateway discriminates
far better than comparing two position fixes, each ~10 m off.

``signature_distance`` is that comparison: the mean absolute difference (dB) over the gateways
both heard, with gateways that only one of them heard loudly counted as a miss. Across radio
kinds (Wi-Fi vs BLE: other transmit power) the median difference is profiled out first.
Pure numpy; the pipeline keeps one signature row per device (an EMA of its readings).
"""
from __future__ import annotations

import numpy as np

SIG_ALPHA = 0.3          # EMA weight of a new window in a device's signature
STRONG_DB = -30.0        # a reading this loud (re 1 m) that the other did not hear is a miss
MISS_COST_DB = 8.0       # what such a miss adds to the sum of differences
MIN_COMMON = 2           # fewer gateways heard by both: no comparison (inf)


def update_signature(sig: np.ndarray, reading: np.ndarray, alpha: float = SIG_ALPHA) -> np.ndarray:
    """EMA of normalised readings (NaN = not heard); a gateway first heard starts at its reading."""
    heard = np.isfinite(reading)
    new = np.where(np.isnan(sig), reading, sig + alpha * (reading - sig))
    return np.where(heard, new, sig)


def signature_distance(a: np.ndarray, B: np.ndarray, *, profile_offset: bool = False,
                       strong_db: float = STRONG_DB, miss_cost_db: float = MISS_COST_DB,
                       min_common: int = MIN_COMMON) -> np.ndarray:
    """a (K,) and B (M, K) normalised signatures (dB re 1 m, NaN = not heard) -> (M,) dB.

    The mean |a - b| over gateways both heard (after removing the median difference when
    ``profile_offset``), with each gateway heard louder than ``strong_db`` by only one of them
    adding ``miss_cost_db`` to the sum and one to the count. inf where fewer than
    ``min_common`` gateways were heard by both.
    """
    B = np.atleast_2d(B)
    if B.shape[0] == 0:
        return np.zeros(0)
    ha = np.isfinite(a)[None, :]
    hb = np.isfinite(B)
    both = ha & hb
    n = both.sum(axis=1)
    d = np.where(both, a[None, :] - B, np.nan)
    if profile_offset:
        with np.errstate(all="ignore"):
            off = np.nanmedian(np.where(n[:, None] > 0, d, 0.0), axis=1)
        d = d - off[:, None]
    s = np.nansum(np.abs(d), axis=1)
    miss = (ha & ~hb & (a[None, :] > strong_db)) | (~ha & hb & (B > strong_db))
    nm = miss.sum(axis=1)
    out = (s + miss_cost_db * nm) / np.maximum(n + nm, 1)
    return np.where(n >= min_common, out, np.inf)
