"""Where people can walk: a walk graph on the site model, and zone lookup by position.

Free space per floor is the union of corridor-like zones (corridor, entrance, escalator, lift,
outside) shrunk by ``MARGIN`` and kept ``MARGIN`` away from every wall. Walls are zone edges
that are not open: corridor-like zones open onto each other, entrances onto the street, and a
store opens onto a corridor or entrance where their polygons share an edge (its door). A 1 m
lattice of free points with 8-neighbour edges inside free space is the graph; door, entrance
and shaft landing points join it. Agents walk at <= 2 * MARGIN metres per second, so the
straight line between two consecutive one-second positions stays within MARGIN of the path
and never crosses a wall.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Polygon
from shapely.ops import unary_union

from firmware_sim.errors import SimError

log = logging.getLogger(__name__)

MARGIN = 0.8  # m kept from walls; max walking speed is 2 * MARGIN m/s
DOOR_STEP = 1.0  # m: waypoints each side of a door, on its normal
ZONE_RES = 0.5  # m per cell of the zone lookup raster
CORRIDORISH = ("corridor", "entrance", "escalator", "lift")
WALK_KINDS = CORRIDORISH + ("outside",)
ESCALATOR_COST_M = 25.0  # graph cost of one escalator floor (about 20 s at walking pace)
LIFT_COST_M = 60.0  # wait plus ride
AVOID_COST_M = 500.0  # what the other vertical kind costs a person who avoids it


def _open(a: str, b: str) -> bool:
    pair = {a, b}
    if a in CORRIDORISH and b in CORRIDORISH:
        return True
    if pair in ({"entrance", "outside"}, {"outside"}):
        return True
    return "store" in pair and bool(pair & {"corridor", "entrance"})


def _shared(pa: Polygon, pb: Polygon) -> list[LineString]:
    inter = pa.boundary.intersection(pb.boundary)
    inter = shapely.line_merge(unary_union([g for g in shapely.get_parts(inter)
                                            if g.geom_type in ("LineString", "MultiLineString")]))
    return [g for g in shapely.get_parts(inter) if g.length > 1e-6]


@dataclass(frozen=True)
class Door:
    store: int  # zone index
    point: tuple[float, float]
    inner: tuple[float, float]
    outer: tuple[float, float]
    node: int  # graph node of `outer`


class SiteGeometry:
    """Floors, zones and the walk graph of one site (built once per run)."""

    def __init__(self, site) -> None:
        self.site = site
        self.floor_ids = tuple(f.id for f in site.floors)
        self.floor_ix = {f: i for i, f in enumerate(self.floor_ids)}
        self.elev = np.array([f.elevation_m for f in site.floors])
        self.zones = site.zones
        self.zone_ids = tuple(z.id for z in site.zones)
        self.zone_kind = np.array([z.kind for z in site.zones])
        self.zone_floor = np.array([self.floor_ix[z.floor] for z in site.zones])
        self.polys = [Polygon(z.polygon) for z in site.zones]
        bounds = np.array([p.bounds for p in self.polys] +
                          [Polygon(f.outline).bounds for f in site.floors])
        self.x0, self.y0 = np.floor(bounds[:, 0].min()) - 1, np.floor(bounds[:, 1].min()) - 1
        self.x1, self.y1 = np.ceil(bounds[:, 2].max()) + 1, np.ceil(bounds[:, 3].max()) + 1
        self._build_zone_raster()
        self.free = []  # per floor: free-space polygon for walking
        self.walls = []  # per floor: MultiLineString of walls
        for fi in range(len(self.floor_ids)):
            free, walls = self._free_space(fi)
            self.free.append(free)
            self.walls.append(walls)
        self._build_graph()

    # -- zones -------------------------------------------------------------------------------
    def _build_zone_raster(self) -> None:
        nx = int(round((self.x1 - self.x0) / ZONE_RES))
        ny = int(round((self.y1 - self.y0) / ZONE_RES))
        xs = self.x0 + (np.arange(nx) + 0.5) * ZONE_RES
        ys = self.y0 + (np.arange(ny) + 0.5) * ZONE_RES
        gx, gy = np.meshgrid(xs, ys)
        self.zone_raster = np.full((len(self.floor_ids), ny, nx), -1, dtype=np.int16)
        for zi, poly in enumerate(self.polys):
            r = self.zone_raster[self.zone_floor[zi]]
            inside = shapely.contains_xy(poly, gx, gy) & (r < 0)
            r[inside] = zi

    def zone_at(self, x: np.ndarray, y: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Zone index (-1 = none) at each position, from a 0.5 m raster."""
        ny, nx = self.zone_raster.shape[1:]
        ix = np.clip(((x - self.x0) / ZONE_RES).astype(np.int64), 0, nx - 1)
        iy = np.clip(((y - self.y0) / ZONE_RES).astype(np.int64), 0, ny - 1)
        return self.zone_raster[floor, iy, ix]

    def zones_of(self, kind: str) -> np.ndarray:
        return np.flatnonzero(self.zone_kind == kind)

    # -- free space --------------------------------------------------------------------------
    def _free_space(self, fi: int):
        idx = [i for i in range(len(self.zones)) if self.zone_floor[i] == fi
               and self.zone_kind[i] in WALK_KINDS + ("store",)]
        walk_union = unary_union([self.polys[i] for i in idx if self.zone_kind[i] in WALK_KINDS])
        bounds = unary_union([self.polys[i].boundary for i in idx])
        opens = []
        tree = shapely.STRtree([self.polys[i] for i in idx])
        for a_pos, a in enumerate(idx):
            for b_pos in tree.query(self.polys[a], predicate="touches"):
                b = idx[int(b_pos)]
                if b > a and _open(self.zone_kind[a], self.zone_kind[b]):
                    opens.extend(_shared(self.polys[a], self.polys[b]))
        walls = bounds
        if opens:
            walls = bounds.difference(unary_union(opens).buffer(1e-6, cap_style="flat"))
        free = walk_union.buffer(-MARGIN).difference(walls.buffer(MARGIN))
        shapely.prepare(free)
        return free, walls

    # -- graph -------------------------------------------------------------------------------
    def _build_graph(self) -> None:
        xy, fl = [], []
        for fi, free in enumerate(self.free):
            xs = np.arange(self.x0 + 0.5, self.x1, 1.0)
            ys = np.arange(self.y0 + 0.5, self.y1, 1.0)
            gx, gy = np.meshgrid(xs, ys)
            ok = shapely.contains_xy(free, gx, gy)
            xy.append(np.column_stack([gx[ok], gy[ok]]))
            fl.append(np.full(ok.sum(), fi))
        self.node_xy = np.concatenate(xy)
        self.node_floor = np.concatenate(fl)
        n_grid = len(self.node_xy)
        # 8-neighbour lattice edges whose segment stays in free space
        key = {(int(round(x * 2)), int(round(y * 2)), int(f)): i for i, ((x, y), f)
               in enumerate(zip(self.node_xy, self.node_floor))}
        ea, eb = [], []
        for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1)):
            for (kx, ky, f), i in key.items():
                j = key.get((kx + 2 * dx, ky + 2 * dy, f))
                if j is not None:
                    ea.append(i)
                    eb.append(j)
        ea, eb = np.array(ea), np.array(eb)
        keep = self._segments_free(self.node_xy[ea], self.node_xy[eb], self.node_floor[ea])
        self.edges = [(ea[keep], eb[keep], np.hypot(*(self.node_xy[ea[keep]] -
                                                       self.node_xy[eb[keep]]).T))]
        self._extra_xy, self._extra_floor = [], []
        self._n = n_grid
        self.doors = self._make_doors()
        self.entrances = {}
        for zi in self.zones_of("entrance"):
            c = self.polys[zi].representative_point()
            c = self.polys[zi].centroid if self.free[self.zone_floor[zi]].contains(
                self.polys[zi].centroid) else c
            self.entrances[int(zi)] = self._attach((c.x, c.y), int(self.zone_floor[zi]))
        self.landings: dict[str, dict[int, int]] = {}
        self.shaft_kinds: dict[str, str] = {}
        self.landing_shaft: dict[int, str] = {}
        for zi in np.flatnonzero(np.isin(self.zone_kind, ("escalator", "lift"))):
            z = self.zones[zi]
            c = self.polys[zi].centroid
            node = self._attach((c.x, c.y), int(self.zone_floor[zi]))
            self.landings.setdefault(z.shaft or z.id, {})[int(self.zone_floor[zi])] = node
            self.shaft_kinds[z.shaft or z.id] = z.kind
            self.landing_shaft[node] = z.shaft or z.id
        self.node_xy = np.concatenate([self.node_xy, np.array(self._extra_xy).reshape(-1, 2)])
        self.node_floor = np.concatenate([self.node_floor, np.array(self._extra_floor, int)])
        self.node_zone = self.zone_at(self.node_xy[:, 0], self.node_xy[:, 1], self.node_floor)
        self._graphs = {pref: self._csgraph(pref) for pref in ("escalator", "lift")}
        self.key_nodes = np.array(sorted({d.node for d in self.doors.values()}
                                         | set(self.entrances.values())))
        self._key_pos = {int(k): i for i, k in enumerate(self.key_nodes)}
        self._dist, self._pred = {}, {}
        for pref, g in self._graphs.items():
            self._dist[pref], self._pred[pref] = dijkstra(
                g, directed=False, indices=self.key_nodes, return_predecessors=True)
        self._path_cache: dict = {}
        log.info("walk graph: %d nodes, %d doors, %d entrances, %d shafts", len(self.node_xy),
                 len(self.doors), len(self.entrances), len(self.landings))

    def _segments_free(self, a: np.ndarray, b: np.ndarray, floor: np.ndarray) -> np.ndarray:
        ok = np.zeros(len(a), bool)
        for fi, free in enumerate(self.free):
            m = floor == fi
            if m.any():
                lines = shapely.linestrings(np.stack([a[m], b[m]], axis=1))
                ok[m] = shapely.covers(free, lines)
        return ok

    def _attach(self, xy, fi: int, radius: float = 1.6) -> int:
        """Add a node at xy on floor fi joined to lattice nodes within radius in free space."""
        node = self._n + len(self._extra_xy)
        self._extra_xy.append(xy)
        self._extra_floor.append(fi)
        grid = self.node_xy[: self._n]
        d = np.hypot(grid[:, 0] - xy[0], grid[:, 1] - xy[1])
        cand = np.flatnonzero((d <= radius) & (self.node_floor[: self._n] == fi))
        if cand.size:
            ok = self._segments_free(np.repeat([xy], cand.size, 0), grid[cand],
                                     np.full(cand.size, fi))
            cand = cand[ok]
        if cand.size == 0:
            raise SimError(f"point {xy} on floor {self.floor_ids[fi]} has no walkable "
                           "neighbourhood", "site")
        self.edges.append((np.full(cand.size, node), cand, d[cand]))
        return node

    def _make_doors(self) -> dict[int, Door]:
        doors = {}
        for si in self.zones_of("store"):
            fi = int(self.zone_floor[si])
            store = self.polys[si]
            best = None
            for oi in np.flatnonzero((self.zone_floor == fi)
                                     & np.isin(self.zone_kind, ("corridor", "entrance"))):
                for seg in _shared(store, self.polys[oi]):
                    if seg.length >= 2.0 and (best is None or seg.length > best.length):
                        best = seg
            if best is None:
                log.warning("store %s has no door onto a corridor; nobody visits it",
                            self.zone_ids[si])
                continue
            p = best.interpolate(0.5, normalized=True)
            (ax, ay), (bx, by) = best.coords[0], best.coords[-1]
            nx_, ny_ = -(by - ay), bx - ax
            norm = np.hypot(nx_, ny_)
            nx_, ny_ = nx_ / norm, ny_ / norm
            if not store.contains(shapely.Point(p.x + 0.1 * nx_, p.y + 0.1 * ny_)):
                nx_, ny_ = -nx_, -ny_
            inner = (p.x + DOOR_STEP * nx_, p.y + DOOR_STEP * ny_)
            outer = (p.x - DOOR_STEP * nx_, p.y - DOOR_STEP * ny_)
            try:
                node = self._attach(outer, fi)
            except SimError:
                log.warning("door of store %s opens onto no free space", self.zone_ids[si])
                continue
            doors[int(si)] = Door(int(si), (p.x, p.y), inner, outer, node)
        return doors

    def _csgraph(self, prefer: str):
        a = [e[0] for e in self.edges]
        b = [e[1] for e in self.edges]
        w = [e[2] for e in self.edges]
        for shaft, land in self.landings.items():
            kind = self.shaft_kinds[shaft]
            floors = sorted(land)
            for i, fa in enumerate(floors):
                for fb in floors[i + 1:]:
                    if kind == "escalator" and fb != fa + 1:
                        continue
                    cost = ESCALATOR_COST_M if kind == "escalator" else LIFT_COST_M + 5 * (fb - fa)
                    if kind != prefer:
                        cost += AVOID_COST_M
                    a.append([land[fa]])
                    b.append([land[fb]])
                    w.append([cost])
        a, b, w = np.concatenate(a), np.concatenate(b), np.concatenate(w)
        n = len(self.node_xy)
        return coo_matrix((w, (a, b)), shape=(n, n)).tocsr()

    def shaft_kind(self, node: int) -> str:
        """'escalator' or 'lift' for a landing node."""
        return self.shaft_kinds[self.landing_shaft[node]]

    def path(self, key: int, node: int, prefer: str = "escalator") -> np.ndarray:
        """Node ids of the shortest path from key node ``key`` to any ``node``."""
        ck = (key, node, prefer)
        got = self._path_cache.get(ck)
        if got is not None:
            return got
        pred = self._pred[prefer][self._key_pos[key]]
        if node != key and pred[node] < 0:
            raise SimError(f"node {node} unreachable from {key}", "site")
        out = [node]
        while out[-1] != key:
            out.append(int(pred[out[-1]]))
        got = np.array(out[::-1])
        if len(self._path_cache) < 200_000:
            self._path_cache[ck] = got
        return got

    def nodes_in_zone(self, zi: int) -> np.ndarray:
        return np.flatnonzero(self.node_zone == zi)
