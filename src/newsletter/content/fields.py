"""Field rules: what each field of an issue file may hold, and how to explain a mistake.

A model field declares its rule with one of the helpers below (`text()`,
`https_url()`, `topics()`, ...). The loader reads a YAML value through the
rule; the rule either returns the typed value or reports a problem in words
an editor understands and returns `INVALID`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from newsletter.content import images
from newsletter.vocabulary import language_hint, language_tag

if TYPE_CHECKING:
    from newsletter.content.loader import Reader

INVALID: Any = object()


def describe(value: Any) -> str:
    """Name a YAML value's shape the way an editor would, for 'must be X, not Y'."""
    if isinstance(value, dict):
        return "a group of fields"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"yes/no ({str(value).lower()})"
    if isinstance(value, dt.datetime | dt.date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return f"'{value}'"


class Rule(ABC):
    """Reads one YAML value into a typed value, or reports why it cannot."""

    missing = "is missing"

    @property
    def empty(self) -> str:
        """What to say when the key is there but blank."""
        return "is empty" if self.missing == "is missing" else self.missing

    @abstractmethod
    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        """Return the typed value, or report a problem and return INVALID."""

    def is_empty(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())


class Text(Rule):
    def __init__(self, multiline: bool = False, max_length: int | None = None) -> None:
        self.multiline = multiline
        self.max_length = max_length

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return reader.problem(path, f"must be text, not {describe(value)}")
        text = str(value).strip()
        if not self.multiline and "\n" in text:
            return reader.problem(path, "must fit on one line")
        if self.max_length and len(text) > self.max_length:
            return reader.problem(path, f"is {len(text)} characters; keep it to {self.max_length}")
        return text


def printable(text: str, limit: int = 80) -> str:
    """`text` safe to print in a message: control characters escaped (`\\t`), cut to `limit`."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# What an address cannot hold (RFC 3986), besides controls and white space: a browser or mail client
# either breaks the link there or, in an attribute or the text part, ends the address early.
NOT_IN_ADDRESSES = frozenset('"<>\\`')
SPACES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a line break"}


def _not_in_address(url: str) -> str | None:
    """How to name the first character of `url` that no address can hold, or None."""
    for char in url:
        if char in SPACES:
            return SPACES[char]
        if char.isspace():
            return "a space"
        if not char.isprintable():
            return "a control character"
        if char in NOT_IN_ADDRESSES:
            return f"'{char}'"
    return None


class HttpsUrl(Rule):
    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if not isinstance(value, str):
            return reader.problem(path, f"must be an https:// address, not {describe(value)}")
        url = value.strip()
        held = _not_in_address(url)
        if held:
            return reader.problem(
                path, f"must be an https:// address, which cannot hold {held}: '{printable(url)}'"
            )
        try:
            parts = urlsplit(url)
        except ValueError:  # an unclosed '[' (an IPv6 host), for one
            parts = None
        if parts is None or parts.scheme != "https" or not parts.netloc:
            return reader.problem(path, f"must be an https:// address, not '{printable(url)}'")
        return url


class ImageSource(Rule):
    """An https:// image, or a file next to issue.yaml (published with the archive)."""

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if not isinstance(value, str):
            return reader.problem(path, f"must be an https:// address or a file name, not {describe(value)}")
        source = value.strip()
        if "://" in source or source.startswith("//"):
            return HttpsUrl().read(reader, source, path)
        if source.startswith("/") or ".." in source.split("/"):
            return reader.problem(path, f"'{source}' must be a file inside the issue's folder")
        if not (reader.issue_dir / source).is_file():
            return reader.problem(path, f"no file '{source}' next to issue.yaml")
        if not FILE_NAME.fullmatch(source):
            return reader.problem(
                path,
                f"'{printable(source)}': name picture files with letters, digits, '-', '_' and '.' only "
                "(the name becomes part of the picture's address); rename the file",
            )
        try:
            picture = images.inspect(reader.issue_dir / source)
        except OSError as error:
            return reader.problem(path, f"'{source}' cannot be read: {error.strerror}")
        if picture.kind is None:
            found = f" but {picture.other}" if picture.other else ""
            return reader.problem(
                path,
                f"'{source}' is not a {images.KINDS} picture{found}; mail clients show only those, "
                "so save it as JPEG (photos) or PNG (drawings, screenshots)",
            )
        if picture.misnamed:
            ending = images.EXTENSIONS[picture.kind][0]
            return reader.problem(
                path,
                f"'{source}' holds a {picture.kind} picture; web servers send a file as what its name "
                f"says, so name it '{source.rpartition('.')[0] or source}{ending}'",
            )
        return source


# A picture file's name, folders allowed: written into its address as it is, so nothing needs escaping.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*")


class Email(Rule):
    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if not isinstance(value, str):
            return reader.problem(path, f"must be an email address, not {describe(value)}")
        try:
            return validate_email(value.strip(), check_deliverability=False).normalized
        except EmailNotValidError as error:
            return reader.problem(path, f"'{value.strip()}' is not an email address: {error}")


class Date(Rule):
    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
                    return reader.problem(path, f"'{value}' is not a real date")
        return reader.problem(path, f"must be a date written as YYYY-MM-DD, not {describe(value)}")


class DateTime(Rule):
    """A date and time such as `2023-10-05 10:00`, or a whole day such as `2023-10-05`."""

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        when = as_datetime(value)
        if when is not None:
            return when
        return reader.problem(
            path, f"must be a date and time written as YYYY-MM-DD HH:MM, not {describe(value)}"
        )


def as_datetime(value: Any) -> dt.datetime | None:
    """A YAML value as a date and time in the network's zone (a date is its midnight), else None."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip()).replace(tzinfo=None)
        except ValueError:
            return None
    return None


def sibling(reader: Reader, path: tuple, name: str) -> Any:
    """The raw YAML value of field `name` in the same group as the field at `path` (None if absent):
    for a rule whose answer depends on another field (`end` after `start`)."""
    group = reader.document.data
    for key in path[:-1]:
        try:
            group = group[key]
        except (KeyError, IndexError, TypeError):
            return None
    return group.get(name) if isinstance(group, dict) else None


TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class EndTime(DateTime):
    """When something ends: a date and time after the `after` field's, or a time alone ('15:30') on
    that day. Two whole days (dates) may be the same day: a one-day event written with both ends."""

    def __init__(self, after: str) -> None:
        self.after = after

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        start = as_datetime(sibling(reader, path, self.after))
        if isinstance(value, int) and not isinstance(value, bool):
            return reader.problem(
                path,
                "write a time of day in quotes ('15:30'; without them YAML reads it as a number), "
                "or a date and time as YYYY-MM-DD HH:MM",
            )
        time_only = TIME_OF_DAY.fullmatch(value.strip()) if isinstance(value, str) else None
        if time_only:
            if start is None:
                return INVALID  # the start's own problem is reported at its line
            end = dt.datetime.combine(start.date(), dt.time(int(time_only[1]), int(time_only[2])))
        else:
            end = super().read(reader, value, path)
        if end is INVALID or start is None:
            return end
        whole_days = start.time() == end.time() == dt.time()
        if end < start or (end == start and not whole_days):
            return reader.problem(
                path,
                f"is {end:%Y-%m-%d %H:%M}, not after the {self.after} ({start:%Y-%m-%d %H:%M}); "
                "an event must end after it starts",
            )
        return end


class TextUnless(Text):
    """A one-line text required unless the yes/no field `flag` says yes: an event's `location`,
    which an event held `online: yes` may leave out. Left out, the message says what to do; written
    blank (`location: ""`, as `newsletter new` writes it) it is empty, like any blank to fill in."""

    def __init__(self, flag: str, missing: str) -> None:
        super().__init__()
        self.flag = flag
        self.missing = missing

    def is_empty(self, value: Any) -> bool:
        return False  # read() decides, since whether a blank is allowed depends on the flag

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if not super().is_empty(value):
            return super().read(reader, value, path)
        flag = sibling(reader, path, self.flag)
        if flag is True or not isinstance(flag, bool | None):  # a flag that is not yes/no is its own problem
            return None
        return reader.problem(path, "is empty" if isinstance(value, str) else self.missing)


class Language(Rule):
    """A BCP 47 tag (`en-GB`, `cy`), kept in its usual case: it becomes the email's `lang`."""

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        tag = language_tag(value) if isinstance(value, str) else None
        if tag:
            return tag
        hint = language_hint(value) if isinstance(value, str) else ""
        return reader.problem(
            path, f"must be a language tag such as en-GB or cy, not {describe(value)}{hint}"
        )


class YesNo(Rule):
    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if isinstance(value, bool):
            return value
        return reader.problem(path, f"must be true or false, not {describe(value)}")


class PositiveInt(Rule):
    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        return reader.problem(path, f"must be a whole number of pixels, not {describe(value)}")


class Strings(Rule):
    """A list of short texts; a single text is taken as a list of one."""

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        values = value if isinstance(value, list) else [value]
        results = [Text().read(reader, item, (*path, index)) for index, item in enumerate(values)]
        return INVALID if INVALID in results else tuple(results)


class Vocabulary(Rule):
    """One word from a controlled list (`regions`), matched by slug or by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        return reader.vocabulary_word(self.kind, value, path)


class PlaceKind(Rule):
    """A kind of place (`Marmot City`) from `place_kinds.yaml`, by slug or name, kept as its name (the
    email shows it); any one-line text in a project that has no such file."""

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        names = reader.vocabulary.place_kinds
        if not names:
            return Text().read(reader, value, path)
        slug = reader.vocabulary_word("place_kinds", value, path)
        return INVALID if slug is INVALID else names[slug]


class Topics(Rule):
    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        values = value if isinstance(value, list) else [value]
        results = [reader.vocabulary_word("topics", item, (*path, i)) for i, item in enumerate(values)]
        return INVALID if INVALID in results else tuple(dict.fromkeys(results))


class Nested(Rule):
    """A group of fields read as one of the model's dataclasses."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        return reader.read_object(self.cls, value, path)


class Items(Rule):
    """A list of groups of fields; an empty list is a mistake unless the field is optional."""

    def __init__(self, cls: type, allow_empty: bool = False) -> None:
        self.cls = cls
        self.allow_empty = allow_empty
        self.missing = "has no items; add at least one or remove the section"

    def is_empty(self, value: Any) -> bool:
        return super().is_empty(value) or value == []

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if not isinstance(value, list):
            return reader.problem(
                path, f"must be a list of items (each starting with '- '), not {describe(value)}"
            )
        results = [reader.read_object(self.cls, item, (*path, i)) for i, item in enumerate(value)]
        return INVALID if INVALID in results else tuple(results)


def _field(rule: Rule, default: Any = dataclasses.MISSING, missing: str | None = None) -> Any:
    if missing:
        rule.missing = missing
    if isinstance(default, tuple | list):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata={"rule": rule})
    return dataclasses.field(default=default, metadata={"rule": rule})


def text(
    default: Any = dataclasses.MISSING, max_length: int | None = None, missing: str | None = None
) -> Any:
    """A one-line text; required unless a default is given."""
    return _field(Text(max_length=max_length), default, missing)


def markdown(default: Any = dataclasses.MISSING) -> Any:
    """Markdown text (may span lines); raw HTML in it is sanitised when rendered."""
    return _field(Text(multiline=True), default)


def https_url(default: Any = dataclasses.MISSING) -> Any:
    return _field(HttpsUrl(), default)


def image_source() -> Any:
    return _field(ImageSource())


class Picture(Nested):
    """An image's fields; a file in the issue's folder without `width:` takes the file's own width, so
    a small picture is not stretched to the column and check can compare what is shown with the file."""

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        image = super().read(reader, value, path)
        if image is INVALID or image.width is not None or not images.is_local(image.src):
            return image
        try:
            width = images.inspect(reader.issue_dir / image.src).width
        except OSError:  # the source's rule has just read it; a file gone since is check's to report
            return image
        return dataclasses.replace(image, width=width) if width else image


def picture(cls: type) -> Any:
    """An optional image (`src`, `alt`, `width`), its width read from its file when not given."""
    return _field(Picture(cls), None)


def email(default: Any = dataclasses.MISSING) -> Any:
    return _field(Email(), default)


def date(default: Any = dataclasses.MISSING) -> Any:
    return _field(Date(), default)


def datetime(default: Any = dataclasses.MISSING) -> Any:
    return _field(DateTime(), default)


def end_time(after: str) -> Any:
    """An optional end, checked to come after the field `after` (an event's `end` after its `start`)."""
    return _field(EndTime(after), None)


def text_unless(flag: str, missing: str) -> Any:
    """A one-line text that may be left out only when the yes/no field `flag` says yes; `newsletter new`
    writes it as a blank to fill in (it has no default: the rule reads it, present or not)."""
    return _field(TextUnless(flag, missing))


def language(default: str) -> Any:
    return _field(Language(), default)


def yes_no(default: bool) -> Any:
    return _field(YesNo(), default)


def pixels(default: Any = None) -> Any:
    return _field(PositiveInt(), default)


def strings(default: Any = ()) -> Any:
    return _field(Strings(), default)


def region(default: Any = dataclasses.MISSING) -> Any:
    return _field(Vocabulary("regions"), default)


def place_kind() -> Any:
    """An optional kind of place, such as Marmot City, from subscribers/place_kinds.yaml."""
    return _field(PlaceKind(), None)


def topics() -> Any:
    """Topics an item is about; delivery sends it only to subscribers who chose one of them."""
    return _field(Topics(), ())


def nested(cls: type, default: Any = dataclasses.MISSING, missing: str | None = None) -> Any:
    return _field(Nested(cls), default, missing)


def items(cls: type, allow_empty: bool = False) -> Any:
    return _field(Items(cls, allow_empty), () if allow_empty else dataclasses.MISSING)


class Sections(Rule):
    """The issue's sections in order; each names its kind with `kind:`."""

    missing = "has no sections; add at least one"

    def __init__(self, kinds: Callable[[], dict[str, type]]) -> None:
        self.kinds = kinds

    def is_empty(self, value: Any) -> bool:
        return super().is_empty(value) or value == []

    def read(self, reader: Reader, value: Any, path: tuple) -> Any:
        if not isinstance(value, list):
            return reader.problem(
                path, f"must be a list of sections (each starting with '- kind:'), not {describe(value)}"
            )
        kinds = self.kinds()
        results = []
        for index, section in enumerate(value):
            where = (*path, index)
            kind = section.get("kind") if isinstance(section, dict) else None
            if kind not in kinds:
                known = ", ".join(kinds)
                if kind is None:
                    message = f"needs a 'kind:' line saying which kind of section it is ({known})"
                else:
                    hint = reader.suggest(str(kind), kinds)
                    message = f"unknown kind '{kind}'{hint}; use one of {known}"
                results.append(reader.problem((*where, "kind") if kind else where, message))
                continue
            results.append(reader.read_object(kinds[kind], section, where, ignore=("kind",)))
        return INVALID if INVALID in results else tuple(results)


def sections(kinds: Callable[[], dict[str, type]]) -> Any:
    return _field(Sections(kinds))
