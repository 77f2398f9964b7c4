"""dashboards/schema.py names exactly what analytics.metrics and the coverage planner write."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboards import schema
from gateway.site import load_site, sample_site_path
from tests.dashboards import afternoon

SITE = load_site(sample_site_path())
POINTS = afternoon.simulate(SITE, end=1_795_000_000, hours=1.5, n_shoppers=200).points


@pytest.mark.parametrize("m", schema.ALL, ids=[m.name for m in schema.ALL])
def test_measurement_is_written_with_the_declared_tags_and_fields(m):
    mine = [p for p in POINTS if p.measurement == m.name]
    assert mine, f"{m.name} is not written by analytics.metrics / gateway.plan"
    tags = set().union(*(p.tags for p in mine))
    fields = set().union(*(p.fields for p in mine))
    assert set(m.tags) == tags, f"{m.name}: tags written {sorted(tags)}, schema {sorted(m.tags)}"
    assert set(m.fields) <= fields, f"{m.name}: schema fields {sorted(set(m.fields) - fields)} not written"


METRICS_MD = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _documented() -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (tags, fields) as backticked names in docs/metrics.md's table."""
    out = {}
    for line in METRICS_MD.read_text().splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) == 4 and re.fullmatch(r"`\w+`", cols[0]):
            out[cols[0].strip("`")] = (set(re.findall(r"`(\w+)`", cols[2])),
                                       set(re.findall(r"`(\w+)`", cols[3])))
    return out


@pytest.mark.parametrize("m", [m for m in schema.ALL if m is not schema.COVERAGE],
                         ids=[m.name for m in schema.ALL if m is not schema.COVERAGE])
def test_schema_matches_docs_metrics_md(m):
    doc = _documented()
    assert m.name in doc, f"{m.name} is not in docs/metrics.md"
    tags, fields = doc[m.name]
    assert set(m.tags) <= tags and set(m.fields) <= fields, (m.name, tags, fields)
