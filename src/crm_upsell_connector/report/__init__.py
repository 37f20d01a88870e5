"""``crm-upsell report``: one self-contained HTML file (``data`` gathers from the store, ``html`` draws)."""

from __future__ import annotations

from crm_upsell_connector.report.data import ReportData, gather_report
from crm_upsell_connector.report.html import render_report, write_report

__all__ = ["ReportData", "gather_report", "render_report", "write_report"]
