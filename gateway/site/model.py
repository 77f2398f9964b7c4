"""The typed, immutable site model: what a site TOML becomes once it has been validated.

Nothing here reads files or checks input; see `gateway.site.load` for that. Every container is a
tuple and every record a frozen dataclass, so a loaded Site can be shared between threads and
used as a dict key component without copies.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

Point = tuple[float, float]
Polygon = tuple[Point, ...]

ZONE_KINDS: tuple[str, ...] = (
    "store", "corridor", "entrance", "escalator", "lift", "outside", "service", "atrium",
)
# Kinds that change floor; they carry `connects` and a `shaft` id shared by their landings.
VERTICAL_KINDS: tuple[str, ...] = ("escalator", "lift")
# Kinds that do not count as the mall's walkable floor area: the atrium is a void, outside is
# the street or metro concourse in front of the doors.
NOT_WALKABLE_KINDS: tuple[str, ...] = ("atrium", "outside")
RADIO_KINDS: tuple[str, ...] = ("ble", "wifi")


def polygon_area(polygon: Polygon) -> float:
    """Unsigned area in m^2 (shoelace formula); the polygon is implicitly closed."""
    if len(polygon) < 3:
        return 0.0
    xy = np.asarray(polygon, dtype=float)
    x, y = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_centroid(polygon: Polygon) -> Point:
    """Area centroid (x, y) in metres; the vertex mean for a degenerate polygon."""
    xy = np.asarray(polygon, dtype=float)
    x, y = xy[:, 0], xy[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    a = cross.sum() / 2.0
    if abs(a) < 1e-12:
        return float(x.mean()), float(y.mean())
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6.0 * a)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6.0 * a)
    return float(cx), float(cy)


@dataclass(frozen=True)
class RadioDefaults:
    """Log-distance path-loss defaults for one radio kind.

    p0_dbm: RSSI at 1 m (dBm); exponent: path-loss exponent n (dimensionless); sigma_db:
    shadowing standard deviation (dB); floor_atten_db: loss per floor slab crossed (dB);
    sensitivity_dbm: weakest RSSI a gateway still reports (dBm).
    """

    p0_dbm: float
    exponent: float
    sigma_db: float
    floor_atten_db: float
    sensitivity_dbm: float


@dataclass(frozen=True)
class Floor:
    """One storey. level: 0 = street level, negative below; elevation_m: height of the floor
    slab top above street level (m); height_m: floor-to-floor height (m); outline: the floor's
    boundary polygon (m), implicitly closed."""

    id: str
    name: str
    level: int
    elevation_m: float
    height_m: float
    outline: Polygon

    @property
    def area_m2(self) -> float:
        return polygon_area(self.outline)


@dataclass(frozen=True)
class Zone:
    """An area on one floor. polygon in metres, implicitly closed.

    tenant/category: for stores (None when vacant or not a store). popularity: relative
    attractiveness weight (>= 0, default 1.0) used by the simulator. connects: for escalators
    and lifts the floor ids the shaft links (>= 2, includes this zone's floor), else ().
    shaft: for escalators and lifts the id shared by the landings of one shaft on each floor.
    """

    id: str
    floor: str
    kind: str
    name: str
    tenant: str | None
    category: str | None
    polygon: Polygon
    connects: tuple[str, ...]
    popularity: float
    shaft: str | None = None

    @property
    def area_m2(self) -> float:
        return polygon_area(self.polygon)

    @property
    def centroid(self) -> Point:
        return polygon_centroid(self.polygon)

    @property
    def walkable(self) -> bool:
        return self.kind not in NOT_WALKABLE_KINDS


@dataclass(frozen=True)
class Gateway:
    """A receiver. x, y in the site frame (m); z height above its own floor (m).

    p0_offset_db is added to the radio's p0_dbm; exponent and sensitivity_dbm override the
    radio defaults when not None (from calibration)."""

    id: str
    floor: str
    x: float
    y: float
    z: float
    radios: tuple[str, ...]
    p0_offset_db: float = 0.0
    exponent: float | None = None
    sensitivity_dbm: float | None = None


@dataclass(frozen=True)
class Site:
    """A validated site. floors sorted by level; zones and gateways in file order."""

    id: str
    name: str
    timezone: str
    floors: tuple[Floor, ...]
    zones: tuple[Zone, ...]
    gateways: tuple[Gateway, ...]
    radio: Mapping[str, RadioDefaults]
    _floor_ix: Mapping[str, Floor] = field(init=False, repr=False, compare=False)
    _zone_ix: Mapping[str, Zone] = field(init=False, repr=False, compare=False)
    _gw_ix: Mapping[str, Gateway] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "floors", tuple(sorted(self.floors, key=lambda f: f.level)))
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "gateways", tuple(self.gateways))
        object.__setattr__(self, "radio", MappingProxyType(dict(self.radio)))
        object.__setattr__(self, "_floor_ix", MappingProxyType({f.id: f for f in self.floors}))
        object.__setattr__(self, "_zone_ix", MappingProxyType({z.id: z for z in self.zones}))
        object.__setattr__(self, "_gw_ix", MappingProxyType({g.id: g for g in self.gateways}))

    def __hash__(self) -> int:
        return hash((self.id, self.floors, self.zones, self.gateways))

    def floor(self, id: str) -> Floor:
        """The floor with this id; KeyError if there is none."""
        return self._floor_ix[id]

    def zone(self, id: str) -> Zone:
        return self._zone_ix[id]

    def gateway(self, id: str) -> Gateway:
        return self._gw_ix[id]

    def zones_on(self, floor_id: str) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.floor == floor_id)

    def gateways_on(self, floor_id: str) -> tuple[Gateway, ...]:
        return tuple(g for g in self.gateways if g.floor == floor_id)

    def shaft(self, shaft_id: str) -> tuple[Zone, ...]:
        """The landings of one escalator/lift shaft, ordered by floor level."""
        landings = [z for z in self.zones if z.shaft == shaft_id]
        return tuple(sorted(landings, key=lambda z: self.floor(z.floor).level))

    def walkable_area_m2(self, floor_id: str) -> float:
        """Sum of the areas of the floor's zones except atrium voids and outside areas."""
        return sum(z.area_m2 for z in self.zones_on(floor_id) if z.walkable)

    def gateway_xyz(self) -> np.ndarray:
        """(K, 3) float array of gateway positions in metres, z absolute (floor elevation plus
        height above the floor), in `self.gateways` order."""
        out = np.empty((len(self.gateways), 3), dtype=float)
        for k, g in enumerate(self.gateways):
            out[k] = (g.x, g.y, self.floor(g.floor).elevation_m + g.z)
        return out
