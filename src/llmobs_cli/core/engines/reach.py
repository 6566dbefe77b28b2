"""A quick reachability check of a cluster address before an engine waits on it.

Ray and Spark Connect clients retry an unreachable head for minutes; a TCP connection
attempt with a short timeout tells "nothing listens there" in seconds, so that a wrong
address is exit 3 with the address named instead of a long hang.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from llmobs_cli.errors import ServiceError


def host_port(address: str, default_port: int) -> tuple[str, int] | None:
    """``(host, port)`` of ``sc://h:p``, ``ray://h:p``, ``h:p`` or ``h`` (None when the
    address is not a network location, e.g. Ray's ``auto``)."""
    text = address if "://" in address else f"tcp://{address}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or host == "auto":
        return None
    return host, port or default_port


def require_reachable(what: str, address: str, default_port: int, timeout: float = 5.0) -> None:
    hp = host_port(address, default_port)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as exc:
        raise ServiceError(
            f"{what}: nothing answers at {hp[0]}:{hp[1]} ({exc.strerror or type(exc).__name__})"
        ) from exc
