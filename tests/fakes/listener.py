"""A raw TCP listener on loopback that keeps every byte it is sent and
answers each request with one status: a stand-in for a host that must
never see a given key (a company proxy in OPENAI_BASE_URL), or for an HTTP
proxy that turns every CONNECT away (so that no test request leaves the
machine, and the host each one was for is known)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading

_CONNECT = re.compile(rb"^CONNECT (\S+) HTTP/1\.[01]\r\n", re.MULTILINE)


class Listener:
    def __init__(self, status: str = "401 Unauthorized"):
        self.status = status
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._lock = threading.Lock()
        self._received: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._socket.close()

    def received(self) -> bytes:
        """Every byte sent to it so far, all connections together."""
        with self._lock:
            return b"".join(self._received)

    def connect_hosts(self) -> set[str]:
        """The hosts CONNECT asked for (as a proxy)."""
        return {m.decode() for m in _CONNECT.findall(self.received())}

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        with conn:
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                while length and len(body) < int(length.group(1)):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                    data += chunk
            except OSError:
                pass
            with self._lock:
                self._received.append(data)
            reply = b'{"error": {"message": "not here", "type": "listener"}}'
            with contextlib.suppress(OSError):
                conn.sendall(
                    f"HTTP/1.1 {self.status}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(reply)}\r\nconnection: close\r\n\r\n".encode()
                    + reply
                )
