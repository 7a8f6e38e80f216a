"""CSV export: round trips through a fresh database, segments, spreadsheet safety, and `--out`."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from newsletter.audience.exporter import COLUMNS
from newsletter.audience.service import Audience
from test_audience_support import (
    error_lines,
    import_text,
    member,
    run_cli,
    second_database_url,
    segment_emails,
    write_csv,
)

TRICKY = """\
email,name,organisation,place,status,team,topics,lists,format,language
formula@example.org,"=HYPERLINK(""http://x"")",+44 20,-cmd,,=1+2,housing,newsletter,text,cy
at@example.org,@SUM(A1),Org,Place,pending,,,,,
=eq@example.org,Eq,Org,,unsubscribed,,,,,
uni@example.org,Siân O'Neill,Cwmni Cymraeg,Ynys Môn,bounced,blue,climate;housing,newsletter;events,,
"""


def export_text(audience: Audience, segment: str | None = None) -> str:
    out = io.StringIO()
    audience.export_csv(out, segment)
    return out.getvalue()


def rows_of(text: str) -> dict[str, dict[str, str]]:
    return {row["email"]: row for row in csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))}


@pytest.fixture
def populated(audience, repo_root, tmp_path) -> Audience:
    audience.import_csv(repo_root / "subscribers" / "sample.csv", report_path=tmp_path / "report.csv")
    import_text(audience, tmp_path, TRICKY, "tricky.csv")
    audience.unsubscribe("uni@example.org", list_slug="events")
    audience.unsubscribe("kate.mensah@solihull.ac.example")
    audience.erase("fatima.adeyemi@nottinghamhomes.co.example")
    return audience


def test_export_has_status_lists_topics_and_everyone_whatever_their_status(populated):
    text = export_text(populated)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert {"status", "lists", "topics", "joined", "attributes"} <= set(COLUMNS)
    rows = rows_of(text)
    assert len(rows) == 400 - 1 + 4  # the erased member is gone
    assert "fatima.adeyemi@nottinghamhomes.co.example" not in rows
    uni = rows["uni@example.org"]
    assert (uni["status"], uni["lists"], uni["topics"]) == ("bounced", "newsletter", "climate;housing")
    assert (uni["name"], uni["place"], uni["attributes"]) == ("Siân O'Neill", "Ynys Môn", '{"team": "blue"}')
    assert rows["kate.mensah@solihull.ac.example"]["status"] == "unsubscribed"
    kate = rows["kate.mensah@solihull.ac.example"]
    assert (kate["lists"], kate["topics"]) == ("network;newsletter", "evidence-data;international")
    assert kate["joined"] == "2023-12-17 00:00:00"
    assert rows["'=eq@example.org"]["status"] == "unsubscribed"
    assert rows["at@example.org"]["status"] == "pending"


def test_formula_like_cells_are_neutralised(populated):
    rows = rows_of(export_text(populated))
    formula = rows["formula@example.org"]
    assert formula["name"] == '\'=HYPERLINK("http://x")'
    assert formula["organisation"] == "'+44 20"
    assert formula["place"] == "'-cmd"
    assert (formula["format"], formula["language"]) == ("text", "cy")
    assert formula["attributes"] == '{"team": "=1+2"}'
    assert rows["at@example.org"]["name"] == "'@SUM(A1)"
    assert "'=eq@example.org" in rows  # even an address can start with '='
    for row in rows.values():
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_round_trip_through_a_fresh_database_gives_the_same_export(
    populated, audience_settings, request, database_url, tmp_path
):
    first = export_text(populated)
    path = tmp_path / "export.csv"
    path.write_text(first, encoding="utf-8", newline="")
    second = Audience.open(
        dataclasses.replace(
            audience_settings, database_url=second_database_url(request, database_url, tmp_path)
        )
    )
    try:
        second.upgrade()
        summary = second.import_csv(path)
        assert (summary.added, summary.rejected, summary.skipped, summary.report) == (403, 0, 0, None)
        assert export_text(second) == first
        # the apostrophes the export added are gone again: the original values are back
        formula = member(second, "formula@example.org")
        restored = (formula.name, formula.organisation, formula.place)
        assert restored == ('=HYPERLINK("http://x")', "+44 20", "-cmd")
        assert formula.attributes == {"team": "=1+2"}
        assert member(second, "at@example.org").name == "@SUM(A1)"
        assert member(second, "=eq@example.org").email == "=eq@example.org"
        # and nobody who could not be mailed before can be mailed now
        assert segment_emails(second, "everyone") == segment_emails(populated, "everyone")
    finally:
        second.close()


def test_export_command_segment_option_exports_only_the_segment(populated, audience_settings, tmp_path):
    out = tmp_path / "housing.csv"
    result = run_cli(audience_settings, "subscribers", "export", "--segment", "housing", "--out", str(out))
    assert result.exit_code == 0
    expected = segment_emails(populated, "housing")
    assert f"Wrote {len(expected)} members to {out}" in result.stderr
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
    rows = rows_of(data.decode("utf-8"))
    assert set(rows) == expected
    assert all("housing" in row["topics"].split(";") for row in rows.values())
    assert "uni@example.org" not in rows  # bounced, though interested in housing
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("housing")) == [
        "housing.csv"
    ]


def test_export_command_writes_everyone_to_standard_output(populated, audience_settings):
    result = run_cli(audience_settings, "subscribers", "export")
    assert result.exit_code == 0
    assert result.stdout.replace("\r\n", "\n") == export_text(populated).replace("\r\n", "\n")


def test_export_command_with_an_unknown_segment_leaves_no_file(populated, audience_settings, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("the previous export\n", encoding="utf-8")
    result = run_cli(audience_settings, "subscribers", "export", "--segment", "housng", "--out", str(out))
    assert result.exit_code == 1
    [error] = error_lines(result)
    assert "no segment 'housng' (did you mean 'housing'?)" in error
    assert out.read_text(encoding="utf-8") == "the previous export\n"  # the old file is untouched
    fresh = tmp_path / "fresh.csv"
    assert (
        run_cli(
            audience_settings, "subscribers", "export", "--segment", "nope", "--out", str(fresh)
        ).exit_code
        == 1
    )
    assert not fresh.exists()


def test_a_failed_export_leaves_nothing_behind(populated, audience_settings, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    result = run_cli(
        audience_settings, "subscribers", "export", "--segment", "nope", "--out", str(folder / "x.csv")
    )
    assert result.exit_code == 1
    assert list(folder.iterdir()) == []


def test_exported_file_imports_into_the_same_database_unchanged(populated, tmp_path):
    path = write_csv(tmp_path / "again.csv", export_text(populated))
    summary = populated.import_csv(path)
    assert (summary.added, summary.updated, summary.unchanged, summary.rejected) == (0, 0, 403, 0)
