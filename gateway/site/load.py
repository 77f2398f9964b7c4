"""Load a site TOML into a `Site`, or refuse it with every problem listed."""
from __future__ import annotations

import logging
import os
import re
import tomllib
from importlib import resources
from pathlib import Path

from gateway.site.errors import Problem, SiteError
from gateway.site.lines import LineIndex
from gateway.site.model import Site
from gateway.site.schema import (
    Reporter, read_floors, read_gateways, read_radio, read_schema_version, read_site_table,
    read_zones,
)
from gateway.site.validate import validate

log = logging.getLogger(__name__)

_AT_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)")
TOP_LEVEL_KEYS = ("schema", "site", "radio", "floors", "zones", "gateways")


def sample_site_path() -> Path:
    """Path of the packaged sample mall, gateway/sites/sample_mall.toml."""
    return Path(str(resources.files("gateway.sites").joinpath("sample_mall.toml")))


def parse_site(text: str, file: str = "<site>") -> Site:
    """Parse and validate site TOML text. Raises SiteError listing every problem found;
    `file` is only used to name the source in problems."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib only gained exc.lineno in Python 3.14; before that the line is in the text.
        m = _AT_LINE.search(str(exc))
        line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
        why = _AT_LINE.sub("", str(exc)).strip()
        raise SiteError([Problem(file, line, "<toml>", f"not valid TOML: {why}")]) from None
    rep = Reporter(file, LineIndex(text))
    read_schema_version(raw.get("schema"), rep)
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            rep.add((key,), f"unknown top-level key (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    head = read_site_table(raw.get("site"), rep)
    radio = read_radio(raw.get("radio"), rep)
    floors = read_floors(raw.get("floors"), rep)
    zones = read_zones(raw.get("zones"), rep)
    gateways = read_gateways(raw.get("gateways"), rep)
    validate(rep, floors, zones, gateways)
    if rep.problems or head is None:
        problems = sorted(rep.problems, key=lambda p: (p.line is None, p.line or 0))
        raise SiteError(problems)
    site = Site(id=head[0], name=head[1], timezone=head[2],
                floors=tuple(f for _, f in floors), zones=tuple(z for _, z in zones),
                gateways=tuple(g for _, g in gateways), radio=radio)
    log.debug("site %s: %d floors, %d zones, %d gateways", site.id, len(site.floors),
              len(site.zones), len(site.gateways))
    return site


def load_site(path: str | os.PathLike[str]) -> Site:
    """Read and validate a site TOML file. Raises SiteError (also for an unreadable file)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteError([Problem(str(p), None, "<file>", f"cannot read: {exc}")]) from None
    return parse_site(text, file=str(p))
