"""Reports for people: versioned JSON and Markdown. Works on result dicts only (no checks, no models)."""

from interp_checks.report.schema import SCHEMA, claim_record
from interp_checks.report.writers import build_report, render_markdown, write_reports

__all__ = ["SCHEMA", "build_report", "claim_record", "render_markdown", "write_reports"]
