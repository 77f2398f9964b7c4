"""`mallsense sim`: run the simulated mall, write pcaps or window summaries plus ground truth."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from firmware_sim.config import SimConfig, parse_duration
from firmware_sim.errors import SimError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim", help="simulate a mall at radio level (pcaps or window summaries + truth)",
        description="Simulate shoppers, staff, fixed devices and gateways. frames: per-gateway "
                    "pcaps in OUT/captures; windows: OUT/windows.npy (firmware_sim.WINDOW_DTYPE);"
                    " both: ground truth CSVs in OUT/truth.")
    p.add_argument("--site", help="site TOML (default: the packaged sample mall)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", default="2026-11-21T10:00:00+01:00",
                   help="ISO 8601 start (naive = UTC)")
    p.add_argument("--duration", default="1h", help="e.g. 90s, 15m, 2h")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--level", choices=("frames", "windows"), default="frames")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--shoppers-per-hour", type=float)
    scale.add_argument("--visitors-per-day", type=float)
    scale.add_argument("--concurrent", type=float, help="shoppers inside at once")
    p.add_argument("--member-share", type=float, default=0.25)
    p.add_argument("--positions-every", type=int, default=1, metavar="S",
                   help="truth positions.csv every S seconds (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sim)


def cmd_sim(args: argparse.Namespace) -> int:
    from firmware_sim.sim import default_site, simulate

    try:
        if args.site:
            from gateway.site import load_site

            site = load_site(args.site)
        else:
            site = default_site()
        cfg = SimConfig(seed=args.seed, start=args.start, duration_s=parse_duration(args.duration),
                        level=args.level, shoppers_per_hour=args.shoppers_per_hour,
                        visitors_per_day=args.visitors_per_day, concurrent=args.concurrent,
                        member_share=args.member_share,
                        positions_every_s=args.positions_every)
    except SimError as exc:
        print(f"mallsense sim: {exc}", file=sys.stderr)
        return 2
    t = time.perf_counter()
    res = simulate(site, cfg, args.out, progress=not args.no_progress)
    if cfg.level == "windows":
        rows = _write_windows(res, res.out_dir / "windows.npy", not args.no_progress)
        what = f"{rows} window rows in {res.out_dir / 'windows.npy'}"
    else:
        what = f"{res.packets} frames in {len(res.captures)} pcaps under {args.out}/captures"
    print(f"simulated {cfg.duration_s:.0f} s, {res.world.crowd.n} agents: {what}; truth in "
          f"{res.truth_dir} ({time.perf_counter() - t:.1f} s)")
    return 0


def _write_windows(res, path, progress: bool) -> int:
    """Stream the window summaries into a .npy file without holding a day in memory."""
    from firmware_sim.windows import WINDOW_DTYPE

    raw = path.with_suffix(".part")
    rows = 0
    with open(raw, "wb") as f:
        for part in res.iter_windows(progress=progress):
            f.write(part.tobytes())
            rows += len(part)
    with open(path, "wb") as out, open(raw, "rb") as f:
        np.lib.format.write_array_header_1_0(out, {
            "descr": np.lib.format.dtype_to_descr(WINDOW_DTYPE), "fortran_order": False,
            "shape": (rows,)})
        while True:
            block = f.read(1 << 24)
            if not block:
                break
            out.write(block)
    raw.unlink()
    return rows
