"""`mallsense demo --level windows`: the simulator's window batches (``SimResult.batches``, the
same pseudonyms an edge agent makes) published by one MQTT client per gateway, each with its own
credentials. Faster than the frames level; no edge agent runs."""
from __future__ import annotations

import logging
import time

import paho.mqtt.client as mqtt

from gateway.wire import Topic

log = logging.getLogger(__name__)


def publish_windows(site, res, plan, host, port, secret: bytes, obs, counter, txns, opts,
                    cfg, max_backlog: int = 30000) -> dict:
    from mallsense.demo_replay import PosTill

    clients: dict[str, mqtt.Client] = {}
    infos = []
    till = PosTill(host, port, plan.services["pos"], site.id, txns)
    bar = None
    try:
        for g in site.gateways:
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{g.id}",
                            protocol=mqtt.MQTTv5)
            cred = plan.gateways[g.id]
            if cred.username:
                c.username_pw_set(cred.username, cred.password)
            c.max_queued_messages_set(0)
            c.connect(host, port)
            c.loop_start()
            clients[g.id] = c
        if opts.progress:
            from tqdm import tqdm
            bar = tqdm(total=int(cfg.duration_s), unit="sim s", desc="publish+ingest")
        sent = 0
        last_t = cfg.start
        for t, batch in res.batches(secret):
            till.publish_until(t)
            info = clients[batch.gw].publish(str(Topic.sightings(site.id, batch.gw)),
                                             batch.encode(), qos=1)
            infos.append(info)
            sent += 1
            if t - last_t >= 5:
                last_t = t
                if bar is not None:
                    bar.n = int(min(t, cfg.end) - cfg.start)
                    bar.refresh()
                while sent - counter.get() > max_backlog:
                    time.sleep(0.5)
        deadline = time.monotonic() + 120
        for info in infos:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.1))
    finally:
        if bar is not None:
            bar.close()
        till.close()
        for c in clients.values():
            c.loop_stop()
            c.disconnect()
    # The observer counts what reached the broker; give it a moment to see the last ones.
    deadline = time.monotonic() + 30
    while obs.n_batches < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    return {"publishers": len(clients), "pos_transactions": len(txns), "published": sent}
