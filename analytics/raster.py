"""Zone and connector lookups as rasters: O(1) per point instead of polygon tests per window.

Built once per site from locate's own ZoneIndex (so overlaps resolve by its precedence) and
Connectors (a floor change is allowed within ``near_m`` of an escalator or lift landing).
``cell_m`` (0.5 m) is far below the positioning error, so the rasterisation costs nothing in
accuracy.
"""
from __future__ import annotations

import numpy as np


class FloorRaster:
    def __init__(self, bounds: list[tuple[float, float, float, float]], cell_m: float = 0.5) -> None:
        self.cell = cell_m
        self.bounds = bounds
        self.shape = [(int(np.ceil((b[2] - b[0]) / cell_m)), int(np.ceil((b[3] - b[1]) / cell_m)))
                      for b in bounds]

    def centres(self, f: int) -> np.ndarray:
        b, (nx, ny) = self.bounds[f], self.shape[f]
        gx = b[0] + (np.arange(nx) + 0.5) * self.cell
        gy = b[1] + (np.arange(ny) + 0.5) * self.cell
        return np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)

    def cells(self, xy: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ix, iy, inside) per point; inside False for NaN, off-raster or floor < 0."""
        n = len(xy)
        ix = np.zeros(n, np.int64)
        iy = np.zeros(n, np.int64)
        ok = np.isfinite(xy).all(axis=1) & (floor >= 0)
        for f in np.unique(floor[ok]).tolist():
            m = ok & (floor == f)
            b, (nx, ny) = self.bounds[f], self.shape[f]
            cx = np.floor((xy[m, 0] - b[0]) / self.cell).astype(np.int64)
            cy = np.floor((xy[m, 1] - b[1]) / self.cell).astype(np.int64)
            inside = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
            idx = np.flatnonzero(m)
            ok[idx[~inside]] = False
            ix[idx] = np.clip(cx, 0, nx - 1)
            iy[idx] = np.clip(cy, 0, ny - 1)
        return ix, iy, ok


class ZoneRaster(FloorRaster):
    def __init__(self, zindex, bounds, cell_m: float = 0.5) -> None:
        super().__init__(bounds, cell_m)
        self.grids = []
        for f in range(len(bounds)):
            c = self.centres(f)
            self.grids.append(zindex.assign(c, np.full(len(c), f)).reshape(self.shape[f]))

    def assign(self, xy: np.ndarray, floor: np.ndarray) -> np.ndarray:
        ix, iy, ok = self.cells(xy, floor)
        out = np.full(len(xy), -1, np.int64)
        for f in np.unique(floor[ok]).tolist():
            m = ok & (floor == f)
            out[m] = self.grids[f][ix[m], iy[m]]
        return out


class ConnectorRaster(FloorRaster):
    """Per floor and cell: bitmask of floors a change may lead to from there."""

    def __init__(self, connectors, n_floors: int, bounds, cell_m: float = 1.0) -> None:
        super().__init__(bounds, cell_m)
        self.n_floors = n_floors
        self.grids = []
        for f in range(len(bounds)):
            c = self.centres(f)
            a = connectors.allowed(c, n_floors)[:, f, :]           # (cells, F)
            bits = (a.astype(np.int64) << np.arange(n_floors)).sum(axis=1)
            self.grids.append(bits.reshape(self.shape[f]))

    def allowed(self, xy: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """(N, F, F) bool: change f -> g allowed for a device at xy (on its floor ``floor``)."""
        n, nf = len(xy), self.n_floors
        out = np.zeros((n, nf, nf), bool)
        for f in range(nf):
            ix, iy, ok = self.cells(xy, np.full(n, f))
            bits = np.zeros(n, np.int64)
            bits[ok] = self.grids[f][ix[ok], iy[ok]]
            out[:, f, :] = (bits[:, None] >> np.arange(nf)) & 1 == 1
        return out
