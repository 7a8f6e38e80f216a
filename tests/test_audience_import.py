"""CSV import: messy spreadsheets, exact counts and report, files that cannot be used, and re-imports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.audience.consent import Action, fields, record
from newsletter.audience.importer import BATCH, SNIFF_BYTES
from newsletter.audience.service import Audience
from newsletter.db.models import ConsentRecord, Status
from newsletter.errors import UserError
from newsletter.settings import Settings
from test_audience_support import (
    all_emails,
    consent_actions,
    error_lines,
    import_text,
    member,
    run_cli,
    segment_emails,
    write_csv,
)

LONG = "x" * 10_000

# One file with most of what a spreadsheet throws at us; the comments give each row's line in the file.
MESSY = (
    "email,name,organisation,sector,region,topics,lists,team\n"  # 1: no place or joined column
    "Jo@Example.ORG,Jo Bloggs,Acme,nhs,london,housing,newsletter,red\n"  # 2: added
    "jo@example.org,Jo Again,,,,,,\n"  # 3: the same member in other case: skipped
    "not-an-address,Nobody,,,,,,\n"  # 4: rejected
    "\n"  # 5: blank
    'ann@example.org,"Ann\nSmith",Org,,,,,\n'  # 6-7: a line break inside a quoted name
    "bob@example.org,Bob,,nhss,,,,\n"  # 8: unknown sector
    f"cat@example.org,{LONG},,,,,,\n"  # 9: 10,000 characters
    "dan@example.org,Dan,,,,housign,,\n"  # 10: unknown topic
    "eve@example.org,Eve,,,,,newsleter,\n"  # 11: unknown list
    "fay@example.org,Fay,,,,,,,extra,cells\n"  # 12: too many cells
    "\n"  # 13: blank
    "gus@example.org,Gus,,,,,,\n"  # 14: added, details missing
    "ANN@EXAMPLE.ORG,Ann Dup,,,,,,\n"  # 15: duplicate of line 6
    "hal@example.org,Hal,,,Wales,,,blue\n"  # 16: region by its name
    "ivy@example.org,Ivy,,,Walse,,,\n"  # 17: unknown region
    f"joe@example.org,Joe,,,,,,{LONG}\n"  # 18: an extra column over its limit
)

EXPECTED_REPORT = [
    ("3", "jo@example.org", "skipped: the same address as an earlier row"),
    ("4", "not-an-address", "not an email address: "),
    ("8", "bob@example.org", "unknown sector 'nhss' (did you mean 'nhs'?)"),
    ("9", "cat@example.org", "name is 10000 characters; at most 200"),
    ("10", "dan@example.org", "unknown topic 'housign' (did you mean 'housing'?)"),
    ("11", "eve@example.org", "unknown list 'newsleter' (did you mean 'newsletter'?)"),
    ("12", "fay@example.org", "has 10 values but the header names 8 columns"),
    ("15", "ANN@example.org", "skipped: the same address as an earlier row"),
    ("17", "ivy@example.org", "unknown region 'Walse' (did you mean 'wales'?)"),
    ("18", "joe@example.org", "team is 10000 characters; at most 1000"),
]


def read_report(path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def test_messy_file_counts_and_report(audience, tmp_path):
    summary = import_text(audience, tmp_path, MESSY, "messy.csv")
    counts = (summary.added, summary.updated, summary.unchanged, summary.skipped, summary.rejected)
    assert counts == (4, 0, 0, 2, 8)
    assert str(summary) == "14 rows: 4 added, 0 updated, 0 unchanged, 2 skipped, 8 rejected"
    assert summary.attribute_columns == ["team"]
    assert summary.report == tmp_path / "messy-import-report.csv"
    header, *rows = read_report(summary.report)
    assert header == ["line", "email", "reason"]
    assert len(rows) == len(EXPECTED_REPORT)
    for row, (line, email, reason) in zip(rows, EXPECTED_REPORT, strict=True):
        assert (row[0], row[1]) == (line, email)
        assert row[2].startswith(reason), row
    assert all_emails(audience) == {"Jo@example.org", "ann@example.org", "gus@example.org", "hal@example.org"}


def test_messy_file_details_are_stored_cleanly(audience, tmp_path):
    import_text(audience, tmp_path, MESSY, "messy.csv")
    jo = member(audience, "JO@example.org")
    assert (jo.email, jo.email_key) == ("Jo@example.org", "jo@example.org")  # domain lower-cased
    assert (jo.name, jo.organisation, jo.sector, jo.region) == ("Jo Bloggs", "Acme", "nhs", "london")
    assert jo.attributes == {"team": "red"}
    assert (jo.place, jo.status) == ("", Status.ACTIVE)
    assert member(audience, "ann@example.org").name == "Ann Smith"  # the line break became a space
    assert member(audience, "hal@example.org").region == "wales"
    gus = member(audience, "gus@example.org")
    assert (gus.organisation, gus.sector, gus.region, gus.attributes) == ("", None, None, {})


def test_excel_utf8_with_bom_and_semicolons(audience, tmp_path):
    text = (
        "E-mail;Full Name;Organization;Topics;Lists\r\n"
        "semi@example.org;Siân Colón;Smith, Jones & Co;housing;newsletter\r\n"
        'quoted@example.org;"Quote; Person";Org;"housing;climate";"newsletter;events"\r\n'
    )
    summary = audience.import_csv(write_csv(tmp_path / "excel.csv", text, bom=True))
    assert (summary.added, summary.rejected, summary.attribute_columns, summary.report) == (2, 0, [], None)
    semi = member(audience, "semi@example.org")
    assert (semi.name, semi.organisation) == ("Siân Colón", "Smith, Jones & Co")
    assert member(audience, "quoted@example.org").name == "Quote; Person"
    assert audience.member("quoted@example.org").topics == ["climate", "housing"]
    assert audience.member("quoted@example.org").lists == [("events", True), ("newsletter", True)]


def test_only_an_email_column_is_enough(audience, tmp_path):
    summary = import_text(audience, tmp_path, "email\nsolo@example.org\n\n\n")
    assert (summary.added, summary.rows, summary.report) == (1, 1, None)
    solo = audience.member("solo@example.org")
    assert (solo.lists, solo.topics, solo.subscriber.status) == ([], [], Status.ACTIVE)


def test_no_report_file_when_nothing_is_rejected_or_skipped(audience, tmp_path):
    summary = import_text(audience, tmp_path, "email,name\na@example.org,A\nb@example.org,B\n", "clean.csv")
    assert summary.report is None
    assert not (tmp_path / "clean-import-report.csv").exists()


def test_list_option_adds_everyone_to_the_list(audience, tmp_path):
    text = "email,lists\na@example.org,newsletter\nb@example.org,\n"
    summary = import_text(audience, tmp_path, text, lists=("events",))
    assert summary.added == 2
    assert audience.member("a@example.org").lists == [("events", True), ("newsletter", True)]
    assert audience.member("b@example.org").lists == [("events", True)]


def test_unknown_list_option_is_refused_before_anything_is_written(audience, audience_settings, tmp_path):
    path = write_csv(tmp_path / "people.csv", "email\na@example.org\nnot-an-address\n")
    with pytest.raises(UserError, match=r"--list evnets: unknown list 'evnets' \(did you mean 'events'\?\)"):
        audience.import_csv(path, lists=("evnets",))
    result = run_cli(audience_settings, "subscribers", "import", str(path), "--list", "evnets")
    assert result.exit_code == 1
    assert "did you mean 'events'?" in error_lines(result)[0]
    assert all_emails(audience) == set()
    assert not (tmp_path / "people-import-report.csv").exists()


def test_source_is_recorded_on_each_members_consent(audience, tmp_path):
    import_text(
        audience, tmp_path, "email\na@example.org\nb@example.org\n", source="conference 2024 sign-up sheet"
    )
    import_text(audience, tmp_path, "email\nc@example.org\n", "walk-in.csv")
    assert consent_actions(audience, "a@example.org") == [("imported", "conference 2024 sign-up sheet")]
    assert consent_actions(audience, "b@example.org") == [("imported", "conference 2024 sign-up sheet")]
    assert consent_actions(audience, "c@example.org") == [("imported", "import:walk-in.csv")]


def test_joined_column_sets_the_join_date_of_new_members_only(audience, tmp_path):
    import_text(audience, tmp_path, "email,joined\nold@example.org,2019-03-04\nnew@example.org,\n")
    assert member(audience, "old@example.org").created_at == dt.datetime(2019, 3, 4)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert abs(member(audience, "new@example.org").created_at - now) < dt.timedelta(minutes=5)
    import_text(audience, tmp_path, "email,joined\nold@example.org,2022-01-01\n", "again.csv")
    assert member(audience, "old@example.org").created_at == dt.datetime(2019, 3, 4)


def test_import_command_prints_the_summary_and_where_the_report_is(audience, audience_settings, tmp_path):
    path = write_csv(tmp_path / "messy.csv", MESSY)
    result = run_cli(audience_settings, "subscribers", "import", str(path), "--source", "cli test")
    assert result.exit_code == 0
    assert "14 rows: 4 added, 0 updated, 0 unchanged, 2 skipped, 8 rejected" in result.stdout
    assert "Extra columns kept as attributes: team" in result.stdout
    assert "messy-import-report.csv" in result.stdout
    assert consent_actions(audience, "gus@example.org") == [("imported", "cli test")]


def test_import_command_report_option_writes_the_report_there(audience, audience_settings, tmp_path):
    path = write_csv(tmp_path / "dups.csv", "email\na@example.org\nA@example.org\n")
    report = tmp_path / "elsewhere" / "report.csv"
    report.parent.mkdir()
    result = run_cli(audience_settings, "subscribers", "import", str(path), "--report", str(report))
    assert result.exit_code == 0
    assert read_report(report) == [
        ["line", "email", "reason"],
        ["3", "A@example.org", "skipped: the same address as an earlier row"],
    ]
    assert not (tmp_path / "dups-import-report.csv").exists()


LONG_COLUMNS = {
    # column: what the reason calls it
    "name": "name is 10000 characters; at most 200",
    "organisation": "organisation is 10000 characters; at most 200",
    "place": "place is 10000 characters; at most 200",
    "sector": "unknown sector 'xxx",
    "region": "unknown region 'xxx",
    "topics": "unknown topic 'xxx",
    "lists": "unknown list 'xxx",
    "format": "format must be html or text",
    "status": "status 'xxx",
    "joined": "joined must be a date",
    "team": "team is 10000 characters; at most 1000",
    "email": "not an email address: The email address is too long",
}


def test_a_10000_character_cell_in_any_column_is_rejected_naming_the_column(audience, tmp_path):
    columns = [column for column in LONG_COLUMNS if column != "email"]
    lines = ["email," + ",".join(columns)]
    for index, column in enumerate(columns):
        cells = [LONG if position == index else "" for position in range(len(columns))]
        lines.append(f"{column}@example.org," + ",".join(cells))
    lines.append("y" * 10_000 + "@example.org" + "," * len(columns))
    summary = import_text(audience, tmp_path, "\n".join(lines) + "\n", "long.csv")
    assert (summary.added, summary.rejected) == (0, len(LONG_COLUMNS))
    reasons = {row[1].partition("@")[0]: row[2] for row in read_report(summary.report)[1:]}
    reasons["email"] = reasons.pop("y" * 320)  # the report keeps the first 320 characters of the cell
    for column, reason in LONG_COLUMNS.items():
        assert reasons[column].startswith(reason), (column, reasons[column][:100])


def test_a_10000_character_language_is_rejected(audience, tmp_path):
    summary = import_text(audience, tmp_path, f"email,language\nlang@example.org,{LONG}\n", "lang.csv")
    assert (summary.added, summary.rejected) == (0, 1)
    assert "language" in read_report(summary.report)[1][2]


def test_awkward_characters_are_stored_exactly(audience, tmp_path):
    text = (
        "email,name,organisation,note\n"
        'odd@example.org,"Back\\slash ""Quoted"" O\'Neill",Ünïcode 😀 Ltd,"line one\nline\ttwo \\N {""json"": 1}"\n'
    )
    summary = import_text(audience, tmp_path, text, source="sheet\\with\ttab")
    assert (summary.added, summary.rejected) == (1, 0)
    odd = member(audience, "odd@example.org")
    assert odd.name == 'Back\\slash "Quoted" O\'Neill'
    assert odd.organisation == "Ünïcode 😀 Ltd"
    assert odd.attributes == {
        "note": 'line one\nline\ttwo \\N {"json": 1}'
    }  # attributes keep their line breaks
    assert consent_actions(audience, "odd@example.org") == [("imported", "sheet\\with\ttab")]


def test_a_joined_time_with_an_offset_is_stored_in_utc(audience, tmp_path):
    import_text(audience, tmp_path, "email,joined\nzone@example.org,2023-01-01T00:30:00+02:00\n")
    assert member(audience, "zone@example.org").created_at == dt.datetime(2022, 12, 31, 22, 30)


# --- files that cannot be imported: one clear message naming the file, nothing written ---


def latin1_on_line_3(path):
    path.write_bytes(b"email,name\na@example.org,Ann\nb@example.org,Jos\xe9\nc@example.org,Cy\n")


def latin1_after_64k(path):
    # two batches: the first is already written to the database when the bad byte is read
    rows = [f"user{i}@example.org,User {i}" for i in range(2 * BATCH)]
    early = "not-an-address,Nobody\nUSER1@example.org,Again\n"  # a rejected and a skipped row: a report begun
    data = ("email,name\n" + early + "\n".join(rows) + "\n").encode()
    assert len(data) > SNIFF_BYTES * 2
    path.write_bytes(data + b"late@example.org,Ren\xe9e\n")


def workbook(path):
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200)


def nul_bytes(path):
    path.write_bytes(b"email,name\na@example.org,A\x00nn\n")


def empty(path):
    path.write_bytes(b"")


def only_blank_lines(path):
    path.write_bytes(b"\n\r\n  \n")


def no_email_column(path):
    path.write_text("Name,Organisation,Phone\nAnn,Acme,0123\n", encoding="utf-8")


def missing(path):
    pass


def a_folder(path):
    path.mkdir()


def duplicate_columns(path):
    path.write_text("email,name,Name\na@example.org,A,B\n", encoding="utf-8")


BAD_FILES = {
    "latin1_on_line_3": (latin1_on_line_3, ":3: is not UTF-8 text"),
    "latin1_after_64k": (latin1_after_64k, "is not UTF-8 text from about here on; nothing was imported"),
    "workbook": (workbook, ": is a spreadsheet workbook, not CSV"),
    "nul_bytes": (nul_bytes, ": is not a text file (it contains NUL bytes)"),
    "empty": (empty, ": is empty"),
    "only_blank_lines": (only_blank_lines, ": is empty"),
    "no_email_column": (no_email_column, ":1: no 'email' column (columns found: Name, Organisation, Phone)"),
    "missing": (missing, ": no such file"),
    "a_folder": (a_folder, ": is a folder, not a CSV file"),
    "duplicate_columns": (duplicate_columns, ":1: the column 'name' appears twice"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_unusable_file_is_refused_with_one_message_and_nothing_written(
    audience, audience_settings, tmp_path, kind
):
    make, message = BAD_FILES[kind]
    path = tmp_path / "people.csv"
    make(path)
    result = run_cli(audience_settings, "subscribers", "import", str(path))
    assert result.exit_code == 1
    [error] = error_lines(result)
    assert error.startswith(f"Error: {path}"), error
    assert message in error
    assert all_emails(audience) == set()
    assert consent_actions(audience, "a@example.org") == []
    assert not (tmp_path / "people-import-report.csv").exists()


def test_a_bad_byte_late_in_the_file_undoes_rows_already_stored(audience, tmp_path):
    path = tmp_path / "late.csv"
    latin1_after_64k(path)
    with open(path, "ab") as file:
        file.write(b"not-an-address,x\n")  # a rejected row after the bad byte: no report either way
    with pytest.raises(UserError, match=r"late\.csv:\d+: is not UTF-8 text"):
        audience.import_csv(path)
    assert all_emails(audience) == set()
    # and the same members import fine once the file is fixed
    path.write_bytes(path.read_bytes().replace(b"Ren\xe9e", "Renée".encode()))
    summary = audience.import_csv(path)
    assert (summary.added, summary.skipped, summary.rejected) == (2 * BATCH + 1, 1, 2)
    assert len(read_report(summary.report)) == 1 + 3


# --- re-import ---

FIRST = """\
email,name,organisation,region,topics,lists,status
keep@example.org,Kay Keep,Old Org,london,housing,newsletter,
change@example.org,Chris Change,Old Org,london,housing,newsletter,
unsub@example.org,Una Sub,Org,wales,housing,newsletter,unsubscribed
bounce@example.org,Bo Bounce,Org,wales,housing,newsletter,bounced
complain@example.org,Cam Plain,Org,wales,housing,newsletter,complained
leaver@example.org,Lee Ver,Org,wales,housing,newsletter;events,
pending@example.org,Pen Ding,Org,wales,housing,newsletter,pending
safer@example.org,Saf Er,Org,wales,housing,newsletter,
"""

SECOND = """\
email,name,organisation,region,topics,lists,status
keep@example.org,,,,,,
CHANGE@example.org,Chris Changed,New Org,North West,climate,newsletter,
unsub@example.org,Una Sub,Org,wales,housing,newsletter,active
bounce@example.org,Bo Bounce,Org,wales,housing,newsletter,
complain@example.org,Cam Plain,Org,wales,housing,newsletter,
leaver@example.org,Lee Ver,Org,wales,housing,newsletter;events,
pending@example.org,Pen Ding,Org,wales,housing,newsletter,
safer@example.org,Saf Er,Org,wales,housing,newsletter,unsubscribed
brand-new@example.org,Bran New,,,,,
"""


@pytest.fixture
def reimported(audience, tmp_path):
    import_text(audience, tmp_path, FIRST, "first.csv")
    audience.unsubscribe("leaver@example.org", list_slug="events")
    summary = import_text(audience, tmp_path, SECOND, "second.csv")
    return audience, summary


def test_reimport_counts(reimported):
    _, summary = reimported
    # updated: change (details), pending (now active), safer (now unsubscribed)
    # unchanged: keep (empty cells), unsub, bounce, complain (never re-activated), leaver (not re-joined)
    counts = (summary.added, summary.updated, summary.unchanged, summary.skipped, summary.rejected)
    assert counts == (1, 3, 5, 0, 0)
    assert summary.report is None


def test_reimport_updates_details_and_leaves_empty_cells_alone(reimported):
    audience, _ = reimported
    change = audience.member("change@example.org")
    assert (change.subscriber.name, change.subscriber.organisation) == ("Chris Changed", "New Org")
    assert change.subscriber.region == "north-west"
    assert change.subscriber.email == "change@example.org"  # the stored address keeps its first spelling
    assert change.topics == ["climate", "housing"]  # topics are added, never taken away
    keep = member(audience, "keep@example.org")
    assert (keep.name, keep.organisation, keep.region) == ("Kay Keep", "Old Org", "london")
    assert audience.member("keep@example.org").topics == ["housing"]


def test_reimport_never_reactivates_anyone(reimported):
    audience, _ = reimported
    for email, status in [
        ("unsub@example.org", Status.UNSUBSCRIBED),
        ("bounce@example.org", Status.BOUNCED),
        ("complain@example.org", Status.COMPLAINED),
        ("safer@example.org", Status.UNSUBSCRIBED),  # status only gets safer
        ("pending@example.org", Status.ACTIVE),  # the import vouches for consent
    ]:
        assert member(audience, email).status == status, email
    everyone = segment_emails(audience, "everyone")
    assert everyone.isdisjoint({"unsub@example.org", "bounce@example.org", "complain@example.org"})
    assert "safer@example.org" not in everyone
    assert "pending@example.org" in everyone


def test_reimport_never_rejoins_a_list_the_member_left(reimported):
    audience, _ = reimported
    assert audience.member("leaver@example.org").lists == [("events", False), ("newsletter", True)]
    assert ("left_list", "admin") in consent_actions(audience, "leaver@example.org")
    assert "joined_list" not in [action for action, _ in consent_actions(audience, "leaver@example.org")]


def test_reimport_that_unsubscribes_someone_records_it(reimported):
    audience, _ = reimported
    actions = [action for action, _ in consent_actions(audience, "safer@example.org")]
    assert actions == ["imported", "unsubscribed"]
    assert member(audience, "safer@example.org").unsubscribed_at is not None


def test_reimport_refuses_erased_and_suppressed_addresses(audience, tmp_path):
    from newsletter.audience.members import suppress

    import_text(audience, tmp_path, "email\ngone@example.org\nkept@example.org\n", "first.csv")
    audience.erase("gone@example.org")
    with audience.store.database.session() as session:
        suppress(session, "blocked@example.org", "complaint", "test")
    summary = import_text(
        audience,
        tmp_path,
        "email,name\nGONE@example.org,Back\nblocked@example.org,B\nkept@example.org,K\n",
        "again.csv",
    )
    assert (summary.added, summary.updated, summary.skipped) == (0, 1, 2)
    assert read_report(summary.report)[1:] == [
        ["2", "GONE@example.org", "skipped: erased at their request; never imported again"],
        ["3", "blocked@example.org", "skipped: suppressed (complaint); never imported again"],
    ]
    assert all_emails(audience) == {"kept@example.org"}


def test_importing_the_same_file_twice_changes_nothing(audience, repo_root, tmp_path):
    sample = repo_root / "subscribers" / "sample.csv"
    first = audience.import_csv(sample, report_path=tmp_path / "r.csv")
    second = audience.import_csv(sample, report_path=tmp_path / "r.csv")
    assert (first.added, first.unchanged) == (400, 0)
    assert (second.added, second.updated, second.unchanged, second.report) == (0, 0, 400, None)
    assert len(all_emails(audience)) == 400


# --- A --source longer than its column: one consent path, the same cut on every engine ---

LONG_SOURCE = "Spring conference 2024, Cardiff: paper sign-up sheets typed in by the events team; " * 4
assert len(LONG_SOURCE) > 300


def record_source_cut(audience, source: str) -> str:
    """The source as `consent.record` stores it, read back from this database."""
    with audience.store.database.session() as session:
        entry = record(session, Action.ERASED, source, email_hash="0" * 64)
        session.flush()
        stored = session.scalar(select(ConsentRecord.source).where(ConsentRecord.id == entry.id))
        session.rollback()
    return stored


def test_a_long_source_is_cut_as_consent_record_cuts_it_on_every_import_path(audience, tmp_path):
    expected = record_source_cut(audience, LONG_SOURCE)
    assert expected == fields(Action.IMPORTED, LONG_SOURCE)["source"] == LONG_SOURCE[:200]
    # New members (imported), a status made safer (unsubscribed), a list joined (joined_list).
    first = import_text(audience, tmp_path, "email,lists\nnew@example.org,newsletter\nsafer@example.org,\n")
    assert first.added == 2
    second = import_text(
        audience,
        tmp_path,
        "email,lists,status\nnew@example.org,events,\nsafer@example.org,,unsubscribed\n",
        "again.csv",
        source=LONG_SOURCE,
    )
    assert (second.updated, second.rejected) == (2, 0)
    third = import_text(audience, tmp_path, "email\nthird@example.org\n", "third.csv", source=LONG_SOURCE)
    assert third.added == 1
    assert consent_actions(audience, "new@example.org")[-1] == ("joined_list", expected)
    assert consent_actions(audience, "safer@example.org")[-1] == ("unsubscribed", expected)
    assert consent_actions(audience, "third@example.org") == [("imported", expected)]


def test_the_installed_command_imports_with_a_long_source(database_url, repo_root, tmp_path):
    """`newsletter` as installed, run from a folder of its own with only the database in the environment."""
    command = Path(sys.executable).with_name("newsletter")
    work = tmp_path / "elsewhere"
    work.mkdir()
    write_csv(work / "members.csv", "email,name\njo@example.org,Jo\nsam@example.org,Sam\n")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("NEWSLETTER_")}
    environment["NEWSLETTER_DATABASE_URL"] = database_url

    def newsletter(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(command), *args], cwd=work, env=environment, capture_output=True, text=True, timeout=120
        )

    upgraded = newsletter("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    result = newsletter("subscribers", "import", "members.csv", "--source", LONG_SOURCE)
    assert result.returncode == 0, result.stderr
    assert "2 rows: 2 added" in result.stdout
    assert "Traceback" not in result.stderr
    audience = Audience.open(Settings(database_url=database_url, vocabulary_dir=repo_root / "subscribers"))
    try:
        expected = record_source_cut(audience, LONG_SOURCE)
        assert consent_actions(audience, "jo@example.org") == [("imported", expected)]
        assert consent_actions(audience, "sam@example.org") == [("imported", expected)]
    finally:
        audience.close()


FORMULAS = ('=HYPERLINK("http://evil","x")', "+1", "-2", "@SUM(1)")


def test_rejected_formula_cells_are_neutralised_in_the_report_exactly_as_the_export_does(audience, tmp_path):
    """A spreadsheet opening the report must not run a rejected cell: each one is written as the export
    writes the same value (a leading apostrophe), not raw."""
    quoted = ['"' + cell.replace('"', '""') + '"' for cell in FORMULAS]
    rows = [f"{cell},Rejected {n}" for n, cell in enumerate(quoted)]  # not addresses: all rejected
    rows += [f"ok{n}@example.org,{cell}" for n, cell in enumerate(quoted)]  # the same values as names
    summary = import_text(audience, tmp_path, "email,name\n" + "\n".join(rows) + "\n", "hostile.csv")
    assert (summary.added, summary.rejected) == (4, 4)
    report = summary.report.read_text(encoding="utf-8")
    header, *rejected = list(csv.reader(report.splitlines()))
    exported = io.StringIO()
    audience.export_csv(exported)
    names = {row["email"]: row["name"] for row in csv.DictReader(io.StringIO(exported.getvalue()))}
    assert [row[1] for row in rejected] == [names[f"ok{n}@example.org"] for n in range(4)]
    assert [row[1] for row in rejected] == ["'" + cell for cell in FORMULAS]
    for row in [header, *rejected]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
