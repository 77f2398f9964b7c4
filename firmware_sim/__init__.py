"""firmware_sim: a radio-level simulated mall with ground truth.

    from firmware_sim import SimConfig, simulate
    res = simulate(site, SimConfig(seed=1, start="2026-11-21T10:00", duration_s=7200,
                                   level="windows"))
    res.windows                      # structured array, firmware_sim.windows.WINDOW_DTYPE
    for t, batch in res.batches(secret): ...   # gateway.wire.SightingsBatch in time order
"""
from firmware_sim.config import SimConfig
from firmware_sim.errors import SimError
from firmware_sim.sim import SimResult, simulate
from firmware_sim.windows import WINDOW_DTYPE

__all__ = ["SimConfig", "SimError", "SimResult", "simulate", "WINDOW_DTYPE"]
