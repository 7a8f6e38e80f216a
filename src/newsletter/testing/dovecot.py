"""A real Dovecot IMAP server on loopback for tests: private configuration, TLS only, one mail user.

    with TemporaryDovecot() as server:
        server.url("INBOX")       # imaps://bounces@127.0.0.1:PORT/INBOX
        server.password, server.ca_file
        with server.client() as imap:   # a logged-in imaplib.IMAP4_SSL, for putting mail in and looking
            ...

Everything lives in a temporary directory: the configuration, a self-signed certificate made with
`openssl` (the test trusts it through the CA file, verification is never turned off), a passwd-file
with the one user, and the user's Maildir. Dovecot runs in the foreground as our child process; as root
it drops to the `dovecot`/`dovenull` users for its own work and to `nobody` for the mail. A missing
binary raises RuntimeError naming Debian's `dovecot-imapd` package; nothing is skipped silently.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from newsletter.running import Running, terminate
from newsletter.testing.ports import LOOPBACK, free_port

__all__ = ["DOVECOT", "TemporaryDovecot"]

DOVECOT = Path("/usr/sbin/dovecot")
OPENSSL = "openssl"

_START_ATTEMPTS = 3  # the free port we picked can be taken before Dovecot binds it
_START_SECONDS = 20.0

_CONFIG = """\
# Written by newsletter.testing.dovecot.TemporaryDovecot: a private server for one test run.
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = newsletter-test-{port}
listen = {listen}
protocols = imap
log_path = {dir}/dovecot.log
ssl = required
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
ssl_min_protocol = TLSv1.2
default_internal_user = {internal_user}
default_login_user = {login_user}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={dir}/home/%u
}}
mail_location = maildir:~/Maildir
protocol imap {{
  mail_max_userip_connections = 50
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


def _system_user(*names: str) -> pwd.struct_passwd:
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"None of the system users {', '.join(names)} exists to run Dovecot's processes as.")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no Dovecot log)"


class TemporaryDovecot(Running):
    """Dovecot serving IMAPS on a free loopback port, for the lifetime of a `with` block."""

    def __init__(self, user: str = "bounces", password: str | None = None) -> None:
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.directory: Path | None = None
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------------------------------

    def _dir(self) -> Path:
        if self.directory is None:
            raise RuntimeError("TemporaryDovecot is not running; use it as a context manager")
        return self.directory

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate, which is its own CA: what a client's CA file setting names."""
        return self._dir() / "cert.pem"

    @property
    def maildir(self) -> Path:
        """The user's Maildir on disk (INBOX); its subfolders are Maildir++ `.Name` folders."""
        return self._dir() / "home" / self.user / "Maildir"

    @property
    def log_path(self) -> Path:
        return self._dir() / "dovecot.log"

    def url(self, folder: str = "INBOX") -> str:
        """The `imaps://user@127.0.0.1:PORT/FOLDER` address `bounces read --imap` takes."""
        if self.port is None:
            raise RuntimeError("TemporaryDovecot is not running; use it as a context manager")
        return f"imaps://{self.user}@{LOOPBACK}:{self.port}/{folder}"

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the configuration and certificate, then start Dovecot on a free port."""
        if self.directory is not None:
            raise RuntimeError("TemporaryDovecot is already running")
        if not (DOVECOT.is_file() and os.access(DOVECOT, os.X_OK)):
            raise RuntimeError(
                f"{DOVECOT} was not found. Install Debian's `dovecot-imapd` package: "
                "`apt-get install dovecot-imapd` (scripts/test installs it)."
            )
        self.directory = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
        try:
            self._prepare()
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Dovecot and delete everything it had; safe to call twice."""
        process, self.process = self.process, None
        if process is not None:
            terminate(process)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
        self.port = None

    def _prepare(self) -> None:
        directory = self._dir()
        directory.chmod(0o755)  # Dovecot's unprivileged processes must reach their files in here
        mail = _system_user("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        self._mail_ids = (mail.pw_uid, mail.pw_gid)
        for part in ("run", "state", f"home/{self.user}"):
            (directory / part).mkdir(parents=True)
        os.chown(directory / "home" / self.user, *self._mail_ids)
        (directory / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        self._make_certificate()

    def _make_certificate(self) -> None:
        directory = self._dir()
        command = [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ]
        command += ["-addext", f"subjectAltName=IP:{LOOPBACK},DNS:localhost"]
        command += ["-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")]
        try:
            subprocess.run(command, capture_output=True, check=True, timeout=60, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise RuntimeError("`openssl` was not found: install Debian's `openssl` package.") from None
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"openssl could not make a certificate: {error.stderr.decode()}") from None

    def _write_config(self, port: int) -> Path:
        internal, login = ("dovecot", "dovenull") if os.geteuid() == 0 else (None, None)
        current = pwd.getpwuid(os.geteuid()).pw_name
        config = _CONFIG.format(
            dir=self._dir(),
            port=port,
            listen=LOOPBACK,
            internal_user=_system_user(internal).pw_name if internal else current,
            login_user=_system_user(login, "nobody").pw_name if login else current,
            mail_uid=self._mail_ids[0],
            mail_gid=self._mail_ids[1],
        )
        path = self._dir() / "dovecot.conf"
        path.write_text(config)
        return path

    def _start(self) -> None:
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            config = self._write_config(port)
            self.process = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(config)],
                cwd=self._dir(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=(self._dir() / "dovecot.stderr").open("wb"),
            )
            if self._wait_untillistening(port):
                self.port = port
                return
            terminate(self.process)
            self.process = None
            if "Address already in use" not in _tail(self.log_path, 200):
                break  # not a port race: retrying will not help
        stderr = _tail(self._dir() / "dovecot.stderr")
        raise RuntimeError(
            f"Dovecot did not start:\n{stderr}\n--- {self.log_path} ---\n{_tail(self.log_path)}"
        )

    def _wait_untillistening(self, port: int) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:  # ready means an IMAP greeting over verified TLS, not just an open port
                imaplib.IMAP4_SSL(LOOPBACK, port, ssl_context=self.ssl_context(), timeout=2).logout()
                return True
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.05)
        return False

    # -- clients -------------------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying TLS context that trusts this server's certificate and nothing else."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in IMAP connection (nothing selected), logged out at the end of the block."""
        if self.port is None:
            raise RuntimeError("TemporaryDovecot is not running; use it as a context manager")
        imap = imaplib.IMAP4_SSL(LOOPBACK, self.port, ssl_context=self.ssl_context(), timeout=30)
        try:
            imap.login(self.user, self.password)
            yield imap
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                imap.logout()
