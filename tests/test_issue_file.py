"""The desk's reading and saving of issue files: an edit shows in `git diff` as just that edit.

Every test works on a real copy of the sample issue in a temporary folder and reads the bytes back.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

from newsletter.content.issuefile import (
    Conflict,
    edited_text,
    read_issue_file,
    save_issue_file,
    version_of,
    write_draft,
)
from newsletter.content.loader import load_issue
from newsletter.errors import ProblemsFound, UserError
from newsletter.vocabulary import Vocabulary

SLUG = "2023-10"

# Comments an editor might have added by hand: above a section, above a list item, at the end of a
# section (indented into it), and at the very end of the file.
COMMENTED = [
    ("  - kind: places\n", "  # Places: one item per Marmot place, newest first\n  - kind: places\n"),
    ("      - place: Gwent\n", "      # Gwent: check the report title with the team\n      - place: Gwent\n"),
    (
        "  - kind: collaborations\n",
        "      # TODO: add Coventry when the report is out\n\n  - kind: collaborations\n",
    ),
    ("  - kind: contact\n", "  # Contact: the shared inbox, not a person\n  - kind: contact\n"),
]


@pytest.fixture(scope="module")
def vocabulary(repo_root: Path) -> Vocabulary:
    return Vocabulary.load(repo_root / "subscribers")


@pytest.fixture
def issue(tmp_path: Path, repo_root: Path) -> Path:
    """A copy of the sample issue, in a folder named by its slug."""
    folder = tmp_path / "issues" / SLUG
    shutil.copytree(repo_root / "issues" / SLUG, folder)
    return folder / "issue.yaml"


@pytest.fixture
def commented_issue(issue: Path) -> Path:
    """The sample issue with comments of an editor's own, as git would have it."""
    text = issue.read_text(encoding="utf-8")
    for anchor, replacement in COMMENTED:
        assert text.count(anchor) == 1, anchor
        text = text.replace(anchor, replacement)
    issue.write_text(text + "# End of issue\n", encoding="utf-8")
    return issue


def changed_lines(old: str, new: str) -> list[str]:
    """The lines `git diff` would mark with - or +."""
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "-+" and line[:3] not in ("---", "+++")]


def comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def leftovers(folder: Path) -> list[str]:
    """Files other than the issue's own: a temporary file left behind would show in `git status`."""
    return sorted(p.name for p in folder.iterdir() if p.name != "issue.yaml")


def test_the_sample_read_and_saved_unchanged_is_the_same_file(issue: Path, vocabulary: Vocabulary) -> None:
    before = issue.read_bytes()
    read = read_issue_file(issue)
    assert read.version == hashlib.sha256(before).hexdigest()
    assert read.data["date"] == dt.date(2023, 10, 20)
    assert read.data["sections"][0]["title"].startswith("Growing a Movement")

    saved = save_issue_file(issue, copy.deepcopy(read.data), read.version, vocabulary)

    assert issue.read_bytes() == before
    assert saved.version == read.version


def test_an_edit_undone_gives_back_the_very_same_bytes(issue: Path, vocabulary: Vocabulary) -> None:
    """The whole file goes through ruamel and back; its indentation and quoting come out unchanged."""
    before = issue.read_bytes()
    read = read_issue_file(issue)
    data = copy.deepcopy(read.data)
    data["sections"][1]["title"] = "A new title"
    edited = save_issue_file(issue, data, read.version, vocabulary)
    data["sections"][1]["title"] = read.data["sections"][1]["title"]

    save_issue_file(issue, data, edited.version, vocabulary)

    assert issue.read_bytes() == before


def test_changing_one_title_changes_one_line_and_keeps_every_comment(
    commented_issue: Path, vocabulary: Vocabulary
) -> None:
    read = read_issue_file(commented_issue)
    data = copy.deepcopy(read.data)
    data["sections"][0]["title"] = "Growing a Movement: the conference in pictures"

    saved = save_issue_file(commented_issue, data, read.version, vocabulary)

    new_text = commented_issue.read_text(encoding="utf-8")
    assert changed_lines(read.text, new_text) == [
        '-    title: "Growing a Movement for Health Equity: our first annual conference"',
        '+    title: "Growing a Movement: the conference in pictures"',
    ]
    assert comment_lines(new_text) == comment_lines(read.text)
    assert saved.text == new_text
    assert saved.version == hashlib.sha256(new_text.encode("utf-8")).hexdigest()
    assert saved.data["sections"][0]["title"] == "Growing a Movement: the conference in pictures"


def test_adding_removing_and_reordering_keeps_the_comments_of_the_rest(
    commented_issue: Path, vocabulary: Vocabulary
) -> None:
    read = read_issue_file(commented_issue)
    data = copy.deepcopy(read.data)
    sections = data["sections"]
    # Swap the places and the collaborations; drop South West from the places; add a story at the end.
    sections[3], sections[4] = sections[4], sections[3]
    places = sections[4]["items"]
    assert [place["place"] for place in places][:3] == ["Leeds", "South West", "Gwent"]
    del places[1]
    sections.append(
        {"kind": "story", "title": "Save the date: our spring webinar", "body": "Details next month.\n"}
    )

    save_issue_file(commented_issue, data, read.version, vocabulary)

    new_text = commented_issue.read_text(encoding="utf-8")
    issue = load_issue(commented_issue, vocabulary)
    kinds = [type(section).__name__ for section in issue.sections]
    assert kinds[3:5] == ["Collaborations", "Places"]
    assert kinds[-1] == "Story"
    assert [item.place for item in issue.sections[4].items][:2] == ["Leeds", "Gwent"]
    assert "South West" not in new_text
    # Each comment is still there, above the part it is about, wherever that part went.
    assert sorted(comment_lines(new_text)) == sorted(comment_lines(read.text))
    assert "  # Places: one item per Marmot place, newest first\n  - kind: places\n" in new_text
    assert "      # Gwent: check the report title with the team\n      - place: Gwent\n" in new_text
    assert "  # Contact: the shared inbox, not a person\n  - kind: contact\n" in new_text
    assert new_text.endswith("# End of issue\n")
    # The to-do indented into the places stays at the end of that section, which moved.
    places_end = "        topics: [marmot-places, nhs-integrated-care]\n\n      # TODO: add Coventry"
    assert places_end in new_text
    assert new_text.index("  - kind: collaborations") < new_text.index(places_end)
    # The diff shows the places section moving (less South West) and the new story, nothing else.
    start = read.text.index("  # Places:")
    places = read.text[start : read.text.index("  - kind: collaborations")].splitlines()
    new_story = new_text[new_text.index('  - kind: story\n    title: "Save') :].splitlines()
    changed = changed_lines(read.text, new_text)
    assert {line[1:] for line in changed if line.startswith("-")} <= set(places)
    assert {line[1:] for line in changed if line.startswith("+")} <= {*places, *new_story, ""}
    # The new section is spaced like the others, and written as the sample writes its fields.
    assert (
        "\n\n  - kind: story\n"
        '    title: "Save the date: our spring webinar"\n'
        "    body: |\n"
        "      Details next month.\n"
    ) in new_text
    assert "South West" in read.text and leftovers(commented_issue.parent) == []


def test_a_multi_line_body_is_a_block_and_a_date_stays_a_date(issue: Path, vocabulary: Vocabulary) -> None:
    read = read_issue_file(issue)
    data = copy.deepcopy(read.data)
    # What a browser sends from a textarea: Windows line ends.
    data["sections"][1]["body"] = "First paragraph.\r\n\r\nSecond one, with **bold**: and a colon.\r\n"
    data["date"] = dt.date(2023, 10, 21)
    data["sections"][2]["items"][0]["date"] = "2023-10-03"  # a form field sends text

    save_issue_file(issue, data, read.version, vocabulary)

    new_text = issue.read_text(encoding="utf-8")
    assert (
        "    body: |\n      First paragraph.\n\n      Second one, with **bold**: and a colon.\n    links:\n"
    ) in new_text
    assert "\ndate: 2023-10-21\n" in new_text
    assert "        date: 2023-10-03\n" in new_text
    assert "\r" not in new_text
    issue_read = load_issue(issue, vocabulary)
    assert issue_read.date == dt.date(2023, 10, 21)
    assert issue_read.sections[2].items[0].date == dt.date(2023, 10, 3)
    assert len(changed_lines(read.text, new_text)) < 40


def test_text_the_loader_would_misread_is_quoted() -> None:
    """ruamel follows YAML 1.2, where `no` is text; PyYAML, which checks the issue, reads false."""
    text = "title: T\nlanguage: en-GB\nsubject: S\n"

    new_text = edited_text(text, {"title": "T", "language": "no", "subject": "yes: we did"})

    assert new_text == 'title: T\nlanguage: "no"\nsubject: "yes: we did"\n'


def test_a_bad_url_is_reported_at_its_field_and_nothing_is_written(
    issue: Path, vocabulary: Vocabulary
) -> None:
    before = issue.read_bytes()
    read = read_issue_file(issue)
    data = copy.deepcopy(read.data)
    links = data["sections"][-1]
    assert links["kind"] == "links"
    links["items"][0]["url"] = "http://www.instituteofhealthequity.example.org/about-our-work"

    with pytest.raises(ProblemsFound) as raised:
        save_issue_file(issue, data, read.version, vocabulary)

    [problem] = raised.value.problems
    assert problem.where == "links[1].url"
    assert "https://" in problem.message
    assert issue.read_bytes() == before
    assert leftovers(issue.parent) == []


def test_a_draft_is_written_with_its_problems_but_not_over_a_change_on_disk(
    issue: Path, vocabulary: Vocabulary
) -> None:
    read = read_issue_file(issue)
    data = copy.deepcopy(read.data)
    data["subject"] = ""  # a draft's blank, for `check` to point at, not a reason to lose the work
    written = write_draft(issue, data, read.version)
    assert written.version == version_of(issue) != read.version
    with pytest.raises(ProblemsFound) as raised:
        load_issue(issue, vocabulary)
    assert [problem.where for problem in raised.value.problems] == ["subject"]

    issue.write_text(written.text.replace("editor: Alison Biedron", "editor: Sam Okafor"), encoding="utf-8")
    data["title"] = "Lost?"
    with pytest.raises(Conflict):
        write_draft(issue, data, written.version)
    assert "Lost?" not in issue.read_text(encoding="utf-8")


def test_a_stale_form_does_not_overwrite_an_edit_made_on_disk(issue: Path, vocabulary: Vocabulary) -> None:
    read = read_issue_file(issue)
    by_hand = read.text.replace("editor: Alison Biedron", "editor: Sam Okafor")
    issue.write_text(by_hand, encoding="utf-8")
    data = copy.deepcopy(read.data)
    data["title"] = "October 2023 Newsletter (corrected)"

    with pytest.raises(Conflict) as raised:
        save_issue_file(issue, data, read.version, vocabulary)

    assert isinstance(raised.value, UserError)
    assert "changed on disk" in str(raised.value) and "nothing was saved" in str(raised.value)
    assert issue.read_text(encoding="utf-8") == by_hand
    assert raised.value.current.version == hashlib.sha256(issue.read_bytes()).hexdigest()
    assert raised.value.current.data["editor"] == "Sam Okafor"
    # Made again on the file as it is now, the edit goes through and keeps the hand edit.
    data = copy.deepcopy(raised.value.current.data)
    data["title"] = "October 2023 Newsletter (corrected)"
    save_issue_file(issue, data, raised.value.current.version, vocabulary)
    saved = issue.read_text(encoding="utf-8")
    assert "editor: Sam Okafor" in saved and "title: October 2023 Newsletter (corrected)" in saved


def test_saving_keeps_the_files_permissions(issue: Path, vocabulary: Vocabulary) -> None:
    os.chmod(issue, 0o640)
    read = read_issue_file(issue)
    data = copy.deepcopy(read.data)
    data["subject"] = "A new subject"

    save_issue_file(issue, data, read.version, vocabulary)

    assert stat.S_IMODE(issue.stat().st_mode) == 0o640
    assert "\nsubject: A new subject\n" in issue.read_text(encoding="utf-8")
    assert leftovers(issue.parent) == []


def test_a_file_that_is_not_yaml_names_its_line(issue: Path) -> None:
    lines = issue.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[9] = "subject: First conference: plus new reports\n"  # line 10
    issue.write_text("".join(lines), encoding="utf-8")

    with pytest.raises(UserError) as raised:
        read_issue_file(issue)

    assert "issue.yaml:10:" in str(raised.value)
    assert "quotes" in str(raised.value)


def test_a_missing_file_is_a_plain_message(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_issue_file(tmp_path / "issues" / "2024-01" / "issue.yaml")
