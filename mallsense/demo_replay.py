"""Accelerated replay: one edge agent per gateway, all fed in lock-step simulated time.

Each gateway's agent (``edge.agent.Agent``, its own MQTT client and credentials) replays its own
pcaps as fast as possible. A conductor advances simulated time in steps once every feed has
delivered its frames up to the current step, so no gateway runs ahead of the others (ingest
closes windows on a watermark, and a gateway minutes ahead would make the others' data late).
The agents are spread over a few spawned worker processes (``replay_worker``), each with a
local conductor that waits at every step for the parent's word (``conduct_workers``); the
parent publishes the tills' POS transactions on the ``pos`` topic as simulated time passes
them, holds back while ingest lags too far behind, and cuts the replay when the time budget is
spent.

The feed merges a gateway's BLE and Wi-Fi pcaps by timestamp with edge's own reader
(``edge.pcap.read_capture``) and hands the frames to ``FrameFeedScanner``, so the conductor can
pace it. (``PcapReplayScanner`` replayed its files one after the other until edge d4ae1cc, which
dropped a gateway's Wi-Fi frames as late; it merges them now too.)
"""
from __future__ import annotations

import asyncio
import dataclasses
import heapq
import logging
import signal
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from edge.agent import Agent
from edge.config import ReplayConfig, parse_config
from edge.pcap import read_capture
from edge.scanners.frames import FrameFeedScanner
from gateway.wire import PosTransaction, SightingsBatch, Topic

log = logging.getLogger(__name__)


class Conductor:
    """Simulated time for the feeds: frames with t < ``self.t`` may be delivered."""

    def __init__(self, t0: float, step_s: float, names) -> None:
        self.t, self.step_s = t0, step_s
        self.active = set(names)
        self.pending = set(names)
        self._go = asyncio.Event()
        self._all_waiting = asyncio.Event()
        self.stopped = False

    def _check(self) -> None:
        if not self.pending:
            self._all_waiting.set()

    async def wait_past(self, name: str, t: float) -> None:
        while t >= self.t and not self.stopped:
            self.pending.discard(name)
            self._check()
            await self._go.wait()

    def finished(self, name: str) -> None:
        self.active.discard(name)
        self.pending.discard(name)
        self._check()

    async def run(self, before_step: Callable) -> None:
        while self.active and not self.stopped:
            await self._all_waiting.wait()
            await before_step(self.t)
            self.t += self.step_s
            self.pending = set(self.active)
            self._all_waiting = asyncio.Event()
            old, self._go = self._go, asyncio.Event()
            old.set()
            self._check()

    def stop(self) -> None:
        self.stopped = True
        self._go.set()
        self._all_waiting.set()


async def merged_frames(gw: str, paths: list[Path], conductor: Conductor):
    """(t, gw, linktype, bytes) of a gateway's pcaps in timestamp order, paced by the conductor."""
    try:
        for rec in heapq.merge(*(read_capture(p) for p in paths), key=lambda r: r.t):
            if rec.t >= conductor.t:
                await conductor.wait_past(gw, rec.t)
                if conductor.stopped:
                    return
            yield rec.t, gw, rec.linktype, rec.data
    finally:
        conductor.finished(gw)


class Observer:
    """A read-only MQTT client on '#': counts sighting batches per gateway, keeps the sightings
    of the devices under evaluation, and optionally writes every message to a capture file."""

    def __init__(self, host: str, port: int, cred, site_id: str, keep_ids: set[str],
                 capture: Path | None = None) -> None:
        self.site_id = site_id
        self.keep_ids = keep_ids
        self.batches: set[tuple[str, int]] = set()
        self.kept: list = []          # (t, gw, ids, kind, rssi) of evaluated devices
        self.max_t = float("-inf")
        self.messages = 0
        self._lock = threading.Lock()
        self._capture = open(capture, "ab") if capture else None  # noqa: SIM115 - closed in close()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mallsense-demo-observer",
                                  protocol=mqtt.MQTTv5)
        if cred.username:
            self.client.username_pw_set(cred.username, cred.password)
        self.client.on_message = self._message
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self._connected = threading.Event()
        self.client.on_subscribe = lambda *_: self._connected.set()
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._connected.wait(15):
            raise RuntimeError("observer could not subscribe to the broker")

    def _message(self, client, userdata, msg) -> None:
        self.messages += 1
        if self._capture is not None:
            self._capture.write(msg.topic.encode() + b"\t" + msg.payload + b"\n")
        if not msg.topic.endswith("/sightings"):
            return
        try:
            b = SightingsBatch.decode_arrays(msg.payload)
        except Exception:  # noqa: BLE001 - ingest dead-letters it; not ours to judge
            return
        with self._lock:
            self.batches.add((b.gw, b.seq))
            self.max_t = max(self.max_t, b.t)
            if self.keep_ids:
                rows = [i for i, pid in enumerate(b.id) if pid in self.keep_ids]
                if rows:
                    self.kept.append((b.t, b.gw, [b.id[i] for i in rows], b.kind[rows],
                                      b.rssi[rows]))

    @property
    def n_batches(self) -> int:
        with self._lock:
            return len(self.batches)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        if self._capture is not None:
            self._capture.close()


class PosTill:
    """The mall's tills: POS transactions on the pos topic (QoS 1), as simulated time passes."""

    def __init__(self, host: str, port: int, cred, site_id: str, txns: list[PosTransaction]):
        self.topic = str(Topic.pos(site_id))
        self.txns = sorted(txns, key=lambda x: x.t)
        self.i = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mallsense-demo-pos",
                                  protocol=mqtt.MQTTv5)
        if cred.username:
            self.client.username_pw_set(cred.username, cred.password)
        self.client.connect(host, port)
        self.client.loop_start()
        self.infos = []

    def publish_until(self, t: float) -> None:
        while self.i < len(self.txns) and self.txns[self.i].t < t:
            self.infos.append(self.client.publish(self.topic, self.txns[self.i].encode(), qos=1))
            self.i += 1

    def close(self, until: float = float("inf")) -> None:
        self.publish_until(until)
        deadline = time.monotonic() + 10
        for info in self.infos:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.1))
        self.client.loop_stop()
        self.client.disconnect()


def make_agents(site, plan, captures: dict, host: str, port: int, state_dir: Path,
                member_uuid: str, conductor: Conductor, beacons=()) -> list[Agent]:
    """An agent for each gateway with captures (a worker is handed only its own gateways')."""
    agents = []
    for g in site.gateways:
        paths = [p for (gid, _r), p in sorted(captures.items()) if gid == g.id]
        if not paths:
            conductor.finished(g.id)
            continue
        cred = plan.gateways[g.id]
        # The gateway's provisioned edge config (gateway.provision), with the demo's changes:
        # radios off (frames come from the pcaps), spool on tmpfs, the beacons registered.
        data = tomllib.loads(plan.configs[g.id].read_text())
        data["gateway"].update(state_dir=str(state_dir), status_interval_s=10.0, grace_s=1.0,
                               drain_timeout_s=60.0)
        data["mqtt"].update(host=host, port=port, client_id=f"edge-{g.id}", tls=False)
        if cred.username:
            data["mqtt"].update(username=cred.username, password=cred.password)
        else:
            data["mqtt"].pop("username", None)
            data["mqtt"].pop("password", None)
        # The mall's own reference beacons are registered: ingest never counts them.
        data["privacy"].update(secret_file=str(plan.site_secret), member_uuid=member_uuid,
                               beacons=list(beacons))
        data["ble"] = {"enabled": False}
        data["wifi"] = {"enabled": False}
        data["replay"] = {"files": [str(p) for p in paths]}
        cfg = parse_config(data, str(plan.configs[g.id]))
        # The frames come through the merged feed below, not through replay.files.
        cfg = dataclasses.replace(cfg, replay=ReplayConfig())

        def factory(gw, sink, decoder, _paths=paths):
            return FrameFeedScanner(gw, sink, merged_frames(gw, _paths, conductor), decoder)

        agents.append(Agent(cfg, extra_scanners=(factory,)))
    return agents


# -- several processes of agents, one conductor ------------------------------------------------
# Fifty agents in one process spend much of their time handing the GIL between their publisher
# threads; split over processes they use the machine's other core. Each worker paces its own
# agents with a local Conductor whose step waits for the parent's word, so simulated time still
# advances in lock-step across all gateways.

@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    site_path: Path              # (a loaded Site does not pickle; each worker loads its own)
    plan: object
    captures: dict
    host: str
    port: int
    state_dir: Path
    member_uuid: str
    beacons: tuple
    gateways: tuple[str, ...]
    t0: float
    step_s: float
    log_path: Path | None = None


def replay_worker(conn, spec: WorkerSpec) -> None:
    """A spawned process: run ``spec.gateways``' agents; report ready/idle/done over ``conn``."""
    if spec.log_path is not None:
        handler = logging.FileHandler(spec.log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides; it stops us by message
    asyncio.run(_worker(conn, spec))


async def _worker(conn, spec: WorkerSpec) -> None:
    loop = asyncio.get_running_loop()
    conductor = Conductor(spec.t0, spec.step_s, spec.gateways)
    from gateway.site import load_site

    agents = make_agents(load_site(spec.site_path), spec.plan, spec.captures, spec.host, spec.port,
                         spec.state_dir, spec.member_uuid, conductor, spec.beacons)

    async def before_step(t: float) -> None:
        conn.send(("ready", t))
        if await loop.run_in_executor(None, conn.recv) == "stop":
            conductor.stop()

    async def conduct() -> None:
        try:
            await conductor.run(before_step)
        finally:
            conn.send(("idle",))      # no more steps from us: the parent stops waiting for us

    def stop_all() -> None:
        conductor.stop()
        for a in agents:
            a.request_stop()

    async def on_sigterm() -> None:
        # Each Agent.run registers SIGTERM for itself, and a loop keeps one handler per
        # signal: once they have, this one stops them all (the parent's terminate()).
        await asyncio.sleep(0.2)
        loop.add_signal_handler(signal.SIGTERM, stop_all)

    runs = [asyncio.create_task(a.run(), name=f"agent-{a.cfg.gw}") for a in agents]
    pacing = asyncio.create_task(conduct())
    handler = asyncio.create_task(on_sigterm())
    try:
        codes = await asyncio.gather(*runs)
    finally:
        stop_all()
        handler.cancel()
        await asyncio.gather(pacing, handler, return_exceptions=True)
    conn.send(("done", {a.cfg.gw: c for a, c in zip(agents, codes)},
               sum(a.decoder.stats.parse_errors for a in agents),
               sum(a.aggregator.stats.late_dropped for a in agents)))


def conduct_workers(conns: list, before_step: Callable[[float], bool],
                    alive: Callable[[], bool]) -> tuple[float | None, dict, int, int]:
    """The parent's side: once every pacing worker is ready at t, ``before_step(t)`` (True: cut
    the replay here) and the word to go on or stop. Returns (cut, codes, parse errors, late)."""
    from multiprocessing.connection import wait

    pacing, ready = set(conns), {}
    waiting_done = set(conns)
    cut, codes, errors, late = None, {}, 0, 0
    while waiting_done:
        for c in wait(list(waiting_done - set(ready)), timeout=1.0):
            msg = c.recv()
            if msg[0] == "ready":
                ready[c] = msg[1]
            elif msg[0] == "idle":
                pacing.discard(c)
                ready.pop(c, None)
            else:
                waiting_done.discard(c)
                pacing.discard(c)
                codes.update(msg[1])
                errors += msg[2]
                late += msg[3]
        if not alive():
            raise RuntimeError("an edge replay worker died (see logs/demo.log)")
        if pacing and set(ready) >= pacing:
            t = max(ready.values())
            stop = cut is None and before_step(t)
            if stop:
                cut = t
            for c in ready:
                c.send("stop" if stop else "go")
            ready.clear()
    return cut, codes, errors, late
