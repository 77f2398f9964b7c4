"""dashboards/schema.py names exactly what analytics.metrics and the coverage planner write."""
from __future__ import annotations

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
