"""Correctness against firmware_sim's ground truth on the sample mall (issue thresholds).

A simulated afternoon (window level) with >= 2,000 visitors goes through the pure pipeline;
`accuracy.score` compares visitors, passers-by, capture rate, entries per entrance, store
visits >= 3 min, median dwell and conversion per store, floor transitions and the exclusion of
staff and fixed devices with the truth CSVs. Thresholds are the issue's; they are never relaxed.
Duration: MALLSENSE_ACCURACY_S (default 3600 s) at MALLSENSE_ACCURACY_RATE shoppers per hour.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from analytics._blas import limit_blas_threads
from gateway.site import load_site, sample_site_path
from tests.analytics.accuracy import run_pipeline, run_sim, score

# An hour of a busy mall through the pipeline: minutes of CPU, and the current build does not
# yet meet these thresholds (figures in the issue note). It runs with `make acceptance`, not in
# `make test`; its thresholds are the and are never relaxed.
pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    limit_blas_threads(1)
    site = load_site(sample_site_path())
    out_dir = tmp_path_factory.mktemp("accuracy")
    dur = int(os.environ.get("MALLSENSE_ACCURACY_S", "3600"))
    rate = float(os.environ.get("MALLSENSE_ACCURACY_RATE", "1600"))
    res, cfg = run_sim(site, out_dir, seed=11, start="2026-11-21T13:00", duration_s=dur,
                       shoppers_per_hour=rate)
    _, out = run_pipeline(site, res, out_dir / "truth")
    m = score(out, out_dir / "truth", cfg)
    print("\naccuracy:", {k: v for k, v in m.items() if not isinstance(v, dict)})
    return m


def test_enough_visitors_simulated(scored):
    assert scored["visitors_true"] >= 2000


def test_unique_visitors_within_5_percent(scored):
    m = scored
    assert abs(m["visitors_ours"] - m["visitors_true"]) <= 0.05 * m["visitors_true"], m


def test_passersby_and_capture_rate_within_3pp(scored):
    m = scored
    assert abs(m["capture_ours"] - m["capture_true"]) <= 0.03, (m["capture_ours"], m["capture_true"])
    share_t = m["passersby_true"] / (m["passersby_true"] + m["visitors_true"])
    share_o = m["passersby_ours"] / max(m["passersby_ours"] + m["visitors_ours"], 1)
    assert abs(share_o - share_t) <= 0.03, (share_o, share_t)


def test_entries_per_entrance_within_5_percent(scored):
    t, o = scored["entries_true"], scored["entries_ours"]
    bad = {e: (t[e], o.get(e, 0)) for e in t if abs(o.get(e, 0) - t[e]) > 0.05 * t[e]}
    assert not bad, bad


def test_store_visits_over_3_min_precision_recall(scored):
    assert scored["visit_precision"] >= 0.9, scored["visit_precision"]
    assert scored["visit_recall"] >= 0.9, scored["visit_recall"]


def test_median_dwell_per_store_within_10_percent(scored):
    bad = {z: d for z, d in scored["dwell"].items()
           if not (np.isfinite(d[1]) and abs(d[1] - d[0]) <= 0.1 * d[0])}
    assert scored["dwell"] and not bad, bad


def test_floor_transitions_f1(scored):
    assert scored["floor_true"] > 0
    assert scored["floor_f1"] >= 0.95, (scored["floor_f1"], scored["floor_tp"],
                                        scored["floor_true"], scored["floor_ours"])


def test_conversion_per_store_within_3pp(scored):
    bad = {z: c for z, c in scored["conversion"].items()
           if not (np.isfinite(c[1]) and abs(c[1] - c[0]) <= 0.03)}
    assert scored["conversion"] and not bad, bad


def test_staff_and_fixed_excluded(scored):
    assert scored["staff_persons_seen"] > 0
    assert scored["staff_persons_all_excluded"] >= 0.95, scored["staff_persons_all_excluded"]
