"""Segments: every operator on a hand-built member set, file errors, and the `segments` and `lists` commands."""

from __future__ import annotations

import csv
import re

import pytest

from newsletter.audience.segments import Segments
from newsletter.audience.service import Audience
from newsletter.errors import ProblemsFound
from newsletter.vocabulary import Vocabulary
from test_audience_support import (
    custom_audience,
    custom_settings,
    error_lines,
    import_text,
    run_cli,
    segment_emails,
    vocabulary_copy,
)

# Seven members; p is pending and matches almost everything, so it shows that only `status:` selects it.
MEMBERS = """\
email,name,sector,region,place,topics,lists,joined,status,team,grade,volunteer
a@nhs.example,Ann,nhs,london,Hackney,housing;climate,newsletter;network,2019-05-01,,red,1,
b@trust.nhs.example,Bea,nhs,wales,Cardiff,housing,newsletter,2021-06-15,,blue,,yes
c@notnhs.example,Cal,local-government,north-west,manchester,climate,events,2023-01-01,,red,2,no
d@council.gov.example,Dee,local-government,Wales,CARDIFF,early-years,newsletter;events,2023-07-20,,green,,
e@uni.ac.example,Eli,academia,North West,Lancaster,,network,2022-12-31,,,,
f@mail.example,Fay,,,,,newsletter,2020-01-01,,,,
p@pending.example,Pat,nhs,wales,Cardiff,housing;climate;early-years,newsletter;network;events,2022-02-02,pending,red,1,
"""

SEGMENTS = """\
one-list:
  lists: newsletter
several-lists:
  lists: [network, events]
topics-list:
  topics: [housing, early-years]
topics-any:
  topics:
    any: [climate, early-years]
topics-all:
  topics:
    all: [housing, climate]
sector-one:
  sector: local-government
sector-several:
  sector: [nhs, academia]
sector-by-name:
  sector: Academia and research
region-slug:
  region: wales
region-name:
  region: North West
region-several:
  region: [london, wales]
place-one:
  place: cardiff
place-several:
  place: [MANCHESTER, Lancaster]
domain-exact-and-subdomain:
  domain: nhs.example
domain-several:
  domain: [gov.example, "@uni.ac.example"]
status-default-is-active:
  status: active
status-pending:
  description: Waiting for confirmation
  status: pending
status-both-in-wales:
  status: [active, pending]
  region: wales
joined-before:
  joined:
    before: 2021-01-01
joined-after:
  joined:
    after: 2023-01-01
joined-between:
  joined:
    after: 2020-01-01
    before: 2023-01-01
attribute-equal:
  attributes:
    team: red
attribute-values:
  attributes:
    team: [red, green]
attribute-two:
  attributes:
    team: red
    grade: 1
welsh:
  region: wales
reference:
  segment: welsh
reference-and-more:
  segment: welsh
  lists: events
implicit-all:
  sector: nhs
  region: wales
all-of:
  all:
    - lists: newsletter
    - topics: [housing]
any-of:
  any:
    - region: london
    - sector: academia
not-on-list:
  not:
    lists: newsletter
not-of-any:
  not:
    any:
      - lists: newsletter
      - topics: [climate]
nested:
  any:
    - all:
        - sector: nhs
        - not:
            place: hackney
    - place: lancaster
reference-to-not:
  segment: not-on-list
  region: north-west
not-region:
  not:
    region: london
not-sector:
  not:
    sector: nhs
not-attribute:
  not:
    attributes:
      team: red
place-accented:
  place: ynys môn
reference-to-pending:
  segment: status-pending
volunteers:
  attributes:
    volunteer: yes
"""

EXPECTED = {
    "lists": {
        "one-list": "a b d f",
        "several-lists": "a c d e",
    },
    "topics": {
        "topics-list": "a b d",
        "topics-any": "a c d",
        "topics-all": "a",
    },
    "sector": {
        "sector-one": "c d",
        "sector-several": "a b e",
        "sector-by-name": "e",
    },
    "region": {
        "region-slug": "b d",
        "region-name": "c e",
        "region-several": "a b d",
    },
    "place": {
        "place-one": "b d",
        "place-several": "c e",
    },
    "domain": {
        "domain-exact-and-subdomain": "a b",
        "domain-several": "d e",
    },
    "status": {
        "status-default-is-active": "a b c d e f",
        "status-pending": "p",
        "status-both-in-wales": "b d p",
    },
    "joined": {
        "joined-before": "a f",
        "joined-after": "c d",
        "joined-between": "b e f",
    },
    "attributes": {
        "attribute-equal": "a c",
        "attribute-values": "a c d",
        "attribute-two": "a",
    },
    "segment-reference": {
        "reference": "b d",
        "reference-and-more": "d",
        "reference-to-not": "c e",
    },
    "composition": {
        "implicit-all": "b",
        "all-of": "a b",
        "any-of": "a e",
        "not-on-list": "c e",
        "not-of-any": "e",
        "nested": "b e",
    },
}

EMAILS = {row.split(",")[0].split("@")[0]: row.split(",")[0] for row in MEMBERS.splitlines()[1:]}


def emails(letters: str) -> set[str]:
    return {EMAILS[letter] for letter in letters.split()}


@pytest.fixture
def operators(audience, audience_settings, repo_root, tmp_path) -> Audience:
    """The seven members above, with the segments above."""
    service = custom_audience(audience_settings, vocabulary_copy(repo_root, tmp_path / "vocab", SEGMENTS))
    summary = import_text(service, tmp_path, MEMBERS)
    assert (summary.added, summary.rejected) == (7, 0)
    yield service
    service.close()


@pytest.mark.parametrize("group", list(EXPECTED))
def test_segment_operators_select_exactly_the_right_members(operators, group):
    found = {name: segment_emails(operators, name) for name in EXPECTED[group]}
    assert found == {name: emails(letters) for name, letters in EXPECTED[group].items()}


def test_domain_matches_subdomains_but_not_lookalikes(operators):
    selected = segment_emails(operators, "domain-exact-and-subdomain")
    assert "a@nhs.example" in selected and "b@trust.nhs.example" in selected
    assert "c@notnhs.example" not in selected


@pytest.mark.parametrize(
    ("name", "letters"),
    [("not-region", "b c d e f"), ("not-sector", "c d e f"), ("not-attribute", "b d e f")],
)
def test_not_keeps_members_who_have_no_value_for_the_field(operators, name, letters):
    # f has no sector, region or attributes: "not in London" must still include them
    assert segment_emails(operators, name) == emails(letters)


def test_a_reference_selects_the_same_members_as_the_segment_it_names(operators):
    assert segment_emails(operators, "reference-to-pending") == segment_emails(operators, "status-pending")


def test_an_attribute_value_matches_the_text_written_in_the_file(operators):
    assert segment_emails(operators, "volunteers") == emails("b")


def test_a_quoted_join_date_is_a_date(audience, audience_settings, repo_root, tmp_path):
    text = 'quoted:\n  joined:\n    after: "2023-01-01"\nplain:\n  joined:\n    after: 2023-01-01\n'
    service = custom_audience(audience_settings, vocabulary_copy(repo_root, tmp_path / "vocab", text))
    try:
        import_text(service, tmp_path, MEMBERS)
        assert segment_emails(service, "quoted") == segment_emails(service, "plain") == emails("c d")
    finally:
        service.close()


def test_place_is_case_insensitive_beyond_ascii(operators, tmp_path, database_url, request):
    import_text(
        operators, tmp_path, "email,place\nm@example.org,YNYS MÔN\nn@example.org,Ynys Môn\n", "mon.csv"
    )
    assert segment_emails(operators, "place-accented") == {"m@example.org", "n@example.org"}


# --- segment file errors ---

BROKEN = """\
a-typo:
  regoin: wales
b-topic:
  topics: [housign, climate]
c-region:
  region: Walse
d-sector:
  sector: nhss
e-list:
  lists: newsleter
f-domain:
  domain: "nhs..example"
g-date:
  joined:
    after: 2023-13-45
h-missing:
  segment: nowhere
i-self:
  segment: i-self
j-loop:
  segment: k-loop
k-loop:
  segment: j-loop
l-empty:
  description: nothing to select
m-status:
  status: unsubscribed
n-fine:
  lists: newsletter
"""

BROKEN_PROBLEMS = [
    (2, "a-typo.regoin", "unknown condition 'regoin' (did you mean 'region'?)"),
    (4, "b-topic.topics[1]", "unknown topic 'housign' (did you mean 'housing'?)"),
    (6, "c-region.region", "unknown region 'Walse' (did you mean 'wales'?)"),
    (8, "d-sector.sector", "unknown sector 'nhss' (did you mean 'nhs'?)"),
    (10, "e-list.lists", "unknown list 'newsleter' (did you mean 'newsletter'?)"),
    (12, "f-domain.domain", "'nhs..example' is not an email domain"),
    (15, "g-date.joined.after", "must be a date written as YYYY-MM-DD, not '2023-13-45'"),
    (17, "h-missing.segment", "no segment 'nowhere' in this file"),
    (18, "i-self", "includes itself through `segment: i-self`"),
    (20, "j-loop", "includes itself through `segment: k-loop`"),
    (22, "k-loop", "includes itself through `segment: j-loop`"),
    (24, "l-empty", "has no conditions"),
    (27, "m-status.status", "'unsubscribed' cannot be selected"),
]


def test_every_mistake_in_segments_yaml_is_reported_at_once_with_its_line(repo_root, tmp_path):
    directory = vocabulary_copy(repo_root, tmp_path / "vocab", BROKEN)
    with pytest.raises(ProblemsFound) as error:
        Segments.load(directory, Vocabulary.load(directory))
    problems = error.value.problems
    assert [(problem.line, problem.where) for problem in problems] == [
        (line, where) for line, where, _ in BROKEN_PROBLEMS
    ]
    for problem, (_, _, message) in zip(problems, BROKEN_PROBLEMS, strict=True):
        assert problem.file.endswith("segments.yaml")
        assert message in problem.message


def test_segments_command_prints_each_problem_as_file_line(audience, audience_settings, repo_root, tmp_path):
    directory = vocabulary_copy(repo_root, tmp_path / "vocab", BROKEN)
    result = run_cli(custom_settings(audience_settings, directory), "segments")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == len(BROKEN_PROBLEMS)
    for text, (line, where, message) in zip(lines, BROKEN_PROBLEMS, strict=True):
        assert re.match(rf"^\S*segments\.yaml:{line}: {re.escape(where)}: ", text), text
        assert message in text
    assert f"{len(BROKEN_PROBLEMS)} problems found." in result.stderr


def test_a_yaml_syntax_error_is_reported_with_its_line(audience, audience_settings, repo_root, tmp_path):
    directory = vocabulary_copy(
        repo_root, tmp_path / "vocab", "a:\n  lists: newsletter\nb:\n  lists: [x\nc: 1\n"
    )
    result = run_cli(custom_settings(audience_settings, directory), "segments")
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert re.match(r"^\S*segments\.yaml:5: not valid YAML: ", line), line


def test_a_segment_that_is_not_a_group_and_an_empty_combinator_are_problems(repo_root, tmp_path):
    text = "a: newsletter\nb:\n  any: []\nc:\n  not: wales\nd:\n  joined:\n    since: 2020-01-01\n"
    directory = vocabulary_copy(repo_root, tmp_path / "vocab", text)
    with pytest.raises(ProblemsFound) as error:
        Segments.load(directory, Vocabulary.load(directory))
    assert [(problem.line, problem.where) for problem in error.value.problems] == [
        (1, "a"),
        (3, "b.any"),
        (5, "c.not"),
        (7, "d.joined"),
    ]


# --- the commands, on the sample members and segments ---


def sample_rows(repo_root) -> list[dict[str, str]]:
    with (repo_root / "subscribers" / "sample.csv").open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def expected_sample_counts(rows: list[dict[str, str]]) -> dict[str, int]:
    """The repository's sample segments, worked out in plain Python from sample.csv."""

    def topics(row):
        return set(row["topics"].split(";")) - {""}

    def lists(row):
        return set(row["lists"].split(";"))

    def domain(row):
        return row["email"].rpartition("@")[2]

    rules = {
        "everyone": lambda r: "newsletter" in lists(r),
        "north-west-councils": lambda r: r["sector"] == "local-government" and r["region"] == "north-west",
        "housing": lambda r: "housing" in topics(r),
        "nhs-addresses": lambda r: domain(r) == "nhs.example" or domain(r).endswith(".nhs.example"),
        "early-years-and-children": lambda r: bool(topics(r) & {"early-years", "children-young-people"}),
        "marmot-places-in-wales": lambda r: (
            r["region"] == "wales"
            and (r["sector"] in ("local-government", "nhs") or "marmot-places" in topics(r))
        ),
        "network-outside-london": lambda r: "network" in lists(r) and r["region"] != "london",
        "joined-this-year": lambda r: r["joined"] >= "2023-01-01",
    }
    return {name: sum(1 for row in rows if rule(row)) for name, rule in rules.items()}


@pytest.fixture
def sample_members(audience, repo_root, tmp_path) -> Audience:
    summary = audience.import_csv(
        repo_root / "subscribers" / "sample.csv", report_path=tmp_path / "report.csv"
    )
    assert (summary.added, summary.rejected, summary.skipped) == (400, 0, 0)
    return audience


def test_segments_command_lists_every_sample_segment_with_its_live_count(
    sample_members, audience_settings, repo_root
):
    result = run_cli(audience_settings, "segments")
    assert result.exit_code == 0
    shown = {}
    for line in result.stdout.splitlines():
        name, count, description = re.match(r"^(\S+)\s+([\d,]+)  (.*)$", line).groups()
        shown[name] = int(count.replace(",", ""))
        assert description == sample_members.segments.get(name).description
    expected = expected_sample_counts(sample_rows(repo_root))
    assert shown == expected
    assert all(count > 0 for count in expected.values())


def test_segments_show_prints_the_count_and_the_first_members(sample_members, audience_settings, repo_root):
    result = run_cli(audience_settings, "segments", "show", "housing", "--limit", "3")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    housing = [row for row in sample_rows(repo_root) if "housing" in row["topics"].split(";")]
    assert lines[0] == f"housing: {len(housing)} members (Everyone interested in housing, homes and places)"
    assert [line.split()[0] for line in lines[1:]] == [row["email"] for row in housing[:3]]
    first = housing[0]
    assert lines[1] == f"  {first['email']}  {first['name']}, {first['organisation']}, {first['region']}"


def test_segments_show_an_unknown_name_suggests_the_nearest(sample_members, audience_settings):
    result = run_cli(audience_settings, "segments", "show", "housng")
    assert result.exit_code == 1
    [error] = error_lines(result)
    assert "no segment 'housng' (did you mean 'housing'?)" in error


def test_lists_command_counts_active_members_per_list(sample_members, audience_settings, repo_root):
    rows = sample_rows(repo_root)
    on = {
        slug: [r["email"] for r in rows if slug in r["lists"].split(";")]
        for slug in ("newsletter", "network", "events")
    }
    sample_members.unsubscribe(on["network"][0])  # unsubscribed from everything: off every count
    sample_members.unsubscribe(on["events"][-1], list_slug="events")  # left one list only
    result = run_cli(audience_settings, "lists")
    assert result.exit_code == 0
    counts = {}
    for line in result.stdout.splitlines():
        slug, count, name = re.match(r"^(\S+)\s+([\d,]+)  (.*)$", line).groups()
        counts[slug] = (int(count.replace(",", "")), name)
    gone = {on["network"][0]}
    assert counts == {
        "events": (len(set(on["events"]) - gone) - 1, "Events and conference news"),
        "network": (len(on["network"]) - 1, "Health Equity Network members"),
        "newsletter": (399, "Monthly newsletter"),
    }


def test_lists_command_does_not_count_suppressed_members(sample_members, audience_settings, repo_root):
    from newsletter.audience.members import suppress

    with sample_members.store.session() as session:
        suppress(session, sample_rows(repo_root)[0]["email"], "bounce", "test")
    result = run_cli(audience_settings, "lists")
    newsletter = re.search(r"^newsletter\s+([\d,]+)  ", result.stdout, re.MULTILINE)
    assert len(segment_emails(sample_members, "everyone")) == 399
    assert int(newsletter.group(1)) == 399


def test_segments_command_without_a_segments_file_says_where_to_define_them(
    audience, audience_settings, repo_root, tmp_path
):
    directory = vocabulary_copy(repo_root, tmp_path / "vocab")
    (directory / "segments.yaml").unlink()
    result = run_cli(custom_settings(audience_settings, directory), "segments")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"No segments yet: define them in {directory / 'segments.yaml'}"
