"""A LockingQueue consumer process for the baseline (``python -m benchmarks.lq_consumer``).

``--threads`` consumers, each with its own KazooClient (its own session, as separate
consumer machines would have), each looping ``get()`` then ``consume()`` as kazoo's
documentation shows.  Once every client is connected it writes ``--ready`` (so the bench
starts the clock with every consumer waiting); SIGTERM stops the loops and closes the
sessions.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.recipe.queue import LockingQueue

log = logging.getLogger("benchmarks.lq_consumer")
#: how long one get() waits for an entry before the loop checks for SIGTERM
GET_TIMEOUT = 2.0


def consume(hosts: str, path: str, stop: threading.Event, connected: threading.Semaphore) -> None:
    client = KazooClient(hosts=hosts, timeout=10.0, logger=log)
    client.start(timeout=30.0)
    try:
        queue = LockingQueue(client, path)
        connected.release()
        while not stop.is_set():
            if queue.get(timeout=GET_TIMEOUT) is not None:
                queue.consume()
    except Exception:
        if not stop.is_set():
            log.exception("consumer failed")
            raise
    finally:
        client.stop()
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zk", required=True, help="ZooKeeper connect string")
    parser.add_argument("--path", required=True, help="the queue's znode")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ready", type=Path, required=True, help="file written once connected")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    connected = threading.Semaphore(0)
    threads = [
        threading.Thread(
            target=consume, args=(args.zk, args.path, stop, connected), name=f"consumer-{i}"
        )
        for i in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for _ in threads:
        while not connected.acquire(timeout=1.0):
            if stop.is_set() or not any(t.is_alive() for t in threads):
                return
    tmp = args.ready.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, args.ready)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
