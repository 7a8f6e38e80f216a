"""The member database on both engines: migrations from empty, and the sample list's segments."""

from __future__ import annotations

from newsletter.audience.service import Audience
from newsletter.db.database import Database


def test_upgrade_from_empty_creates_the_schema_and_is_idempotent(audience_settings):
    service = Audience.open(audience_settings)
    try:
        assert service.store.database.current_revision() is None
        before, after = service.upgrade()
        assert before is None and after == Database.head_revision()
        assert service.upgrade() == (after, after)
        service.store.ready()
    finally:
        service.close()
