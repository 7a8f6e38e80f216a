"""Editing an issue at the desk (`/desk/issues/<slug>/edit`): the issue file as a form, saved back as a
small change. A real app over a real database (SQLite and PostgreSQL) and a copy of the sample issues
folder; the form is posted as a browser would post it, read from the page the app served (every
input, checked box, selected option and textarea, and the one button pressed).

The form's schema and its conversions (`content/schema.py`) are tested on their own at the end."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from desk_support import ADMIN, CONTRIBUTOR, add_team, csrf_of, open_desk, sign_in
from newsletter.content import schema
from newsletter.content.issuefile import read_issue_file
from newsletter.content.loader import load_issue
from newsletter.errors import Problem, ProblemsFound
from newsletter.vocabulary import Vocabulary
from web_support import REPO_ROOT

EDIT = "/desk/issues/2023-10/edit"
VOCABULARY = Vocabulary.load(REPO_ROOT / "subscribers")


@pytest.fixture
def site(database_url, tmp_path):
    yield from open_desk(database_url, tmp_path)


@pytest.fixture
def team(site):
    return add_team(site)


@pytest.fixture
def issue_file(site) -> Path:
    return site.settings.issues_dir / "2023-10" / "issue.yaml"


class _Form(HTMLParser):
    """The fields a browser would send from the page's edit form (buttons left out: one is pressed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.in_form = False
        self.textarea: tuple[str, list[str]] | None = None
        self.select: tuple[str, list[tuple[str, bool]]] | None = None
        self.option: list | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "form" and "edit-form" in a.get("class", ""):
            self.in_form = True
        if not self.in_form or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea":
            self.textarea = (a["name"], [])
        elif tag == "select":
            self.select = (a["name"], [])
        elif tag == "option" and self.select is not None:
            self.option = [a.get("value"), "selected" in a, ""]

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea[1].append(data)
        if self.option is not None:
            self.option[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "textarea" and self.textarea is not None:
            text = "".join(self.textarea[1])
            text = text[1:] if text.startswith("\n") else text  # as the HTML parser drops it
            self.fields.append((self.textarea[0], text.replace("\n", "\r\n")))  # as browsers send it
            self.textarea = None
        elif tag == "option" and self.option is not None and self.select is not None:
            value, chosen, text = self.option
            self.select[1].append((text.strip() if value is None else value, chosen))
            self.option = None
        elif tag == "select" and self.select is not None:
            name, options = self.select
            chosen = [value for value, picked in options if picked] or [options[0][0]]
            self.fields.append((name, chosen[0]))
            self.select = None


def parsed(html: str) -> _Form:
    found = _Form()
    found.feed(html)
    return found


def form_of(html: str) -> list[tuple[str, str]]:
    return parsed(html).fields


def setting(fields: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """The form with the field `name` (which must be there, once) set to `value`."""
    assert sum(1 for key, _ in fields if key == name) == 1, name
    return [(key, value if key == name else old) for key, old in fields]


def _encoded(fields: list[tuple[str, str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(fields)


def submit(site, fields, op, path=EDIT):
    return site.client.post(
        path, data=_encoded([*fields, ("op", op)]), content_type="application/x-www-form-urlencoded"
    )


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def edit_page(site) -> str:
    page = site.client.get(EDIT)
    assert page.status_code == 200, page.text
    return page.text


# --- The page --------------------------------------------------------------------------------------------


def test_the_edit_page_shows_the_sample_issue_filled_in(site, team):
    sign_in(site, ADMIN)
    html = edit_page(site)
    fields = dict(form_of(html))
    assert fields["title"] == "October 2023 Newsletter"
    assert fields["date"] == "2023-10-20"
    assert fields["archive"] == "yes"
    assert fields["sections.1.kind"] == "story"
    assert fields["sections.1.title"] == "Growing a Movement for Health Equity: our first annual conference"
    assert fields["sections.3.items.1.url"].startswith("https://www.instituteofhealthequity.example.org/")
    assert fields["sections.3.items.1.date"] == "2023-10-02"
    assert fields["sections.4.items.1.region"] == "yorkshire-humber"
    assert fields["sections.4.items.1.kind"] == "Marmot City"  # kept as the file writes it
    assert fields["sections.5.items.3.partners"].split("\r\n")[:2] == [
        "Barnardo's",
        "Birmingham and Solihull ICS",
    ]
    assert "The first annual Health Equity Network conference" in fields["sections.1.body"]
    assert 'type="date"' in html and 'id="field-sections.3.items.1.date"' in html
    topics = [value for name, value in form_of(html) if name == "sections.2.topics"]
    assert topics == ["housing", "communities"] or sorted(topics) == ["communities", "housing"]
    # Fieldsets with legends; the Markdown rendered (sanitised) under its textarea.
    assert "<h3>1. Story: Growing a Movement" in html
    assert "<strong>Growing a Movement for Health Equity</strong>" in html
    assert 'name="version" value="' in html
    ids = parsed(html).ids
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    assert all(not re.search(r"\s", i) for i in ids)


def test_saving_the_form_untouched_changes_nothing(site, team, issue_file):
    sign_in(site, ADMIN)
    before = issue_file.read_bytes()
    answer = submit(site, form_of(edit_page(site)), "save")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"{EDIT}?saved=1")
    assert issue_file.read_bytes() == before
    assert "saved" not in [event.action for event in team.history(issue_slug="2023-10")]


def test_changing_a_story_title_changes_that_line_and_keeps_every_comment(site, team, issue_file):
    sign_in(site, ADMIN)
    before = issue_file.read_text(encoding="utf-8")
    fields = setting(
        form_of(edit_page(site)), "sections.2.title", "Building Health Equity: what developers can do"
    )
    answer = submit(site, fields, "save")
    assert answer.status_code == 302
    after = issue_file.read_text(encoding="utf-8")
    assert changed_lines(before, after) == [
        "-    title: Building Health Equity – The Role of Developers",
        '+    title: "Building Health Equity: what developers can do"',
    ]
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)
    [event] = [event for event in team.history(issue_slug="2023-10") if event.action == "saved"]
    assert event.actor == ADMIN or "Ann" in event.actor

    shown = site.client.get(answer.headers["Location"])
    assert shown.status_code == 200
    assert "Saved. No problems found." in shown.text
    assert dict(form_of(shown.text))["sections.2.title"] == "Building Health Equity: what developers can do"


def test_a_contributor_adds_a_publication_and_a_place_update_and_the_file_loads(site, team, issue_file):
    sign_in(site, CONTRIBUTOR)
    fields = form_of(edit_page(site))
    added = submit(site, fields, "add-item:sections.3.items")
    assert added.status_code == 200
    assert "Added a publication. Nothing is saved until you press Save." in added.text
    assert 'id="field-sections.3.items.3"' in added.text
    fields = form_of(added.text)
    for name, value in {
        "title": "Fair Society, Healthy Lives",
        "url": "https://www.instituteofhealthequity.example.org/resources-reports/fair-society-healthy-lives",
        "summary": "The Marmot Review.\r\n\r\nTen years on.",
        "date": "2010-02-11",
        "authors": "Michael Marmot\r\nUCL Institute of Health Equity",
    }.items():
        fields = setting(fields, f"sections.3.items.3.{name}", value)
    fields.append(("sections.3.items.3.topics", "health-equity"))

    placed = submit(site, fields, "add-item:sections.4.items")
    assert placed.status_code == 200 and "Added a place update." in placed.text
    fields = form_of(placed.text)
    assert dict(fields)["sections.3.items.3.title"] == "Fair Society, Healthy Lives"  # nothing typed lost
    fields = setting(fields, "sections.4.items.8.place", "Coventry")
    fields = setting(fields, "sections.4.items.8.region", "west-midlands")
    fields = setting(fields, "sections.4.items.8.kind", "marmot-city")
    fields = setting(fields, "sections.4.items.8.updates", "The first Marmot City.\r\n")
    before = issue_file.read_text(encoding="utf-8")
    assert submit(site, fields, "save").status_code == 302

    issue = load_issue(issue_file, VOCABULARY)
    publication = issue.sections[2].items[2]
    assert publication.title == "Fair Society, Healthy Lives"
    assert publication.date == dt.date(2010, 2, 11)
    assert publication.authors == ("Michael Marmot", "UCL Institute of Health Equity")
    assert publication.summary == "The Marmot Review.\n\nTen years on."
    assert publication.topics == ("health-equity",)
    place = issue.sections[3].items[7]
    assert (place.place, place.region, place.kind) == ("Coventry", "west-midlands", "Marmot City")
    after = issue_file.read_text(encoding="utf-8")
    assert "        date: 2010-02-11\n" in after
    assert all(line.startswith("+") for line in changed_lines(before, after))  # only lines added


def test_a_bad_url_is_shown_next_to_its_field_and_the_draft_still_saves(site, team, issue_file):
    sign_in(site, ADMIN)
    fields = setting(form_of(edit_page(site)), "sections.3.items.2.url", "www.example.org/report")
    answer = submit(site, fields, "save")
    assert answer.status_code == 302
    assert "url: www.example.org/report" in issue_file.read_text(encoding="utf-8")
    html = site.client.get(answer.headers["Location"]).text
    assert "Saved. 1 problem to fix before this issue can be submitted." in html
    error = re.search(
        r'<div class="field-error" id="error-sections\.3\.items\.2\.url">(.*?)</div>', html, re.S
    )
    assert error and "must be an https:// address, not &#39;www.example.org/report&#39;" in error.group(1)
    field = re.search(r'<input id="field-sections\.3\.items\.2\.url"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and "error-sections.3.items.2.url" in field
    assert '<a href="#field-sections.3.items.2.url">Section 3 (Publications), publication 2: Address' in html

    fixed = setting(form_of(html), "sections.3.items.2.url", "https://www.example.org/report")
    assert submit(site, fixed, "save").status_code == 302
    html = site.client.get(EDIT + "?saved=1").text
    assert "Saved. No problems found." in html and "error-sections.3.items.2.url" not in html
    load_issue(issue_file, VOCABULARY)


def test_a_file_changed_on_disk_is_not_overwritten_until_the_editor_says_so(site, team, issue_file):
    sign_in(site, ADMIN)
    fields = setting(form_of(edit_page(site)), "title", "Mine")
    theirs = issue_file.read_text(encoding="utf-8").replace("editor: Alison Biedron", "editor: Someone Else")
    issue_file.write_text(theirs, encoding="utf-8")

    refused = submit(site, fields, "save")
    assert refused.status_code == 409
    assert issue_file.read_text(encoding="utf-8") == theirs
    assert "Nothing was saved:" in refused.text and "was changed since you opened this page" in refused.text
    assert dict(form_of(refused.text))["title"] == "Mine"  # what they typed is still there
    assert f'href="{EDIT}"' in refused.text  # open the file as it is now
    [over] = re.findall(r'value="(save-over:[0-9a-f]{64})"', refused.text)

    assert submit(site, form_of(refused.text), "save").status_code == 409  # Save alone still refuses
    assert submit(site, form_of(refused.text), over).status_code == 302
    after = issue_file.read_text(encoding="utf-8")
    assert "title: Mine\n" in after and "editor: Alison Biedron" in after  # theirs was overwritten


def test_without_a_session_get_redirects_and_post_is_refused(site, team, issue_file):
    before = issue_file.read_bytes()
    page = site.client.get(EDIT)
    assert page.status_code == 302 and "/desk/sign-in" in page.headers["Location"]
    posted = site.client.post(EDIT, data={"title": "x", "op": "save", "version": "0" * 64})
    assert posted.status_code == 401
    assert issue_file.read_bytes() == before


def test_a_post_without_its_csrf_token_changes_no_byte(site, team, issue_file):
    sign_in(site, ADMIN)
    before = issue_file.read_bytes()
    fields = [(name, value) for name, value in form_of(edit_page(site)) if name != "csrf_token"]
    answer = submit(site, setting(fields, "title", "Forged"), "save")
    assert answer.status_code == 400 and "This form had expired" in answer.text
    assert issue_file.read_bytes() == before
    assert "saved" not in [event.action for event in team.history(issue_slug="2023-10")]


@pytest.mark.parametrize(
    "op",
    [
        "remove:sections.99",
        "up:sections.3.items.9",
        "down:sections.1.links.7",
        "add-item:sections.99.items",
        "add-item:sections.1.title",
        "add-item:sections.1.image",
        "remove:sections",
        "remove:../../etc",
        "remove:sections.0",
        "add-section:poem",
        "explode:sections.1",
    ],
)
def test_an_op_on_a_part_that_does_not_exist_is_400(site, team, issue_file, op):
    sign_in(site, ADMIN)
    before = issue_file.read_bytes()
    answer = submit(site, form_of(edit_page(site)), op)
    assert answer.status_code == 400
    assert issue_file.read_bytes() == before


@pytest.mark.parametrize("slug", ["..", "..%2F..%2Fetc", "2023-10%2F..", "UPPER", "a_b"])
def test_a_slug_that_is_not_one_never_reaches_the_disk(site, team, slug):
    sign_in(site, ADMIN)
    assert site.client.get(f"/desk/issues/{slug}/edit").status_code in (400, 404)
    token = csrf_of(site.client, "/desk/")
    answer = site.client.post(f"/desk/issues/{slug}/edit", data={"csrf_token": token, "op": "save"})
    assert answer.status_code in (400, 404)
    assert site.client.get("/desk/issues/2099-01/edit").status_code == 404


def test_moving_and_removing_sections_and_items(site, team, issue_file):
    sign_in(site, ADMIN)
    before = issue_file.read_bytes()
    fields = form_of(edit_page(site))
    down = submit(site, fields, "down:sections.1")
    assert down.status_code == 200 and "Moved the section down." in down.text
    moved = dict(form_of(down.text))
    assert moved["sections.1.title"] == "Building Health Equity – The Role of Developers"
    assert moved["sections.2.title"].startswith("Growing a Movement")
    up = submit(site, form_of(down.text), "up:sections.4.items.2")
    assert "Moved the place update up." in up.text
    assert dict(form_of(up.text))["sections.4.items.1.place"] == "South West"
    gone = submit(site, form_of(up.text), "remove:sections.1.links.2")
    assert "Removed the link." in gone.text
    names = [name for name, _ in form_of(gone.text)]
    assert "sections.1.links.1.url" in names and "sections.1.links.2.url" not in names
    story = submit(site, form_of(gone.text), "add-section:story")
    assert "Added a section at the end: Story." in story.text
    assert dict(form_of(story.text))["sections.12.kind"] == "story"
    assert issue_file.read_bytes() == before  # nothing written until Save
    assert submit(site, form_of(story.text), "save").status_code == 302
    saved = read_issue_file(issue_file).data
    assert saved["sections"][0]["title"].startswith("Building Health Equity")
    assert saved["sections"][-1] == {"kind": "story", "title": "", "body": ""}
    assert [link["label"] for link in saved["sections"][0]["links"]] == ["About the partnership"]
    assert saved["sections"][3]["items"][0]["place"] == "South West"
    html = site.client.get(EDIT).text
    assert 'id="error-sections.12.title"' in html and 'id="error-sections.12.body"' in html


def test_script_and_javascript_links_in_markdown_never_reach_the_page(site, team, issue_file):
    sign_in(site, ADMIN)
    body = (
        'Hello <script>alert(1)</script> and [x](javascript:alert(1)) and <a href="javascript:alert(2)">y</a>'
    )
    fields = setting(form_of(edit_page(site)), "sections.1.body", body)
    fields = setting(fields, "sections.1.title", '"><script>alert(3)</script>')
    for answer in (
        submit(site, fields, "preview"),
        site.client.get(submit(site, fields, "save").headers["Location"]),
    ):
        html = answer.text
        assert "<script>alert" not in html
        assert not re.search(r"""href=["']?\s*javascript:""", html, re.I)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text in the textarea
        assert "&#34;&gt;&lt;script&gt;alert(3)" in html
    assert "<script>alert(1)</script>" in issue_file.read_text(
        encoding="utf-8"
    )  # the file keeps what was written


def test_a_file_that_is_not_yaml_is_explained_not_edited(site, team, issue_file):
    sign_in(site, ADMIN)
    issue_file.write_text("title: [unclosed\n", encoding="utf-8")
    page = site.client.get(EDIT)
    assert page.status_code == 200
    assert "cannot be edited here until its file is fixed in a text editor" in page.text
    assert 'class="edit-form"' not in page.text


def test_what_the_form_cannot_show_is_kept(site, team, issue_file):
    sign_in(site, ADMIN)
    text = issue_file.read_text(encoding="utf-8")
    text = text.replace("    label: Lead story\n", "    label: Lead story\n    quote: a misspelt key\n", 1)
    text = text.replace("  - kind: contact\n", "  - kind: contcat\n", 1)
    text = text.replace("language: en-GB\n", "language: en-GB\nfooter: [a, b]\n", 1)
    issue_file.write_text(text, encoding="utf-8")
    html = edit_page(site)
    assert "The file also has quote here" in html and "This section has no kind the desk knows" in html
    assert re.search(r'id="error-sections\.1"[^>]*>.*unknown key &#39;quote&#39;', html, re.S)
    fields = setting(form_of(html), "sections.2.title", "Changed")
    assert submit(site, fields, "save").status_code == 302
    after = issue_file.read_text(encoding="utf-8")
    assert changed_lines(text, after) == [
        "-    title: Building Health Equity – The Role of Developers",
        "+    title: Changed",
    ]


# --- The schema on its own ---------------------------------------------------------------------------------


def test_every_field_of_the_model_has_a_widget_and_a_label():
    specs = [*schema.issue_fields(VOCABULARY)]
    for kind in schema.SECTION_KINDS:
        specs += schema.section_fields(kind, VOCABULARY)
    stack = list(specs)
    while stack:
        spec = stack.pop()
        assert spec.widget in schema.WIDGETS and spec.label and spec.label[0].isupper(), spec
        if spec.widget in ("group", "items"):
            assert spec.children, spec
            stack += spec.children
        if spec.widget == "items":
            assert spec.item_label, spec
        if spec.widget in ("select", "topics"):
            assert spec.choices, spec
    assert set(schema.SECTION_LABELS) == set(schema.SECTION_KINDS)
    image = next(s for s in schema.section_fields("story", VOCABULARY) if s.name == "image")
    assert [(c.name, c.label, c.required) for c in image.children] == [
        ("src", "Picture file or address", True),
        ("alt", "Alt text", True),
        ("width", "Width in pixels", False),
    ]
    event = {s.name: s for s in schema.section_fields("events", VOCABULARY)[1].children}
    assert event["register"].label == "Registration link" and event["register"].widget == "url"
    assert event["start"].widget == "datetime" and event["online"].widget == "checkbox"
    assert not event["location"].required  # an online event may leave it out


def test_the_sample_goes_to_form_values_and_back_unchanged(sample_issue_path):
    data = read_issue_file(sample_issue_path).data
    values = schema.data_to_form_values(data)
    form = {name: value if isinstance(value, list) else [value] for name, value in values.items()}
    for name in ("sections.5.items.3.partners", "sections.3.items.1.authors"):
        form[name] = ["\r\n".join(form[name])]  # a textarea, one name a line
    assert schema.form_to_data(form) == data


def test_form_values_are_typed_as_yaml_should_write_them():
    form = {
        "title": ["T"],
        "date": ["2023-11-02"],
        "archive": ["yes"],
        "language": [""],
        "intro": ["  "],
        "sections.1.kind": ["events"],
        "sections.1.items.1.title": ["E"],
        "sections.1.items.1.start": ["2023-11-02T18:00"],
        "sections.1.items.1.end": ["19:30"],
        "sections.1.items.1.url": ["https://example.org"],
        "sections.1.items.1.location": [""],
        "sections.1.items.1.speakers.1.name": [""],
        "sections.1.items.1.topics": ["housing", "climate"],
        "sections.2.kind": ["story"],
        "sections.2.title": [""],
        "sections.2.body": ["One\r\ntwo\r\n\r\n"],
        "sections.2.image.src": [""],
        "sections.2.image.alt": ["A hall"],
        "sections.2.image.width": ["600px"],
        "sections.2.links.1.label": ["L"],
        "sections.2.links.1.url": [""],
    }
    assert schema.form_to_data(form) == {
        "title": "T",
        "date": dt.date(2023, 11, 2),
        "subject": "",
        "preheader": "",
        "editor": "",
        "archive": True,
        "sections": [
            {
                "kind": "events",
                "items": [
                    {
                        "title": "E",
                        "start": dt.datetime(2023, 11, 2, 18, 0),
                        "end": "19:30",
                        "url": "https://example.org",
                        "speakers": [{"name": ""}],
                        "topics": ["housing", "climate"],
                    }
                ],
            },
            {
                "kind": "story",
                "title": "",
                "body": "One\ntwo\n",
                "image": {"src": "", "alt": "A hall", "width": "600px"},
                "links": [{"label": "L", "url": ""}],
            },
        ],
    }


def test_the_companions_keep_what_a_blank_field_or_a_single_word_was():
    data = {
        "title": None,
        "archive": False,
        "intro": "",
        "sections": [
            {
                "kind": "publications",
                "items": [{"authors": "One Author", "topics": ["marmot-places", "housing"]}],
            }
        ],
    }
    values = schema.data_to_form_values(data)
    assert values["title!blank"] == "null" and values["archive!blank"] == "false"
    assert values["sections.1.items.1.authors!one"] == "yes"
    form = {name: value if isinstance(value, list) else [value] for name, value in values.items()}
    form["sections.1.items.1.topics"] = ["housing", "marmot-places", "climate"]  # in the vocabulary's order
    back = schema.form_to_data(form)
    assert back["title"] is None and back["archive"] is False and back["intro"] == ""
    item = back["sections"][0]["items"][0]
    assert item["authors"] == "One Author"
    assert item["topics"] == ["marmot-places", "housing", "climate"]  # the file's order, then the new one


def test_ops_change_the_data_and_refuse_what_is_not_there():
    data = {"sections": [{"kind": "story", "title": "A", "body": "b"}, {"kind": "links", "items": []}]}
    assert schema.add_item(data, "sections.1.links") == "sections.1.links.1"
    assert data["sections"][0]["links"] == [{"label": "", "url": ""}]
    assert schema.add_item(data, "sections.2.items") == "sections.2.items.1"
    assert schema.add_section(data, "events") == "sections.3"
    assert data["sections"][2] == {"kind": "events", "items": [{"title": "", "start": "", "url": ""}]}
    assert schema.move(data, "sections.3", -1) == "sections.2"
    assert schema.move(data, "sections.1", -1) == "sections.1"  # already first
    assert schema.remove(data, "sections.2") == "sections"
    assert [section["kind"] for section in data["sections"]] == ["story", "links"]
    assert schema.item_label(data, "sections.1.links") == "link"
    for op, name in [
        (schema.remove, "sections.3"),
        (schema.remove, "sections.1.links.2"),
        (schema.add_item, "sections.1.title"),
        (schema.add_item, "sections.1.quote"),
        (schema.add_item, "sections"),
        (schema.remove, "sections.1.links.0"),
        (schema.remove, "title"),
        (schema.add_item, "sections.1.links.1.url"),
    ]:
        with pytest.raises(schema.NoSuchPart):
            op(data, name)
    with pytest.raises(schema.NoSuchPart):
        schema.add_section(data, "poem")


def test_each_problem_finds_its_field(tmp_path, write_issue):
    text = (REPO_ROOT / "issues" / "2023-10" / "issue.yaml").read_text(encoding="utf-8")
    text = text.replace("url: https://network.health-equity-network.example.org/join\n", "url: nowhere\n", 1)
    path = write_issue(tmp_path, text)
    with pytest.raises(ProblemsFound) as found:
        load_issue(path, VOCABULARY)
    data = read_issue_file(path).data
    names = [name for name in schema.data_to_form_values(data) if "!" not in name] + [
        "sections",
        "sections.1",
    ]
    placed = schema.place_problems(
        [
            *found.value.problems,
            Problem("x", 1, "", "not valid YAML"),
            Problem("x", 1, "story#1.quote", "unknown"),
        ],
        data,
        names,
        VOCABULARY,
    )
    assert [name for _, name in placed] == ["sections.1.links.2.url", None, "sections.1"]


def test_an_issue_larger_than_the_other_forms_allow_still_posts(site, team):
    sign_in(site, ADMIN)
    long_story = ("A paragraph of a long feature, written out in full. " * 40 + "\r\n\r\n") * 40  # ~90 kB
    fields = setting(form_of(edit_page(site)), "sections.1.body", long_story)
    answer = submit(site, fields, "preview")
    assert answer.status_code == 200 and "The previews now show what you wrote." in answer.text
    assert len(_encoded(fields)) > 64 * 1024


# --- The email as the editor types ----------------------------------------------------------------------


def test_the_live_preview_renders_the_form_as_it_reads_without_saving(site, team, issue_file):
    sign_in(site, CONTRIBUTOR)
    before = issue_file.read_bytes()
    fields = form_of(edit_page(site))
    title = next(name for name, value in fields if value.startswith("Growing a Movement"))
    fields = setting(fields, title, "A title typed a moment ago")
    answer = submit(site, fields, "live", path="/desk/issues/2023-10/live")
    assert answer.status_code == 200 and answer.json["problems"] == []
    email = site.client.get(answer.json["url"])
    assert email.status_code == 200 and "A title typed a moment ago" in email.text
    assert "default-src 'none'" in email.headers["Content-Security-Policy"]
    assert issue_file.read_bytes() == before  # nothing saved

    blank = submit(site, setting(fields, "subject", ""), "live", path="/desk/issues/2023-10/live")
    assert blank.json["url"] is None and blank.json["problems"] == ["subject: is empty"]
    assert site.client.get("/desk/issues/2023-10/live/not-a-render").status_code == 404


def test_the_live_preview_needs_a_session_and_the_forms_token(site, team):
    assert site.client.post("/desk/issues/2023-10/live", data={"title": "x"}).status_code == 401
    sign_in(site, CONTRIBUTOR)
    assert site.client.post("/desk/issues/2023-10/live", data={"title": "x"}).status_code == 400
