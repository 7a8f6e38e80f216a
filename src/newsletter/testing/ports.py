"""Loopback ports for the harness's servers: a free one to bind, and whether one is listening."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """An unused loopback port: the servers need a concrete number up front, and parallel runs never
    collide on a fixed one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def listening(host: str, port: int) -> bool:
    """Whether a socket listens on host:port, from /proc/net/tcp (Linux); elsewhere fall back to connecting."""
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        return False
    wanted = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == wanted and fields[3] == "0A":  # 0A = TCP_LISTEN
            return True
    return False
