"""Site calibration from reference beacons: fit each gateway's P0 (and the building's path-loss
exponent) from sightings of registered beacons at surveyed positions.

The field engineer places reference beacons (permanent, or a temporary commissioning survey),
lets the gateways hear them for a few minutes, and runs `mallsense calibrate`. Sightings come as
the wire contract's batches (a recording or the live broker); each (gateway, beacon) pair is
reduced to its mean level over the windows, which removes fast fading; what remains is static
shadowing, which only more beacon positions average away.

Only same-floor pairs enter the fit: slab loss varies too much (atrium, stairs) to calibrate a
gateway's own offset through a slab.

Each pair's mean RSSI (its "level") is estimated from the gateway's windows as a censored
(Tobit) mean: a pair near the sensitivity is heard only on up-fades, so the median of what was
heard is biased high (+1.5 dB at half detection) and the number of windows it was *not* heard
in is the information. Pairs heard in fewer than a few windows are non-detections, censored
below the level at which that few were expected, and the path-loss fit treats them as such.

What a survey can identify is P0 plus the gateway's static shadowing averaged over the surveyed
positions: shadowing (about 5.5 dB, decorrelating over about 5 m) is a property of each
gateway and position, so a gateway whose beacons all sit in one shadowed corridor gets that
shadow as its offset; only beacons spread over more of its coverage average it away. Survey
on a grid of about the decorrelation distance over the whole floor, stores included
(firmware_sim's ``SimConfig(survey_pitch_m=...)`` simulates that). Even a perfect survey of a
gateway's floor leaves that floor's mean shadowing in its offset: about 0.75 dB sd with
firmware_sim's 8,000 m2 floors, up to 2.4 dB for the worst of its 50 gateways (seeds 3-6).
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from scipy.special import log_ndtr, ndtri

from gateway.errors import GatewayError
from gateway.wire import SightingsBatch

log = logging.getLogger(__name__)

BEACON_HEIGHT_M = 1.2  # default mounting height of a survey beacon above its floor
DETECTION_MIN = 0.8  # share of a gateway's windows in which a pair must be heard to be used
MAX_RANGE_M = 150.0  # m: the censored fit uses far non-detections as they are: the whole floor
MIN_HEARD = 3  # windows a pair must be heard in to estimate its level; fewer: a non-detection
STRONG_MARGIN_DB = 8.0  # pairs this far above sensitivity are heard whenever the gateway listens
DECORRELATION_M = 5.0  # shadowing decorrelation distance (Gudmundson; indoor: a few metres)


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


def censored_level(n, s1, s2, missed, threshold, sigma, iters: int = 50):
    """Mean RSSI per pair from the readings it was heard at and the windows it was missed in.

    A pair with mean ``mu`` is heard in a window when ``mu + fading >= threshold`` (fading
    Gaussian, sd ``sigma``), so its log-likelihood is that of ``n`` readings (sum ``s1``, sum of
    squares ``s2``) plus ``missed * log Phi((threshold - mu) / sigma)``: concave in ``mu``, so
    Newton from the plain mean converges. All arguments broadcast; returns float64 levels.
    """
    n, s1, s2, missed, thr = np.broadcast_arrays(*(np.asarray(a, np.float64)
                                                  for a in (n, s1, s2, missed, threshold)))
    var = float(sigma) ** 2
    mu = s1 / np.maximum(n, 1.0)
    for _ in range(iters):
        a = (thr - mu) / sigma
        lam = np.exp(-0.5 * a * a - 0.5 * np.log(2 * np.pi) - log_ndtr(a))  # phi / Phi
        grad = (s1 - n * mu) / var - missed * lam / sigma
        hess = -(n + missed * lam * (a + lam)) / var
        step = np.clip(-grad / hess, -5.0, 5.0)  # damped: far below threshold lam grows fast
        mu = mu + step
        if np.all(np.abs(step) < 1e-6):
            break
    return mu


@dataclass(frozen=True)
class SurveyLevels:
    level: np.ndarray  # (K, B) censored mean RSSI per pair; NaN where heard < MIN_HEARD windows
    censor_dbm: np.ndarray  # (K,) level below which a pair is expected in < MIN_HEARD windows
    listening: np.ndarray  # (K,) windows in which a strong beacon is heard (scan duty, loss)
    fading_db: float  # window-to-window sd of a strong pair's RSSI


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

    def levels(self, sensitivity_dbm, min_heard: int = MIN_HEARD,
               strong_margin_db: float = STRONG_MARGIN_DB) -> SurveyLevels:
        """Censored mean RSSI per (gateway, beacon) given each gateway's sensitivity (K,).

        A strong pair is missed only when the gateway was not listening (scan duty, packet
        loss), so the median count of a gateway's strong pairs is its listening windows; a
        weaker pair missed in more windows than that was below the sensitivity in the rest.
        """
        shape = (len(self.gateway_ids), len(self.beacons))
        sens = np.broadcast_to(np.asarray(sensitivity_dbm, np.float64), shape[:1])
        n, s1, s2, med = np.zeros(shape), np.zeros(shape), np.zeros(shape), np.full(shape, np.nan)
        for (k, j), v in self._rssi.items():
            a = np.asarray(v)
            n[k, j], s1[k, j], s2[k, j], med[k, j] = a.size, a.sum(), (a * a).sum(), np.median(a)
        strong = (med >= sens[:, None] + strong_margin_db) & (n >= 10)
        sv = (s2 - s1 * s1 / np.maximum(n, 1))[strong].sum()
        dof = (n - 1)[strong].sum()
        fading = float(np.sqrt(sv / dof)) if dof > 0 else 3.0  # 3 dB: a typical indoor value
        fading = max(fading, 0.5)
        listening = np.array([np.median(n[k][strong[k]]) if strong[k].any() else np.nan
                              for k in range(shape[0])])
        # a gateway without a strong pair listens like the fleet (same scan settings); its
        # best pair's count would undercount and bias its weak pairs' levels high
        ratio = listening / np.maximum(self.windows, 1)
        typical = float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else 1.0
        listening = np.where(np.isfinite(listening), listening,
                             np.maximum(typical * self.windows, n.max(axis=1)))
        thr = sens - 0.5  # whole-dBm readings: heard when the unrounded value is >= sens - 0.5
        ok = n >= min_heard
        level = np.full(shape, np.nan)
        level[ok] = censored_level(n[ok], s1[ok], s2[ok],
                                   np.maximum(listening[:, None] - n, 0.0)[ok],
                                   np.broadcast_to(thr[:, None], shape)[ok], fading)
        with np.errstate(divide="ignore"):
            censor = thr + fading * ndtri(np.clip(min_heard / np.maximum(listening, 1.0),
                                                  1e-6, 0.5))
        return SurveyLevels(level, censor, listening, fading)


@dataclass(frozen=True)
class GatewayCalibration:
    gateway: str
    p0_dbm: float
    offset_db: float  # p0 minus the site's radio default
    exponent: float
    sigma_db: float
    pairs: int  # beacons heard on the gateway's floor
    residual_rms_db: float


def shadow_weights(xy: np.ndarray, decorrelation_m: float, nugget: float = 0.05) -> np.ndarray:
    """GLS weights (n,) of positions (n, 2) for the mean of a field with autocorrelation
    exp(-r / decorrelation_m): clustered beacons share one shadow and count as about one.
    Their sum is the effective number of independent positions. Negative weights (a beacon
    screened by its neighbours) are clipped to 0."""
    if decorrelation_m <= 0 or len(xy) == 0:
        return np.ones(len(xy))
    r = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    cov = np.exp(-r / decorrelation_m) + nugget * np.eye(len(xy))
    w = np.clip(np.linalg.solve(cov, np.ones(len(xy))), 0.0, None)
    return w


def fit_survey(site, survey: BeaconSurvey, radio: str = "ble",
               max_range_m: float = MAX_RANGE_M, exponent: str | float = "site",
               sigma_db: float | None = None,
               decorrelation_m: float = DECORRELATION_M) -> list[GatewayCalibration]:
    """Fit P0 per gateway from the survey's same-floor pairs.

    exponent: "site" (default) keeps each gateway's exponent from the site file (its own, else
    the radio default), because the offsets are written back into that file and used with that
    exponent; "shared" fits one for the building (gateways with their own keep it); a number
    fixes it. `sigma_db` fixes the shadowing sigma (else fitted per gateway). Beacons are
    weighted by `shadow_weights` (0: equally)."""
    from locate.calibrate import PathLossFit

    defaults = site.radio[radio]
    gws = [site.gateway(g) for g in survey.gateway_ids]
    elev = {f.id: f.elevation_m for f in site.floors}
    gxyz = np.array([[g.x, g.y, elev[g.floor] + g.z] for g in gws])
    bxyz = np.array([[b.x, b.y, elev[b.floor] + b.z] for b in survey.beacons])
    same_floor = np.array([[g.floor == b.floor for b in survey.beacons] for g in gws])
    d = np.sqrt(((gxyz[:, None, :] - bxyz[None, :, :]) ** 2).sum(-1))
    sens = np.array([g.sensitivity_dbm if g.sensitivity_dbm is not None
                     else defaults.sensitivity_dbm for g in gws])
    lv = survey.levels(sens)
    listened = survey.heard_from[:, None] & same_floor & (d <= max_range_m)
    heard = np.isfinite(lv.level) & listened
    usable = heard.sum(axis=1) >= 2
    weak = [survey.gateway_ids[k] for k in np.flatnonzero(survey.heard_from & ~usable)]
    if weak:
        log.warning("not calibrated, fewer than 2 same-floor beacons within %.0f m: %s",
                    max_range_m, weak)
    if not usable.any():
        raise CalibrationError("no gateway heard 2 registered beacons on its own floor")
    # A gateway whose site entry sets its exponent is simulated/planned with it; fitting it
    # the shared exponent would put the difference into its P0 (2 dB at 15 m for 2.3 vs 2.8).
    own = np.array([np.nan if g.exponent is None else float(g.exponent) for g in gws])
    if exponent == "site":
        own[np.isnan(own)] = defaults.exponent
    w, cache = np.zeros(d.shape), {}
    for k in np.flatnonzero(usable):  # gateways of a floor mostly share their beacon set
        key = listened[k].tobytes()
        if key not in cache:
            cache[key] = shadow_weights(bxyz[listened[k], :2], decorrelation_m)
        w[k, listened[k]] = cache[key]
    p0 = np.full(len(gws), np.nan)
    nexp, sigma = p0.copy(), p0.copy()
    for value in [np.nan] + sorted(set(own[np.isfinite(own)].tolist())):
        group = np.flatnonzero(usable & (np.isnan(own) if np.isnan(value) else own == value))
        if not group.size:
            continue
        sub = listened[group]
        k_idx, _ = np.nonzero(sub)
        fit = PathLossFit(exponent=exponent if np.isnan(value) else value,
                          fit_sigma=sigma_db is None, sigma_db=sigma_db or defaults.sigma_db,
                          sensitivity_dbm=lv.censor_dbm[group]).fit(
            d[group][sub], lv.level[group][sub], k_idx, n_gateways=group.size,
            sample_weight=w[group][sub])
        p0[group], nexp[group], sigma[group] = fit.p0_, fit.exponent_, fit.sigma_
    out = []
    for k in np.flatnonzero(usable):
        h = heard[k]
        res = lv.level[k, h] - (p0[k] - 10.0 * nexp[k] * np.log10(np.maximum(d[k, h], 0.1)))
        out.append(GatewayCalibration(
            gws[k].id, float(p0[k]), float(p0[k] - defaults.p0_dbm), float(nexp[k]),
            float(sigma[k]), int(h.sum()), float(np.sqrt(np.mean(res ** 2)))))
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
