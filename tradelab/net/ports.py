"""Free ports on the loopback interface (for servers a process starts on 127.0.0.1)."""

from __future__ import annotations

import socket


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port ``p`` such that ``p`` and ``p + 1`` are free now (the local venue serves plain
    HTTP on ``p`` and TLS on ``p + 1``). Another process may still take them before use."""
    for _ in range(100):
        with socket.socket() as a:
            a.bind((host, 0))
            port = int(a.getsockname()[1])
            with socket.socket() as b:
                try:
                    b.bind((host, port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free pair of ports on {host}")


__all__ = ["free_port_pair"]
