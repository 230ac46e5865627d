"""Reports for people: versioned JSON and Markdown. Works on result dicts only (no checks, no models)."""

from interp_checks.report.mine_markdown import MINE_SCHEMA, render_mine_markdown
from interp_checks.report.writers import SCHEMA, render_markdown, write_reports, build_report

__all__ = ["MINE_SCHEMA", "SCHEMA", "build_report", "render_markdown", "render_mine_markdown", "write_reports"]
