"""The classifier against real-world bounces: flufl.bounce's corpus of messages from many MTAs (Postfix,
Exim, qmail, Sendmail, Exchange, GroupWise, Yahoo, AOL, ...), plus hand-written ARF complaints and
automatic replies (`tests/data/bounces/`, see SOURCES.md there).

The corpus is only in flufl.bounce's source distribution; `scripts/test` downloads it once into
`.venv/cache/` (the version installed in the venv). A missing corpus fails, it is never skipped.

What is checked:

* every sample flufl's own test suite expects addresses from (its `test_detectors.py` table, read from
  the same sdist, so the expectations are flufl's, not ours): each of those addresses is found;
* a documented subset has the kind a list owner expects (`HARD`, `SOFT`, `POLICY`): see `KINDS`;
* samples flufl finds no address in (not bounces, or unreadable ones) never make a `HARD` finding:
  a message we cannot read must not suppress anybody;
* ARF reports are complaints naming our token or Message-ID; automatic replies are ignored.
"""

from __future__ import annotations

import ast
import importlib.metadata
from collections import defaultdict
from pathlib import Path

import pytest

from newsletter.bounces.classify import classify
from newsletter.bounces.findings import Finding, Kind

ROOT = Path(__file__).resolve().parents[1]
VERSION = importlib.metadata.version("flufl.bounce")
SDIST = ROOT / ".venv" / "cache" / f"flufl_bounce-{VERSION}"
CORPUS = SDIST / "tests" / "data"
OURS = Path(__file__).parent / "data" / "bounces"
DOMAIN = "health-equity-network.example.org"

# The documented subset, with why. Samples are flufl.bounce's (tests/data in its sdist).
KINDS: dict[str, Kind] = {
    # Action: failed with Status 5.1.1 (or "550 5.1.1 User unknown"): the address does not exist.
    "dsn_11.txt": Kind.HARD,
    "dsn_12.txt": Kind.HARD,
    "dsn_13.txt": Kind.HARD,
    "dsn_14.txt": Kind.HARD,
    "dsn_15.txt": Kind.HARD,
    "postfix_01.txt": Kind.HARD,  # Postfix's plain-text report quoting "550 5.1.1 ... User unknown"
    # Action: delayed, Status 4.x.x (no answer from host, quota): temporary, scored, never suppressed at once.
    "dsn_05.txt": Kind.SOFT,
    "dsn_06.txt": Kind.SOFT,
    "dsn_07.txt": Kind.SOFT,
    "dsn_17.txt": Kind.SOFT,
}
# Gmail's "550-5.7.1 ... likely unsolicited mail": a spam-filter rejection, which flufl.bounce would call a
# permanent failure. Whatever we find in it must never count against the member.
POLICY_ONLY = {"simple_42.txt"}


def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(
            f"flufl.bounce's bounce corpus is missing ({CORPUS}). It is in the sdist only; "
            "run scripts/test once, which downloads and unpacks it into .venv/cache/."
        )
    return CORPUS


def flufl_expectations() -> dict[str, set[str]]:
    """Sample file -> addresses flufl's own test suite expects, read from its `test_detectors.py` table.

    A file listed twice (two detectors) expects the union. Addresses are compared in lower case.
    """
    source = (SDIST / "tests" / "test_detectors.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "DETECTORS" for target in node.targets
        ):
            expected: dict[str, set[str]] = defaultdict(set)
            for _module, filename, addresses, _temporary in ast.literal_eval(node.value):
                expected[filename] |= {address.decode().lower() for address in addresses}
            return dict(expected)
    raise AssertionError("flufl.bounce's tests/test_detectors.py has no DETECTORS table any more")


def findings_of(path: Path) -> list[Finding]:
    return classify(path.read_bytes(), DOMAIN)


def addresses(findings: list[Finding]) -> set[str]:
    return {finding.address.lower() for finding in findings if finding.address}


def test_the_corpus_is_there_and_flufl_names_its_samples() -> None:
    samples = {path.name for path in corpus_dir().glob("*.txt")}
    expected = flufl_expectations()
    assert len(samples) > 100, sorted(samples)
    assert set(expected) <= samples
    assert set(KINDS) | POLICY_ONLY <= samples


def test_every_address_flufl_expects_is_found() -> None:
    """One assertion over the whole table, so a failure lists every sample we miss, not the first."""
    corpus = corpus_dir()
    missed = {}
    for filename, wanted in sorted(flufl_expectations().items()):
        if not wanted:
            continue
        found = addresses(findings_of(corpus / filename))
        if not wanted <= found:
            missed[filename] = f"wanted {sorted(wanted)}, found {sorted(found)}"
    assert not missed, "\n".join(f"{name}: {why}" for name, why in missed.items())


@pytest.mark.parametrize("filename", sorted(KINDS))
def test_a_documented_sample_has_the_kind_a_list_owner_expects(filename: str) -> None:
    findings = findings_of(corpus_dir() / filename)
    assert findings, f"{filename}: not classified"
    assert {finding.kind for finding in findings} == {KINDS[filename]}, findings


def test_a_sample_without_a_readable_recipient_never_suppresses_anybody() -> None:
    corpus = corpus_dir()
    unreadable = sorted(name for name, wanted in flufl_expectations().items() if not wanted)
    unreadable += ["dumbass_01.txt"]  # flufl: "No addresses are detectable in dumbass_01.txt"
    assert unreadable
    hard = {name: findings_of(corpus / name) for name in unreadable}
    hard = {name: found for name, found in hard.items() if any(f.kind is Kind.HARD for f in found)}
    assert not hard, hard


@pytest.mark.parametrize("filename", sorted(POLICY_ONLY))
def test_a_spam_filter_rejection_is_a_sending_problem_not_the_members(filename: str) -> None:
    findings = findings_of(corpus_dir() / filename)
    assert {finding.kind for finding in findings} <= {Kind.POLICY}, findings


def test_no_sample_in_the_corpus_breaks_the_classifier() -> None:
    """Every real-world sample, odd encodings and all, gives findings or nothing: never an exception."""
    for path in sorted(corpus_dir().glob("*.txt")):
        findings_of(path)


@pytest.mark.parametrize("path", sorted(OURS.glob("arf_*.eml")), ids=lambda path: path.name)
def test_an_arf_report_is_a_complaint_naming_our_member_or_message(path: Path) -> None:
    findings = findings_of(path)
    assert findings, f"{path.name}: not classified"
    assert {finding.kind for finding in findings} == {Kind.COMPLAINT}, findings
    assert all(finding.token or finding.message_id for finding in findings), findings


@pytest.mark.parametrize("path", sorted(OURS.glob("autoreply_*.eml")), ids=lambda path: path.name)
def test_an_automatic_reply_is_ignored(path: Path) -> None:
    findings = findings_of(path)
    assert findings, (
        f"{path.name}: an auto-reply should be recognised (and then ignored), not left for review"
    )
    assert {finding.kind for finding in findings} == {Kind.AUTO_REPLY}, findings
