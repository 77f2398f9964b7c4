"""Tenant reports: one store's visits, dwell, conversion and members, k-anonymous.

>>> from analytics.report import make_report, InfluxQL
"""
from analytics.report.query import InfluxQL, ReportError
from analytics.report.report import ReportFiles, make_report

__all__ = ["InfluxQL", "ReportError", "ReportFiles", "make_report"]
