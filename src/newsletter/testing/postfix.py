"""A real Postfix mail system on loopback, with its own configuration and queue in a temporary directory.

Bounces only mean something when a real MTA wrote them: Postfix's own `bounce` daemon, its DSN layout,
its status codes and its retry rules. `TemporaryPostfix` runs Debian's Postfix (`postfix -c DIR start`)
as a relay for tests and benchmarks: an smtpd on a free 127.0.0.1 port that accepts mail from loopback,
nothing delivered locally (`mydestination` empty), and every recipient routed by a transport map to
loopback SMTP servers only (a default `relay` plus per-address or per-domain `routes`), so nothing can
leave the machine and no DNS is asked. `postfix -c DIR stop` and the directory's removal end it.

    with PostfixSmtpSink() as sink, TemporaryPostfix(relay=sink.port, routes={"bounce.example": port}) as mta:
        ...  # send to ("127.0.0.1", mta.port)
        mta.wait_until(lambda: not mta.queue(), timeout=30)   # flushes the queue while it waits

It must run as root (Postfix's master starts as root and its daemons drop to `mail_owner = postfix`);
anything else raises RuntimeError naming what is missing, never a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from newsletter.running import Running
from newsletter.testing.ports import LOOPBACK, free_port, listening

__all__ = ["POSTFIX", "QueuedMessage", "TemporaryPostfix"]

POSTFIX = Path("/usr/sbin/postfix")
POSTQUEUE = Path("/usr/sbin/postqueue")
MAIL_OWNER = "postfix"
_START_ATTEMPTS = 3  # the free port we picked can be taken before smtpd binds it

# Every service runs unchrooted: a chroot would need copies of /etc files inside the temporary directory.
_MASTER_CF = """\
# Written by newsletter.testing.postfix.TemporaryPostfix: only the services a loopback relay needs.
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass(frozen=True)
class QueuedMessage:
    """One message still in Postfix's queue (`postqueue -j`), with why each recipient waits."""

    queue_id: str
    queue_name: str  # "incoming", "active", "deferred", "hold"
    sender: str
    recipients: dict[str, str]  # address -> delay reason ("" while not yet tried)


class TemporaryPostfix(Running):
    """Postfix with a private `main.cf`/`master.cf` and queue, for the lifetime of a `with` block.

    * `relay`: the loopback port (or "host:port") every recipient goes to unless a route says otherwise.
    * `routes`: recipient address or domain -> loopback port, as transport-map lines (`smtp:[127.0.0.1]:P`);
      an address key wins over its domain (Postfix looks the full address up first; with
      `recipient_delimiter = +`, `bounces+X@d` also matches a `bounces@d` key, then the domain `d`).
    * `maximal_queue_lifetime`: how long deferred mail stays queued before it bounces (Postfix syntax,
      default "1d": a test's 4xx stays deferred, as on a real relay the next minute).
    * `settings`: any further `main.cf` parameters, written last so they win.
    """

    def __init__(
        self,
        *,
        relay: int | str,
        routes: Mapping[str, int | str] | None = None,
        myhostname: str = "relay.newsletter.test",
        maximal_queue_lifetime: str = "1d",
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.relay = relay
        self.routes = dict(routes or {})
        self.myhostname = myhostname
        self.maximal_queue_lifetime = maximal_queue_lifetime
        self.extra_settings = dict(settings or {})
        self.startup_timeout = startup_timeout
        self.host = LOOPBACK
        self.port = 0
        self.directory: Path | None = None
        self._started = False

    # -- paths ---------------------------------------------------------------------------------------------

    def _require_directory(self) -> Path:
        if self.directory is None:
            raise RuntimeError("TemporaryPostfix is not running; use it as a context manager")
        return self.directory

    @property
    def config_dir(self) -> Path:
        """What `postfix -c` and `postqueue -c` are given: main.cf, master.cf, the transport map."""
        return self._require_directory() / "etc"

    @property
    def queue_dir(self) -> Path:
        return self._require_directory() / "queue"

    @property
    def log_path(self) -> Path:
        """Postfix's own log (`maillog_file`, through its postlogd): no syslog needed."""
        return self._require_directory() / "maillog"

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the configuration, create the queue, and start Postfix's master on a free loopback port."""
        if self.directory is not None:
            raise RuntimeError("TemporaryPostfix is already running")
        self._check_can_run()
        self.directory = Path(tempfile.mkdtemp(prefix="newsletter-postfix-"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """`postfix -c DIR stop` (then abort if it lingers) and remove the directory; safe to call twice."""
        try:
            if self._started:
                self._stop_master()
        finally:
            self._started = False
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
            self.port = 0

    def _check_can_run(self) -> None:
        if not (POSTFIX.is_file() and os.access(POSTFIX, os.X_OK)):
            raise RuntimeError(
                f"{POSTFIX} was not found. Install Debian's `postfix` package: `apt-get install postfix` "
                "(scripts/test installs it non-interactively, with no mail system configured)."
            )
        if os.geteuid() != 0:
            raise RuntimeError("TemporaryPostfix must run as root: Postfix's master starts as root.")
        try:
            pwd.getpwnam(MAIL_OWNER)
        except KeyError:
            raise RuntimeError(
                f"There is no `{MAIL_OWNER}` system user; reinstall Debian's `postfix`."
            ) from None

    def _start(self) -> None:
        failure = ""
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            self._write_config(port)
            result = self._postfix("start", check=False)
            if result.returncode == 0 and self._wait_untillistening(port):
                self.port = port
                self._started = True
                return
            failure = f"postfix start (exit {result.returncode}): {result.stdout}{result.stderr}".strip()
            self._stop_master()  # a master that started but whose smtpd never listened
            if "in use" not in failure + self.log():
                break  # not a port race: retrying will not help
        # Postfix writes a fatal start-up error only to a terminal or syslog, so say where to look.
        raise RuntimeError(
            f"{failure}\n--- tail of {self.log_path} ---\n{self.log()[-3000:]}\n"
            f"(Postfix prints start-up errors only to a terminal: run `postfix -c {self.config_dir} check` in one)"
        )

    def _write_config(self, port: int) -> None:
        """main.cf, master.cf and the transport map; the queue directory left for `postfix start` to fill."""
        config = self.config_dir
        config.mkdir(exist_ok=True)
        self.queue_dir.mkdir(exist_ok=True)
        (self._require_directory() / "data").mkdir(exist_ok=True)
        postfix = pwd.getpwnam(MAIL_OWNER)
        os.chmod(self._require_directory(), 0o755)  # the postfix user must reach its queue and data
        os.chown(self._require_directory() / "data", postfix.pw_uid, postfix.pw_gid)
        (config / "master.cf").write_text(_MASTER_CF.format(port=port))
        transport = [f"{key} {_nexthop(target)}" for key, target in self.routes.items()]
        (config / "transport").write_text("\n".join(transport) + "\n")
        (config / "main.cf").write_text(
            "# Written by newsletter.testing.postfix.TemporaryPostfix\n"
            + "".join(f"{name} = {value}\n" for name, value in self._main_cf().items())
        )

    def _main_cf(self) -> dict[str, str]:
        directory = self._require_directory()
        settings = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config_dir),
            "queue_directory": str(self.queue_dir),
            "data_directory": str(directory / "data"),
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(directory),
            "mail_owner": MAIL_OWNER,
            "setgid_group": "postdrop",
            "myhostname": self.myhostname,
            "mydomain": "newsletter.test",
            "myorigin": "$myhostname",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            # Nothing is ours to deliver: every recipient is remote, routed to loopback below.
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "local_transport": "error:5.1.1 no local delivery on this test relay",
            "relayhost": _nexthop(self.relay).removeprefix("smtp:"),
            "transport_maps": f"texthash:{self.config_dir / 'transport'}",
            "recipient_delimiter": "+",
            # No DNS, no TLS: the bracketed loopback next hops need neither.
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "append_dot_mydomain": "no",
            "notify_classes": "",
            "delay_warning_time": "0h",
            "maximal_queue_lifetime": self.maximal_queue_lifetime,
            "bounce_queue_lifetime": self.maximal_queue_lifetime,
            # Retry and scan quickly, so a flushed or newly queued message moves within a test's patience.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
        }
        settings.update(self.extra_settings)
        return settings

    def _wait_untillistening(self, port: int) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if listening(self.host, port):
                return True
            time.sleep(0.02)
        return False

    def _stop_master(self, timeout: float = 15.0) -> None:
        """`postfix stop`, then wait until `postfix status` says it is gone (stop returns before that)."""
        if self.directory is None:
            return
        self._postfix("stop", check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._postfix("status", check=False).returncode == 0:
            time.sleep(0.05)

    def _postfix(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(POSTFIX), "-c", str(self.config_dir), command],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"postfix {command} failed (exit {result.returncode}): {result.stderr}")
        return result

    # -- the queue -----------------------------------------------------------------------------------------

    def flush(self) -> None:
        """`postqueue -f`: try every deferred message now instead of at its next retry time."""
        subprocess.run(
            [str(POSTQUEUE), "-c", str(self.config_dir), "-f"],
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def queue(self) -> list[QueuedMessage]:
        """What Postfix still holds (`postqueue -j`), in any of its queues."""
        result = subprocess.run(
            [str(POSTQUEUE), "-c", str(self.config_dir), "-j"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        messages = []
        for line in result.stdout.splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                messages.append(
                    QueuedMessage(
                        queue_id=item["queue_id"],
                        queue_name=item["queue_name"],
                        sender=item.get("sender", ""),
                        recipients={
                            r["address"].lower(): r.get("delay_reason", "")
                            for r in item.get("recipients", [])
                        },
                    )
                )
        return messages

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 30.0, flush_every: float = 2.0
    ) -> bool:
        """Poll `predicate` until it is true, flushing the queue every `flush_every` seconds; False at the
        deadline. Postfix retries on its own timers, so a flush keeps a test from waiting for them."""
        deadline = time.monotonic() + timeout
        next_flush = time.monotonic() + flush_every
        while True:
            if predicate():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_flush:
                self.flush()
                next_flush = now + flush_every
            time.sleep(0.05)

    def log(self) -> str:
        """Postfix's log so far (delivery lines say `status=sent|deferred|bounced` and why)."""
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""


def _nexthop(target: int | str) -> str:
    """A transport-map next hop on loopback: `smtp:[127.0.0.1]:PORT`, brackets so no MX lookup is tried."""
    if isinstance(target, int):
        return f"smtp:[{LOOPBACK}]:{target}"
    if ":" in target and not target.startswith("["):
        host, _, port = target.rpartition(":")
        return f"smtp:[{host}]:{port}"
    return f"smtp:{target}"
