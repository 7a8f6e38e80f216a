"""Helpers for the DKIM tests (no tests of its own): test keys, and the two independent verifiers.

Both verifiers get the public keys from `LoopbackDNS`, a real DNS server on loopback, never from the real
DNS: dkimpy through a dnspython resolver pointed at it, Perl's Mail::DKIM (Debian `libmail-dkim-perl`)
through a Net::DNS resolver pointed at it, run as a subprocess.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dkim
import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.testing.dns import LoopbackDNS
from newsletter.testing.ports import LOOPBACK

_SIGNATURE_FIELD = re.compile(rb"^DKIM-Signature:", re.IGNORECASE | re.MULTILINE)


def write_key(path: Path, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> Path:
    """A private key as the PEM file (PKCS#8, no password) an operator would configure."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def rsa_key_file(path: Path, bits: int = 2048) -> Path:
    return write_key(path, rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ed25519_key_file(path: Path) -> Path:
    return write_key(path, ed25519.Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class Verdict:
    """One signature's result from one verifier: its algorithm and whether it passed."""

    algorithm: str
    passed: bool
    detail: str = ""


def dkimpy_verdicts(message: bytes, server: LoopbackDNS) -> list[Verdict]:
    """dkimpy's verdict on each DKIM-Signature of the message, in order, keys looked up on `server`."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [LOOPBACK]
    resolver.port = server.port

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    verdicts = []
    count = len(_SIGNATURE_FIELD.findall(message.split(b"\r\n\r\n", 1)[0]))
    for index in range(count):
        verifier = dkim.DKIM(message)
        try:
            passed = verifier.verify(idx=index, dnsfunc=txt)
            detail = ""
        except dkim.DKIMException as error:
            passed, detail = False, str(error)
        algorithm = verifier.signature_fields.get(b"a", b"").decode("ascii")
        verdicts.append(Verdict(algorithm, bool(passed), detail))
    return verdicts


# Reads a message on stdin, verifies it with Mail::DKIM with DNS pointed at 127.0.0.1:PORT (no recursion,
# so nothing is ever asked of the real DNS), prints "algorithm<TAB>result<TAB>detail" per signature.
_PERL_VERIFIER = r"""
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;
my $port = shift @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'], port => $port, recurse => 0, udp_timeout => 5, tcp_timeout => 5,
    retry => 1));
binmode STDIN;
local $/;
my $message = <STDIN>;
my $dkim = Mail::DKIM::Verifier->new();
$dkim->PRINT($message);
$dkim->CLOSE();
foreach my $signature ($dkim->signatures) {
    printf "%s\t%s\t%s\n", $signature->algorithm, $signature->result, $signature->result_detail;
}
"""


def mail_dkim_verdicts(message: bytes, server: LoopbackDNS) -> list[Verdict]:
    """Perl Mail::DKIM's verdict on each DKIM-Signature of the message, in order."""
    done = subprocess.run(
        ["perl", "-e", _PERL_VERIFIER, str(server.port)],
        input=message,
        capture_output=True,
        timeout=60,
        check=True,
    )
    verdicts = []
    for line in done.stdout.decode("utf-8").splitlines():
        algorithm, result, detail = [*line.split("\t", 2), ""][:3]
        verdicts.append(Verdict(algorithm, result == "pass", detail))
    return verdicts


def perl_has_ed25519() -> bool:
    """Whether this Mail::DKIM can check Ed25519: newer releases can (with CryptX); Debian 12's cannot."""
    module = "-MMail::DKIM::Algorithm::ed25519_sha256"
    return subprocess.run(["perl", module, "-e1"], capture_output=True).returncode == 0
