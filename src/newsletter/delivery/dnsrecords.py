"""The DNS records a network must publish for its mail to authenticate, and a check of what is published.

Gmail and Yahoo take bulk mail only from senders that pass SPF and DKIM and publish DMARC, and bounces
only come back if the From domain's MX leads to `newsletter bounces receive`. `expected(settings)` says
what to publish, each record with a line on why, so a communications officer can paste it into their
DNS; `check(settings, resolver)` asks the DNS (dnspython) and says record by record whether it is
there and right, including a DKIM record whose key is not the private key mail is signed with.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dns.exception
import dns.resolver

from newsletter.delivery.dkim import dkim_domain, signer_for
from newsletter.delivery.message import sender_domain
from newsletter.errors import UserError, display_path
from newsletter.settings import Settings

__all__ = [
    "DMARC_REPORTS",
    "Finding",
    "Record",
    "Status",
    "check",
    "expected",
    "keygen_settings",
    "make_resolver",
    "no_dkim_advice",
]

DMARC_REPORTS = "dmarc-reports"  # the local part of the suggested DMARC report address
DEFAULT_TIMEOUT = 5.0  # seconds for each lookup
SPF_LIMIT = "~all"  # soft fail while starting out; "-all" once DMARC reports show every source passing
# Relays whose providers publish an SPF record to include: a host name ending in the key -> the include.
KNOWN_RELAYS = {
    "sendgrid.net": "include:sendgrid.net",
    "amazonaws.com": "include:amazonses.com",
    "mailgun.org": "include:mailgun.org",
    "postmarkapp.com": "include:spf.mtasv.net",
    "gmail.com": "include:_spf.google.com",
    "google.com": "include:_spf.google.com",
    "office365.com": "include:spf.protection.outlook.com",
    "outlook.com": "include:spf.protection.outlook.com",
    "mailjet.com": "include:spf.mailjet.com",
    "sparkpostmail.com": "include:sparkpostmail.com",
}


class Status:
    """What a check found for one record. MISSING, WRONG and ERROR make `dns --check` fail."""

    OK = "OK"
    MISSING = "MISSING"
    WRONG = "WRONG"
    CHECK = "CHECK"  # present, but something a person should look at; not a failure
    ERROR = "ERROR"  # the DNS could not be asked


@dataclass(frozen=True)
class Record:
    """One record to publish: where, what type, its value, and a line on why it matters."""

    name: str
    type: str  # "TXT" or "MX"
    value: str
    why: str
    kind: str  # "dkim", "spf", "dmarc" or "mx": what `check` looks for
    key_file: str = ""  # the private key a DKIM record is made from
    advice: str = ""  # what to fill in or watch out for, when there is something

    def line(self) -> str:
        """The record as a person pastes it: `NAME TYPE "value"` for TXT, `NAME MX value` for MX."""
        value = f'"{self.value}"' if self.type == "TXT" else self.value
        return f"{self.name} {self.type} {value}"


@dataclass(frozen=True)
class Finding:
    """What the DNS holds for one expected record, in a sentence."""

    record: Record
    status: str
    message: str

    @property
    def failed(self) -> bool:
        return self.status in (Status.MISSING, Status.WRONG, Status.ERROR)


# ---------------------------------------------------------------------------------------------------------
# What to publish
# ---------------------------------------------------------------------------------------------------------


def no_dkim_advice() -> str:
    """What to do when no DKIM key is configured."""
    return (
        "No DKIM key is configured (settings dkim_selector and dkim_private_key), so mail is not signed. "
        "Make one with `newsletter dkim keygen --selector NAME` (NAME: for example nl2026); "
        "it prints the record to publish and the settings to add."
    )


def _aligned(signing: str, author: str) -> bool:
    """Relaxed DMARC alignment, roughly: the same domain, or one a subdomain of the other."""
    return signing == author or signing.endswith("." + author) or author.endswith("." + signing)


def _dkim_records(settings: Settings, domain: str) -> list[Record]:
    signer = signer_for(settings)
    if signer is None:
        return []
    alignment = (
        ""
        if _aligned(signer.domain, domain)
        else f" Warning: d={signer.domain} is not {domain} or a parent of it, so DMARC does not count this "
        "signature for the From address; set dkim_domain to the From domain."
    )
    records = []
    for selector, key in signer.keys:
        name = "RSA" if key.key_type == "rsa" else "Ed25519"
        records.append(
            Record(
                f"{selector}._domainkey.{signer.domain}",
                "TXT",
                key.dns_record(),
                f"DKIM ({name} key {display_path(key.path)}): receivers check each message's signature "
                "against this public key (Gmail and Yahoo require it; one-click unsubscribe needs it).",
                "dkim",
                str(key.path),
                alignment.strip(),
            )
        )
    return records


def _relay_host(settings: Settings) -> str:
    try:
        return (urlsplit(settings.smtp_url).hostname or "").lower()
    except ValueError:
        return ""


def _is_local(host: str) -> bool:
    """A relay on this machine or a private network: its address is not what the world sees."""
    if not host or host == "localhost" or host.endswith(".localhost") or "." not in host.strip("[]"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.endswith((".local", ".internal", ".lan", ".home.arpa"))
    return not address.is_global


def _spf_mechanism(host: str) -> str:
    """The SPF term that lets the relay at `host` send: its provider's include, its address, or its name."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        for suffix, include in KNOWN_RELAYS.items():
            if host == suffix or host.endswith("." + suffix):
                return include
        return f"a:{host}"
    return f"ip{address.version}:{address}"


def _spf_record(settings: Settings, domain: str) -> Record:
    host = _relay_host(settings)
    merge = (
        f" A domain may have only one SPF record: if {domain} has one already (its own mail, another "
        "service), add the relay's term to that record instead of publishing a second."
    )
    if _is_local(host):
        value = f"v=spf1 ip4:RELAY-PUBLIC-IP {SPF_LIMIT}"
        advice = (
            f"smtp_url points at a local relay ({host or 'no host'}), so the address mail leaves from is "
            "not known here: put the real outbound relay's public IP addresses (ip4:…/ip6:…) or its "
            "provider's include:… in place of RELAY-PUBLIC-IP."
        )
    else:
        mechanism = _spf_mechanism(host)
        value = f"v=spf1 {mechanism} {SPF_LIMIT}"
        advice = (
            f"{mechanism} covers the relay {host}. If the relay sends from other addresses than its "
            "name's, list those (the provider's documentation gives its include)."
        )
    return Record(
        domain,
        "TXT",
        value,
        f"SPF: which servers may send mail for {domain} (checked against the bounce address bounces+…@).",
        "spf",
        advice=advice
        + merge
        + f" {SPF_LIMIT} while starting out; -all once DMARC reports show all your mail passing.",
    )


def _dmarc_record(domain: str) -> Record:
    return Record(
        f"_dmarc.{domain}",
        "TXT",
        f"v=DMARC1; p=none; rua=mailto:{DMARC_REPORTS}@{domain}",
        "DMARC: Gmail and Yahoo require it of bulk senders; p=none only asks receivers for reports.",
        "dmarc",
        advice=f"Create the mailbox {DMARC_REPORTS}@{domain} for the daily reports (or use a DMARC report "
        "service's address). Once the reports show all your mail passing, move to p=quarantine, then "
        "p=reject.",
    )


def _mx_record(settings: Settings, domain: str) -> Record:
    host = _relay_host(settings)
    target = "RELAY-HOST." if _is_local(host) or _spf_mechanism(host).startswith("ip") else f"{host}."
    return Record(
        domain,
        "MX",
        f"10 {target}",
        f"Bounces: reports for the return address bounces+…@{domain} come back through this MX.",
        "mx",
        advice=f"It must hand bounces+*@{domain} to the relay that runs `newsletter bounces receive` "
        "(docs/bounces.md), or deliver them to a mailbox that `newsletter bounces read` reads. If the "
        "domain has an MX already (its own mail), keep it and route bounces+* from there instead."
        + (" Put the relay's public host name in place of RELAY-HOST." if target == "RELAY-HOST." else ""),
    )


def expected(settings: Settings) -> list[Record]:
    """Every record the settings need published: DKIM (each key), SPF, DMARC and the bounce MX.

    A key file that is missing, unreadable or too weak is a UserError naming the file; no DKIM key
    configured gives no DKIM record (`no_dkim_advice` says what to do)."""
    domain = sender_domain(settings)
    return [
        *_dkim_records(settings, domain),
        _spf_record(settings, domain),
        _dmarc_record(domain),
        _mx_record(settings, domain),
    ]


def keygen_settings(selector: str, path: Path, kind: str) -> list[str]:
    """The newsletter.toml lines that put a key made by `dkim keygen` to use."""
    shown = display_path(path.resolve())
    if kind == "ed25519":
        return [f'dkim_ed25519_key = "{shown}"', f'dkim_ed25519_selector = "{selector}"']
    return [f'dkim_selector = "{selector}"', f'dkim_private_key = "{shown}"']


# ---------------------------------------------------------------------------------------------------------
# Checking what is published
# ---------------------------------------------------------------------------------------------------------


def make_resolver(nameserver: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dns.resolver.Resolver:
    """The system's resolver, or one asking only `HOST[:PORT]` (a private zone, a test server)."""
    try:
        resolver = dns.resolver.Resolver(configure=nameserver is None)
    except dns.exception.DNSException as error:
        raise UserError(
            f"The system's DNS settings cannot be read ({error}); name a server with --nameserver HOST."
        ) from None
    if nameserver is not None:
        host, port = _host_port(nameserver)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _host_port(text: str) -> tuple[str, int]:
    """`HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address -> an IP address and a port."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--nameserver {text}: the port must be a number from 1 to 65535.")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0]
        except (OSError, UnicodeError):
            raise UserError(f"--nameserver {text}: no address found for {host!r}.") from None
    return str(host), int(port)


class _LookupFailed(Exception):
    """The DNS could not be asked (a timeout, a server failure): the message says which in a line."""


def _lookup(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[object]:
    """The records of one type at `name`; none for a name or type that does not exist."""
    try:
        answer = resolver.resolve(name.rstrip(".") + ".", rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except dns.resolver.LifetimeTimeout:
        raise _LookupFailed(f"no answer from the DNS within {resolver.lifetime:g} s") from None
    except dns.resolver.NoNameservers:
        raise _LookupFailed("the DNS server failed to answer (SERVFAIL or refused)") from None
    except (dns.exception.DNSException, OSError) as error:
        raise _LookupFailed(f"the DNS could not be asked: {error or type(error).__name__}") from None
    return list(answer.rrset) if answer.rrset is not None else []


def _txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """Each TXT record's text, its character-strings joined (RFC 6376 section 3.6.2.2)."""
    return [
        b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
        for record in _lookup(resolver, name, "TXT")
    ]


def _tags(text: str) -> dict[str, str]:
    """`v=DKIM1; k=rsa; p=...` -> {"v": "DKIM1", ...}, whitespace inside values removed."""
    tags = {}
    for part in text.split(";"):
        key, equals, value = part.partition("=")
        if equals:
            tags[key.strip().lower()] = re.sub(r"\s+", "", value)
    return tags


def _check_dkim(record: Record, resolver: dns.resolver.Resolver) -> Finding:
    found = _txt(resolver, record.name)
    keyfile = display_path(record.key_file)
    if not found:
        return Finding(
            record, Status.MISSING, "no DKIM record: publish it, or receivers cannot check the signatures"
        )
    if len(found) > 1:
        return Finding(
            record,
            Status.WRONG,
            f"{len(found)} TXT records at this name: keep only the one whose key matches {keyfile}",
        )
    published, wanted = _tags(found[0]), _tags(record.value)
    if published.get("v", "DKIM1") != "DKIM1":
        return Finding(
            record, Status.WRONG, f"not a DKIM record (v={published['v']}); it should start v=DKIM1"
        )
    if not published.get("p"):
        return Finding(record, Status.WRONG, "the record has no public key (p= is empty: the key is revoked)")
    if published.get("k", "rsa").lower() != wanted["k"]:
        return Finding(
            record, Status.WRONG, f"k={published.get('k', 'rsa')}, but {keyfile} is a {wanted['k']} key"
        )
    if not _same_key(published["p"], wanted["p"]):
        return Finding(
            record,
            Status.WRONG,
            f"the public key (p=) does not match the private key {keyfile}: mail signed with it will fail "
            "DKIM; publish the record `newsletter dns` prints",
        )
    return Finding(record, Status.OK, f"matches the private key {keyfile}")


def _same_key(published: str, wanted: str) -> bool:
    try:
        return base64.b64decode(published, validate=True) == base64.b64decode(wanted)
    except (binascii.Error, ValueError):
        return False


def _check_spf(record: Record, resolver: dns.resolver.Resolver) -> Finding:
    texts = _txt(resolver, record.name)
    spf = [text for text in texts if re.match(r"v=spf1(\s|$)", text, re.IGNORECASE)]
    almost = [text for text in texts if text.lower().startswith("v=spf") and text not in spf]
    if len(spf) > 1:
        return Finding(
            record,
            Status.WRONG,
            f"{len(spf)} SPF records: receivers treat more than one as an error (RFC 7208 section 4.5) "
            "and SPF fails; merge them into one",
        )
    if not spf:
        if almost:
            return Finding(record, Status.WRONG, f"{almost[0]!r} is not a v=spf1 record")
        return Finding(record, Status.MISSING, "no SPF record (a TXT record starting v=spf1)")
    terms = spf[0].split()
    if terms[-1].lower() in ("all", "+all"):
        return Finding(
            record, Status.WRONG, f"{terms[-1]} lets every server on the Internet send as this domain"
        )
    wanted = record.value.split()[1]
    if "RELAY-PUBLIC-IP" in wanted:
        return Finding(
            record,
            Status.OK,
            f"one SPF record ({spf[0]}); make sure it covers the relay's public addresses (the relay here is local)",
        )
    if wanted.lower() not in (term.lower().lstrip("+") for term in terms):
        return Finding(
            record,
            Status.CHECK,
            f"one SPF record ({spf[0]}), but it does not name {wanted}: make sure it covers the relay",
        )
    return Finding(record, Status.OK, f"one SPF record, covering the relay ({wanted})")


def _dmarc_texts(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    return [text for text in _txt(resolver, name) if re.match(r"v\s*=\s*DMARC1\s*(;|$)", text)]


def _check_dmarc(record: Record, resolver: dns.resolver.Resolver) -> Finding:
    name = record.name
    found = _dmarc_texts(resolver, name)
    if not found:
        # Receivers fall back to the organisational domain's record (RFC 7489 section 6.6.3).
        labels = name.split(".")[1:]
        for start in range(1, len(labels) - 1):
            parent = "_dmarc." + ".".join(labels[start:])
            found = _dmarc_texts(resolver, parent)
            if found:
                name = parent
                break
    if not found:
        return Finding(record, Status.MISSING, "no DMARC record: Gmail and Yahoo require one of bulk senders")
    if len(found) > 1:
        return Finding(
            record, Status.WRONG, f"{len(found)} DMARC records at {name}: receivers then ignore them all"
        )
    policy = _tags(found[0]).get("p")
    if not policy or policy.lower() not in ("none", "quarantine", "reject"):
        return Finding(record, Status.WRONG, f"{found[0]!r} has no valid p= (none, quarantine or reject)")
    where = "" if name == record.name else f" (the organisational domain's, at {name})"
    reports = (
        "" if "rua" in _tags(found[0]) else "; it asks for no reports (rua=), so you will not see who fails"
    )
    return Finding(
        record, Status.CHECK if reports else Status.OK, f"DMARC record p={policy.lower()}{where}{reports}"
    )


def _check_mx(record: Record, resolver: dns.resolver.Resolver) -> Finding:
    found = _lookup(resolver, record.name, "MX")
    if not found:
        return Finding(
            record,
            Status.MISSING,
            "no MX record: bounce reports for bounces+…@ have nowhere to go, so dead addresses are never suppressed",
        )
    hosts = sorted(found, key=lambda mx: mx.preference)  # type: ignore[attr-defined]
    names = [str(mx.exchange).rstrip(".") or "." for mx in hosts]  # type: ignore[attr-defined]
    if names == ["."]:
        return Finding(
            record, Status.WRONG, "a null MX (0 .): the domain accepts no mail, so bounces are lost"
        )
    return Finding(
        record,
        Status.OK,
        f"MX {', '.join(names)}: make sure it hands bounces+*@ to `newsletter bounces receive` "
        "(or a mailbox `bounces read` reads)",
    )


_CHECKS = {"dkim": _check_dkim, "spf": _check_spf, "dmarc": _check_dmarc, "mx": _check_mx}


def check(settings: Settings, resolver: dns.resolver.Resolver) -> list[Finding]:
    """Each expected record looked up: present and right, missing, wrong, or not answered."""
    records = expected(settings)
    findings = []
    if not any(record.kind == "dkim" for record in records):
        domain = dkim_domain(settings)
        placeholder = Record(f"SELECTOR._domainkey.{domain}", "TXT", "", no_dkim_advice(), "dkim")
        findings.append(Finding(placeholder, Status.MISSING, no_dkim_advice()))
    for record in records:
        try:
            findings.append(_CHECKS[record.kind](record, resolver))
        except _LookupFailed as error:
            findings.append(Finding(record, Status.ERROR, str(error)))
    return findings
