"""`newsletter init DIR`: a new network's own project folder, ready for its first issue.

Like `mkdocs new` or `datasette`'s folders: settings with a fresh secret key and
every other key written out, commented, with its default; the vocabulary, one
list and one segment; an empty member file with the right header; a first
draft; and a `.gitignore`, so the folder can go straight into git.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import shutil
from pathlib import Path

from newsletter.content.scaffold import create_issue
from newsletter.errors import UserError, display_path
from newsletter.settings import BUNDLED_ROOT, SETTING_HELP, SETTINGS_FILE, Settings

VOCABULARY_FILES = ("topics.yaml", "regions.yaml", "sectors.yaml", "place_kinds.yaml")
MEMBER_COLUMNS = ("email", "name", "organisation", "sector", "region", "place", "topics", "lists")
FIRST_LIST = "newsletter"
FIRST_SEGMENT = "everyone"
# Settings whose default is a folder of the project: written as the folder's name, not a path.
PROJECT_DEFAULTS = {"issues_dir": "issues", "theme_dir": "templates", "vocabulary_dir": "subscribers"}

LISTS_YAML = f"""\
# Mailing lists members can be on. A campaign goes to lists and segments;
# a member can leave one list and stay on the others. Add lists as you need them;
# never change a slug once used (members and campaigns refer to it).
- slug: {FIRST_LIST}
  name: Monthly newsletter
"""

SEGMENTS_YAML = f"""\
# Segments: named audiences for `newsletter send --to NAME`, counted live by `newsletter segments`.
# Several conditions under one name must all hold; `any:`, `all:` and `not:` combine them.
# Nobody unsubscribed, bounced, complained or suppressed is ever in a segment.
# Conditions: lists, topics, sector, region, place, domain, status, joined, attributes, segment.

{FIRST_SEGMENT}:
  description: Everyone on the monthly newsletter
  lists: {FIRST_LIST}
"""

GITIGNORE = """\
# The database and what commands write; the settings file holds the secret key,
# so keep this folder's repository private (or move secret_key to NEWSLETTER_SECRET_KEY).
*.sqlite3
*.sqlite3-*
/out/
/sink/
/public/
*-import-report.csv
"""


@dataclasses.dataclass(frozen=True)
class NewProject:
    """What `init` made, for the command to print."""

    folder: Path
    settings_file: Path
    first_issue: Path
    members_file: Path
    theme_copied: bool


def init_project(folder: Path, theme: bool = False, today: dt.date | None = None) -> NewProject:
    """Lay out a new network's folder; refuse one that already holds anything."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{display_path(folder)}: is a file; give a new folder's name")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(
            f"{display_path(folder)}: is not empty; `newsletter init` only fills a new or empty folder, "
            "so nothing of yours is overwritten"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{display_path(folder)}: cannot be created: {error.strerror}") from None
    settings_file = folder / SETTINGS_FILE
    settings_file.write_text(settings_text(secrets.token_urlsafe(32), theme), encoding="utf-8")
    (folder / ".gitignore").write_text(GITIGNORE, encoding="utf-8")

    vocabulary = folder / PROJECT_DEFAULTS["vocabulary_dir"]
    vocabulary.mkdir()
    for name in VOCABULARY_FILES:
        shutil.copyfile(BUNDLED_ROOT / "subscribers" / name, vocabulary / name)
    (vocabulary / "lists.yaml").write_text(LISTS_YAML, encoding="utf-8")
    (vocabulary / "segments.yaml").write_text(SEGMENTS_YAML, encoding="utf-8")
    members = vocabulary / "members.csv"
    members.write_text(",".join(MEMBER_COLUMNS) + "\n", encoding="utf-8")

    if theme:
        shutil.copytree(BUNDLED_ROOT / "templates", folder / PROJECT_DEFAULTS["theme_dir"])
    today = today or dt.date.today()
    first = create_issue(folder / PROJECT_DEFAULTS["issues_dir"], f"{today:%Y-%m}", today=today)
    return NewProject(folder, settings_file, first, members, theme)


def settings_text(secret_key: str, theme: bool) -> str:
    """`newsletter.toml`: the secret key set, every other key commented out with its default."""
    lines = [
        "# This network's settings. Every key but secret_key is commented out at its default:",
        "# remove the '# ' to change one. NEWSLETTER_<KEY> in the environment wins over this file",
        "# (for example NEWSLETTER_SMTP_URL). Relative paths are taken from this folder.",
        "",
    ]
    defaults = Settings.__dataclass_fields__
    for name, described in SETTING_HELP.items():
        lines.append(f"# {described}")
        if name == "secret_key":
            lines.append(f"secret_key = {_toml_string(secret_key)}")
        elif name in PROJECT_DEFAULTS:
            written = f"{name} = {_toml_string(PROJECT_DEFAULTS[name])}"
            lines.append(written if name == "theme_dir" and theme else f"# {written}")
        else:
            default = defaults[name].default
            value = _toml_value(default)
            lines.append(f"# {name} = {value}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    """A default as TOML writes it: text quoted, true/false in lower case, numbers as they are."""
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for the text settings hold)."""
    return json.dumps(text, ensure_ascii=False)
