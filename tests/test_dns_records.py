"""`newsletter dkim keygen` and `newsletter dns [--check]` as a communications officer runs them: the key
made safely, the records to paste, and a check against a real DNS server on loopback (`LoopbackDNS`)
that says record by record what is published, missing or wrong."""

from __future__ import annotations

import re
import socket
import stat
from pathlib import Path

import pytest

from dkim_support import rsa_key_file
from newsletter.testing.dns import LoopbackDNS
from user_support import init_project, newsletter, uncomment, user_environment

DOMAIN = "health-equity-network.example.org"  # the From domain of a new project
SELECTOR = "nl2026"
DKIM_NAME = f"{SELECTOR}._domainkey.{DOMAIN}"

pytestmark = pytest.mark.slow


def _record_of(output: str) -> str:
    """The DKIM TXT value a command printed for SELECTOR."""
    found = re.search(rf'^{re.escape(DKIM_NAME)} TXT "(v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+)"$', output, re.M)
    assert found, output
    return found.group(1)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, str]:
    """A network's folder with a key made by `dkim keygen` and put in its settings; and its record."""
    folder = init_project(tmp_path_factory.mktemp("dns"))
    made = newsletter(folder, "dkim", "keygen", "--selector", SELECTOR)
    record = _record_of(made.stdout)
    uncomment(
        folder / "newsletter.toml",
        dkim_selector=SELECTOR,
        dkim_private_key=f"dkim/{SELECTOR}.private.pem",
        smtp_url="smtp://mail.health-equity-network.example.org:587",
    )
    return folder, record


def _good_zone(dkim_record: str) -> tuple[dict[str, list[str]], dict[str, list[tuple[int, str]]]]:
    txt = {
        DKIM_NAME: [dkim_record],
        DOMAIN: ["v=spf1 a:mail.health-equity-network.example.org ~all", "google-site-verification=abc"],
        f"_dmarc.{DOMAIN}": [f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}"],
    }
    return txt, {DOMAIN: [(10, "mail.health-equity-network.example.org")]}


def _check(folder: Path, server: LoopbackDNS):
    return newsletter(folder, "dns", "--check", "--nameserver", f"127.0.0.1:{server.port}", ok=False)


def _line(output: str, name: str, rdtype: str) -> str:
    lines = [line for line in output.splitlines() if f" {name} {rdtype}:" in line]
    assert len(lines) == 1, output
    return lines[0]


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(project):
    folder, record = project
    key = folder / "dkim" / f"{SELECTOR}.private.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert len(record) > 380  # a 2048-bit key's record

    again = newsletter(folder, "dkim", "keygen", "--selector", SELECTOR, ok=False)
    assert again.returncode != 0
    assert f"dkim/{SELECTOR}.private.pem already exists" in again.stderr
    assert _record_of(newsletter(folder, "dns").stdout) == record  # the key is untouched


def test_keygen_prints_the_settings_lines_and_an_ed25519_key_on_request(tmp_path):
    folder = init_project(tmp_path)
    made = newsletter(
        folder, "dkim", "keygen", "--selector", "nl2026-ed", "--ed25519", "--out", "keys/ed.pem"
    )
    assert 'dkim_ed25519_key = "keys/ed.pem"' in made.stdout
    assert 'dkim_ed25519_selector = "nl2026-ed"' in made.stdout
    assert f'nl2026-ed._domainkey.{DOMAIN} TXT "v=DKIM1; k=ed25519; p=' in made.stdout
    assert stat.S_IMODE((folder / "keys" / "ed.pem").stat().st_mode) == 0o600

    rsa = newsletter(folder, "dkim", "keygen", "--selector", "nl2026")
    assert 'dkim_selector = "nl2026"' in rsa.stdout
    assert 'dkim_private_key = "dkim/nl2026.private.pem"' in rsa.stdout

    bad = newsletter(folder, "dkim", "keygen", "--selector", "../x", ok=False)
    assert bad.returncode != 0 and "selector" in bad.stderr
    assert not (folder / "x.private.pem").exists()


def test_dns_prints_the_records_to_publish(project):
    folder, record = project
    shown = newsletter(folder, "dns").stdout
    assert _record_of(shown) == record
    assert f'{DOMAIN} TXT "v=spf1 a:mail.health-equity-network.example.org ~all"' in shown
    assert f'_dmarc.{DOMAIN} TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}"' in shown
    assert f"{DOMAIN} MX 10 mail.health-equity-network.example.org." in shown
    advice = shown.replace("\n#   ", " ")  # the advice, wrapped over comment lines, as one line
    assert f"Create the mailbox dmarc-reports@{DOMAIN}" in advice
    assert f"hand bounces+*@{DOMAIN} to the relay that runs `newsletter bounces receive`" in advice


def test_dns_without_a_key_says_how_to_make_one_and_a_local_relay_needs_its_real_addresses(tmp_path):
    folder = init_project(tmp_path)
    shown = newsletter(folder, "dns").stdout.replace("\n#   ", " ")
    assert "No DKIM key is configured" in shown and "newsletter dkim keygen --selector" in shown
    assert "v=spf1 ip4:RELAY-PUBLIC-IP ~all" in shown
    assert "local relay (127.0.0.1)" in shown


def test_check_all_good(project):
    folder, record = project
    with LoopbackDNS(*_good_zone(record)) as server:
        done = _check(folder, server)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _line(done.stdout, DKIM_NAME, "TXT").startswith("OK ")
    assert _line(done.stdout, DOMAIN, "TXT").startswith("OK ")
    assert _line(done.stdout, f"_dmarc.{DOMAIN}", "TXT").startswith("OK ")
    assert _line(done.stdout, DOMAIN, "MX").startswith("OK ")
    assert "All 4 records are published." in done.stdout


def test_check_missing_dkim_and_dmarc(project):
    folder, record = project
    txt, mx = _good_zone(record)
    del txt[DKIM_NAME], txt[f"_dmarc.{DOMAIN}"]
    with LoopbackDNS(txt, mx) as server:
        done = _check(folder, server)
    assert done.returncode != 0
    dkim_line = _line(done.stdout, DKIM_NAME, "TXT")
    assert dkim_line.startswith("MISSING") and "no DKIM record" in dkim_line
    dmarc_line = _line(done.stdout, f"_dmarc.{DOMAIN}", "TXT")
    assert dmarc_line.startswith("MISSING") and "no DMARC record" in dmarc_line
    assert _line(done.stdout, DOMAIN, "TXT").startswith("OK ")
    assert f"publish: {DKIM_NAME} TXT" in done.stdout
    assert "2 of 4 records missing, wrong or not answered." in done.stderr


def test_check_a_dkim_record_for_another_key(project, tmp_path):
    folder, _ = project
    other = rsa_key_file(tmp_path / "other.pem")
    shown = newsletter(folder, "dns", env=_env_with_key(other)).stdout
    txt, mx = _good_zone(_record_of(shown))
    with LoopbackDNS(txt, mx) as server:
        done = _check(folder, server)
    assert done.returncode != 0
    line = _line(done.stdout, DKIM_NAME, "TXT")
    assert line.startswith("WRONG") and "does not match the private key dkim/nl2026.private.pem" in line


def _env_with_key(key: Path) -> dict[str, str]:
    return {**user_environment(), "NEWSLETTER_DKIM_PRIVATE_KEY": str(key)}


def test_check_two_spf_records_no_mx_and_not_spf1(project):
    folder, record = project
    txt, _ = _good_zone(record)
    txt[DOMAIN] = ["v=spf1 a:mail.health-equity-network.example.org ~all", "v=spf1 include:sendgrid.net ~all"]
    with LoopbackDNS(txt) as server:
        done = _check(folder, server)
        assert done.returncode != 0
        spf = _line(done.stdout, DOMAIN, "TXT")
        assert spf.startswith("WRONG") and "2 SPF records" in spf
        mx = _line(done.stdout, DOMAIN, "MX")
        assert mx.startswith("MISSING") and "no MX record" in mx

        server.records[DOMAIN] = ["v=spf2.0/pra a:mail.health-equity-network.example.org ~all"]
        done = _check(folder, server)
        assert _line(done.stdout, DOMAIN, "TXT").startswith("WRONG")
        assert "is not a v=spf1 record" in done.stdout


def test_check_a_server_that_does_not_answer_is_one_line_each(project):
    """A nameserver that never answers: each lookup one line, no traceback (the helper checks)."""
    folder, _ = project
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        done = newsletter(
            folder, "dns", "--check", "--timeout", "0.3", "--nameserver", f"127.0.0.1:{port}", ok=False
        )
    assert done.returncode != 0
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 4 and all("no answer from the DNS within 0.3 s" in line for line in errors)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda path: None, "does not exist"),
        (lambda path: rsa_key_file(path, bits=1024), "1024-bit RSA key; receivers require at least 2048"),
    ],
    ids=["missing", "weak"],
)
def test_a_bad_key_file_is_one_clear_message(tmp_path, make, says):
    folder = init_project(tmp_path)
    make(folder / "weak.pem")
    uncomment(folder / "newsletter.toml", dkim_selector="s1", dkim_private_key="weak.pem")
    for args in (["dns"], ["dns", "--check", "--nameserver", "127.0.0.1:9"]):
        done = newsletter(folder, *args, ok=False)
        assert done.returncode != 0
        assert done.stderr.strip() == f"Error: DKIM key file weak.pem {says}." or (
            done.stderr.startswith("Error: DKIM key file weak.pem") and says in done.stderr
        ), done.stderr
