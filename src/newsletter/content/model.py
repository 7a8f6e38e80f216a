"""The typed shape of an issue: frozen dataclasses, one per section kind.

Each field names the rule its YAML value is read with (see `fields.py`), so
the model is also the schema: adding a field here is all the loader needs.
Every section and every item may carry `topics`, which delivery uses to send
it only to the subscribers who chose one of those topics. The items members
share (a story, a publication, a place update, a collaboration, an event) may
carry `credit`, the organisation it came from, which every output shows and
the archive lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

from newsletter.content import fields as f

FROZEN = {"frozen": True, "kw_only": True}
CREDIT_LENGTH = 100


def organisation_credit() -> Any:
    """The member organisation an item came from (`Leeds City Council`), shown as "Shared by ..." and
    listed in the archive's contributors; left out when the member asked not to be credited."""
    return f.text(None, max_length=CREDIT_LENGTH)


@dataclass(**FROZEN)
class Link:
    label: str = f.text()
    url: str = f.https_url()


@dataclass(**FROZEN)
class Image:
    src: str = f.image_source()
    alt: str = f.text(
        missing="is missing: every image needs alt text describing it for people who cannot see it"
    )
    width: int | None = f.pixels()


@dataclass(**FROZEN)
class Quote:
    """Words someone said, shown as a pull quote with who said it: launches and conferences run on them."""

    text: str = f.markdown()
    by: str = f.text(missing="is missing: every quote needs the name of who said it")
    role: str | None = f.text(None)


@dataclass(**FROZEN)
class Story:
    """A lead story or feature: a headline, Markdown body, optional picture, quotes and links."""

    KIND: ClassVar[str] = "story"
    label: str | None = f.text(None)
    title: str = f.text()
    body: str = f.markdown()
    image: Image | None = f.picture(Image)
    quotes: tuple[Quote, ...] = f.items(Quote, allow_empty=True)
    links: tuple[Link, ...] = f.items(Link, allow_empty=True)
    credit: str | None = organisation_credit()
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Publication:
    title: str = f.text()
    url: str = f.https_url()
    summary: str = f.markdown()
    date: dt.date = f.date()
    authors: tuple[str, ...] = f.strings()
    commissioner: str | None = f.text(None)
    credit: str | None = organisation_credit()
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Publications:
    KIND: ClassVar[str] = "publications"
    heading: str = f.text("New publications")
    intro: str | None = f.markdown(None)
    items: tuple[Publication, ...] = f.items(Publication)
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class PlaceUpdate:
    place: str = f.text()
    region: str = f.region()
    kind: str | None = f.place_kind()
    updates: str = f.markdown()
    link: Link | None = f.nested(Link, None)
    credit: str | None = organisation_credit()
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Places:
    KIND: ClassVar[str] = "places"
    heading: str = f.text("Marmot Places")
    intro: str | None = f.markdown(None)
    items: tuple[PlaceUpdate, ...] = f.items(PlaceUpdate)
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Collaboration:
    title: str = f.text()
    partners: tuple[str, ...] = f.strings()
    body: str = f.markdown()
    link: Link | None = f.nested(Link, None)
    credit: str | None = organisation_credit()
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Collaborations:
    KIND: ClassVar[str] = "collaborations"
    heading: str = f.text("Other collaborations")
    intro: str | None = f.markdown(None)
    items: tuple[Collaboration, ...] = f.items(Collaboration)
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Speaker:
    """Someone speaking at an event; `role` is what they do and where (`Director, UCL IHE`)."""

    name: str = f.text(missing="is missing: every speaker needs a name")
    role: str | None = f.text(None)


@dataclass(**FROZEN)
class Event:
    """A webinar, conference or meeting: when (in the network's time zone), where or online, who speaks,
    and where to register; every event also gets an add-to-calendar (.ics) file."""

    title: str = f.text()
    start: dt.datetime = f.datetime()
    end: dt.datetime | None = f.end_time(after="start")
    online: bool = f.yes_no(False)
    location: str | None = f.text_unless(
        "online", "is missing: say where the event is held, or write 'online: yes' for one held online"
    )
    url: str = f.https_url()
    register: str | None = f.https_url(None)
    speakers: tuple[Speaker, ...] = f.items(Speaker, allow_empty=True)
    summary: str | None = f.markdown(None)
    credit: str | None = organisation_credit()
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Events:
    KIND: ClassVar[str] = "events"
    heading: str = f.text("Events")
    items: tuple[Event, ...] = f.items(Event)
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class CallToAction:
    """A sentence and a button: 'Register for the newsletter', 'Join the network'."""

    KIND: ClassVar[str] = "call_to_action"
    text: str = f.markdown()
    label: str = f.text(max_length=40)
    url: str = f.https_url()
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Links:
    KIND: ClassVar[str] = "links"
    heading: str = f.text("Further reading")
    items: tuple[Link, ...] = f.items(Link)
    topics: tuple[str, ...] = f.topics()


@dataclass(**FROZEN)
class Contact:
    KIND: ClassVar[str] = "contact"
    heading: str = f.text("Contact us")
    text: str = f.markdown()
    email: str = f.email()
    topics: tuple[str, ...] = f.topics()


Section = Story | Publications | Places | Collaborations | Events | CallToAction | Links | Contact
SECTION_KINDS: dict[str, type] = {
    cls.KIND: cls
    for cls in (Story, Publications, Places, Collaborations, Events, CallToAction, Links, Contact)
}


@dataclass(**FROZEN)
class Issue:
    """One monthly issue, as the editor wrote it; `slug` is its folder name."""

    slug: str
    title: str = f.text()
    date: dt.date = f.date()
    subject: str = f.text()
    preheader: str = f.text()
    editor: str = f.text()
    language: str = f.language("en-GB")
    intro: str | None = f.markdown(None)
    archive: bool = f.yes_no(False)
    sections: tuple[Section, ...] = f.sections(lambda: SECTION_KINDS)
