"""`newsletter bounces read`: take the reports waiting in a Maildir or an IMAP folder.

Every message still in the folder is new to us: a report we understood is moved to the Processed folder,
one we could not understand to Review, so the folder itself only ever holds what is still to do. A message
that is not a report at all (a colleague's mail in a shared mailbox: `looks_like_report` says no) is never
moved, flagged, marked seen or deleted, and nothing is ever deleted. A report whose processing fails stays
where it was, for the next run.

Maildir: the folders are Maildir++ subfolders of DIR (`DIR/.Processed`, `DIR/.Review`, created when
needed); a message keeps its file name (so its flags) and its `new`/`cur` place. IMAP: `FOLDER<sep>Processed` and
`FOLDER<sep>Review`, children of the folder with the server's own separator, created (and subscribed) when
missing; messages are read with BODY.PEEK, so reading never sets \\Seen, and moved by UID.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from newsletter.errors import UserError, display_path

__all__ = [
    "ImapFolder",
    "ImapLocation",
    "MaildirFolder",
    "Outcome",
    "Tally",
    "read_imap",
    "read_maildir",
    "read_reports",
]

PROCESSED = "Processed"
REVIEW = "Review"
IMAPS_PORT = 993
_HEADER_BYTES = 64 * 1024  # enough to see any report's headers without reading a large colleague's mail
BATCH = 200  # reports recorded in one transaction: most of the cost of a report is its own transaction
_FETCH_BATCH = 500  # UIDs per header FETCH: one round trip for many, short enough for any server's limit


class Outcome(Protocol):
    """What the processing function says about one message (`intake.Processed`)."""

    @property
    def understood(self) -> bool: ...


# Intake.process_many: one result a message, in order, each an Outcome or the exception that stopped it.
ProcessMany = Callable[[list[bytes]], Sequence[Outcome | Exception]]
LooksLikeReport = Callable[[bytes], bool]  # intake.looks_like_report with the domain filled in


@dataclass
class Tally:
    """What a run did, for the one line it prints."""

    processed: int = 0
    review: int = 0
    other: int = 0
    failed: int = 0

    def summary(self) -> str:
        bounces = "bounce" if self.processed == 1 else "bounces"
        others = "message left as it was" if self.other == 1 else "messages left as they were"
        line = f"{self.processed:,} {bounces} processed, {self.review:,} for review, {self.other:,} other {others}"
        if self.failed:
            line += f"; {self.failed:,} could not be processed and stay for the next run"
        return line


class Folder(Protocol):
    """A place reports wait in: what `read_reports` needs of a Maildir or an IMAP folder."""

    def headers(self) -> Iterator[tuple[str, bytes]]:
        """(key, the message's header bytes) for every message in the folder now."""

    def fetch(self, key: str) -> bytes:
        """The whole message, without marking it read."""

    def move(self, key: str, to: str) -> None:
        """Move the message to the PROCESSED or REVIEW folder."""


def read_reports(
    folder: Folder,
    process_many: ProcessMany,
    looks_like_report: LooksLikeReport,
    note: Callable[[str], None],
    batch: int = BATCH,
) -> Tally:
    """Process each report in `folder` and file it away; leave every other message exactly as it is.

    Reports go to `process_many` `batch` at a time (one transaction each) and are moved once it has
    recorded them; one that fails stays where it was, for the next run."""
    tally = Tally()
    waiting: list[tuple[str, bytes]] = []
    for key, header in folder.headers():
        if not looks_like_report(header):
            tally.other += 1
            continue
        try:
            waiting.append((key, folder.fetch(key)))
        except Exception as error:  # one unreadable message must not stop the rest
            _failed(key, error, note, tally)
        if len(waiting) >= batch:
            _file_away(folder, waiting, process_many, note, tally)
            waiting = []
    if waiting:
        _file_away(folder, waiting, process_many, note, tally)
    return tally


def _file_away(
    folder: Folder,
    waiting: list[tuple[str, bytes]],
    process_many: ProcessMany,
    note: Callable[[str], None],
    tally: Tally,
) -> None:
    outcomes = process_many([raw for _key, raw in waiting])
    for (key, _raw), outcome in zip(waiting, outcomes, strict=True):
        if isinstance(outcome, Exception):
            _failed(key, outcome, note, tally)
            continue
        folder.move(key, PROCESSED if outcome.understood else REVIEW)
        if outcome.understood:
            tally.processed += 1
        else:
            tally.review += 1


def _failed(key: str, error: Exception, note: Callable[[str], None], tally: Tally) -> None:
    note(f"{key}: could not be processed ({type(error).__name__}: {error}); left in place")
    tally.failed += 1


# -- Maildir -----------------------------------------------------------------------------------------------

_MAILDIR_PARTS = ("tmp", "new", "cur")


class MaildirFolder:
    """A Maildir read file by file: names, flags and bytes of what we leave stay exactly as they were."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: tuple[str, bytes] | None = None  # the message `headers` last read whole
        self._ready: dict[str, str] = {}  # the subfolders known to exist, by name
        if not all((path / part).is_dir() for part in _MAILDIR_PARTS):
            raise UserError(f"{display_path(path)} is not a Maildir (it needs tmp, new and cur folders).")

    def target(self, name: str) -> Path:
        """The Maildir++ subfolder `name` of this Maildir (`DIR/.Processed`)."""
        return self.path / f".{name}"

    def headers(self) -> Iterator[tuple[str, bytes]]:
        for part in ("new", "cur"):
            with os.scandir(self.path / part) as entries:
                names = sorted(entry.name for entry in entries if entry.is_file() and entry.name[0] != ".")
            for name in names:
                key = f"{part}/{name}"
                try:
                    with open(self.path / key, "rb") as file:
                        head = file.read(_HEADER_BYTES)
                        whole = len(head) < _HEADER_BYTES or not file.peek(1)
                except FileNotFoundError:  # a mail client moved it meanwhile: it is not ours to chase
                    continue
                self._read = (key, head) if whole else None  # a small message is read once, not twice
                yield key, _header_block(head)

    def fetch(self, key: str) -> bytes:
        if self._read is not None and self._read[0] == key:
            return self._read[1]
        return (self.path / key).read_bytes()

    def move(self, key: str, to: str) -> None:
        folder = self._ready.get(to) or self._make(to)
        with contextlib.suppress(FileNotFoundError):  # a mail client took it meanwhile: it is recorded anyway
            # same file system: atomic, and the name (flags) kept
            os.rename(os.path.join(self.path, key), os.path.join(folder, key))

    def _make(self, name: str) -> str:
        """The subfolder, made if missing (once a run: a backlog moves thousands of messages)."""
        folder = self.target(name)
        if not (folder / "cur").is_dir():
            for part in _MAILDIR_PARTS:
                (folder / part).mkdir(mode=0o700, parents=True, exist_ok=True)
            (folder / "maildirfolder").touch()  # Maildir++: marks a subfolder, for Dovecot and Courier
        self._ready[name] = str(folder)
        return self._ready[name]


def _header_block(head: bytes) -> bytes:
    """The header part of the first bytes of a message (all of them if no blank line was seen)."""
    match = re.search(rb"\r?\n\r?\n", head)
    return head[: match.end()] if match else head


# -- IMAP --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapLocation:
    """`imaps://user@host[:port]/FOLDER`, parsed; the folder defaults to INBOX."""

    user: str
    host: str
    port: int
    folder: str

    @classmethod
    def parse(cls, url: str) -> ImapLocation:
        parts = urlsplit(url)
        if parts.scheme != "imaps":
            raise UserError(f"--imap must be an imaps://user@host[:port]/FOLDER address, not {url!r}.")
        try:
            port = parts.port or IMAPS_PORT
        except ValueError:
            raise UserError(f"--imap {url!r}: the port must be a number from 1 to 65535.") from None
        if not parts.username or not parts.hostname:
            raise UserError(f"--imap {url!r}: say who to log in as and where: imaps://user@host/FOLDER.")
        if parts.password is not None:
            raise UserError(
                "--imap: put the password in the `imap_password` setting or NEWSLETTER_IMAP_PASSWORD, "
                "not in the address (it would show in the process list)."
            )
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        if not folder.isascii():
            raise UserError(f"--imap: the folder name {folder!r} must be plain ASCII.")
        return cls(unquote(parts.username), parts.hostname, port, folder)

    def __str__(self) -> str:
        return f"imaps://{self.user}@{self.host}:{self.port}/{self.folder}"


def _quote(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapFolder:
    """One IMAP folder over TLS, a context manager: logged in and selected while open."""

    def __init__(self, location: ImapLocation, password: str, ca_file: str = "", timeout: float = 60) -> None:
        if not password:
            raise UserError("--imap needs a password: set `imap_password` or NEWSLETTER_IMAP_PASSWORD.")
        self.location = location
        self.password = password
        # Certificates are always verified: against the system's authorities, or the one CA file given.
        try:
            self.context = ssl.create_default_context(cafile=ca_file or None)
        except (OSError, ssl.SSLError) as error:
            raise UserError(
                f"setting 'imap_ca_file': cannot read a certificate from {ca_file}: {error}."
            ) from None
        self.timeout = timeout
        self.imap: imaplib.IMAP4_SSL | None = None
        self.children: dict[str, str] = {}

    def __enter__(self) -> ImapFolder:
        where = f"{self.location.host}:{self.location.port}"
        try:
            imap = imaplib.IMAP4_SSL(
                self.location.host, self.location.port, ssl_context=self.context, timeout=self.timeout
            )
        except ssl.SSLCertVerificationError as error:
            raise UserError(
                f"Cannot trust the IMAP server at {where}: {error.verify_message}. "
                "If it uses a private certificate authority, name its certificate in `imap_ca_file`."
            ) from None
        except (OSError, imaplib.IMAP4.error) as error:
            raise UserError(f"Cannot connect to the IMAP server at {where}: {error}.") from None
        self.imap = imap
        try:
            self._begin(where)
        except BaseException:
            self._logout()
            raise
        return self

    def _begin(self, where: str) -> None:
        imap = self._open()
        try:
            imap.login(self.location.user, self.password)
        except imaplib.IMAP4.error:
            raise UserError(
                f"The IMAP server at {where} refused the login of {self.location.user!r}."
            ) from None
        status, detail = imap.select(_quote(self.location.folder))
        if status != "OK":
            raise UserError(f"Cannot open the IMAP folder {self.location.folder!r}: {_text(detail)}.")
        # imaplib keeps the capabilities it saw before login; servers announce MOVE and UIDPLUS after it.
        capabilities = set(_text(self._check("list capabilities", imap.capability())).upper().split())
        self.can_move = "MOVE" in capabilities
        self.can_expunge_uids = "UIDPLUS" in capabilities

    def __exit__(self, *exc: object) -> None:
        self._logout()

    def _logout(self) -> None:
        imap, self.imap = self.imap, None
        if imap is not None:
            try:
                imap.logout()
            except (OSError, imaplib.IMAP4.error):
                imap.shutdown()

    def _open(self) -> imaplib.IMAP4_SSL:
        if self.imap is None:
            raise RuntimeError("ImapFolder is not open; use it in a `with` block")
        return self.imap

    def _check(self, what: str, response: tuple[str, list[object]]) -> list[object]:
        status, data = response
        if status != "OK":
            raise UserError(f"The IMAP server refused to {what}: {_text(data)}.")
        return data

    def headers(self) -> Iterator[tuple[str, bytes]]:
        imap = self._open()
        # Messages someone flagged \Deleted are on their way out (or our own COPY fallback left them): skip.
        data = self._check("search the folder", imap.uid("SEARCH", "UNDELETED"))
        uids = [uid.decode() for uid in (data[0] or b"").split()] if data else []
        for start in range(0, len(uids), _FETCH_BATCH):
            batch = ",".join(uids[start : start + _FETCH_BATCH])
            fetched = self._check("read headers", imap.uid("FETCH", batch, "(UID BODY.PEEK[HEADER])"))
            yield from _fetched_bodies(fetched)

    def fetch(self, key: str) -> bytes:
        fetched = self._check(f"read message {key}", self._open().uid("FETCH", key, "(UID BODY.PEEK[])"))
        for uid, body in _fetched_bodies(fetched):
            if uid == key:
                return body
        raise UserError(f"The IMAP server sent no message for UID {key} (did someone else move it?).")

    def move(self, key: str, to: str) -> None:
        imap = self._open()
        destination = self._child(to)
        if self.can_move:
            self._check(f"move message {key}", imap.uid("MOVE", key, _quote(destination)))
            return
        self._check(f"copy message {key}", imap.uid("COPY", key, _quote(destination)))
        self._check(f"flag message {key}", imap.uid("STORE", key, "+FLAGS.SILENT", r"(\Deleted)"))
        if self.can_expunge_uids:  # only this UID: a plain EXPUNGE would remove others' \Deleted mail too
            self._check(f"expunge message {key}", imap.uid("EXPUNGE", key))

    def _child(self, name: str) -> str:
        """FOLDER<separator>name, created and subscribed the first time it is needed."""
        if name in self.children:
            return self.children[name]
        imap = self._open()
        folder = self.location.folder
        listed = self._check("list folders", imap.list('""', _quote(folder)))
        separator = _separator(listed) or "/"
        child = f"{folder}{separator}{name}"
        if not [line for line in self._check("list folders", imap.list('""', _quote(child))) if line]:
            self._check(f"create the folder {child!r}", imap.create(_quote(child)))
            imap.subscribe(_quote(child))  # so mail clients show it; a refusal changes nothing we need
        self.children[name] = child
        return child


def _fetched_bodies(fetched: list[object]) -> Iterator[tuple[str, bytes]]:
    """(UID, literal) pairs from a FETCH answer, which imaplib gives as (prefix, literal) tuples."""
    for item in fetched:
        if isinstance(item, tuple) and len(item) == 2:
            match = re.search(rb"UID (\d+)", item[0])
            if match:
                yield match.group(1).decode(), item[1]


def _separator(listed: list[object]) -> str | None:
    """The hierarchy separator from a LIST answer line: `(\\HasNoChildren) "." INBOX`."""
    for line in listed:
        if isinstance(line, bytes):
            match = re.match(rb'\([^)]*\) (?:"((?:[^"\\]|\\.)*)"|NIL) ', line)
            if match and match.group(1):
                return match.group(1).decode().replace("\\\\", "\\")
    return None


def _text(data: list[object]) -> str:
    return " ".join(item.decode(errors="replace") if isinstance(item, bytes) else str(item) for item in data)


def read_maildir(
    path: Path, process_many: ProcessMany, looks_like_report: LooksLikeReport, note: Callable[[str], None]
) -> Tally:
    """`bounces read --maildir DIR`."""
    return read_reports(MaildirFolder(path), process_many, looks_like_report, note)


def read_imap(
    url: str,
    password: str,
    ca_file: str,
    process_many: ProcessMany,
    looks_like_report: LooksLikeReport,
    note: Callable[[str], None],
) -> Tally:
    """`bounces read --imap URL`; a connection lost on the way is one clear message (what was moved stays)."""
    location = ImapLocation.parse(url)
    try:
        with ImapFolder(location, password, ca_file) as folder:
            return read_reports(folder, process_many, looks_like_report, note)
    except (OSError, imaplib.IMAP4.error) as error:
        raise UserError(
            f"The connection to {location} failed: {error}. Run the command again to go on."
        ) from None
