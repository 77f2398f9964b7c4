"""`mallsense demo`: the whole system end to end on a simulated afternoon of the sample mall.

simulate (frames: pcaps per gateway + truth) -> one edge agent per gateway (own broker user,
ACL-pinned to its topic) -> mosquitto -> ingest process (CRM members, POS on the pos topic) ->
InfluxDB -> summary, heatmaps, a tenant report, Grafana dashboards. Servers are started on free
loopback ports (or the --mqtt / --influx given) and everything started is stopped on the way
out, also on Ctrl-C or an error.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

DB = "mallsense"
# Truth files safe to leave in the output (addresses.csv / beacons.csv hold raw addresses).
SAFE_TRUTH = ("visits.csv", "journeys.csv", "purchases.csv", "roles.csv", "gateways.csv")


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    mqtt: str | None = None
    influx: str | None = None
    seed: int = 7
    start: str = "2026-11-21T13:00:00+01:00"   # a Saturday afternoon, Europe/Berlin
    duration: str = "2h"
    shoppers_per_hour: float = 150.0
    level: str = "frames"
    step_s: float = 2.0              # conductor step (simulated seconds)
    eval_devices: int = 60           # shoppers' phones sampled for position/floor accuracy
    revoke_members: int = 3          # members revoking consent half way through
    progress: bool = True
    capture_mqtt: Path | None = None  # write every MQTT message seen on '#' here
    sim_dir: Path | None = None      # keep the pcaps and the full truth here (raw addresses!)
    budget_s: float | None = None    # cut the replay so that the whole demo ends in this time
    edge_processes: int = 3          # edge agents spread over processes (3 measured best on 2 cores)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole system on a simulated afternoon (results in --out)",
        description="Simulate an afternoon of the sample mall at radio level, replay it through "
                    "one edge agent per gateway, a secured MQTT broker and the ingest service "
                    "into InfluxDB; print a summary and leave heatmaps, a tenant report and "
                    "Grafana dashboards in --out.")
    d = DemoOptions(Path("out/demo"))
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--mqtt", default=None, help="use this broker (mqtt://user:pass@host:port) "
                   "instead of starting a secured mosquitto")
    p.add_argument("--influx", default=None, help="use this InfluxDB 1.x (http://host:8086, "
                   f"database {DB}) instead of starting one")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--start", default=d.start, help="ISO 8601 start of the afternoon")
    p.add_argument("--duration", default=d.duration, help="e.g. 30m, 2h")
    p.add_argument("--shoppers-per-hour", type=float, default=d.shoppers_per_hour)
    p.add_argument("--level", choices=("frames", "windows"), default=d.level,
                   help="frames: edge agents replay pcaps (default); windows: the simulator's "
                        "window batches published per gateway (faster, no edge agents)")
    p.add_argument("--eval-devices", type=int, default=d.eval_devices,
                   help="shopper phones sampled for the accuracy figures")
    p.add_argument("--budget-minutes", type=float, default=9.5,
                   help="wall-time budget: the frames replay is cut short (and the summary "
                        "says so) when ingest could not finish the afternoon in time; 0 = none")
    p.add_argument("--edge-processes", type=_positive_int, default=d.edge_processes,
                   help="spread the edge agents over this many processes (one per core)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd)


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {n}")
    return n


def _cmd(args) -> int:
    opts = DemoOptions(Path(args.out), args.mqtt, args.influx, args.seed, args.start,
                       args.duration, args.shoppers_per_hour, args.level,
                       eval_devices=args.eval_devices, progress=not args.no_progress,
                       budget_s=args.budget_minutes * 60 if args.budget_minutes > 0 else None,
                       edge_processes=args.edge_processes)
    code, summary = run_demo(opts)
    if summary is not None:
        print(summary["text"], end="")
        print(f"results in {opts.out}/ (summary.txt, heatmaps/, report/, grafana/, README.md)")
    return code


@contextlib.contextmanager
def _file_logging(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(path, mode="w")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old = root.level
    for h in root.handlers:  # the console keeps its own level (warnings by default)
        if h.level == logging.NOTSET:
            h.setLevel(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM unwinds like Ctrl-C, so every server, worker and ingest started is stopped."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:        # not the main thread (tests): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_demo(opts: DemoOptions) -> tuple[int, dict | None]:
    """Run the demo; returns (exit code, summary dict or None)."""
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("heatmaps", "report", "grafana", "truth", "logs"):
        shutil.rmtree(out / stale, ignore_errors=True)
    with _file_logging(out / "logs" / "demo.log"), _sigterm_interrupts():
        try:
            summary = _run(opts, out)
        except KeyboardInterrupt:
            log.warning("interrupted; everything started was stopped")
            print("mallsense demo: interrupted", file=sys.stderr)
            return 130, None
        except Exception as exc:
            log.exception("demo failed")
            print(f"mallsense demo: failed: {exc} (see {out}/logs/demo.log)", file=sys.stderr)
            return 1, None
    return 0, summary


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _run(opts: DemoOptions, out: Path) -> dict:
    from firmware_sim import SimConfig, simulate
    from gateway.site import load_site, sample_site_path
    from mallsense import demo_broker as br
    from mallsense.demo_eval import Truth, sample_devices
    from mallsense.demo_inputs import pos_transactions, write_crm
    from mallsense.servers import InfluxDB1, Mosquitto, MosquittoSecurity

    wall0 = time.monotonic()
    notes: list[str] = []
    site = load_site(sample_site_path())
    cfg = SimConfig(seed=opts.seed, start=opts.start, duration_s=opts.duration,
                    level="frames" if opts.level == "frames" else "windows",
                    shoppers_per_hour=opts.shoppers_per_hour)
    with contextlib.ExitStack() as stack:
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mallsense-demo-")))
        # Spools on tmpfs: they fsync every batch, which is what a gateway needs, not a replay.
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mallsense-demo-",
                                                                     dir=shm)))
        # 1. the simulated afternoon (pcaps and truth stay in the temporary folder: raw addresses)
        log.info("simulating %s .. %s", _iso(cfg.start), _iso(cfg.end))
        t = time.monotonic()
        res = simulate(site, cfg, opts.sim_dir or tmp / "sim", progress=opts.progress)
        sim_s = time.monotonic() - t
        log.info("simulation: %d agents, %d frames in %.1f s", res.world.crowd.n, res.packets,
                 sim_s)
        truth = Truth.load(res.truth_dir, cfg.start, cfg.end)
        (out / "truth").mkdir(parents=True, exist_ok=True)
        for name in SAFE_TRUTH:
            shutil.copy(res.truth_dir / name, out / "truth" / name)
        # 2. broker (secured) and InfluxDB
        if opts.mqtt:
            plan = br.open_plan(site, tmp / "provision", opts.mqtt)
            mqtt_url = opts.mqtt
        else:
            broker = Mosquitto()  # its own data folder: the broker's user must enter it
            plan = br.provision_site(site, tmp / "provision",
                                     f"mqtt://127.0.0.1:{broker.port}")
            broker.security = MosquittoSecurity(password_file=str(plan.password_file),
                                                acl_file=str(plan.acl_file),
                                                allow_anonymous=False)
            stack.callback(broker.close)
            broker.start()
            mqtt_url = broker.url
            notes.append("broker: mosquitto with per-gateway users and ACLs "
                         "(gateway.provision), allow_anonymous false")
        host, port, _tls = br.split_url(mqtt_url)
        if opts.influx:
            influx_url = opts.influx.rstrip("/")
        else:
            influx = InfluxDB1()
            stack.callback(influx.close)
            influx.start()
            influx_url = influx.url
        from mallsense.demo_summary import influxql
        influxql(influx_url, DB, f'CREATE DATABASE "{DB}"')
        secret = plan.site_secret.read_bytes().strip()
        # 3. CRM, tokens, POS
        crm_csv, tokens_csv, revoked = write_crm(truth, out / "crm" / "members.csv",
                                                  tmp / "tokens.csv", opts)
        txns = pos_transactions(site.id, res.truth_dir / "purchases.csv", truth, revoked)
        # 4. ingest in its own process
        ingest_log = open(out / "logs" / "ingest.log", "wb")  # noqa: SIM115 - closed by the ExitStack
        stack.callback(ingest_log.close)
        proc = subprocess.Popen(
            [sys.executable, "-m", "mallsense.demo_ingest", "--site", str(sample_site_path()),
             "--mqtt", br.url_with(mqtt_url, plan.services["ingest"]), "--influx", influx_url,
             "--db", DB, "--spool", str(state / "ingest-spool.db"), "--members", str(crm_csv),
             "--tokens", str(tokens_csv), "--revoke", ",".join(revoked),
             "--revoke-at", str(cfg.start + min(cfg.duration_s / 2, 1200.0)),
             "--ready-file", str(tmp / "ingest.ready")],
            stdout=ingest_log, stderr=subprocess.STDOUT, start_new_session=True)
        stack.callback(_stop_process, proc, 5.0)
        deadline = time.monotonic() + 120
        while not (tmp / "ingest.ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ingest did not subscribe (see logs/ingest.log)")
            time.sleep(0.1)
        # 5. observer (accuracy sample + optional capture), then the gateways
        devices = sample_devices(truth, opts.eval_devices, opts.seed)
        pseudo_dev = truth.pseudonyms(secret, 86400.0, devices)
        from mallsense.demo_replay import Observer
        obs = Observer(host, port, plan.services["observer"], site.id, set(pseudo_dev),
                       opts.capture_mqtt)
        stack.callback(obs.close)
        counter = _IngestCounter(influx_url)
        t = time.monotonic()
        if opts.level == "frames":
            budget = _budget(wall0, opts.budget_s, counter, obs)
            stats = _replay_frames(site, res, plan, host, port, state, obs, counter, txns, opts,
                                   cfg, budget, out / "logs" / "demo.log")
            if stats.get("cut_at"):
                cut = stats["cut_at"]
                cfg = dataclasses.replace(cfg, duration_s=float(int(cut - cfg.start)))
                truth.end = cfg.end
                notes.append(f"time budget ({opts.budget_s / 60:.1f} min): the frames replay was "
                             f"cut at {_iso(cfg.end)}, {cfg.duration_s / 60:.0f} of "
                             f"{(res.config.duration_s) / 60:.0f} simulated minutes; figures and "
                             f"truth cover the replayed part")
        else:
            from mallsense.demo_windows import publish_windows
            stats = publish_windows(site, res, plan, host, port, secret, obs, counter, txns,
                                    opts, cfg)
            notes.append("windows level: the simulator's window batches were published by one "
                         "MQTT client per gateway (no edge agents)")
        replay_s = time.monotonic() - t
        # 6. let ingest finish what the broker holds, then stop it (it flushes everything)
        _wait_for_ingest(proc, counter, obs.n_batches, opts.progress)
        _stop_process(proc, 300.0)
        if proc.returncode not in (0, -15):
            raise RuntimeError(f"ingest ended with {proc.returncode} (logs/ingest.log)")
        ingest_s = time.monotonic() - t
        obs.close()
        # 7. results
        from mallsense.demo_results import results
        summary = results(site, cfg, opts, out, truth, influx_url, DB, obs, pseudo_dev, notes,
                          {"gateways": len(site.gateways), "frames": int(res.packets),
                           "batches": obs.n_batches, "sim_s": round(sim_s, 1),
                           "replay_s": round(replay_s, 1), "ingest_s": round(ingest_s, 1),
                           **stats}, wall0, mqtt_url, plan)
    return summary


class _IngestCounter:
    """Sighting batches ingest has processed so far (its own counters, read from InfluxDB)."""

    def __init__(self, url: str) -> None:
        self.url, self._t, self._n = url, 0.0, 0

    def get(self, max_age_s: float = 0.5) -> int:
        from mallsense.demo_summary import influxql

        if time.monotonic() - self._t >= max_age_s:
            try:
                ser = influxql(self.url, DB, 'SELECT last("batches") FROM "ingest"')
                self._n = int(ser[0]["values"][0][1]) if ser else 0
            except (OSError, RuntimeError) as exc:
                log.debug("ingest counter: %s", exc)
            self._t = time.monotonic()
        return self._n


def _wait_for_ingest(proc, counter, total: int, progress: bool, timeout_s: float = 3600) -> None:
    """Until ingest has processed every sighting batch the broker carried."""
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit="batch", desc="ingest (catching up)")
    deadline = time.monotonic() + timeout_s
    try:
        while (done := counter.get(0.0)) < total:
            if proc.poll() is not None:
                raise RuntimeError(f"ingest exited with {proc.returncode} (logs/ingest.log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingest still behind after {timeout_s:.0f} s ({done}/{total})")
            if bar is not None:
                bar.n = done
                bar.refresh()
            time.sleep(1.0)
    finally:
        if bar is not None:
            bar.close()


def _stop_process(proc: subprocess.Popen, timeout_s: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _budget(wall0: float, budget_s: float | None, counter, obs, reserve_s: float = 75.0):
    """should_stop(t): True once the demo would overrun its budget if the replay went on (time
    so far + ingest's backlog at its measured rate + the results stage)."""
    if budget_s is None:
        return None
    t_rep = time.monotonic()

    def should_stop(_t: float) -> bool:
        now = time.monotonic()
        if now - t_rep < 20.0:
            return False
        done = counter.get()
        rate = max(done / (now - t_rep), 1.0)
        backlog = max(obs.n_batches - done, 0)
        return (now - wall0) + backlog / rate + reserve_s > budget_s

    return should_stop


def _replay_frames(site, res, plan, host, port, state, obs, counter, txns, opts, cfg,
                   budget=None, log_path: Path | None = None) -> dict:
    import multiprocessing

    from gateway.site import sample_site_path
    from mallsense.demo_replay import (
        PosTill,
        WorkerSpec,
        conduct_workers,
        replay_worker,
    )

    gateways = [g.id for g in site.gateways if any(gid == g.id for gid, _r in res.captures)]
    n_proc = max(1, min(opts.edge_processes, len(gateways)))
    groups = [tuple(gateways[i::n_proc]) for i in range(n_proc)]
    till = PosTill(host, port, plan.services["pos"], site.id, txns)
    bar = None
    if opts.progress:
        from tqdm import tqdm
        bar = tqdm(total=int(cfg.duration_s), unit="sim s", desc="replay+ingest")

    def before_step(t: float) -> bool:
        till.publish_until(t)
        if bar is not None:
            bar.n = int(min(t, cfg.end) - cfg.start)
            bar.set_postfix_str(f"batches published {obs.n_batches}, ingested {counter.get()}")
            bar.refresh()
        # Hold back while ingest is too far behind (the broker would queue it all in memory).
        while obs.n_batches - counter.get() > 50 * 600:
            time.sleep(0.5)
        if budget is not None and budget(t):
            log.warning("time budget: replay cut at %.0f s of simulated time", t - cfg.start)
            return True
        return False

    ctx = multiprocessing.get_context("spawn")   # no fork of a process with MQTT threads
    procs, conns = [], []
    cut = None
    try:
        for i, group in enumerate(groups):
            parent, child = ctx.Pipe()
            captures = {k: v for k, v in res.captures.items() if k[0] in group}
            spec = WorkerSpec(sample_site_path(), plan, captures, host, port, state,
                              res.member_uuid, tuple(res.beacon_ids), group, cfg.start,
                              opts.step_s, log_path)
            p = ctx.Process(target=replay_worker, args=(child, spec), name=f"edge-replay-{i}")
            p.start()
            child.close()
            procs.append(p)
            conns.append(parent)
        cut, codes, parse_errors, late = conduct_workers(
            conns, before_step, lambda: all(p.is_alive() or p.exitcode == 0 for p in procs))
    except BaseException:
        for c in conns:           # a worker waiting for the word gets EOF, not a hang
            c.close()
        for p in procs:
            p.terminate()         # its agents stop as on SIGTERM: flush and say offline
        for p in procs:
            p.join(10)
            if p.is_alive():      # caught before its handlers were in place: the run is over
                p.kill()
        raise
    finally:
        if bar is not None:
            bar.close()
        for p in procs:
            p.join(120)
            if p.is_alive():
                p.terminate()
                p.join(10)
        till.close(until=cut or cfg.end)
    bad = sorted(gw for gw, c in codes.items() if c != 0) + sorted(set(gateways) - set(codes))
    if bad:
        raise RuntimeError(f"edge agents failed: {bad}")
    return {"cut_at": cut, "edge_agents": len(codes), "edge_processes": n_proc,
            "pos_transactions": len(txns), "edge_parse_errors": parse_errors,
            "edge_late_dropped": late}


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    return str(o)


def write_summary(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    (out / "summary.txt").write_text(summary["text"])


__all__ = ["DemoOptions", "asdict", "register", "run_demo", "write_summary"]
