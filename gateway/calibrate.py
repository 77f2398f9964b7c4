"""Site calibration from reference beacons: fit each gateway's P0 (and the building's path-loss
exponent) from sightings of registered beacons at surveyed positions.

The field engineer places reference beacons (permanent, or a temporary commissioning survey),
lets the gateways hear them for a few minutes, and runs `mallsense calibrate`. Sightings come as
the wire contract's batches (a recording or the live broker); each (gateway, beacon) pair is
reduced to its median RSSI, which removes fast fading; what remains is static shadowing, which
only more beacon positions average away.

Only same-floor pairs enter the fit: slab loss varies too much (atrium, stairs) to calibrate a
gateway's own offset through a slab. Pairs a gateway never heard although it listened are
non-detections, and the fit treats them as censored below the gateway's sensitivity (Tobit),
which keeps far, weak pairs from biasing P0 upwards.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from gateway.errors import GatewayError
from gateway.wire import SightingsBatch

log = logging.getLogger(__name__)

BEACON_HEIGHT_M = 1.2  # default mounting height of a survey beacon above its floor
DETECTION_MIN = 0.8  # share of a gateway's windows in which a pair must be heard to be used
MAX_RANGE_M = 25.0  # farther pairs are heard mostly on up-fades: their medians are biased high


class CalibrationError(GatewayError):
    """The registry or the sightings do not allow a fit."""


@dataclass(frozen=True)
class ReferenceBeacon:
    id: str  # "uuid:major:minor" as the edge reports it in sightings
    floor: str
    x: float
    y: float
    z: float  # metres above its floor


def load_beacons(path: str | Path, site, default_z: float = BEACON_HEIGHT_M) -> list[ReferenceBeacon]:
    """Beacon registry CSV: columns beacon, floor, x, y and optionally z (m above the floor)."""
    problems, out = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"beacon", "floor", "x", "y"} - set(reader.fieldnames or ())
        if missing:
            raise CalibrationError(f"{path}: missing columns {sorted(missing)}")
        floors = {fl.id for fl in site.floors}
        for line, row in enumerate(reader, start=2):
            try:
                z = float(row["z"]) if row.get("z") not in (None, "") else default_z
                b = ReferenceBeacon(row["beacon"].strip().lower(), row["floor"], float(row["x"]),
                                    float(row["y"]), z)
            except ValueError as exc:
                problems.append(f"{path}:{line}: {exc}")
                continue
            if b.floor not in floors:
                problems.append(f"{path}:{line}: floor {b.floor!r} is not in the site")
                continue
            out.append(b)
    if problems:
        raise CalibrationError("bad beacon registry:\n" + "\n".join(problems))
    if not out:
        raise CalibrationError(f"{path}: no beacons")
    return out


@dataclass
class BeaconSurvey:
    """Median RSSI per (gateway, beacon) from sightings batches."""

    gateway_ids: tuple[str, ...]
    beacons: tuple[ReferenceBeacon, ...]

    def __post_init__(self) -> None:
        self._gw = {g: i for i, g in enumerate(self.gateway_ids)}
        self._bc = {b.id: j for j, b in enumerate(self.beacons)}
        self._rssi: dict[tuple[int, int], list[float]] = {}
        self.windows = np.zeros(len(self.gateway_ids), np.int64)  # batches per gateway
        self.batches = 0

    def add(self, batch: SightingsBatch) -> None:
        k = self._gw.get(batch.gw)
        if k is None:
            return
        self.batches += 1
        self.windows[k] += 1
        for s in batch.s:
            if s.beacon is None:
                continue
            j = self._bc.get(s.beacon.lower())
            if j is not None:
                self._rssi.setdefault((k, j), []).append(float(s.rssi))

    def add_all(self, batches: Iterable[SightingsBatch]) -> None:
        for b in batches:
            self.add(b)

    @property
    def heard_from(self) -> np.ndarray:
        """(K,) gateways that reported at all."""
        return self.windows > 0

    def median_matrix(self, min_detection: float = DETECTION_MIN) -> np.ndarray:
        """(K, B) median RSSI; NaN where the beacon was heard in fewer than `min_detection` of
        the windows the gateway heard its best beacon in. A pair heard only on up-fades has a median biased high (by
        5 dB at 40-80 m in firmware_sim), so it counts as a non-detection instead."""
        m = np.full((len(self.gateway_ids), len(self.beacons)), np.nan)
        counts = np.zeros(m.shape, np.int64)
        for (k, j), v in self._rssi.items():
            counts[k, j] = len(v)
        # Scan duty cycle and advertising interval cap what a near beacon reaches; compare
        # each pair with the gateway's best-heard beacon rather than with its window count.
        best = counts.max(axis=1, keepdims=True)
        for (k, j), v in self._rssi.items():
            if counts[k, j] >= min_detection * best[k, 0]:
                m[k, j] = float(np.median(v))
        return m


@dataclass(frozen=True)
class GatewayCalibration:
    gateway: str
    p0_dbm: float
    offset_db: float  # p0 minus the site's radio default
    exponent: float
    sigma_db: float
    pairs: int  # beacons heard on the gateway's floor
    residual_rms_db: float


def fit_survey(site, survey: BeaconSurvey, radio: str = "ble",
               max_range_m: float = MAX_RANGE_M,
               exponent: str = "shared") -> list[GatewayCalibration]:
    """Fit P0 per gateway with one shared exponent from the survey's same-floor pairs."""
    from locate.calibrate import PathLossFit

    defaults = site.radio[radio]
    gws = [site.gateway(g) for g in survey.gateway_ids]
    elev = {f.id: f.elevation_m for f in site.floors}
    gxyz = np.array([[g.x, g.y, elev[g.floor] + g.z] for g in gws])
    bxyz = np.array([[b.x, b.y, elev[b.floor] + b.z] for b in survey.beacons])
    same_floor = np.array([[g.floor == b.floor for b in survey.beacons] for g in gws])
    d = np.sqrt(((gxyz[:, None, :] - bxyz[None, :, :]) ** 2).sum(-1))
    listened = survey.heard_from[:, None] & same_floor & (d <= max_range_m)
    med = survey.median_matrix()
    heard = np.isfinite(med) & listened
    usable = heard.sum(axis=1) >= 2
    weak = [survey.gateway_ids[k] for k in np.flatnonzero(survey.heard_from & ~usable)]
    if weak:
        log.warning("not calibrated, fewer than 2 same-floor beacons within %.0f m: %s",
                    max_range_m, weak)
    if not usable.any():
        raise CalibrationError("no gateway heard 2 registered beacons on its own floor")
    keep = np.flatnonzero(usable)
    sub = listened[keep]
    k_idx, _ = np.nonzero(sub)  # index into keep
    sens = min(g.sensitivity_dbm if g.sensitivity_dbm is not None else defaults.sensitivity_dbm
               for g in gws)
    fit = PathLossFit(exponent=exponent, sensitivity_dbm=sens).fit(
        d[keep][sub], med[keep][sub], k_idx, n_gateways=len(keep))
    # residuals_ holds the heard samples, in the order they were given
    res_k = k_idx[np.isfinite(med[keep][sub])]
    out = []
    for i, k in enumerate(keep):
        v = fit.residuals_[res_k == i]
        out.append(GatewayCalibration(
            gws[k].id, float(fit.p0_[i]), float(fit.p0_[i] - defaults.p0_dbm),
            float(fit.exponent_[i]), float(fit.sigma_[i]), int(heard[k].sum()),
            float(np.sqrt(np.mean(v ** 2))) if v.size else float("nan")))
    return out


def format_table(rows: list[GatewayCalibration]) -> str:
    head = f"{'gateway':<14}{'pairs':>6}{'P0 dBm':>9}{'offset':>8}{'n':>6}{'sigma':>7}{'resid':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.gateway:<14}{r.pairs:>6}{r.p0_dbm:>9.1f}{r.offset_db:>+8.1f}"
                     f"{r.exponent:>6.2f}{r.sigma_db:>7.1f}{r.residual_rms_db:>7.1f}")
    return "\n".join(lines)


def overrides_toml(rows: list[GatewayCalibration]) -> str:
    """Per-gateway `p0_offset_db` values to paste into the site file's [[gateways]] tables."""
    out = ["# mallsense calibrate: fitted P0 offsets (dB) relative to the site's radio default"]
    for r in rows:
        out.append(f'[gateway_calibration."{r.gateway}"]\np0_offset_db = {r.offset_db:.1f}\n'
                   f"pairs = {r.pairs}\n")
    return "\n".join(out)
