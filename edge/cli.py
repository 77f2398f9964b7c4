"""`mallsense edge --config FILE` (and `python -m edge --config FILE`)."""
from __future__ import annotations

import argparse
import asyncio
import logging

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("edge", help="run the gateway agent (scanners -> MQTT)",
                              description="Run the MallSense gateway agent.")
    _add_arguments(p)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="agent TOML (see deploy/edge.sample.toml)")
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.add_argument("--opt-out-hash", metavar="ADDR",
                   help="print the opt-out list entry of a MAC/BLE address and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge.agent import Agent
    from edge.config import load_config
    from edge.errors import EdgeError
    from edge.privacy import opt_out_hash

    try:
        cfg = load_config(args.config)
        if args.opt_out_hash:
            # The one CLI output that is a result, not a log line.
            import sys
            sys.stdout.write(opt_out_hash(args.opt_out_hash, cfg.read_secret()) + "\n")
            return 0
        if args.check:
            cfg.read_secret()
            log.warning("config %s is valid", args.config)
            return 0
        agent = Agent(cfg)
    except EdgeError as exc:
        log.error("%s", exc)
        return 2
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    return asyncio.run(agent.run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge",
                                     description="Run the MallSense gateway agent.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)
