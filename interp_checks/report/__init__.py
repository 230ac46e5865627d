"""Reports for people: versioned JSON and Markdown. Works on result dicts only (no checks, no models)."""

from interp_checks.report.writers import SCHEMA, render_markdown, write_reports, build_report

__all__ = ["SCHEMA", "build_report", "render_markdown", "write_reports"]
