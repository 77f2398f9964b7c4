"""The same seed gives the same bytes; another seed gives others."""
from __future__ import annotations

import hashlib

from firmware_sim import simulate

from .conftest import small_config


def _digest(out) -> dict:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(site, tmp_path):
    cfg = small_config("frames", seed=21, duration=20, concurrent=60)
    a = _digest(_run(site, cfg, tmp_path / "a"))
    b = _digest(_run(site, cfg, tmp_path / "b"))
    assert a == b and len(a) > 50
    c = _digest(_run(site, small_config("frames", seed=22, duration=20, concurrent=60),
                     tmp_path / "c"))
    assert set(c) & set(a)
    differing = [k for k in set(a) & set(c) if a[k] != c[k]]
    assert "truth/positions.csv" in differing and len(differing) > 0.8 * len(set(a) & set(c))


def _run(site, cfg, out):
    simulate(site, cfg, out)
    return out
