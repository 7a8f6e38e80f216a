"""One Settings object, read once from `newsletter.toml` and `NEWSLETTER_*`, then passed in.

Nothing else in the engine reads the environment or the settings file, so a
test or a library user can build a Settings by hand and get the same behaviour.
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
DEFAULT_SECRET_KEY = "change-me-this-key-is-only-for-trying-things-out"
BUNDLED_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    """Every setting the engine uses; the field names are the keys of `newsletter.toml`."""

    database_url: str = "sqlite:///newsletter.sqlite3"
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
    network_name: str = "Health Equity Network"
    issues_dir: Path = field(default_factory=lambda: Path("issues"))
    theme_dir: Path = field(default_factory=lambda: _project_or_bundled("templates", "email"))
    vocabulary_dir: Path = field(default_factory=lambda: _project_or_bundled("subscribers", "topics.yaml"))

    @classmethod
    def load(cls, directory: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `newsletter.toml` (if present) in `directory`, then let `NEWSLETTER_*` win."""
        directory = directory or Path.cwd()
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        sources: dict[str, str] = {}
        path = directory / SETTINGS_FILE
        if path.is_file():
            values.update(_read_toml(path))
            sources.update(dict.fromkeys(values, display_path(path)))
        for name in _field_types():
            variable = ENV_PREFIX + name.upper()
            if variable in environ:
                values[name] = environ[variable]
                sources[name] = f"environment variable {variable}"
        return cls.from_mapping(values, sources)

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
    """The working directory's own folder when it has one, else the one shipped with the code.

    So a network's project folder may hold only `issues/` and still get the
    default theme and vocabulary, and may override either by adding its own.
    """
    local = Path(folder)
    return local if (local / marker).exists() else BUNDLED_ROOT / folder


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(Settings)}


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{display_path(path)}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{display_path(path)}: cannot be read: {error}") from None


def _convert(key: str, value: object, type_name: str, source: str) -> object:
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
