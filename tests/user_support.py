"""The installed `newsletter` command, run the way a user runs it: in a subprocess, from their folder.

Every user-facing feature has a test through these: `init_project` makes a folder as `newsletter init`
does, `newsletter(folder, ...)` types a command there (no NEWSLETTER_* of the test runner leaking in,
never a traceback), `Background` keeps a server command running until it is stopped like Ctrl-C.
"""

from __future__ import annotations

import mailbox
import os
import re
import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from newsletter.running import terminate

NEWSLETTER = Path(sys.executable).with_name("newsletter")  # the console script pip installed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_environment() -> dict[str, str]:
    """The user's shell: no NEWSLETTER_* settings of the test runner's leaking in."""
    return {name: value for name, value in os.environ.items() if not name.startswith("NEWSLETTER_")}


def newsletter(
    folder: Path, *args: str, ok: bool = True, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`newsletter ARGS` typed in `folder`; never a traceback, whatever the outcome."""
    done = subprocess.run(
        [str(NEWSLETTER), *args],
        cwd=folder,
        env=env or user_environment(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    if ok:
        assert done.returncode == 0, f"newsletter {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


class Background:
    """A long-running `newsletter` command (sink, serve), stopped with SIGTERM like Ctrl-C."""

    def __init__(self, folder: Path, *args: str, port: int, env: dict[str, str] | None = None) -> None:
        self.log = folder / f"{args[0]}-{port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(NEWSLETTER), *args],
                cwd=folder,
                env=env or user_environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"newsletter {args[0]} did not start: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        terminate(self.process)
        return self.output()


def uncomment(settings_file: Path, **values: str) -> None:
    """What a user does to newsletter.toml: take the '# ' off a key and give it their value."""
    text = settings_file.read_text(encoding="utf-8")
    for key, value in values.items():
        text, count = re.subn(rf"^# {key} = .*$", f'{key} = "{value}"', text, flags=re.M)
        assert count == 1, key
    settings_file.write_text(text, encoding="utf-8")


def init_project(parent: Path, name: str = "network") -> Path:
    """A network's folder as `newsletter init NAME` makes it, its database created; returns the folder."""
    newsletter(parent, "init", name)
    folder = parent / name
    newsletter(folder, "db", "upgrade")
    return folder


def maildir_messages(folder: Path) -> list[EmailMessage]:
    box = mailbox.Maildir(folder, factory=None, create=False)
    return [message_from_bytes(bytes(message), policy=policy.default) for message in box]  # type: ignore[misc]


def wait_for_mail(folder: Path, count: int, timeout: float = 20) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / "new").is_dir() and len(list((folder / "new").iterdir())) >= count:
            return maildir_messages(folder)
        time.sleep(0.1)
    raise AssertionError(f"{count} messages did not arrive in {folder}")


def link_in(message: EmailMessage, base: str, path: str) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(re.escape(base) + re.escape(path) + r"[A-Za-z0-9._-]+", text)
    assert found, text
    return found.group(0)
