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
