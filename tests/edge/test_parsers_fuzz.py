"""Seeded fuzzer: mutations and truncations of real frames never make a parser raise.

The seed is printed; replay one with EDGE_FUZZ_SEED=<seed> (and EDGE_FUZZ_N for more cases).
"""
from __future__ import annotations

import json
import os
import random
import time

from edge.parsers.beacons import classify_beacon
from edge.parsers.ble import parse_ad_structures, parse_le_ll_phdr
from edge.parsers.hci import parse_hci_le_adv_report
from edge.parsers.radiotap import parse_radiotap
from edge.parsers.wifi import parse_radiotap_probe
from edge.pcap import read_capture

SEED = int(os.environ.get("EDGE_FUZZ_SEED", time.time_ns() % 2**32))
N = int(os.environ.get("EDGE_FUZZ_N", "3000"))


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    op = rng.randrange(5)
    if op == 0 and b:
        del b[rng.randrange(len(b)):]
    elif op == 1 and b:
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 2 and b:
        i = rng.randrange(len(b))
        b[i] = rng.choice((0, 1, 0x7F, 0x80, 0xFE, 0xFF))
    elif op == 3:
        b[rng.randrange(len(b) + 1):rng.randrange(len(b) + 1)] = rng.randbytes(rng.randrange(8))
    else:
        b = bytearray(rng.randbytes(rng.randrange(64)))
    return bytes(b)


def _corpus(real_data):
    # Seeds, all from the README's real recordings: "probe-fryza-brno/ (MIT) ... position_1",
    # "ble-adv-mitll/5-May_Conference_Room/ (CC BY 4.0) Ubertooth/*.pcapng: linktype 256",
    # "bluetooth_data_tools_gap_vectors.json (Apache-2.0)", "beacontools_hci_event_vectors.json
    # (MIT)".
    probes = [r.data for i, r in enumerate(read_capture(
        real_data / "probe-fryza-brno/position_1/sc6-61_2024-03-16_anonymized.pcap")) if i % 25 == 0]
    ll = [r.data for i, r in enumerate(read_capture(
        real_data / "ble-adv-mitll/5-May_Conference_Room/Ubertooth/ubertooth_capture_0.pcapng"))
        if i % 50 == 0]
    gap = json.loads((real_data / "ble-adv-vectors/bluetooth_data_tools_gap_vectors.json")
                     .read_text())["vectors"]
    ads = []
    for v in gap:
        inp = v["input"] if isinstance(v["input"], list) else [v["input"]]
        ads += [bytes.fromhex(x["hex"]) for x in inp]
    hci = [bytes.fromhex(p["hex"]) for p in json.loads(
        (real_data / "ble-adv-vectors/beacontools_hci_event_vectors.json").read_text())
        ["all_distinct_pkts_in_test_scanner"]]
    return probes, ll, ads, hci


def test_parsers_never_raise(real_data):
    print(f"edge parser fuzz seed: EDGE_FUZZ_SEED={SEED}")
    rng = random.Random(SEED)
    probes, ll, ads, hci = _corpus(real_data)
    assert probes and ll and ads and hci
    outcomes = {"wifi": 0, "ll": 0}
    for _ in range(N):
        f = _mutate(rng, rng.choice(probes))
        parse_radiotap(f)
        if parse_radiotap_probe(f) is not None:
            outcomes["wifi"] += 1
        f = _mutate(rng, rng.choice(ll))
        adv = parse_le_ll_phdr(f)
        if adv is not None:
            outcomes["ll"] += 1
            classify_beacon(parse_ad_structures(adv.adv_data))
        a = _mutate(rng, rng.choice(ads))
        ad = parse_ad_structures(a)
        classify_beacon(ad)
        rep = parse_hci_le_adv_report(_mutate(rng, rng.choice(hci)))
        if rep is not None:
            classify_beacon(parse_ad_structures(rep.data))
    # Mutations that leave the frame valid still parse: the fuzzer reaches the deep code.
    assert outcomes["wifi"] > N // 10, (SEED, outcomes)
    assert outcomes["ll"] > 0, (SEED, outcomes)
