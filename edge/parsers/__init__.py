"""Pure parsers: bytes in, a record or None ("not mine") out. No I/O, no bleak/scapy/paho."""
