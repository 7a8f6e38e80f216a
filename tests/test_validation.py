"""Validation of issue files: every mistake, with its line, where it is and a message an editor understands."""

from __future__ import annotations

import pytest

from issue_support import HEAD, STORY
from newsletter.content.loader import load_issue
from newsletter.editor import Editor
from newsletter.errors import ProblemsFound, display_path
from newsletter.settings import Settings


def problems_in(path, vocabulary):
    """(line, where, message) of every problem `load_issue` reports for `path`."""
    with pytest.raises(ProblemsFound) as caught:
        load_issue(path, vocabulary)
    return [(p.line, p.where, p.message) for p in caught.value.problems]


def only_problem(path, vocabulary):
    found = problems_in(path, vocabulary)
    assert len(found) == 1, found
    return found[0]


# (id, yaml text, expected line, expected where, expected message)
EXACT_CASES = [
    (
        "unknown key with suggestion",
        "title: T\ntitel: T\ndate: 2023-11-01\nsubject: S\npreheader: P\neditor: E\nsections:\n" + STORY,
        2,
        "titel",
        "unknown key 'titel' (did you mean 'title'?)",
    ),
    (
        "missing top-level field points at the top of the file",
        "title: T\ndate: 2023-11-01\npreheader: P\neditor: E\nsections:\n" + STORY,
        1,
        "subject",
        "is missing",
    ),
    (
        "missing field of an item points at the item",
        HEAD
        + "  - kind: publications\n"  # 7
        + "    items:\n"  # 8
        + "      - title: P\n"  # 9
        + "        summary: S\n"
        + "        date: 2023-10-01\n",
        9,
        "publications[1].url",
        "is missing",
    ),
    (
        "empty required field",
        'title: T\ndate: 2023-11-01\nsubject: ""\npreheader: P\neditor: E\nsections:\n' + STORY,
        3,
        "subject",
        "is empty",
    ),
    (
        "blank required field",
        "title: T\ndate: 2023-11-01\nsubject: S\npreheader: P\neditor:\nsections:\n" + STORY,
        5,
        "editor",
        "is empty",
    ),
    (
        "no sections at all",
        "title: T\ndate: 2023-11-01\nsubject: S\npreheader: P\neditor: E\n",
        1,
        "sections",
        "has no sections; add at least one",
    ),
    (
        "http address",
        HEAD
        + "  - kind: publications\n"  # 7
        + "    items:\n"
        + "      - title: P1\n"  # 9
        + "        url: https://example.org/p1\n"
        + "        summary: S\n"
        + "        date: 2023-10-01\n"
        + "      - title: P2\n"  # 13
        + "        url: http://example.org/p2\n"  # 14
        + "        summary: S\n"
        + "        date: 2023-10-01\n",
        14,
        "publications[2].url",
        "must be an https:// address, not 'http://example.org/p2'",
    ),
    (
        "image without alt text",
        HEAD
        + STORY
        + "    image:\n"  # 10
        + "      src: https://example.org/a.png\n",
        10,
        "story.image.alt",
        "is missing: every image needs alt text describing it for people who cannot see it",
    ),
    (
        "image file missing next to issue.yaml",
        HEAD + STORY + "    image:\n      src: photo.png\n      alt: A photo\n",
        11,
        "story.image.src",
        "no file 'photo.png' next to issue.yaml",
    ),
    (
        "image outside the issue folder",
        HEAD + STORY + "    image:\n      src: ../photo.png\n      alt: A photo\n",
        11,
        "story.image.src",
        "'../photo.png' must be a file inside the issue's folder",
    ),
    (
        "impossible date",
        "title: T\ndate: 2023-02-30\nsubject: S\npreheader: P\neditor: E\nsections:\n" + STORY,
        2,
        "date",
        "'2023-02-30' is not a real date",
    ),
    (
        "badly written date",
        "title: T\ndate: 10/10/2023\nsubject: S\npreheader: P\neditor: E\nsections:\n" + STORY,
        2,
        "date",
        "must be a date written as YYYY-MM-DD, not '10/10/2023'",
    ),
    (
        "bad event start",
        HEAD
        + "  - kind: events\n"
        + "    items:\n"
        + "      - title: Launch\n"  # 9
        + "        start: next Tuesday at 10\n"  # 10
        + "        location: Leeds\n"
        + "        url: https://example.org/e\n",
        10,
        "events[1].start",
        "must be a date and time written as YYYY-MM-DD HH:MM, not 'next Tuesday at 10'",
    ),
    (
        "unknown section kind with suggestion",
        HEAD + "  - kind: event\n    items: []\n",
        7,
        "sections[1].kind",
        "unknown kind 'event' (did you mean 'events'?); use one of story, publications, places, "
        "collaborations, events, call_to_action, links, contact",
    ),
    (
        "section without kind",
        HEAD + "  - heading: Further reading\n    items: []\n",
        7,
        "sections[1]",
        "needs a 'kind:' line saying which kind of section it is (story, publications, places, "
        "collaborations, events, call_to_action, links, contact)",
    ),
    (
        "empty items list",
        HEAD + "  - kind: links\n    items: []\n",
        8,
        "links.items",
        "has no items; add at least one or remove the section",
    ),
    (
        "list where text is expected",
        HEAD + "  - kind: story\n    title: [Two, titles]\n    body: Text.\n",
        8,
        "story.title",
        "must be text, not a list",
    ),
    (
        "yes/no where text is expected",
        HEAD + "  - kind: story\n    title: yes\n    body: Text.\n",
        8,
        "story.title",
        "must be text, not yes/no (true)",
    ),
    (
        "text where a list of items is expected",
        HEAD + "  - kind: links\n    items: https://example.org\n",
        8,
        "links.items",
        "must be a list of items (each starting with '- '), not 'https://example.org'",
    ),
    (
        "sections written as a group of fields",
        HEAD + "  story: yes\n",
        6,
        "sections",
        "must be a list of sections (each starting with '- kind:'), not a group of fields",
    ),
    (
        "key written twice",
        "title: T\ntitle: U\ndate: 2023-11-01\nsubject: S\npreheader: P\neditor: E\nsections:\n" + STORY,
        2,
        "title",
        "written twice (first on line 1); keep one",
    ),
    (
        "bad language tag",
        HEAD.replace("editor: E\n", "editor: E\nlanguage: English\n") + STORY,
        6,
        "language",
        "must be a language tag such as en-GB or cy, not 'English' (did you mean en-GB?)",
    ),
    (
        "archive: maybe",
        HEAD.replace("editor: E\n", "editor: E\narchive: maybe\n") + STORY,
        6,
        "archive",
        "must be true or false, not 'maybe'",
    ),
    (
        "image width that is not a number of pixels",
        HEAD + STORY + "    image:\n      src: https://example.org/a.png\n      alt: A\n      width: wide\n",
        13,
        "story.image.width",
        "must be a whole number of pixels, not 'wide'",
    ),
    (
        "button label too long",
        HEAD
        + "  - kind: call_to_action\n"
        + "    text: Join us.\n"
        + "    label: Please do click this button to register for our monthly newsletter\n"  # 9
        + "    url: https://example.org/join\n",
        9,
        "call_to_action.label",
        "is 66 characters; keep it to 40",
    ),
    (
        "bad contact email",
        HEAD + "  - kind: contact\n    text: Write to us.\n    email: not-an-address\n",
        9,
        "contact.email",
        "'not-an-address' is not an email address: An email address must have an @-sign.",
    ),
    (
        "unknown key inside an item, with suggestion",
        HEAD
        + "  - kind: links\n    items:\n      - label: L\n        url: https://example.org\n        lable: x\n",
        11,
        "links[1].lable",
        "unknown key 'lable' (did you mean 'label'?)",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "where", "message"),
    [case[1:] for case in EXACT_CASES],
    ids=[case[0] for case in EXACT_CASES],
)
def test_each_mistake_is_reported_at_its_line(tmp_path, write_issue, editor, text, line, where, message):
    path = write_issue(tmp_path, text)
    assert (line, where, message) in problems_in(path, editor.vocabulary)


def test_unknown_topic_suggests_the_closest_topic_and_names_the_list(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, HEAD + STORY + "    topics: [housng]\n")
    line, where, message = only_problem(path, editor.vocabulary)
    assert (line, where) == (10, "story.topics[1]")
    assert message.startswith(
        "unknown topic 'housng' (did you mean 'housing'?); closest topics: housing (Housing, homes and places), "
    )
    assert "; all topics are listed in " in message
    assert message.endswith("topics.yaml")


def test_unknown_region_is_reported_and_names_the_list(tmp_path, write_issue, editor):
    path = write_issue(
        tmp_path,
        HEAD
        + "  - kind: places\n"
        + "    items:\n"
        + "      - place: Atlantis\n"
        + "        region: atlantis\n"  # 10
        + "        updates: Sunk.\n",
    )
    line, where, message = only_problem(path, editor.vocabulary)
    assert (line, where) == (10, "places[1].region")
    assert message.startswith("unknown region 'atlantis'; closest regions: ")
    assert "; all regions are listed in " in message
    assert message.endswith("regions.yaml")


def test_two_sections_of_one_kind_are_told_apart(tmp_path, write_issue, editor):
    path = write_issue(
        tmp_path,
        HEAD
        + "  - kind: story\n"  # 7
        + "    title: First\n"
        + "    body: Text.\n"
        + "    links:\n"  # 10
        + "      - label: L\n"  # 11
        + "        url: ftp://example.org\n"  # 12
        + "  - kind: story\n"  # 13
        + "    title: Second\n"
        + "    body: ''\n",  # 15
    )
    assert problems_in(path, editor.vocabulary) == [
        (12, "story#1.links[1].url", "must be an https:// address, not 'ftp://example.org'"),
        (15, "story#2.body", "is empty"),
    ]


def test_yaml_syntax_error_gives_its_line(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, "title: T\ndate: [2023\nsubject: S\n")
    line, where, message = only_problem(path, editor.vocabulary)
    assert line == 3
    assert where == ""
    assert message.startswith("not valid YAML: ")


def test_tab_indentation_is_a_yaml_error_with_its_line(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, HEAD + "  - kind: story\n\ttitle: Tabbed\n")
    line, _, message = only_problem(path, editor.vocabulary)
    assert line == 8
    assert message.startswith("not valid YAML: ")


@pytest.mark.parametrize(
    ("text", "shape"),
    [("", "empty"), ("# only a comment\n", "empty"), ("- title: T\n- date: 2023-11-01\n", "a list")],
    ids=["empty file", "only a comment", "a list"],
)
def test_file_that_is_not_a_group_of_fields(tmp_path, write_issue, editor, text, shape):
    path = write_issue(tmp_path, text)
    assert only_problem(path, editor.vocabulary) == (
        1,
        "",
        f"must be a group of fields (title:, date:, sections: ...), not {shape}",
    )


BROKEN = """\
titel: October
date: 2023-02-30
subject: ""
preheader: P
editor: E
language: English
archive: maybe
sections:
  - kind: story
    title: [One, Two]
    body: Text.
    image:
      src: https://example.org/a.png
  - kind: story
    title: Second
    body: Text.
    topics: [housng]
  - kind: publications
    items:
      - title: P1
        url: https://example.org/p1
        summary: S
        date: 2023-10-01
      - title: P2
        url: http://example.org/p2
        summary: S
        date: 10/10/2023
  - kind: event
    items: []
  - heading: Where is my kind?
  - kind: links
    items: []
"""


def test_all_problems_are_collected_in_one_pass_in_line_order(project, write_issue, repo_root):
    """With the project as working directory each line reads `issues/<slug>/issue.yaml:LINE: where: message`."""
    write_issue(project, BROKEN, slug="broken")
    topics = display_path(repo_root / "subscribers" / "topics.yaml")
    with pytest.raises(ProblemsFound) as caught:
        Editor(Settings()).check("broken")
    file = "issues/broken/issue.yaml"
    kinds = "story, publications, places, collaborations, events, call_to_action, links, contact"
    assert [str(problem) for problem in caught.value.problems] == [
        f"{file}:1: titel: unknown key 'titel' (did you mean 'title'?)",
        f"{file}:1: title: is missing",
        f"{file}:2: date: '2023-02-30' is not a real date",
        f"{file}:3: subject: is empty",
        f"{file}:6: language: must be a language tag such as en-GB or cy, not 'English' (did you mean en-GB?)",
        f"{file}:7: archive: must be true or false, not 'maybe'",
        f"{file}:10: story#1.title: must be text, not a list",
        f"{file}:12: story#1.image.alt: is missing: every image needs alt text describing it "
        "for people who cannot see it",
        f"{file}:17: story#2.topics[1]: unknown topic 'housng' (did you mean 'housing'?); "
        "closest topics: housing (Housing, homes and places), children-young-people (Children and young people), "
        "communities (Communities and neighbourhoods), nhs-integrated-care (NHS and integrated care); "
        f"all topics are listed in {topics}",
        f"{file}:25: publications[2].url: must be an https:// address, not 'http://example.org/p2'",
        f"{file}:27: publications[2].date: must be a date written as YYYY-MM-DD, not '10/10/2023'",
        f"{file}:28: sections[4].kind: unknown kind 'event' (did you mean 'events'?); use one of {kinds}",
        f"{file}:30: sections[5]: needs a 'kind:' line saying which kind of section it is ({kinds})",
        f"{file}:32: links.items: has no items; add at least one or remove the section",
    ]


def test_key_written_twice_inside_a_section_is_named_like_other_problems(tmp_path, write_issue, editor):
    path = write_issue(
        tmp_path,
        HEAD
        + STORY
        + "  - kind: contact\n"  # 10
        + "    text: Write to us.\n"
        + "    email: a@example.org\n"  # 12
        + "    email: b@example.org\n",  # 13
    )
    assert only_problem(path, editor.vocabulary) == (
        13,
        "contact.email",
        "written twice (first on line 12); keep one",
    )


def test_valid_values_in_other_shapes_are_accepted(tmp_path, write_issue, editor):
    """Region by display name, a single topic, a whole-day event and a quoted date all load."""
    path = write_issue(
        tmp_path,
        "title: T\ndate: '2023-11-01'\nsubject: S\npreheader: P\neditor: E\nsections:\n"
        "  - kind: places\n"
        "    items:\n"
        "      - place: Leeds\n"
        "        region: yorkshire and the humber\n"
        "        updates: Text.\n"
        "        topics: housing\n"
        "  - kind: events\n"
        "    items:\n"
        "      - title: Day\n"
        "        start: 2023-11-05\n"
        "        location: Online\n"
        "        url: https://example.org/e\n",
    )
    issue = load_issue(path, editor.vocabulary)
    places, events = issue.sections
    assert str(issue.date) == "2023-11-01"
    assert places.items[0].region == "yorkshire-humber"
    assert places.items[0].topics == ("housing",)
    assert events.items[0].start.isoformat() == "2023-11-05T00:00:00"


# An address field (url, an image's src) holding what no address can hold (issue 11): the email
# escapes it, but the link is broken and the text part prints it as written.
PUBLICATION = (
    HEAD
    + "  - kind: publications\n"  # 7
    + "    items:\n"
    + "      - title: P1\n"  # 9
    + "        url: {url}\n"  # 10
    + "        summary: S\n"
    + "        date: 2023-10-01\n"
)


@pytest.mark.parametrize(
    ("url", "shown", "held"),
    [
        (
            'https://example.org/"><script>alert(1)</script>',
            'https://example.org/"><script>alert(1)</script>',
            "'\"'",
        ),
        ("https://example.org/a<b", "https://example.org/a<b", "'<'"),
        ("https://example.org/a>b", "https://example.org/a>b", "'>'"),
        ("'https://example.org/a b'", "https://example.org/a b", "a space"),
        ('"https://example.org/a\\tb"', "https://example.org/a\\tb", "a tab"),
        ('"https://example.org/a\\nb"', "https://example.org/a\\nb", "a line break"),
        ('"https://example.org/a\\x07b"', "https://example.org/a\\x07b", "a control character"),
        ("https://example.org/a\\b", "https://example.org/a\\b", "'\\'"),
        ("https://example.org/a`b", "https://example.org/a`b", "'`'"),
    ],
)
def test_an_address_field_refuses_what_no_address_can_hold(
    tmp_path, write_issue, editor, monkeypatch, url, shown, held
):
    monkeypatch.chdir(tmp_path)
    path = write_issue(tmp_path, PUBLICATION.format(url=url))
    with pytest.raises(ProblemsFound) as caught:
        load_issue(path, editor.vocabulary)
    assert [str(problem) for problem in caught.value.problems] == [
        f"issues/draft/issue.yaml:10: publications[1].url: must be an https:// address, which cannot hold "
        f"{held}: '{shown}'"
    ]


def test_an_image_address_refuses_quotes_and_angle_brackets_too(tmp_path, write_issue, editor, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = HEAD + STORY + '    image:\n      src: https://example.org/a.png"onerror="x\n      alt: A\n'
    path = write_issue(tmp_path, text)
    with pytest.raises(ProblemsFound) as caught:
        load_issue(path, editor.vocabulary)
    assert [str(problem) for problem in caught.value.problems] == [
        "issues/draft/issue.yaml:11: story.image.src: must be an https:// address, which cannot hold '\"': "
        "'https://example.org/a.png\"onerror=\"x'"
    ]


def test_an_address_that_cannot_be_read_as_one_is_a_problem_not_a_crash(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, PUBLICATION.format(url="https://[example.org/p"))
    assert only_problem(path, editor.vocabulary) == (
        10,
        "publications[1].url",
        "must be an https:// address, not 'https://[example.org/p'",
    )


def test_addresses_with_queries_fragments_and_escapes_are_still_fine(tmp_path, write_issue, editor):
    url = "https://example.org/a%20b/caf%C3%A9?x=1&y=[2]#part|x~y"
    path = write_issue(tmp_path, PUBLICATION.format(url=url))
    issue = load_issue(path, editor.vocabulary)
    assert issue.sections[0].items[0].url == url
