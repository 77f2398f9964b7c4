"""Hostile and malformed MQTT inputs for ingest: hand-crafted cases plus a seeded generator.

Every item is (topic, payload bytes). ``expected(topic, payload)`` is the wire contract's own
verdict (gateway.wire decoders): the WireError reason a consumer must dead-letter, or None when
the input is valid. The generator's seed is printed by the tests so a failure can be replayed
(``hostile(seed=N)``).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from gateway.wire import SightingsBatch, Topic, WireError, decode_any

SITE = "sample-mall"
FUZZ_GW = "fuzz-gw"      # valid hostile batches use their own gateway: no seq collides with real ones
GOLDEN = Path(__file__).resolve().parents[1] / "wire" / "golden"

TOPIC_SIGHT = str(Topic.sightings(SITE, FUZZ_GW))
TOPIC_STATUS = str(Topic.status(SITE, FUZZ_GW))
TOPIC_POS = str(Topic.pos(SITE))


def base_batch() -> dict:
    return {"v": 1, "site": SITE, "gw": FUZZ_GW, "seq": 1, "t": 1700038800.0, "window_s": 1.0,
            "s": [{"id": "abc", "k": "ble", "rssi": -70.0, "n": 3},
                  {"id": "def", "k": "wifi", "rssi": -80.5, "n": 1, "rnd": True, "fp": "fp1"}]}


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()


def expected(topic: str, payload: bytes) -> str | None:
    """The reason the contract rejects this input with, or None if it is valid."""
    try:
        tp = Topic.parse(topic)
        if tp.kind == "sightings":
            rec = SightingsBatch.decode_arrays(payload)
            if rec.site != tp.site or rec.gw != tp.gw:
                return "topic_mismatch"
        else:
            decode_any(tp, payload)
    except WireError as exc:
        return exc.reason
    return None


HOSTILE_VALUES = [
    None, True, False, 0, -1, 1, 2**53, 2**53 + 1, 2**63, -(2**63), 10**400 // 10**100, 1e308,
    -1e308, 1e-320, 0.1, -0.0, float("nan"), float("inf"), float("-inf"), "", " ", "x" * 70,
    "x" * 5000, "\ufeffabc", "\u202eabc", "a\u200bb", "\ud800", "é", "ble", "wifi", "ＢＬＥ",
    "../../etc", "a/b", "+", "#", "$SYS", "\x00", "\n", [], [1], [[[]]], {}, {"a": 1},
    {"v": 1}, "NaN", "Infinity", "-70", "1e3",
]
FIELDS = ["v", "site", "gw", "seq", "t", "window_s", "s"]
SFIELDS = ["id", "k", "rssi", "n", "tx", "rnd", "fp", "beacon", "member"]


def hand_crafted() -> list[tuple[str, bytes]]:
    b = base_batch()
    out: list[tuple[str, bytes]] = []
    raw = [b"", b" ", b"null", b"[]", b"1", b'"s"', b"{", b"}", b"{}", b"\xff\xfe", b"\x00" * 64,
           b"\xef\xbb\xbf" + dumps(b), dumps(b)[:-1], dumps(b) + b"garbage",
           dumps(b).replace(b"-70.0", b"NaN"), dumps(b).replace(b"-70.0", b"Infinity"),
           dumps(b).replace(b"-70.0", b"-1e400"), dumps(b).replace(b'"seq":1', b'"seq":' + b"9" * 5000),
           dumps(b).replace(b'"abc"', b'"\\ud800"'), dumps(b).replace(b'"abc"', b'"\\u0000"'),
           "{\"v\":1,\"site\":\"sample\u2011mall\"}".encode(),
           b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
           b" " * (1024 * 1024 + 1), b"{" + b'"k":1,' * 300_000 + b'"v":1}',
           dumps({**b, "s": [b["s"][0]] * 5001}),
           dumps({**b, "s": [{"id": "x" * 65, "k": "ble", "rssi": -70, "n": 1}]}),
           dumps({**b, "v": "1"}), dumps({**b, "v": 2}), dumps({**b, "v": 1.0}), dumps({**b, "v": True}),
           dumps({**b, "seq": -1}), dumps({**b, "seq": 1.5}), dumps({**b, "seq": 2**53}),
           dumps({**b, "t": -5}), dumps({**b, "t": 5e9}), dumps({**b, "window_s": 0}),
           dumps({**b, "window_s": 61}), dumps({**b, "s": {}}), dumps({**b, "s": None}),
           dumps({**b, "gw": "other-gw"}), dumps({**b, "site": "other-site"}),
           dumps({**b, "gw": "fuzz\u202egw"}), dumps({**b, "gw": "fuzz\u200bgw"}),
           dumps({k: v for k, v in b.items() if k != "seq"}),
           dumps({**b, "s": [{**b["s"][0], "rssi": 5}]}), dumps({**b, "s": [{**b["s"][0], "rssi": -121}]}),
           dumps({**b, "s": [{**b["s"][0], "k": "zigbee"}]}), dumps({**b, "s": [{**b["s"][0], "n": 0}]}),
           dumps({**b, "s": [{**b["s"][0], "n": True}]}), dumps({**b, "s": [{**b["s"][0], "tx": 128}]}),
           dumps({**b, "s": [{**b["s"][0], "id": "a b"}]}), dumps({**b, "s": [1, 2, 3]}),
           "{\"v\":1,\"site\":\"sample-mall\",\"gw\":\"fuzz-gw\",\"seq\":1,\"t\":1,\"window_s\":1,\"s\":[{\"id\":\"\u0430bc\",\"k\":\"ble\",\"rssi\":-70,\"n\":1}]}".encode(),
           ]
    out += [(TOPIC_SIGHT, r) for r in raw]
    # Topic tricks: mismatches, wrong versions, not ours at all.
    good = dumps(b)
    for topic in [str(Topic.sightings(SITE, "gw-other")), f"mallsense/v2/{SITE}/gw/{FUZZ_GW}/sightings",
                  f"mallsense/v1/{SITE}/gw/{FUZZ_GW}/sightings/extra", f"mallsense/v1/{SITE}/gw//sightings",
                  f"mallsense/v1/{SITE}/gw/fuzz\u202egw/sightings", "mallsense/v1", "", "/", "#",
                  f"mallsense/v1/{SITE}/gw/{'x' * 65}/sightings", "x" * 70_000,
                  f"mallsense/v1/{SITE}/events/entry", f"mallsense/v1/{SITE}/events/bogus",
                  f"mallsense/v1/{SITE}/deadletter", TOPIC_STATUS, TOPIC_POS]:
        out.append((topic, good))
    for name in ("status_online.json", "pos.json", "event_entry.json"):
        data = (GOLDEN / name).read_bytes()
        out += [(TOPIC_SIGHT, data), (TOPIC_STATUS, data[:-3]), (TOPIC_POS, data.replace(b'"v":1', b'"v":7'))]
    return out


def hostile(n: int, seed: int) -> list[tuple[str, bytes]]:
    """n generated inputs: field and sighting mutations, byte mutations, random bytes."""
    rng = random.Random(seed)
    golden = [(TOPIC_SIGHT, dumps(base_batch())),
              (TOPIC_STATUS, (GOLDEN / "status_online.json").read_bytes().replace(b"gw-01", FUZZ_GW.encode())),
              (TOPIC_POS, (GOLDEN / "pos.json").read_bytes())]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.45:          # one top-level field set to a hostile value, or deleted
            b = base_batch()
            f = rng.choice(FIELDS)
            if rng.random() < 0.15:
                b.pop(f)
            else:
                b[f] = rng.choice(HOSTILE_VALUES)
            out.append((TOPIC_SIGHT, dumps(b)))
        elif r < 0.75:        # one sighting field
            b = base_batch()
            s = b["s"][rng.randrange(2)]
            f = rng.choice(SFIELDS)
            if rng.random() < 0.15:
                s.pop(f, None)
            else:
                s[f] = rng.choice(HOSTILE_VALUES)
            out.append((TOPIC_SIGHT, dumps(b)))
        elif r < 0.92:        # byte-level mutation of a golden payload
            topic, data = rng.choice(golden)
            d = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(3)
                i = rng.randrange(len(d))
                if op == 0:
                    d[i] = rng.randrange(256)
                elif op == 1:
                    del d[i]
                else:
                    d[i:i] = bytes([rng.randrange(256)])
            out.append((topic, bytes(d)))
        else:                 # random bytes
            out.append((rng.choice(golden)[0], rng.randbytes(rng.randint(0, 300))))
    return out
