"""The site model: floors, zones and gateways of one mall, loaded from TOML and validated.

Schema: docs/site-model.md. Names: docs/INTERFACES.md.
"""
from __future__ import annotations

from gateway.site.errors import Problem, SiteError
from gateway.site.load import load_site, parse_site, sample_site_path
from gateway.site.model import (
    RADIO_KINDS, VERTICAL_KINDS, ZONE_KINDS, Floor, Gateway, RadioDefaults, Site, Zone,
)

__all__ = [
    "Floor", "Gateway", "Problem", "RADIO_KINDS", "RadioDefaults", "Site", "SiteError",
    "VERTICAL_KINDS", "ZONE_KINDS", "Zone", "load_site", "parse_site", "sample_site_path",
]
