"""The editor's guide keeps up with the model: every section kind and field is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from newsletter.content.model import SECTION_KINDS, Image, Issue, Link

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "editing-issues.md"


def _documented_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if "rule" in f.metadata}


@pytest.mark.parametrize("cls", [Issue, Image, Link, *SECTION_KINDS.values()], ids=lambda c: c.__name__)
def test_editing_guide_names_every_field(cls):
    guide = GUIDE.read_text(encoding="utf-8")
    names = _documented_fields(cls)
    for declared in dataclasses.fields(cls):
        rule = declared.metadata.get("rule")
        item_cls = getattr(rule, "cls", None)
        if item_cls is not None:
            names |= _documented_fields(item_cls)
    missing = sorted(name for name in names if not re.search(rf"`{re.escape(name)}`", guide))
    assert not missing, f"docs/editing-issues.md does not mention {missing}"


def test_editing_guide_has_a_heading_per_section_kind():
    guide = GUIDE.read_text(encoding="utf-8")
    for kind in SECTION_KINDS:
        assert f"### `{kind}`" in guide


def test_the_architecture_module_table_matches_the_tree():
    """A newcomer finds each module's job in docs/architecture.md: every module is in the table, and
    the table names no module that is gone."""
    root = Path(__file__).resolve().parents[1]
    package = root / "src" / "newsletter"
    text = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    named = {
        name
        for row in re.findall(r"^\| (.+?) \|", table, re.MULTILINE)
        for name in re.findall(r"`([\w/]+\.py)`", row)
    }
    modules = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if "migrations" not in path.parts and path.name not in ("__init__.py", "__main__.py")
    }
    assert sorted(modules - named) == [], "modules the table does not describe"
    assert sorted(named - modules) == [], "rows for modules that are gone"
