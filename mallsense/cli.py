"""The one `mallsense` command. Each package registers its own subcommands.

Only modules listed in COMMAND_MODULES appear in `--help`; a package's command is listed here
once it works, so `--help` never advertises something that does not.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mallsense import __version__

# (module, ...) each exposing register(subparsers). Order is the order in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "gateway.site.cli",
    "gateway.cli",
    "dashboards.cli",
    "analytics.cli",
    "analytics.report.cli",
    "gateway.plan_cli",
    "gateway.calibrate_cli",
    "edge.cli",
    "firmware_sim.cli",
    "mallsense.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mallsense",
        description="In-mall customer sensing and footfall analytics.",
    )
    parser.add_argument("--version", action="version", version=f"mallsense {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
