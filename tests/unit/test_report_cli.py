"""``interp-checks report DIR``: re-render report.md and report.html from a saved report.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_checks.cli import main as cli_main
from interp_checks.report import render_html, render_markdown
from tests.helpers.report_records import synthetic_report


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(synthetic_report()), encoding="utf-8")
    return folder


def test_report_dir_rerenders_markdown_and_html_beside_the_json(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["report", str(saved)]) == 0
    report = json.loads((saved / "report.json").read_text(encoding="utf-8"))
    assert (saved / "report.md").read_text(encoding="utf-8") == render_markdown(report)
    assert (saved / "report.html").read_text(encoding="utf-8") == render_html(report)
    out = capsys.readouterr().out
    assert str(saved / "report.md") in out and str(saved / "report.html") in out


def test_report_accepts_the_json_path_too(saved: Path) -> None:
    assert cli_main(["report", str(saved / "report.json")]) == 0
    assert (saved / "report.html").is_file() and (saved / "report.md").is_file()


@pytest.mark.parametrize(("name", "marker"), [("one.html", "<!DOCTYPE html>"), ("one.md", "# interp_checks report")])
def test_out_writes_one_file_chosen_by_its_suffix(saved: Path, tmp_path: Path, name: str, marker: str) -> None:
    assert cli_main(["report", str(saved), "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / name).read_text(encoding="utf-8").startswith(marker)
    assert not (saved / "report.html").exists() and not (saved / "report.md").exists()


def test_a_folder_without_a_report_says_what_to_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "no report.json" in err and "--interp-report" in err


def test_a_json_that_is_not_a_report_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}', encoding="utf-8")
    assert cli_main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "neither a report.json" in err
