"""Coverage planning for field engineers: expected accuracy per floor, weak spots, where to add.

For each floor, a grid of cells (2 m by default) over the walkable zones gets the expected
position error bound (``locate.coverage.accuracy_grid``, CRLB in metres) and the floor
classification margin (``locate.coverage.floor_margin_grid``, nats). Gateways on other floors
count with the slab loss per floor crossed (``floor_atten_db`` of the radio), except in atrium
cells, where signal crosses floors without slab loss. Zones are scored by the mean bound over
their cells; the worst zone drives the suggestion: the greedy candidate (every ``step_m`` on the
floor's walkable cells, at ceiling height) that most lowers the worst zone's error, ties broken
by the floor mean. Arrays in, arrays out; drawing and files live in ``gateway.plan_report``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from locate import PathLoss
from locate.coverage import accuracy_grid, floor_margin_grid

log = logging.getLogger(__name__)

DEVICE_HEIGHT_M = 1.2       # phone in a hand or bag
CAP_M = 50.0                # bound used for cells heard by < 2 gateways (inf) when averaging
MOUNT_BELOW_CEILING_M = 0.5  # a suggested gateway hangs this far below the floor's ceiling
# Not scored: voids, the street, and back-of-house (staff only, no shoppers to locate).
NOT_COVERED = ("atrium", "outside", "service")


@dataclass(frozen=True)
class FloorCoverage:
    floor: str
    grid_x: np.ndarray          # (nx,) cell centres, metres
    grid_y: np.ndarray          # (ny,)
    crlb_m: np.ndarray          # (ny, nx) metres; NaN outside the walkable zones; inf = < 2 heard
    margin_nats: np.ndarray     # (ny, nx) floor log-likelihood margin; NaN outside
    zone_of: np.ndarray         # (ny, nx) object: zone id or None

    def zone_scores(self) -> dict[str, float]:
        """Zone id -> mean bound over its cells (inf capped at CAP_M), metres."""
        capped = np.minimum(np.nan_to_num(self.crlb_m, nan=np.nan, posinf=CAP_M), CAP_M)
        out = {}
        for zid in {z for z in self.zone_of.ravel() if z is not None}:
            m = self.zone_of == zid
            out[zid] = float(np.mean(capped[m]))
        return out

    def worst_zone(self) -> tuple[str, float]:
        scores = self.zone_scores()
        zid = max(scores, key=scores.get)
        return zid, scores[zid]

    def mean_m(self) -> float:
        v = self.crlb_m[~np.isnan(self.crlb_m)]
        return float(np.mean(np.minimum(v, CAP_M)))

    def percentile_m(self, q: float) -> float:
        v = self.crlb_m[~np.isnan(self.crlb_m)]
        return float(np.percentile(np.minimum(v, CAP_M), q))


@dataclass(frozen=True)
class Suggestion:
    floor: str
    x: float
    y: float
    z: float                    # height above the floor, metres
    worst_zone: str             # the zone that was worst before (the target)
    worst_before_m: float       # its mean bound before, metres
    worst_after_m: float        # its mean bound with the new gateway
    mean_before_m: float        # floor mean bound before / after
    mean_after_m: float
    max_after_zone: str         # the worst zone with the new gateway (another one on ties)
    max_after_m: float


def points_in_polygon(x: np.ndarray, y: np.ndarray, polygon) -> np.ndarray:
    """Even-odd rule, vectorized over points; the polygon is implicitly closed."""
    poly = np.asarray(polygon, dtype=float)
    inside = np.zeros(x.shape, dtype=bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < x_at)
        xj, yj = xi, yi
    return inside


def floor_cells(site, floor_id: str, cell_m: float = 2.0):
    """Grid centres over the floor outline; zone id per cell (None off the walkable zones) and
    the atrium mask."""
    outline = np.asarray(site.floor(floor_id).outline, dtype=float)
    x0, y0 = outline.min(axis=0)
    x1, y1 = outline.max(axis=0)
    gx = np.arange(x0 + cell_m / 2, x1, cell_m)
    gy = np.arange(y0 + cell_m / 2, y1, cell_m)
    xx, yy = np.meshgrid(gx, gy)
    zone_of = np.full(xx.shape, None, dtype=object)
    void = np.zeros(xx.shape, dtype=bool)
    for z in site.zones_on(floor_id):
        m = points_in_polygon(xx, yy, z.polygon)
        if z.kind == "atrium":
            void |= m
        if z.kind in NOT_COVERED:
            continue
        zone_of[m & np.equal(zone_of, None)] = z.id
    return gx, gy, zone_of, void


def anchors_for(site, floor_id: str, radio: str = "ble", extra=()):
    """Anchors (K, 3) absolute, per-anchor PathLoss for a device on ``floor_id`` (slab loss for
    gateways on other floors folded into p0), their floor index, and the sensitivity per anchor.

    ``extra``: (x, y, z_above_floor) gateways added on ``floor_id`` with the radio's defaults.
    """
    rd = site.radio[radio]
    levels = {f.id: i for i, f in enumerate(site.floors)}
    fi = levels[floor_id]
    gws = [g for g in site.gateways if radio in g.radios]
    xyz = [(g.x, g.y, site.floor(g.floor).elevation_m + g.z) for g in gws]
    elev = site.floor(floor_id).elevation_m
    xyz += [(x, y, elev + z) for x, y, z in extra]
    idx = np.array([levels[g.floor] for g in gws] + [fi] * len(extra), dtype=int)
    p0_same = np.array([rd.p0_dbm + g.p0_offset_db for g in gws] + [rd.p0_dbm] * len(extra))
    n = np.array([g.exponent or rd.exponent for g in gws] + [rd.exponent] * len(extra))
    sens = np.array([g.sensitivity_dbm if g.sensitivity_dbm is not None else rd.sensitivity_dbm
                     for g in gws] + [rd.sensitivity_dbm] * len(extra))
    return np.asarray(xyz, dtype=float), idx, p0_same, n, sens, rd


def floor_coverage(site, floor_id: str, *, cell_m: float = 2.0, radio: str = "ble",
                   extra=(), cells=None, with_margin: bool = True) -> FloorCoverage:
    """Expected CRLB and floor margin on ``floor_id`` with the site's gateways (+ ``extra``)."""
    gx, gy, zone_of, void = cells or floor_cells(site, floor_id, cell_m)
    xyz, fidx, p0, n, sens, rd = anchors_for(site, floor_id, radio, extra)
    fi = [f.id for f in site.floors].index(floor_id)
    slabs = np.abs(fidx - fi) * rd.floor_atten_db
    # accuracy_grid takes one model per anchor; the slab loss is a lower p0 for that anchor.
    # In the atrium the slab loss does not apply: those cells are not scored (no walking there).
    model = PathLoss(p0 - slabs, n, rd.sigma_db)
    # locate wants heights >= 0; a basement is below the site's zero, so lift the whole frame
    # (the bound depends only on distances).
    lift = max(0.0, -min(f.elevation_m for f in site.floors))
    xyz = xyz + np.array([0.0, 0.0, lift])
    z = site.floor(floor_id).elevation_m + DEVICE_HEIGHT_M + lift
    crlb = accuracy_grid(xyz, model, gx, gy, z=z, sensitivity_dbm=sens)
    if len(site.floors) > 1 and with_margin:
        margin = floor_margin_grid(
            xyz, fidx, [f.elevation_m + lift for f in site.floors], rd.floor_atten_db, (gx, gy), fi,
            void_mask=void, model=PathLoss(p0, n, rd.sigma_db), z=DEVICE_HEIGHT_M,
            sensitivity_dbm=sens)
    else:
        margin = np.full(crlb.shape, np.inf)
    off = np.equal(zone_of, None)
    crlb = np.where(off, np.nan, crlb)
    margin = np.where(off, np.nan, margin)
    return FloorCoverage(floor_id, gx, gy, crlb, margin, zone_of)


def suggest_gateway(site, floor_id: str, *, cell_m: float = 2.0, step_m: float = 8.0,
                    radio: str = "ble", extra=()) -> Suggestion:
    """Greedy: the one new gateway on ``floor_id`` that most lowers the worst zone's error.

    The target is the zone worst before; key: (its mean bound, the floor's mean bound), smaller
    is better. (Minimising the floor's maximum instead stalls when two zones tie as worst, as
    the symmetric wings of a mall do: one gateway cannot lower both; call again with the
    suggestion in ``extra`` to place the next one.) Candidates every ``step_m`` on the scored
    cells, then every cell around the best of them: the bound is smooth in the gateway
    position, and a full 2 m search costs ~20x more.
    """
    cells = floor_cells(site, floor_id, cell_m)
    before = floor_coverage(site, floor_id, cell_m=cell_m, radio=radio, extra=extra, cells=cells,
                            with_margin=False)
    wz, worst0 = before.worst_zone()
    mean0 = before.mean_m()
    gx, gy, zone_of, _ = cells
    mount = max(site.floor(floor_id).height_m - MOUNT_BELOW_CEILING_M, 2.5)
    stride = max(int(round(step_m / cell_m)), 1)
    best: tuple | None = None

    def consider(iy: int, ix: int) -> None:
        nonlocal best
        if not (0 <= iy < len(gy) and 0 <= ix < len(gx)) or zone_of[iy, ix] is None:
            return
        cand = (float(gx[ix]), float(gy[iy]), mount)
        cov = floor_coverage(site, floor_id, cell_m=cell_m, radio=radio,
                             extra=tuple(extra) + (cand,), cells=cells, with_margin=False)
        key = (cov.zone_scores()[wz], cov.mean_m())
        if best is None or key < best[0]:
            best = (key, cand, iy, ix, cov.worst_zone())

    for iy in range(stride // 2, len(gy), stride):
        for ix in range(stride // 2, len(gx), stride):
            consider(iy, ix)
    if best is None:
        raise ValueError(f"floor {floor_id} has no scored cell to put a gateway on")
    _, _, by, bx, _ = best
    for iy in range(by - stride + 1, by + stride):
        for ix in range(bx - stride + 1, bx + stride):
            consider(iy, ix)
    (worst1, mean1), (x, y, z), _, _, (max_zone, max_m) = best
    log.info("floor %s: gateway at (%.1f, %.1f) lowers worst zone %s %.2f -> %.2f m",
             floor_id, x, y, wz, worst0, worst1)
    return Suggestion(floor_id, x, y, z, wz, worst0, worst1, mean0, mean1, max_zone, max_m)


def coverage_points(site, t: float, *, cell_m: float = 2.0, radio: str = "ble") -> list:
    """The ``coverage`` measurement (docs/dashboards.md): CRLB percentiles per floor."""
    from analytics.sink.lineprotocol import Point

    out = []
    for f in site.floors:
        cov = floor_coverage(site, f.id, cell_m=cell_m, radio=radio)
        margin = cov.margin_nats[~np.isnan(cov.margin_nats)]
        fields = {"crlb_p50_m": round(cov.percentile_m(50), 3),
                  "crlb_p90_m": round(cov.percentile_m(90), 3),
                  "crlb_max_m": round(cov.percentile_m(100), 3)}
        if margin.size and np.all(np.isfinite(margin)):
            fields["floor_margin_p10_nats"] = round(float(np.percentile(margin, 10)), 3)
        out.append(Point("coverage", {"site": site.id, "floor": f.id}, fields, int(t)))
    return out
