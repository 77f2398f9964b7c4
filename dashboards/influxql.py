"""InfluxQL targets and template variables for grafana-foundation-sdk.

The SDK ships no InfluxDB query type, so this module adds one the way the SDK's own query types
are made (a ``Dataquery`` model with ``to_json`` and a ``Builder``). The JSON is what Grafana's
InfluxDB data source saves for a raw InfluxQL query: ``query``, ``rawQuery: true``,
``resultFormat`` and an optional ``alias``. InfluxDB 1.x, 2.x (DBRP mapping) and 3.x all answer
InfluxQL, so one dashboard serves every supported back end.
"""
from __future__ import annotations

import typing

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dash_m

DATASOURCE_UID = "mallsense-influxql"
DATASOURCE_TYPE = "influxdb"
DATASOURCE = dash_m.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

ResultFormat = typing.Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel."""

    def __init__(self, ref_id: str = "A", query: str = "", result_format: ResultFormat = "time_series",
                 alias: str | None = None, hide: bool = False) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        if self.hide:
            out["hide"] = True
        return out


class Query(cogbuilder.Builder[InfluxQLQuery]):
    """Builder: ``Query("SELECT ...").ref_id("B").table().alias("$tag_zone")``."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=" ".join(query.split()))

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def table(self) -> typing.Self:
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> typing.Self:
        self._internal.alias = alias
        return self


# --- WHERE clauses shared by the dashboards ------------------------------------------------------
# Grafana substitutes $site etc. and $timeFilter ("time >= ...ms and time <= ...ms").
SITE_IS = "\"site\" = '$site'"
FLOOR_IN = '"floor" =~ /^$floor$/'
STORE_IS = "\"store\" = '$store'"


def where(*clauses: str, time: bool = True) -> str:
    parts = list(clauses) + (["$timeFilter"] if time else [])
    return "WHERE " + " AND ".join(parts)


# --- template variables --------------------------------------------------------------------------
def tag_variable(name: str, label: str, measurement: str, key: str, *, where_clause: str = "",
                 multi: bool = False, include_all: bool = False) -> dash_b.QueryVariable:
    """A variable filled by ``SHOW TAG VALUES``; it refreshes when the time range changes."""
    q = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{key}"'
    if where_clause:
        q += f" WHERE {where_clause}"
    v = (dash_b.QueryVariable(name).label(label).query(q).datasource(DATASOURCE)
         .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
         .sort(dash_m.VariableSort.ALPHABETICAL_ASC).multi(multi).include_all(include_all))
    if include_all:
        v = v.all_value(".*")
    return v
