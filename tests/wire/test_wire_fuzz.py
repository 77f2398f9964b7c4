"""Seeded byte-level fuzzer over the golden payloads.

Each round flips, inserts, deletes or duplicates bytes of a golden payload and feeds the result
to every decoder: only WireError may come out, and anything accepted must re-encode to bytes that
decode to the same record. The seed is printed; replay a failure with
``MALLSENSE_FUZZ_SEED=<seed> pytest tests/wire/test_wire_fuzz.py``.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

from gateway.wire import DeadLetter, Event, PosTransaction, SightingsBatch, Status, WireError

GOLDEN = Path(__file__).parent / "golden"
ROUNDS = 3000
DECODERS = (SightingsBatch.decode, SightingsBatch.decode_arrays, Status.decode, Event.decode,
            PosTransaction.decode, DeadLetter.decode)
INTERESTING = [b"", b"0", b"-", b"1e400", b"true", b"null", b"NaN", b"[", b"]", b"{", b"}",
               b'"', b"\\", b"\\u0000", b"\xff", b"\xc3", b",", b":", b"9" * 30]


def _mutate(rng: random.Random, data: bytearray) -> bytes:
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(i, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[i:i] = rng.choice(INTERESTING)
        elif op == 2 and data:
            del data[i:i + rng.randint(1, 8)]
        else:
            j = rng.randrange(len(data) + 1)
            data[i:i] = data[min(i, j):max(i, j)][:64]
    return bytes(data)


def test_byte_mutations_raise_only_wire_error(capsys):
    seed = int(os.environ.get("MALLSENSE_FUZZ_SEED", random.SystemRandom().randrange(2**32)))
    with capsys.disabled():
        print(f"\nwire fuzz seed {seed}")
    rng = random.Random(seed)
    goldens = [p.read_bytes() for p in sorted(GOLDEN.glob("*.json"))]
    accepted = rejected = 0
    for _ in range(ROUNDS):
        data = _mutate(rng, bytearray(rng.choice(goldens)))
        for decode in DECODERS:
            try:
                record = decode(data)
            except WireError as exc:
                assert exc.reason and exc.detail, (seed, data)
                rejected += 1
                continue
            accepted += 1
            if decode is not SightingsBatch.decode_arrays:
                assert type(record).decode(record.encode()) == record, (seed, data)
    # Both outcomes must actually happen, or the fuzzer is not exploring anything.
    assert accepted > 0 and rejected > 0, (seed, accepted, rejected)
