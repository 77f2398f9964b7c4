"""A self-contained two-floor mall with ground truth, for the floor / track / zone tests.

Not a test module (leading underscore): the tests import it.  Deterministic for a seed.

Layout (metres): two floors of 80 x 40 at z = 0 and 5.  Stores 10 x 10 along both long
sides (y 0-10 and 30-40), a corridor between (y 10-30), an atrium void in the L1 slab
(x 25-55, y 14-26: nobody walks there on L1; L0 under it is open floor).  Two escalators, each
with a landing on either floor (a 20 s ride), and a lift (15 s wait, 10 s ride).  Gateways on
the ceilings (3 m above each floor): one per store and four per corridor, 40 in all.

Radio: log-distance path loss, a static Gudmundson-correlated shadowing field per gateway and
floor (white noise filtered on a 1 m grid, decorrelation distance 5 m, 6 dB), Rayleigh fading
per packet (Poisson(3) packets per 1 s window; a gateway reports the mean dB of the packets
above its sensitivity), 15 dB per slab except through the void, a per-phone power offset
(3 dB), phones silent in some windows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

FLOOR_Z = np.array([0.0, 5.0])
W, Hh = 80.0, 40.0
DEVICE_H = 1.2
P0, EXPONENT, SHADOW_DB, SLAB_DB, SENS = -59.0, 2.5, 6.0, 15.0, -95.0
# Rayleigh fading: mean of 10 log10(Exp(1)) is -2.51 dB; a calibrated gateway's p0 absorbs it.
P0_CAL = P0 - 2.51
DECORR_M = 5.0
ATRIUM = np.array([[25, 14], [55, 14], [55, 26], [25, 26]], float)
OUTLINE = np.array([[0, 0], [W, 0], [W, Hh], [0, Hh]], float)


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


# Connectors: (id, kind, floor-0 landing centre, floor-1 landing centre)
ESCALATORS = {"escA": ((12.0, 20.0), (22.0, 20.0)), "escB": ((68.0, 20.0), (58.0, 20.0))}
LIFT = ("lift", (75.5, 26.0))


def stores():
    polys, floors, ids = [], [], []
    for f in (0, 1):
        for row, (y0, y1) in enumerate(((0.0, 10.0), (30.0, 40.0))):
            for i in range(8):
                polys.append(rect(10 * i, y0, 10 * i + 10, y1))
                floors.append(f)
                ids.append(f"L{f}-{'S' if row == 0 else 'N'}{i}")
    return polys, floors, ids


def zone_layout():
    """Stores, corridors and connector landings as ZoneIndex inputs."""
    polys, floors, ids = stores()
    kinds = ["store"] * len(polys)
    for f in (0, 1):
        polys.append(rect(0, 10, W, 30))
        floors.append(f)
        ids.append(f"L{f}-corridor")
        kinds.append("corridor")
    return polys, floors, ids, kinds


def connectors():
    """Connector polygons (one per landing), connects, ids, kinds, floor of each polygon."""
    polys, conn, ids, kinds, floor = [], [], [], [], []
    for name, (c0, c1) in ESCALATORS.items():
        for f, c in enumerate((c0, c1)):
            polys.append(rect(c[0] - 2, c[1] - 2, c[0] + 2, c[1] + 2))
            conn.append((0, 1))
            ids.append(name)
            kinds.append("escalator")
            floor.append(f)
    c = LIFT[1]
    polys.append(rect(c[0] - 1.5, c[1] - 2, c[0] + 1.5, c[1] + 2))
    conn.append((0, 1))
    ids.append("lift")
    kinds.append("lift")
    floor.append(-1)
    return polys, conn, ids, kinds, floor


def gateways():
    """Ceiling gateways placed as a store-level deployment would: one in each store (at its
    centre) and four along the corridor (on L1 on the balcony edges: no ceiling over the void).
    """
    xyz, fl = [], []
    for f in (0, 1):
        pts = [(10.0 * i + 5.0, y) for i in range(8) for y in (5.0, 35.0)]
        if f == 0:
            pts += [(x, 20.0) for x in (10.0, 30.0, 50.0, 70.0)]
        else:
            pts += [(10.0, 20.0), (30.0, 12.0), (50.0, 28.0), (70.0, 20.0)]
        for x, y in pts:
            xyz.append((x, y, FLOOR_Z[f] + 3.0))
            fl.append(f)
    return np.array(xyz), np.array(fl)


@dataclass
class Truth:
    t: np.ndarray  # (T,)
    xy: np.ndarray  # (T,N,2)
    floor: np.ndarray  # (T,N)
    riding: np.ndarray  # (T,N) on an escalator / in the lift car
    changes: list  # (device, t_mid, from, to, via id)
    store: np.ndarray  # (T,N) store zone index or -1


class _Walker:
    """Piecewise-linear itinerary of one shopper, sampled at 1 s."""

    def __init__(self, rng, floor, xy, speed):
        self.rng, self.speed = rng, speed
        self.t, self.xy, self.floor = 0.0, np.array(xy, float), floor
        self.samples = []  # (t, x, y, floor, riding)
        self.changes = []

    def _emit_line(self, p1, dur=None, floor_fn=None, riding=False):
        p0 = self.xy.copy()
        p1 = np.asarray(p1, float)
        if dur is None:
            dur = np.linalg.norm(p1 - p0) / self.speed
        t0 = self.t
        self.samples.append((t0, *p0, self.floor if floor_fn is None else floor_fn(0.0), riding))
        self.t += max(dur, 1e-3)
        self.xy = p1
        if floor_fn is not None:
            self.floor = floor_fn(1.0)
        self.samples.append((self.t, *p1, self.floor, riding))

    def goto(self, p):
        self._emit_line(p)

    def stay(self, dur):
        self._emit_line(self.xy, dur)

    def lane(self):
        if self.floor == 1:
            return self.rng.choice([12.5, 27.5])
        return self.rng.uniform(12.0, 28.0)

    def walk_to(self, target, target_in_store_row=None):
        """Route through the corridor: leave a store by its door, walk a lane, enter."""
        x, y = self.xy
        if y < 10 or y > 30:  # inside a store: out by its door
            door_y = 10.0 if y < 10 else 30.0
            cx = 10 * np.floor(x / 10) + 5
            self.goto((cx, door_y))
            self.goto((cx, door_y + (1.5 if door_y == 10 else -1.5)))
        tx, ty = target
        if ty < 10 or ty > 30:
            door_y = 10.0 if ty < 10 else 30.0
            cx = 10 * np.floor(tx / 10) + 5
            lane = 12.5 if door_y == 10 else 27.5
            self.goto((self.xy[0], lane))
            self.goto((cx, lane))
            self.goto((cx, door_y))
            self.goto(target)
        else:
            lane = self.lane()
            self.goto((self.xy[0], lane))
            self.goto((tx, lane))
            self.goto(target)

    def escalator(self, name):
        c0, c1 = ESCALATORS[name]
        a, b = (c0, c1) if self.floor == 0 else (c1, c0)
        self.walk_to(a)
        f0 = self.floor
        f1 = 1 - f0
        t_mid = self.t + 10.0
        self._emit_line(b, 20.0, floor_fn=lambda s: f0 if s < 0.5 else f1, riding=True)
        self.changes.append((t_mid, f0, f1, name))

    def lift(self):
        c = LIFT[1]
        self.walk_to(c)
        self.stay(self.rng.uniform(5, 25))
        f0 = self.floor
        f1 = 1 - f0
        t_mid = self.t + 5.0
        self._emit_line(c, 10.0, floor_fn=lambda s: f0 if s < 0.5 else f1, riding=True)
        self.changes.append((t_mid, f0, f1, "lift"))


def _itinerary(rng, duration):
    floor = int(rng.integers(2))
    start = (rng.uniform(3, 77), rng.choice([12.0, 28.0]))
    w = _Walker(rng, floor, start, rng.uniform(1.0, 1.4))
    last_change = -1e9
    while w.t < duration:
        u = rng.uniform()
        if u < 0.45:  # a store visit: mostly long enough to count
            i = rng.integers(8)
            row = rng.integers(2)
            x = 10 * i + rng.uniform(2.5, 7.5)
            y = rng.uniform(2.5, 7.0) if row == 0 else rng.uniform(33.0, 37.5)
            w.walk_to((x, y))
            w.stay(rng.choice([rng.uniform(20, 120), rng.uniform(180, 420)], p=[0.3, 0.7]))
        elif u < 0.65 and w.t - last_change > 120:
            r = rng.uniform()
            if r < 0.4:
                w.escalator("escA")
            elif r < 0.8:
                w.escalator("escB")
            else:
                w.lift()
            last_change = w.t
        else:  # browse the corridor with a short stop
            x = rng.uniform(3, 77)
            y = w.lane()
            if w.floor == 1 and 25 <= x <= 55 and 14 <= y <= 26:
                y = 12.5
            w.walk_to((x, y))
            w.stay(rng.uniform(5, 40))
    return w


def _sample(w, t):
    s = np.array([row[:4] for row in w.samples], float)
    riding = np.array([row[4] for row in w.samples], bool)
    ts = s[:, 0]
    # Keep the last sample of duplicated times (segment boundaries).
    x = np.interp(t, ts, s[:, 1])
    y = np.interp(t, ts, s[:, 2])
    idx = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 1)
    # Floor during a ride switches at its midpoint: interpolate and round.
    fl = np.where(riding[idx] & riding[np.minimum(idx + 1, len(ts) - 1)],
                  np.round(np.interp(t, ts, s[:, 3])), s[idx, 3])
    ride = riding[idx] & riding[np.minimum(idx + 1, len(ts) - 1)] & (idx + 1 < len(ts))
    return np.column_stack([x, y]), fl.astype(int), ride


def shadow_fields(rng, k, step=1.0):
    """(K,F,nx,ny) correlated shadowing (dB) on a 1 m grid from x,y = -5."""
    nx, ny = int((W + 10) / step) + 1, int((Hh + 10) / step) + 1
    # Gaussian-filtered white noise: correlation exp(-d^2 / (4 s^2)) = 1/e at d = DECORR_M.
    s = DECORR_M / 2.0 / step
    out = np.empty((k, 2, nx, ny))
    for i in range(k):
        for f in range(2):
            g = gaussian_filter(rng.standard_normal((nx, ny)), s, mode="wrap")
            out[i, f] = g / g.std() * SHADOW_DB
    return out


def _lookup(field, xy):
    # Bilinear lookup in a (nx,ny) field on the 1 m grid starting at -5.
    u = np.clip(xy[:, 0] + 5.0, 0, field.shape[0] - 1.001)
    v = np.clip(xy[:, 1] + 5.0, 0, field.shape[1] - 1.001)
    i, j = np.floor(u).astype(int), np.floor(v).astype(int)
    a, b = u - i, v - j
    return (field[i, j] * (1 - a) * (1 - b) + field[i + 1, j] * a * (1 - b)
            + field[i, j + 1] * (1 - a) * b + field[i + 1, j + 1] * a * b)


def slab_loss_truth(xy, f, gw_xyz, gw_floor):
    """Exact per-path slab loss for two floors: the segment's crossing of z = 5 in the void."""
    pz = FLOOR_Z[f] + DEVICE_H
    out = np.zeros((len(xy), len(gw_xyz)))
    for k in range(len(gw_xyz)):
        if gw_floor[k] == f:
            continue
        s = (FLOOR_Z[1] - pz) / (gw_xyz[k, 2] - pz)
        c = xy + s * (gw_xyz[k, :2] - xy)
        (x0, y0), (x1, y1) = ATRIUM.min(axis=0), ATRIUM.max(axis=0)
        in_void = (c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1)
        out[:, k] = np.where(in_void, 0.0, SLAB_DB)
    return out


@dataclass
class Scenario:
    truth: Truth
    rssi: np.ndarray  # (T,N,K)
    gw_xyz: np.ndarray
    gw_floor: np.ndarray
    offset_db: np.ndarray


@functools.lru_cache(maxsize=4)
def build(seed: int = 7, n_devices: int = 20, duration: int = 1200) -> Scenario:
    rng = np.random.default_rng(seed)
    gw_xyz, gw_floor = gateways()
    K = len(gw_xyz)
    t = np.arange(0.0, float(duration))
    T, N = len(t), n_devices
    xy = np.empty((T, N, 2))
    fl = np.empty((T, N), int)
    ride = np.empty((T, N), bool)
    changes = []
    for n in range(N):
        w = _itinerary(rng, duration)
        xy[:, n], fl[:, n], ride[:, n] = _sample(w, t)
        changes += [(n, tm, a, b, via) for tm, a, b, via in w.changes if tm < duration - 1]
    from locate.zones import ZoneIndex  # the store truth uses the same polygons

    sp, sf, _ = stores()
    store = ZoneIndex(sp, sf).assign(xy.reshape(-1, 2), fl.reshape(-1)).reshape(T, N)
    store[ride] = -1
    fields = shadow_fields(rng, K)
    offset = rng.normal(0.0, 3.0, N)
    rssi = np.full((T, N, K), np.nan)
    flat_xy, flat_f = xy.reshape(-1, 2), fl.reshape(-1)
    mean = np.empty((T * N, K))
    for f in (0, 1):
        m = flat_f == f
        d = np.sqrt(((flat_xy[m, None, :] - gw_xyz[None, :, :2]) ** 2).sum(-1)
                    + (gw_xyz[None, :, 2] - FLOOR_Z[f] - DEVICE_H) ** 2)
        mu = P0 - 10 * EXPONENT * np.log10(np.maximum(d, 0.5)) - slab_loss_truth(flat_xy[m], f, gw_xyz, gw_floor)
        for k in range(K):
            mu[:, k] += _lookup(fields[k, f], flat_xy[m])
        mean[m] = mu
    mean = mean.reshape(T, N, K) + offset[None, :, None]
    silent = rng.uniform(size=(T, N)) < 0.03  # phone quiet for a window
    npk = rng.poisson(3.0, size=(T, N, K))
    max_p = int(npk.max())
    acc = np.zeros((T, N, K))
    cnt = np.zeros((T, N, K))
    for p in range(max_p):
        live = npk > p
        pk = mean + 10 * np.log10(rng.exponential(1.0, size=(T, N, K)))
        heard = live & (pk >= SENS)
        acc += np.where(heard, pk, 0.0)
        cnt += heard
    with np.errstate(invalid="ignore", divide="ignore"):
        rssi = np.where(cnt > 0, acc / cnt, np.nan)
    rssi[silent] = np.nan
    truth = Truth(t=t, xy=xy, floor=fl, riding=ride, changes=changes, store=store)
    return Scenario(truth=truth, rssi=np.round(rssi), gw_xyz=gw_xyz, gw_floor=gw_floor, offset_db=offset)


SEEDS = tuple(range(1, 7))  # pooled: one seed's figures swing by several points


@dataclass
class Result:
    scenario: Scenario
    ll: np.ndarray  # (T,N,F)
    xy_floor: np.ndarray  # (T,N,F,2)
    floor_filt: np.ndarray  # (T,N) argmax of the online filter
    floor_smooth: np.ndarray  # (T,N) argmax of forward-backward
    floor_path: np.ndarray  # (T,N) Viterbi
    changes: np.ndarray  # FLOOR_CHANGE_DTYPE
    via_ids: list
    fix: np.ndarray  # (T,N,2) per-window fix on the Viterbi floor
    fix_cov: np.ndarray
    track: object  # SmoothResult
    store_est: np.ndarray  # (T,N) store of the smoothed track
    visits_est: np.ndarray
    visits_true: np.ndarray


def floor_model(sc: Scenario):
    from locate import PathLoss
    from locate.floors import FloorModel

    return FloorModel(sc.gw_xyz, sc.gw_floor, FLOOR_Z, PathLoss(P0_CAL, EXPONENT, 6.0), slab_db=SLAB_DB,
                      sensitivity_dbm=SENS, voids=[[], [ATRIUM]], outlines=[OUTLINE, OUTLINE], grid_step=3.0,
                      offsets_db=(-4.0, 0.0, 4.0), offset_sd_db=3.0)


def connector_index():
    from locate.floors import Connectors

    cp, cc, cid, ck, cf = connectors()
    return Connectors(cp, cc, ids=cid, kinds=ck, floor=cf, near_m=6.0)


@functools.lru_cache(maxsize=8)
def run(seed: int = 7) -> Result:
    """The offline pipeline: floors (model + HMM), fixes, RTS track, store visits."""
    from locate.events import drop_excursions, floor_changes, visits
    from locate.floors import FloorHMM
    from locate.track import rts_smooth
    from locate.zones import ZoneIndex

    sc = build(seed)
    tr = sc.truth
    T, N, K = sc.rssi.shape
    fm = floor_model(sc)
    lk = fm.loglik(sc.rssi.reshape(T * N, K))
    F = fm.n_floors
    ll = lk.loglik.reshape(T, N, F)
    xyf = lk.xy.reshape(T, N, F, 2)
    covf = lk.cov.reshape(T, N, F, 2, 2)
    con = connector_index()
    allowed = con.allowed(xyf.reshape(T * N, F, 2), F).reshape(T, N, F, F)
    hmm = FloorHMM(F, dt=1.0, min_dwell_s=15.0)
    path = drop_excursions(tr.t, hmm.viterbi(ll, allowed), max_s=60.0)
    ff = hmm.filter(ll, allowed).argmax(-1)
    fs = hmm.smooth(ll, allowed).argmax(-1)
    fix = np.take_along_axis(xyf, path[..., None, None], axis=2)[:, :, 0]
    cov = np.take_along_axis(covf, path[..., None, None, None], axis=2)[:, :, 0]
    trk = rts_smooth(tr.t, fix, cov)
    ch = floor_changes(tr.t, path, trk.x[..., :2], con)
    sp, sf, sid = stores()
    zi = ZoneIndex(sp, sf, sid)
    est = zi.assign(trk.x[..., :2].reshape(-1, 2), path.reshape(-1)).reshape(T, N)
    v_est = visits(tr.t, est, t_enter=60.0, t_exit=30.0)
    v_true = visits(tr.t, tr.store, t_enter=0.5, t_exit=0.5)
    return Result(sc, ll, xyf, ff, fs, path, ch, con.ids, fix, cov, trk, est, v_est, v_true)
