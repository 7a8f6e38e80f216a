"""Every field of every section kind, written in YAML, loads into exactly the Issue it describes."""

from __future__ import annotations

import dataclasses
import datetime as dt

from newsletter.content.loader import load_issue
from newsletter.content.model import (
    SECTION_KINDS,
    CallToAction,
    Collaboration,
    Collaborations,
    Contact,
    Event,
    Events,
    Image,
    Issue,
    Link,
    Links,
    Places,
    PlaceUpdate,
    Publication,
    Publications,
    Quote,
    Story,
)

EVERYTHING = """\
title: "  November 2023 Newsletter  "
date: 2023-11-20
subject: Homes, health and a new Marmot Place
preheader: Five things from the network this month
editor: Alison Biedron
language: cy
archive: true
intro: |
  Welcome to the **November** issue.

  Second paragraph.
sections:
  - kind: story
    label: Lead story
    title: Homes and health
    body: |
      A partnership on *homes*.
    image:
      src: https://example.org/homes.jpg
      alt: New homes in Leeds
      width: 480
    quotes:
      - text: |
          Homes are *health*.
        by: "  Jane Doe  "
        role: Director, Housing Trust
    links:
      - label: About the partnership
        url: https://example.org/partnership
      - label: Join the Network
        url: https://example.org/join
    credit: "  Leeds City Council  "
    topics: [housing, communities]
  - kind: publications
    heading: Reports
    intro: Two new reports.
    items:
      - title: Accountability in the NHS
        url: https://example.org/nhs
        summary: |
          It examines accountability.
        date: 2023-10-02
        authors: [UCL Institute of Health Equity, Jane Doe]
        commissioner: NHS England
        credit: UCL Institute of Health Equity
        topics: [nhs-integrated-care]
    topics: [health-equity]
  - kind: places
    heading: Places
    intro: Ongoing work.
    items:
      - place: Cheshire and Merseyside
        region: North West
        kind: Marmot Region
        updates: |
          An anniversary.
        link:
          label: All Together Fairer
          url: https://example.org/atf
        credit: Cheshire and Merseyside Health and Care Partnership
        topics: [marmot-places]
    topics: [local-government]
  - kind: collaborations
    heading: Partners
    intro: With others.
    items:
      - title: Norway
        partners: Norwegian Directorate of Health
        body: A rapid review.
        link:
          label: The review
          url: https://example.org/norway
        credit: Norwegian Directorate of Health
        topics: [international]
    topics: [international]
  - kind: events
    heading: Coming up
    items:
      - title: Annual conference
        start: 2023-12-05 10:30
        location: Birmingham
        url: https://example.org/conference
        summary: Two days of talks.
        credit: Birmingham City Council
        topics: [network-events]
    topics: [network-events]
  - kind: call_to_action
    text: Register to receive it every month.
    label: Register
    url: https://example.org/register
    topics: [network-events]
  - kind: links
    heading: Reading
    items:
      - label: IHE reports
        url: https://example.org/reports
    topics: [evidence-data]
  - kind: contact
    heading: Write to us
    text: Queries?
    email: Network@Health-Equity.EXAMPLE.org
    topics: [network-events]
"""

EXPECTED = Issue(
    slug="everything",
    title="November 2023 Newsletter",
    date=dt.date(2023, 11, 20),
    subject="Homes, health and a new Marmot Place",
    preheader="Five things from the network this month",
    editor="Alison Biedron",
    language="cy",
    intro="Welcome to the **November** issue.\n\nSecond paragraph.",
    archive=True,
    sections=(
        Story(
            label="Lead story",
            title="Homes and health",
            body="A partnership on *homes*.",
            image=Image(src="https://example.org/homes.jpg", alt="New homes in Leeds", width=480),
            quotes=(Quote(text="Homes are *health*.", by="Jane Doe", role="Director, Housing Trust"),),
            links=(
                Link(label="About the partnership", url="https://example.org/partnership"),
                Link(label="Join the Network", url="https://example.org/join"),
            ),
            credit="Leeds City Council",
            topics=("housing", "communities"),
        ),
        Publications(
            heading="Reports",
            intro="Two new reports.",
            items=(
                Publication(
                    title="Accountability in the NHS",
                    url="https://example.org/nhs",
                    summary="It examines accountability.",
                    date=dt.date(2023, 10, 2),
                    authors=("UCL Institute of Health Equity", "Jane Doe"),
                    commissioner="NHS England",
                    credit="UCL Institute of Health Equity",
                    topics=("nhs-integrated-care",),
                ),
            ),
            topics=("health-equity",),
        ),
        Places(
            heading="Places",
            intro="Ongoing work.",
            items=(
                PlaceUpdate(
                    place="Cheshire and Merseyside",
                    region="north-west",
                    kind="Marmot Region",
                    updates="An anniversary.",
                    link=Link(label="All Together Fairer", url="https://example.org/atf"),
                    credit="Cheshire and Merseyside Health and Care Partnership",
                    topics=("marmot-places",),
                ),
            ),
            topics=("local-government",),
        ),
        Collaborations(
            heading="Partners",
            intro="With others.",
            items=(
                Collaboration(
                    title="Norway",
                    partners=("Norwegian Directorate of Health",),
                    body="A rapid review.",
                    link=Link(label="The review", url="https://example.org/norway"),
                    credit="Norwegian Directorate of Health",
                    topics=("international",),
                ),
            ),
            topics=("international",),
        ),
        Events(
            heading="Coming up",
            items=(
                Event(
                    title="Annual conference",
                    start=dt.datetime(2023, 12, 5, 10, 30),
                    location="Birmingham",
                    url="https://example.org/conference",
                    summary="Two days of talks.",
                    credit="Birmingham City Council",
                    topics=("network-events",),
                ),
            ),
            topics=("network-events",),
        ),
        CallToAction(
            text="Register to receive it every month.",
            label="Register",
            url="https://example.org/register",
            topics=("network-events",),
        ),
        Links(
            heading="Reading",
            items=(Link(label="IHE reports", url="https://example.org/reports"),),
            topics=("evidence-data",),
        ),
        Contact(
            heading="Write to us",
            text="Queries?",
            email="Network@health-equity.example.org",
            topics=("network-events",),
        ),
    ),
)


def test_every_field_of_every_section_kind_loads_as_written(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, EVERYTHING, slug="everything")
    assert load_issue(path, editor.vocabulary) == EXPECTED


def test_every_declared_field_is_exercised_by_the_round_trip():
    """If the model gains a field, the round trip above must be extended to cover it."""
    used = {type(section) for section in EXPECTED.sections}
    assert used == set(SECTION_KINDS.values())
    for part in (EXPECTED, *EXPECTED.sections):
        for declared in dataclasses.fields(part):
            value = getattr(part, declared.name)
            assert value not in (None, (), declared.default), f"{type(part).__name__}.{declared.name}"


MINIMAL_EVERY_KIND = """\
title: November 2023 Newsletter
date: 2023-11-20
subject: S
preheader: P
editor: E
sections:
  - kind: story
    title: Homes and health
    body: Text.
  - kind: publications
    items:
      - title: A report
        url: https://example.org/r
        summary: Text.
        date: 2023-10-02
  - kind: places
    items:
      - place: Leeds
        region: yorkshire-humber
        updates: Text.
  - kind: collaborations
    items:
      - title: Norway
        body: Text.
  - kind: events
    items:
      - title: Conference
        start: 2023-12-05 10:30
        location: Birmingham
        url: https://example.org/c
  - kind: call_to_action
    text: Register.
    label: Register
    url: https://example.org/register
  - kind: links
    items:
      - label: Reports
        url: https://example.org/reports
  - kind: contact
    text: Queries?
    email: network@example.org
"""


def test_defaults_fill_every_optional_field(tmp_path, write_issue, editor):
    path = write_issue(tmp_path, MINIMAL_EVERY_KIND, slug="2023-11")
    assert load_issue(path, editor.vocabulary) == Issue(
        slug="2023-11",
        title="November 2023 Newsletter",
        date=dt.date(2023, 11, 20),
        subject="S",
        preheader="P",
        editor="E",
        language="en-GB",
        intro=None,
        archive=False,
        sections=(
            Story(label=None, title="Homes and health", body="Text.", image=None, links=(), topics=()),
            Publications(
                heading="New publications",
                intro=None,
                items=(
                    Publication(
                        title="A report",
                        url="https://example.org/r",
                        summary="Text.",
                        date=dt.date(2023, 10, 2),
                        authors=(),
                        commissioner=None,
                        topics=(),
                    ),
                ),
                topics=(),
            ),
            Places(
                heading="Marmot Places",
                items=(PlaceUpdate(place="Leeds", region="yorkshire-humber", updates="Text."),),
            ),
            Collaborations(
                heading="Other collaborations",
                items=(Collaboration(title="Norway", partners=(), body="Text.", link=None),),
            ),
            Events(
                heading="Events",
                items=(
                    Event(
                        title="Conference",
                        start=dt.datetime(2023, 12, 5, 10, 30),
                        location="Birmingham",
                        url="https://example.org/c",
                        summary=None,
                    ),
                ),
            ),
            CallToAction(text="Register.", label="Register", url="https://example.org/register"),
            Links(
                heading="Further reading", items=(Link(label="Reports", url="https://example.org/reports"),)
            ),
            Contact(heading="Contact us", text="Queries?", email="network@example.org"),
        ),
    )


def test_a_topic_written_twice_or_by_name_is_kept_once_as_its_slug(tmp_path, write_issue, editor):
    text = MINIMAL_EVERY_KIND.replace(
        "    body: Text.\n  - kind: publications",
        "    body: Text.\n    topics: [housing, 'housing, HOMES and places']\n  - kind: publications",
    )
    path = write_issue(tmp_path, text)
    assert load_issue(path, editor.vocabulary).sections[0].topics == ("housing",)
