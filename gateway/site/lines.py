"""Best-effort line numbers for key paths: tomllib reports none for valid TOML.

The text is scanned for table headers (``[site]``, ``[radio.ble]``) and array-of-tables
headers (``[[zones]]``, counted, so the 13th ``[[zones]]`` is ``zones[12]``); a key inside a
table is found by its ``key =`` line. Items written as inline tables are found by their
``id = "..."`` when the caller knows the id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.\-\s\"]+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\s\"]+?)\s*\]")

PathPart = str | int


def key_path(path: tuple[PathPart, ...]) -> str:
    """("zones", 12, "polygon") -> "zones[12].polygon"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass
class _Section:
    name: str
    index: int | None
    start: int  # 0-based line index of the header
    end: int  # exclusive


def _norm(name: str) -> str:
    return ".".join(p.strip().strip('"') for p in name.split("."))


class LineIndex:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.sections: list[_Section] = []
        counts: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            m = _ARRAY_HEADER.match(line)
            if m:
                name = _norm(m.group(1))
                self.sections.append(_Section(name, counts.get(name, 0), i, len(self.lines)))
                counts[name] = counts.get(name, 0) + 1
                continue
            m = _TABLE_HEADER.match(line)
            if m:
                self.sections.append(_Section(_norm(m.group(1)), None, i, len(self.lines)))
        for a, b in zip(self.sections, self.sections[1:]):
            a.end = b.start
        self._top_end = self.sections[0].start if self.sections else len(self.lines)

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        pat = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        for i in range(start, end):
            if pat.match(self.lines[i]):
                return i + 1
        return None

    def _find_id(self, item_id: str) -> int | None:
        pat = re.compile(rf"\bid\s*=\s*[\"']{re.escape(item_id)}[\"']")
        for i, line in enumerate(self.lines):
            if pat.search(line):
                return i + 1
        return None

    def line(self, path: tuple[PathPart, ...], item_id: str | None = None) -> int | None:
        """1-based line for a key path, or None when it cannot be found."""
        if not path:
            return None
        section = None
        rest: tuple[PathPart, ...] = ()
        if len(path) >= 2 and isinstance(path[1], int):
            for s in self.sections:
                if s.name == path[0] and s.index == path[1]:
                    section, rest = s, path[2:]
                    break
        else:
            names = [p for p in path if isinstance(p, str)]
            for n in range(len(names), 0, -1):
                name = ".".join(names[:n])
                for s in self.sections:
                    if s.name == name and s.index is None:
                        section, rest = s, tuple(path[n:])
                        break
                if section is not None:
                    break
        if section is not None:
            if rest and isinstance(rest[0], str):
                found = self._find_key(rest[0], section.start + 1, section.end)
                if found is not None:
                    return found
            return section.start + 1
        if item_id is not None:
            found = self._find_id(item_id)
            if found is not None:
                return found
        if isinstance(path[0], str):
            found = self._find_key(path[0], 0, self._top_end)
            if found is not None:
                return found
            for s in self.sections:
                if s.name == path[0] or s.name.startswith(path[0] + "."):
                    return s.start + 1
        return None
