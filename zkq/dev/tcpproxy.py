"""A TCP proxy that breaks connections on purpose, for the tests and the soak (``soak/``).

It forwards a loopback port to a target and can fail in two ways:

- ``cut_after_next_request(min_bytes)`` forwards the next client-to-server chunk of at
  least ``min_bytes`` (a real request, not a 12-byte ping) to the server, then closes both
  sides before any reply can come back: the request was applied, the client never learns it.
- ``partition()`` black-holes: connections stay open and new ones are accepted, but
  nothing is forwarded either way, as when a network drops packets (not a refused
  connection, which a client notices at once).  Both ends see silence and must time out.
  ``heal()`` forwards again; connections that were open during the partition are closed
  then, since bytes they sent were dropped and their streams cannot be resumed (as a TCP
  connection would have timed out by then).
"""

from __future__ import annotations

import select
import socket
import threading

from zkq.dev.ports import free_port


class CuttingProxy:
    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._cut_min: int | None = None
        self._lock = threading.Lock()
        self.cuts = 0
        self._threads: list[threading.Thread] = []
        #: bumped by every partition: a connection of an older epoch ends when it heals
        self._epoch = 0
        self._partitioned = False

    def __enter__(self) -> CuttingProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._listener.close()

    def cut_after_next_request(self, min_bytes: int) -> None:
        with self._lock:
            self._cut_min = min_bytes

    def partition(self) -> None:
        with self._lock:
            self._partitioned = True
            self._epoch += 1

    def heal(self) -> None:
        with self._lock:
            self._partitioned = False

    @property
    def partitioned(self) -> bool:
        return self._partitioned

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                epoch = self._epoch
            server: socket.socket | None = None
            if not self._partitioned:
                try:
                    server = socket.create_connection(self.target, timeout=2)
                except OSError:
                    client.close()  # the target is down: refuse, as it would
                    continue
            thread = threading.Thread(target=self._pump, args=(client, server, epoch), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, client: socket.socket, server: socket.socket | None, epoch: int) -> None:
        try:
            if server is None:
                # accepted during a partition: the connection hangs until it heals, then
                # ends (the client has long given up on it)
                while not self._stop.is_set() and self._partitioned:
                    readable, _, _ = select.select([client], [], [], 0.2)
                    if readable and not client.recv(65536):
                        return  # the client gave up
                return
            while not self._stop.is_set():
                with self._lock:
                    if not self._partitioned and self._epoch != epoch:
                        return  # open across a partition: its bytes were dropped
                    blackholed = self._partitioned
                readable, _, _ = select.select([client, server], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if blackholed:
                        continue  # dropped on the floor
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
            if server is not None:
                server.close()
