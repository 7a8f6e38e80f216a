"""Issue 18: `credit`, the member organisation an item came from, read by the loader, offered by the
desk's form and written back to the file as the one line the editor changed."""

from __future__ import annotations

import copy
import difflib
import shutil
from pathlib import Path

import pytest

from issue_support import HEAD, write_draft
from newsletter.content import schema
from newsletter.content.issuefile import read_issue_file, save_issue_file
from newsletter.content.loader import load_issue
from newsletter.content.model import (
    CREDIT_LENGTH,
    SECTION_KINDS,
    Collaboration,
    Event,
    PlaceUpdate,
    Publication,
    Story,
)
from newsletter.errors import ProblemsFound
from newsletter.vocabulary import Vocabulary

CREDITED = (Story, Publication, PlaceUpdate, Collaboration, Event)
PUBLICATION = """\
  - kind: publications
    items:
      - title: A report
        url: https://example.org/report
        summary: It says things.
        date: 2023-10-02
"""


@pytest.fixture(scope="module")
def vocabulary(repo_root: Path) -> Vocabulary:
    return Vocabulary.load(repo_root / "subscribers")


def _load(tmp_path: Path, vocabulary: Vocabulary, credit_line: str):
    path = write_draft(tmp_path, "draft", HEAD + PUBLICATION + credit_line)
    return load_issue(path, vocabulary)


def test_every_item_a_member_could_share_takes_a_credit_and_nothing_else_does():
    def has_credit(cls: type) -> bool:
        return any(field.name == "credit" for field in cls.__dataclass_fields__.values())

    assert all(has_credit(cls) for cls in CREDITED)
    others = [cls for cls in SECTION_KINDS.values() if cls is not Story]
    assert not any(has_credit(cls) for cls in others)  # a section of items is credited item by item


def test_a_credit_is_trimmed_and_optional(tmp_path, vocabulary):
    issue = _load(tmp_path, vocabulary, '        credit: "  Leeds City Council "\n')
    assert issue.sections[0].items[0].credit == "Leeds City Council"
    uncredited = _load(tmp_path, vocabulary, "")
    assert uncredited.sections[0].items[0].credit is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * (CREDIT_LENGTH + 1), f"is {CREDIT_LENGTH + 1} characters; keep it to {CREDIT_LENGTH}"),
        ("[Leeds, Bradford]", "must be text, not a list"),
        ('"Leeds\\nBradford"', "must fit on one line"),
    ],
)
def test_a_credit_that_is_not_one_organisations_name_is_reported_at_its_line(
    tmp_path, vocabulary, value, message
):
    with pytest.raises(ProblemsFound) as raised:
        _load(tmp_path, vocabulary, f"        credit: {value}\n")
    [problem] = raised.value.problems
    assert (problem.line, problem.where, problem.message) == (13, "publications[1].credit", message)


def test_the_desk_form_offers_the_credit_with_its_label_and_hint():
    vocabulary = Vocabulary(Path("."), {}, {}, {}, {})
    story = {spec.name: spec for spec in schema.section_fields("story", vocabulary)}
    items = {
        kind: {spec.name: spec for spec in schema.section_fields(kind, vocabulary)[-2].children}
        for kind in ("publications", "places", "collaborations", "events")
    }
    for spec in (story["credit"], *(fields["credit"] for fields in items.values())):
        assert (spec.label, spec.widget, spec.required) == ("Shared by (organisation)", "text", False)
        assert "Leave it blank if they asked not to be credited." in spec.hint
        assert f"Up to {CREDIT_LENGTH} characters." in spec.hint
    assert list(story)[-2:] == ["credit", "topics"]  # near the end, before who it is for


def test_a_credit_added_at_the_desk_is_one_new_line_in_the_file(tmp_path, repo_root, vocabulary):
    folder = tmp_path / "issues" / "2023-10"
    shutil.copytree(repo_root / "issues" / "2023-10", folder)
    path = folder / "issue.yaml"
    read = read_issue_file(path)
    values = schema.data_to_form_values(read.data)
    form = {name: value if isinstance(value, list) else [value] for name, value in values.items()}
    for lines in [name for name in form if name.endswith((".partners", ".authors"))]:
        form[lines] = ["\r\n".join(form[lines])]  # a textarea, one name a line
    name = next(name for name in form if name.endswith(".place") and form[name] == ["Gwent"])
    form[name.removesuffix("place") + "credit"] = ["Gwent Public Services Board"]
    data = schema.form_to_data(form)

    saved = save_issue_file(path, copy.deepcopy(data), read.version, vocabulary)

    diff = difflib.unified_diff(read.text.splitlines(), saved.text.splitlines(), lineterm="", n=0)
    changed = [line for line in diff if line[:1] in "-+" and line[:3] not in ("---", "+++")]
    assert changed == ["+        credit: Gwent Public Services Board"]
    gwent = next(
        item
        for section in load_issue(path, vocabulary).sections
        for item in getattr(section, "items", ())
        if isinstance(item, PlaceUpdate) and item.place == "Gwent"
    )
    assert gwent.credit == "Gwent Public Services Board"
