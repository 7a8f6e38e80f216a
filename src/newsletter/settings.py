"""One Settings object, read once from `newsletter.toml` and `NEWSLETTER_*`, then passed in.

Nothing else in the engine reads the environment or the settings file, so a
test or a library user can build a Settings by hand and get the same behaviour.
Relative paths are made absolute here, once, against the folder that holds
the settings file: every command then behaves the same from any working
directory, and no code downstream ever sees a relative path.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import UserError, display_path

SETTINGS_FILE = "newsletter.toml"
ENV_PREFIX = "NEWSLETTER_"
CONFIG_VARIABLE = "NEWSLETTER_CONFIG"  # the settings file to read, when it is not in the working directory
SQLITE_PREFIX = "sqlite:///"
DEFAULT_DATABASE_URL = "sqlite:///newsletter.sqlite3"
PATH_SETTINGS = ("issues_dir", "theme_dir", "vocabulary_dir")
# Optional files: text, "" when unset, else made absolute like paths.
FILE_SETTINGS = ("ses_signing_cert", "imap_ca_file", "dkim_private_key", "dkim_ed25519_key")
# Folders a project may hold to replace the bundled ones: (setting, folder, a file that shows it is there).
PROJECT_FOLDERS = (("theme_dir", "templates", "email"), ("vocabulary_dir", "subscribers", "topics.yaml"))
DEFAULT_SECRET_KEY = "change-me-this-key-is-only-for-trying-things-out"
BUNDLED_ROOT = Path(__file__).resolve().parents[2]
# What each setting is for, in a line: written into the settings file `newsletter init` makes.
SETTING_HELP = {
    "database_url": "the database: a SQLite file (relative to this folder) or postgresql+psycopg://user@host/db",
    "smtp_url": "the relay mail goes out through: smtp://host:port, smtps://..., user:password@ for login",
    "base_url": "the public address of `newsletter serve`: links in every email point here",
    "secret_key": "signs every link in every email; keep it secret, and never change it once mail has gone out",
    "from_address": "who the newsletter comes from",
    "reply_to": "where replies go",
    "list_id": "the List-Id header mail programs file the newsletter by",
    "postal_address": "the postal address every email carries (the law asks for one)",
    "timezone": "the zone `send --at` times are in",
    "max_rate": "messages a second at most, all recipients together (0: as fast as the relay takes them)",
    "domain_rate": "messages a second at most to any one recipient domain (0: no limit)",
    "concurrency": "SMTP connections a worker keeps open",
    "bounce_threshold": "soft bounces (counted at most one a day) that suppress a member; a hard bounce does at once",
    "bounce_quiet_days": "days without a soft bounce after which a member's soft-bounce count starts again from 0",
    "ses_signing_cert": "Amazon SNS's signing certificate (a PEM file, downloaded once; the server never fetches it): enables /webhooks/ses",
    "ses_topic_arn": "the SNS topic(s), comma-separated, whose SES notifications /webhooks/ses accepts",
    "postmark_webhook_user": "the basic-auth user in Postmark's webhook URL: with the password, enables /webhooks/postmark",
    "postmark_webhook_password": "the basic-auth password in Postmark's webhook URL (a long random value; keep it secret)",
    "mailgun_signing_key": "Mailgun's HTTP webhook signing key (keep it secret): enables /webhooks/mailgun",
    "sendgrid_public_key": "SendGrid's signed event webhook verification key (base64): enables /webhooks/sendgrid",
    "imap_password": "the password `bounces read --imap` logs in with (keep it secret; or NEWSLETTER_IMAP_PASSWORD)",
    "imap_ca_file": "a CA certificate (PEM) to trust for `bounces read --imap`, for a private CA (default: the system's)",
    "dkim_selector": "the DKIM selector of dkim_private_key: with it, every email is signed (`newsletter dns` prints the record)",
    "dkim_private_key": "the RSA private key (PEM, 2048 bits or more) mail is signed with (`newsletter dkim keygen` makes one)",
    "dkim_domain": "the domain the DKIM signature is made for (default: the domain of from_address)",
    "dkim_ed25519_key": "an Ed25519 private key (PEM) for a second signature beside the RSA one (RFC 8463), optional",
    "dkim_ed25519_selector": "the selector of dkim_ed25519_key (default: dkim_selector followed by -ed25519)",
    "count_clicks": "count how often each link of an issue is followed, through a redirect on `newsletter serve` (never who)",
    "network_name": "the network's name, in emails and on the pages",
    "issues_dir": "the folder of issues, one folder each",
    "theme_dir": "the theme (default: templates/ here if there is one, else the bundled theme)",
    "vocabulary_dir": "topics, regions, sectors, lists and segments (default: subscribers/ here)",
}


@dataclass(frozen=True)
class Settings:
    """Every setting the engine uses; the field names are the keys of `newsletter.toml`."""

    database_url: str = DEFAULT_DATABASE_URL
    smtp_url: str = "smtp://127.0.0.1:8025"
    base_url: str = "https://news.health-equity-network.example.org"
    secret_key: str = DEFAULT_SECRET_KEY
    from_address: str = "Health Equity Network <newsletter@health-equity-network.example.org>"
    reply_to: str = "network@health-equity-network.example.org"
    list_id: str = "Health Equity Network newsletter <news.health-equity-network.example.org>"
    postal_address: str = "Health Equity Network, 1-19 Torrington Place, London WC1E 7HB"
    timezone: str = "Europe/London"
    max_rate: float = 0.0
    domain_rate: float = 0.0
    concurrency: int = 4
    bounce_threshold: int = 5
    bounce_quiet_days: int = 7
    ses_signing_cert: str = ""  # a file: made absolute like the paths, but "" means none
    ses_topic_arn: str = ""
    postmark_webhook_user: str = ""
    postmark_webhook_password: str = field(default="", repr=False)  # secrets stay out of any printed Settings
    mailgun_signing_key: str = field(default="", repr=False)
    sendgrid_public_key: str = ""
    imap_password: str = field(default="", repr=False)
    imap_ca_file: str = ""  # a file, like ses_signing_cert
    dkim_selector: str = ""
    dkim_private_key: str = ""  # a file, like ses_signing_cert
    dkim_domain: str = ""
    dkim_ed25519_key: str = ""  # a file, like ses_signing_cert
    dkim_ed25519_selector: str = ""
    count_clicks: bool = False
    network_name: str = "Health Equity Network"
    issues_dir: Path = field(default_factory=lambda: Path("issues"))
    theme_dir: Path = field(default_factory=lambda: _project_or_bundled("templates", "email"))
    vocabulary_dir: Path = field(default_factory=lambda: _project_or_bundled("subscribers", "topics.yaml"))

    @classmethod
    def load(
        cls,
        directory: Path | None = None,
        environ: Mapping[str, str] | None = None,
        config: Path | None = None,
    ) -> Settings:
        """Read the settings file, then let `NEWSLETTER_*` win; relative paths made absolute.

        The file is `config` if given, else the one `NEWSLETTER_CONFIG` names, else
        `newsletter.toml` in `directory` (the working directory by default). Paths written in the
        file are relative to the file's folder; paths from the environment to the working
        directory; defaults to the project folder (the file's folder, or the working directory).
        """
        directory = (directory or Path.cwd()).resolve()
        environ = os.environ if environ is None else environ
        origin = "--config"
        if config is None and environ.get(CONFIG_VARIABLE):
            config, origin = Path(environ[CONFIG_VARIABLE]), f"environment variable {CONFIG_VARIABLE}"
        if config is not None:
            config = (directory / config).resolve()
            if not config.is_file():
                raise UserError(f"{origin}: there is no settings file at {config}")
        path = config or directory / SETTINGS_FILE
        project = path.parent
        values: dict[str, object] = {}
        sources: dict[str, str] = {}
        if path.is_file():
            values.update(_read_toml(path))
            sources.update(dict.fromkeys(values, display_path(path)))
        bases = dict.fromkeys(values, project)
        for name in _field_types():
            variable = ENV_PREFIX + name.upper()
            if variable in environ:
                values[name] = environ[variable]
                sources[name] = f"environment variable {variable}"
                bases[name] = directory
        values.setdefault("issues_dir", "issues")
        for name, folder, marker in PROJECT_FOLDERS:
            if name not in values:
                local = project / folder
                values[name] = local if (local / marker).exists() else BUNDLED_ROOT / folder
        for name in PATH_SETTINGS:
            if isinstance(values.get(name), str | Path):
                values[name] = (bases.get(name, project) / str(values[name])).resolve()
        for name in FILE_SETTINGS:
            if isinstance(values.get(name), str) and values[name]:
                values[name] = str((bases.get(name, project) / str(values[name])).resolve())
        url = values.get("database_url", DEFAULT_DATABASE_URL)
        if isinstance(url, str):
            values["database_url"] = absolute_sqlite_url(url, bases.get("database_url", project))
        return cls.from_mapping(values, sources)

    def __post_init__(self) -> None:
        """A Settings built by hand gets the same guarantee as a loaded one: no relative path
        (they are taken against the working directory, the only folder a caller can mean)."""
        for name in PATH_SETTINGS:
            value = getattr(self, name)
            if isinstance(value, Path) and not value.is_absolute():
                object.__setattr__(self, name, value.resolve())
        object.__setattr__(self, "database_url", absolute_sqlite_url(self.database_url, Path.cwd()))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], sources: Mapping[str, str] | None = None) -> Settings:
        """Build Settings from plain values, converting types; a bad value names where it came from."""
        types = _field_types()
        converted: dict[str, object] = {}
        for key, value in values.items():
            source = (sources or {}).get(key, "settings")
            if key not in types:
                hint = difflib.get_close_matches(key, types, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise UserError(f"{source}: unknown setting '{key}'{suggestion}")
            converted[key] = _convert(key, value, types[key], source)
        return cls(**converted)


def _project_or_bundled(folder: str, marker: str) -> Path:
    """The working directory's own folder when it has one, else the one shipped with the code
    (the default of a Settings built by hand; `load` decides against the project folder instead)."""
    local = Path(folder).resolve()
    return local if (local / marker).exists() else BUNDLED_ROOT / folder


def absolute_sqlite_url(url: str, base: Path) -> str:
    """`sqlite:///newsletter.sqlite3` -> `sqlite:////project/newsletter.sqlite3`; other URLs as they are.

    SQLite's URL holds a file path, and a relative one would name a different file from every
    working directory: the database a command opens must not depend on where it was started.
    """
    if not url.startswith(SQLITE_PREFIX):
        return url
    rest = url[len(SQLITE_PREFIX) :]
    file, _, query = rest.partition("?")
    if not file or file == ":memory:" or file.startswith("/"):
        return url
    return SQLITE_PREFIX + str((base / file).resolve()) + (f"?{query}" if query else "")


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(Settings)}


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def _boolean(key: str, value: object, source: str) -> bool:
    """TOML's true/false, or the words an environment variable can carry."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise UserError(f"{source}: setting '{key}' must be true or false, not {value!r}")


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{display_path(path)}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{display_path(path)}: cannot be read: {error}") from None


def _convert(key: str, value: object, type_name: str, source: str) -> object:
    if type_name == "bool":
        return _boolean(key, value, source)
    try:
        if isinstance(value, bool) or (isinstance(value, float) and type_name == "int"):
            raise ValueError  # TOML's true or 2.5 is not a count; int() would quietly make it 1 or 2
        if type_name == "float":
            number = float(value)  # type: ignore[arg-type]
            if number < 0:
                raise ValueError
            return number
        if type_name == "int":
            number = int(value)  # type: ignore[call-overload]
            if number < 1:
                raise ValueError
            return number
        if type_name == "Path":
            return Path(str(value))
    except (TypeError, ValueError):
        kind = "a positive whole number" if type_name == "int" else "a number, 0 or more"
        raise UserError(f"{source}: setting '{key}' must be {kind}, not {value!r}") from None
    if not isinstance(value, str):
        raise UserError(f"{source}: setting '{key}' must be text, not {value!r}")
    return value
