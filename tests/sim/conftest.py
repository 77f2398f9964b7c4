"""Small seeded runs shared by the firmware_sim tests (seconds, not minutes, of CPU)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from firmware_sim import SimConfig, simulate
from firmware_sim.engine import World, run
from gateway.site import load_site, sample_site_path

START = "2026-11-21T15:00:00+01:00"  # a Saturday afternoon, mall open


@pytest.fixture(scope="session")
def site():
    return load_site(sample_site_path())


def small_config(level: str = "frames", seed: int = 7, duration: float = 60, **kw) -> SimConfig:
    kw.setdefault("concurrent", 120)
    kw.setdefault("passersby_per_hour", 600)
    return SimConfig(seed=seed, start=START, duration_s=duration, level=level, **kw)


@pytest.fixture(scope="session")
def frames_run(site, tmp_path_factory):
    out = tmp_path_factory.mktemp("frames")
    res = simulate(site, small_config("frames"), out)
    return res


@pytest.fixture(scope="session")
def received(site, frames_run):
    """The packets every gateway received in frames_run, recomputed (RX_DTYPE, by true time)."""
    world = World.build(site, frames_run.config)
    cfg = frames_run.config
    return np.concatenate(list(run(world, cfg.start, cfg.end, 30)))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
