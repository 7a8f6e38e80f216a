"""Messages an editor who is not a developer can act on (issue 13): suggestions from slugs and names,
hints for unknown keys, every problem in one pass, YAML mistakes in plain words at the right line,
real language tags, kinds of place from the vocabulary, `new --like` and the vocabulary in the guide."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from issue_support import HEAD, STORY
from newsletter.content.loader import load_issue
from newsletter.content.scaffold import create_issue
from newsletter.errors import ProblemsFound
from newsletter.vocabulary import Vocabulary, update_vocabulary_block
from user_support import init_project, newsletter


def place(region: str = "london", kind: str | None = None) -> str:
    """A places section whose one item has `region` (line 10) and `kind` (line 11)."""
    return (
        "  - kind: places\n"
        "    items:\n"
        "      - place: Newcastle\n"
        f"        region: {region}\n"
        + (f"        kind: {kind}\n" if kind else "")
        + "        updates: Work goes on.\n"
    )


def problems(path, vocabulary) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ProblemsFound) as caught:
        load_issue(path, vocabulary)
    return [(p.line, p.where, p.message) for p in caught.value.problems]


def closest(message: str, plural: str) -> list[tuple[str, str]]:
    """The (slug, name) pairs a message offers after 'closest PLURAL:'."""
    listed = re.search(rf"closest {plural}: (.+?); all {plural} are listed in ", message)
    assert listed, message
    return re.findall(r"([\w-]+) \((.+?)\)(?:, |$)", listed[1])


def test_a_region_written_as_its_long_name_suggests_the_region_by_its_name(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, HEAD + place(region="North East England"))
    [(line, where, message)] = problems(path, editor.vocabulary)
    assert (line, where) == (10, "places[1].region")
    assert message.startswith("unknown region 'North East England' (did you mean 'north-east'?); ")
    assert closest(message, "regions")[0] == ("north-east", "North East")
    assert message.endswith("all regions are listed in subscribers/regions.yaml")


def test_an_unknown_topic_lists_the_closest_few_with_their_names(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, HEAD + STORY + "    topics: [launch, children]\n")
    [(_, _, launch), (_, where, children)] = problems(path, editor.vocabulary)
    offered = closest(launch, "topics")
    assert len(offered) == 4
    assert all(editor.vocabulary.topics[slug] == name for slug, name in offered)
    assert "did you mean" not in launch  # nothing is close enough to guess
    assert where == "story.topics[2]"
    assert children.startswith("unknown topic 'children' (did you mean 'children-young-people'?)")


def test_an_unknown_key_names_the_closest_key_or_the_keys_the_item_takes(tmp_path, write_issue, editor):
    text = (
        HEAD
        + STORY
        + "    quote: We know what to do.\n"  # 10
        + "  - kind: publications\n"
        + "    items:\n"
        + "      - title: P\n"
        + "        url: https://example.org/p\n"
        + "        summary: S\n"
        + "        date: 2023-10-01\n"
        + "        quote: We know what to do.\n"  # 17
    )
    found = problems(write_issue(tmp_path, text), editor.vocabulary)
    assert (10, "story.quote", "unknown key 'quote' (did you mean 'quotes'?)") in found
    assert (
        17,
        "publications[1].quote",
        "unknown key 'quote'; the keys here are title, url, summary, date, authors, commissioner, credit, topics",
    ) in found


def test_a_long_subject_is_reported_with_the_mistakes_that_stop_the_issue_loading(
    tmp_path, tmp_editor, write_issue
):
    subject = "Everything that happened across the Health Equity Network this month, and more besides"
    write_issue(tmp_path, HEAD.replace("subject: S", f"subject: {subject}") + STORY + "    quote: Q\n")
    with pytest.raises(ProblemsFound) as caught:
        tmp_editor.check("draft")
    assert [(p.line, p.where) for p in caught.value.problems] == [(3, "subject"), (10, "story.quote")]
    assert caught.value.problems[0].message.startswith(f"is {len(subject)} characters; inboxes cut subjects")


@pytest.mark.parametrize(
    ("text", "line", "advice"),
    [
        (
            HEAD + STORY.replace("title: A story", "title: Launch: the Health Equity Network"),
            8,
            'put this text in quotes: it contains a colon followed by a space (title: "Launch: the Health '
            'Equity Network")',
        ),
        (
            HEAD + STORY.replace("    body:", "   body:"),
            9,
            "this line is indented differently from the one above",
        ),
        (HEAD + STORY.replace("    title:", "\ttitle:"), 8, "this line has a tab: indent with spaces"),
        (HEAD + STORY.replace("title: A story", "title: 'A story") + "  - kind: contact\n", 8, "the quote"),
        ("title: T\n- kind: story\n", 2, "a list item ('- ') where a key was expected"),
    ],
    ids=["colon in a title", "indentation", "tab", "unclosed quote", "list item for a key"],
)
def test_yaml_mistakes_are_told_in_plain_words_at_their_line(
    tmp_path, write_issue, editor, text, line, advice
):
    [(found_line, where, message)] = problems(write_issue(tmp_path, text), editor.vocabulary)
    assert (found_line, where) == (line, "")
    assert message.startswith(f"not valid YAML: {advice}"), message
    assert "<block" not in message and "mapping values" not in message


@pytest.mark.parametrize(
    ("written", "kept"), [("en-GB", "en-GB"), ("cy", "cy"), ("en", "en"), ("cy-gb", "cy-GB")]
)
def test_real_language_tags_are_taken_in_their_usual_case(tmp_path, write_issue, editor, written, kept):
    path = write_issue(tmp_path, HEAD.replace("editor: E", f"editor: E\nlanguage: {written}") + STORY)
    assert load_issue(path, editor.vocabulary).language == kept


@pytest.mark.parametrize(
    ("written", "suggested"), [("en-gb-cy", "en-GB"), ("english", "en-GB"), ("Welsh", "cy")]
)
def test_a_made_up_language_tag_is_refused_with_a_tag_to_use(
    tmp_path, write_issue, editor, written, suggested
):
    path = write_issue(tmp_path, HEAD.replace("editor: E", f"editor: E\nlanguage: {written}") + STORY)
    [(line, where, message)] = problems(path, editor.vocabulary)
    assert (line, where) == (6, "language")
    assert message.startswith(
        f"must be a language tag such as en-GB or cy, not '{written}' (did you mean {suggested}?)"
    )


def test_a_kind_of_place_comes_from_the_vocabulary(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, HEAD + place(kind="Marmot County"))
    [(line, where, message)] = problems(path, editor.vocabulary)
    assert (line, where) == (11, "places[1].kind")
    assert message.startswith("unknown place kind 'Marmot County' (did you mean 'marmot-city'?); ")
    assert {("marmot-city", "Marmot City"), ("marmot-region", "Marmot Region")} <= set(
        closest(message, "place kinds")
    )
    assert message.endswith("all place kinds are listed in subscribers/place_kinds.yaml")
    path = write_issue(tmp_path, HEAD + place(kind="marmot-town"))
    assert load_issue(path, editor.vocabulary).sections[0].items[0].kind == "Marmot Town"


def test_a_project_without_place_kinds_takes_any_kind(tmp_path, write_issue, repo_root):
    words = tmp_path / "subscribers"
    shutil.copytree(repo_root / "subscribers", words)
    (words / "place_kinds.yaml").unlink()
    path = write_issue(tmp_path, HEAD + place(kind="Marmot County"))
    assert load_issue(path, Vocabulary.load(words)).sections[0].items[0].kind == "Marmot County"


def test_new_like_copies_each_section_kind_not_last_months_names_labels_or_texts(tmp_path, sample):
    target = create_issue(tmp_path / "issues", "2023-11", like=sample.path)
    written = target.read_text(encoding="utf-8")
    data = yaml.safe_load(written)
    assert [s["kind"] for s in data["sections"]] == [s.KIND for s in sample.issue.sections]
    assert data["editor"] == ""
    assert sample.issue.editor not in written
    buttons = [s.label for s in sample.issue.sections if s.KIND == "call_to_action"]
    assert buttons and not any(label in written for label in buttons)
    assert [s["label"] for s in data["sections"] if s["kind"] == "call_to_action"] == [""] * len(buttons)
    for section in data["sections"]:
        if "items" in section:
            [item] = section["items"]  # one empty item to fill in
            assert set(item.values()) <= {"", None}, item
    assert "# Other kinds of section: events;" in written


def test_the_editors_guide_lists_the_vocabulary_as_it_is(tmp_path, repo_root):
    guide = repo_root / "docs" / "editing-issues.md"
    copy = tmp_path / "editing-issues.md"
    shutil.copyfile(guide, copy)
    update_vocabulary_block(copy, Vocabulary.load(repo_root / "subscribers"))
    assert copy.read_text(encoding="utf-8") == guide.read_text(encoding="utf-8"), (
        "docs/editing-issues.md lists other words than subscribers/*.yaml: "
        "run `newsletter vocabulary --update docs/editing-issues.md`"
    )
    assert "| `marmot-city` | Marmot City |" in guide.read_text(encoding="utf-8")


@pytest.mark.slow
def test_check_in_a_new_project_reports_every_problem_in_plain_words(tmp_path):
    folder = init_project(tmp_path)
    assert "marmot-borough  Marmot Borough" in newsletter(folder, "vocabulary").stdout
    issue = folder / "issues" / "2023-11" / "issue.yaml"
    issue.parent.mkdir(parents=True)
    subject = "Everything that happened across the Health Equity Network this month, and more besides"
    issue.write_text(
        HEAD.replace("subject: S", f"subject: {subject}").replace(
            "editor: E", "editor: E\nlanguage: en-gb-cy"
        )
        + place(region="North East England", kind="Marmot County"),
        encoding="utf-8",
    )
    done = newsletter(folder, "check", "2023-11", ok=False)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "subject",
        "language",
        "places[1].region",
        "places[1].kind",
    ]
    assert lines[0].startswith(f"issues/2023-11/issue.yaml:3: subject: is {len(subject)} characters")
    assert "(did you mean en-GB?)" in lines[1]
    assert "(did you mean 'north-east'?)" in lines[2]
    assert "closest place kinds: " in lines[3]
    assert done.stderr.strip() == "4 problems found."
