"""A TCP proxy for tests that can lose a reply on purpose.

``cut_after_next_request(min_bytes)`` forwards the next client-to-server chunk of at least
``min_bytes`` (a real request, not a 12-byte ping) to the server, then closes both sides
before any reply can come back: the request was applied, the client never learns it.
"""

from __future__ import annotations

import select
import socket
import threading

from zkq.dev.ports import free_port


class CuttingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._cut_min: int | None = None
        self._lock = threading.Lock()
        self.cuts = 0
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> CuttingProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._listener.close()

    def cut_after_next_request(self, min_bytes: int) -> None:
        with self._lock:
            self._cut_min = min_bytes

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(self.target)
            thread = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([client, server], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        server.sendall(data)
                        with self._lock:
                            cut = self._cut_min is not None and len(data) >= self._cut_min
                            if cut:
                                self._cut_min = None
                                self.cuts += 1
                        if cut:
                            return  # the request went through; its reply never will
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()


class PartitionProxy:
    """A TCP proxy that can partition its clients from the server: :meth:`black_hole`
    makes it accept connections and read what they send but forward nothing either way
    (and stop forwarding on the connections already open), as a network partition does,
    unlike a stopped server, which refuses at once.  :meth:`heal` drops the black-holed
    connections, so clients reconnect, and forwards again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._holed = threading.Event()
        self._generation = 0  # bumped by heal(): connections of an older one are dropped
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> PartitionProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._listener.close()

    def black_hole(self) -> None:
        self._holed.set()

    def heal(self) -> None:
        self._generation += 1
        self._holed.clear()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, client: socket.socket) -> None:
        generation = self._generation
        server: socket.socket | None = None
        try:
            while not self._stop.is_set() and generation == self._generation:
                if self._holed.is_set():
                    # read and drop: the peer's writes succeed, nothing ever answers
                    readable, _, _ = select.select([client], [], [], 0.2)
                    if readable and not client.recv(65536):
                        return
                    continue
                if server is None:
                    try:
                        server = socket.create_connection(self.target, timeout=2)
                    except OSError:
                        return  # the server is down: refuse, as it would
                readable, _, _ = select.select([client, server], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (server if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            if server is not None:
                server.close()
