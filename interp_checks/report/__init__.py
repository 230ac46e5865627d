"""Reports for people: versioned JSON, Markdown and HTML. Works on result records only (no checks, no models)."""

from interp_checks.report.html import render_html
from interp_checks.report.mine_markdown import MINE_SCHEMA, render_mine_markdown
from interp_checks.report.schema import SCHEMA, claim_record
from interp_checks.report.writers import build_report, render_markdown, render_reports, write_reports

__all__ = ["MINE_SCHEMA", "SCHEMA", "build_report", "claim_record", "render_html", "render_markdown", "render_mine_markdown", "render_reports", "write_reports"]
