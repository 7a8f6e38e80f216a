"""Nobody unsubscribed, bounced, complained, erased or suppressed is ever in a segment, whatever it says."""

from __future__ import annotations

import pytest

from newsletter.audience.members import suppress
from newsletter.db.models import Status
from test_audience_support import (
    all_emails,
    custom_audience,
    import_text,
    member,
    segment_emails,
    vocabulary_copy,
)

# Two profiles that match every sample segment between them (north-west councils, Wales, NHS addresses,
# every topic, every list, joined this year). Each has active and pending controls, and people who must
# never be selected.
ALL_TOPICS = ";".join(
    [
        "health-equity",
        "housing",
        "early-years",
        "children-young-people",
        "marmot-places",
        "local-government",
        "climate",
    ]
)
PROFILES = {
    "nw": "local-government,north-west,Manchester",
    "wa": "nhs,wales,Cardiff",
}
IMPORTED = {
    "active": "",
    "pending": "pending",
    "unsubscribed": "unsubscribed",
    "bounced": "bounced",
    "complained": "complained",
    "erased": "",
    "suppressed": "",
    "pending-suppressed": "pending",
}
CONTROLS = {"active", "pending"}

OWN_SEGMENTS = """
everything:
  not:
    place: nowhere-at-all
pending-only:
  status: pending
active-or-pending:
  status: [active, pending]
  not:
    place: nowhere-at-all
not-pending:
  not:
    status: pending
any-list-or-topic:
  any:
    - lists: [newsletter, network, events]
    - topics: [housing, climate]
    - domain: nhs.example
nested-not:
  not:
    all:
      - region: london
      - not:
          lists: newsletter
refers-to-everyone:
  segment: everyone
"""


def address(kind: str, profile: str) -> str:
    return f"{kind}-{profile}@{profile}.nhs.example"


@pytest.fixture
def crowd(audience, audience_settings, repo_root, tmp_path):
    """sample.csv plus the people above, made unmailable each in their own way."""
    sample_segments = (repo_root / "subscribers" / "segments.yaml").read_text(encoding="utf-8")
    directory = vocabulary_copy(repo_root, tmp_path / "vocab", sample_segments + OWN_SEGMENTS)
    service = custom_audience(audience_settings, directory)
    service.import_csv(repo_root / "subscribers" / "sample.csv", report_path=tmp_path / "report.csv")
    lines = ["email,name,sector,region,place,topics,lists,joined,status"]
    for kind, status in IMPORTED.items():
        for profile, details in PROFILES.items():
            lines.append(
                f"{address(kind, profile)},{kind},{details},{ALL_TOPICS},newsletter;network;events,2023-06-01,{status}"
            )
    summary = import_text(service, tmp_path, "\n".join(lines) + "\n", "crowd.csv")
    assert (summary.added, summary.rejected) == (len(IMPORTED) * len(PROFILES), 0)
    for profile in PROFILES:
        service.erase(address("erased", profile))
        with service.store.database.session() as session:
            # suppressions match whatever the case of the address they were given
            suppress(session, address("suppressed", profile).upper(), "bounce", "test")
            suppress(session, address("pending-suppressed", profile), "complaint", "test")
    yield service
    service.close()


def test_the_crowd_is_stored_as_intended(crowd):
    for profile in PROFILES:
        assert member(crowd, address("erased", profile)) is None
        assert member(crowd, address("suppressed", profile)).status == Status.ACTIVE
        assert member(crowd, address("bounced", profile)).status == Status.BOUNCED
        assert member(crowd, address("pending", profile)).status == Status.PENDING
    assert len(all_emails(crowd)) == 400 + (len(IMPORTED) - 1) * len(PROFILES)


def test_no_segment_ever_holds_anyone_who_cannot_be_mailed(crowd):
    never = {address(kind, profile) for kind in set(IMPORTED) - CONTROLS for profile in PROFILES}
    names = list(crowd.segments.by_name)
    assert len(names) == 8 + 7  # the sample's segments and ours
    for name in names:
        selected = segment_emails(crowd, name)  # also checks: each member once, count == members
        assert selected.isdisjoint(never), (name, selected & never)
        controls = {address(kind, profile) for kind in CONTROLS for profile in PROFILES}
        assert selected & controls, f"{name}: the controls show these people would otherwise match"


def test_status_decides_which_controls_are_selected(crowd):
    active = {address("active", profile) for profile in PROFILES}
    pending = {address("pending", profile) for profile in PROFILES}
    assert segment_emails(crowd, "pending-only") == pending
    everything = segment_emails(crowd, "everything")
    assert everything >= active and everything.isdisjoint(pending)
    assert len(everything) == 400 + len(active)
    assert segment_emails(crowd, "active-or-pending") == everything | pending
    assert segment_emails(crowd, "not-pending") == everything


def test_segment_counts_leave_out_everyone_unmailable(crowd):
    counts = {segment.name: count for segment, count in crowd.segment_counts()}
    assert counts["everything"] == 402
    assert counts["pending-only"] == 2
    assert counts["refers-to-everyone"] == counts["everyone"] == 402
