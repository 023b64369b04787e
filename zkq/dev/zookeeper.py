"""A local ZooKeeper ensemble: one JVM per node, from Debian's packaged jars.

Debian's packaging, and why the classpath is built here rather than taken from it:

- The jars live in ``/usr/share/java`` (package ``libzookeeper-java``, pulled in by
  ``zookeeper``).  ``zookeeper.jar``'s manifest ``Class-Path`` names its dependencies
  (jute, netty, jetty, jackson, slf4j-api, ...), so the JVM finds those by itself.
- Debian patches 3.8 back from logback to **log4j 1.2**, but neither the manifest nor the
  package's ``environment`` file (``CLASSPATH=/etc/zookeeper/conf:/usr/share/java/
  zookeeper.jar``) puts an slf4j *binding* on the classpath: started that way ZooKeeper
  prints ``SLF4J: Defaulting to no-operation (NOP) logger`` and logs nothing at all.  We add
  ``slf4j-log4j12.jar`` and ``log4j-1.2.jar`` and give each node its own
  ``log4j.properties`` (found through the node's conf dir, first on the classpath).
- Bookworm's ``zookeeper`` package ships no service unit, so nothing competes for ports;
  ``scripts/bootstrap.sh`` still stops and disables one where an older package has it.

Nodes are indexed from 0 in this API; node ``i`` has ``myid`` ``i + 1`` and lives in
``<base_dir>/zk<i+1>/`` (``zoo.cfg``, ``conf/log4j.properties``, ``data/``, ``zookeeper.log``
written by log4j, ``console.log`` for the JVM's own output).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkq.dev import processes
from zkq.dev.errors import StartupFailed, ZooKeeperNotInstalled
from zkq.dev.fourletter import four_letter, parse_mntr, parse_srvr
from zkq.dev.ports import free_ports
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.waiting import wait_until

JAVA_DIR = Path("/usr/share/java")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
HOST = "127.0.0.1"
FOUR_LETTER_WORDS = "srvr,mntr,ruok,stat,conf,cons,wchs,envi"
#: jar -> the Debian package that ships it, for the error message when it is missing
REQUIRED_JARS = {
    "zookeeper.jar": "zookeeper",
    "slf4j-log4j12.jar": "libslf4j-java",
    "log4j-1.2.jar": "liblog4j1.2-java",
}
SERVING_MODES = ("leader", "follower", "standalone")


def all_serving(modes: list[str]) -> bool:
    """Whether nodes in these modes (``srvr``'s, or ``down``) serve as one ensemble: a
    single standalone node, or exactly one leader and every other node following it."""
    if len(modes) == 1:
        return modes == ["standalone"]
    return modes.count("leader") == 1 and modes.count("follower") == len(modes) - 1


LOG4J_PROPERTIES = """\
# Written by zkq.dev.zookeeper: log4j 1.2, because that is what Debian's ZooKeeper uses.
log4j.rootLogger=${zookeeper.root.logger}
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
log4j.appender.ROLLINGFILE=org.apache.log4j.RollingFileAppender
log4j.appender.ROLLINGFILE.File=${zookeeper.log.dir}/zookeeper.log
log4j.appender.ROLLINGFILE.MaxFileSize=10MB
log4j.appender.ROLLINGFILE.MaxBackupIndex=3
log4j.appender.ROLLINGFILE.layout=org.apache.log4j.PatternLayout
log4j.appender.ROLLINGFILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
"""


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ZooKeeperNotInstalled(
            "no java on PATH: install the Debian package default-jre-headless "
            "(or run scripts/bootstrap.sh)"
        )
    return java


def find_classpath(java_dir: Path = JAVA_DIR) -> list[str]:
    """The jars a ZooKeeper server needs, in classpath order (without the conf dir)."""
    missing = [(jar, pkg) for jar, pkg in REQUIRED_JARS.items() if not (java_dir / jar).exists()]
    if missing:
        names = ", ".join(str(java_dir / jar) for jar, _ in missing)
        packages = " ".join(sorted({pkg for _, pkg in missing}))
        raise ZooKeeperNotInstalled(
            f"missing {names}: install the Debian package(s) {packages} "
            "(apt-get install zookeeper, or run scripts/bootstrap.sh)"
        )
    return [str(java_dir / jar) for jar in REQUIRED_JARS]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _says_port_taken(log_sizes: dict[Path, int]) -> bool:
    """Did any log say "address in use" since it had the given size?"""
    for path, offset in log_sizes.items():
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                if b"Address already in use" in f.read():
                    return True
        except FileNotFoundError:
            continue
    return False


@dataclass
class ZooKeeperNode:
    myid: int
    dir: Path
    client_port: int
    quorum_port: int
    election_port: int
    process: ManagedProcess | None = None
    #: False after stop_node/kill_node: readiness then no longer waits for this node
    wanted: bool = True

    @property
    def name(self) -> str:
        return f"zk{self.myid}"

    @property
    def log_path(self) -> Path:
        return self.dir / "zookeeper.log"

    def to_dict(self) -> dict[str, Any]:
        return {
            "myid": self.myid,
            "dir": str(self.dir),
            "client_port": self.client_port,
            "quorum_port": self.quorum_port,
            "election_port": self.election_port,
            "process": None if self.process is None else self.process.to_dict(),
            "wanted": self.wanted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ZooKeeperNode:
        proc = data.get("process")
        return cls(
            myid=int(data["myid"]),
            dir=Path(data["dir"]),
            client_port=int(data["client_port"]),
            quorum_port=int(data["quorum_port"]),
            election_port=int(data["election_port"]),
            process=None if proc is None else ManagedProcess.from_dict(proc),
            wanted=bool(data.get("wanted", True)),
        )


class ZooKeeperEnsemble:
    """``size`` ZooKeeper servers on loopback ports under ``base_dir``: ``ports`` (client,
    quorum and election port of each node in turn, :mod:`.portbook`), else free ones."""

    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        tick_ms: int = 2000,
        min_session_ms: int | None = None,
        max_session_ms: int | None = None,
        heap_mb: int = 256,
        nodes: list[ZooKeeperNode] | None = None,
        routes: dict[str, list[int]] | None = None,
        ports: list[int] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("an ensemble needs at least one node")
        self.base_dir = Path(base_dir).resolve()
        self.size = size
        self.tick_ms = tick_ms
        self.min_session_ms = min_session_ms
        self.max_session_ms = max_session_ms
        self.heap_mb = heap_mb
        #: "<viewer myid>><peer myid>" -> the [quorum, election] ports through which the
        #: viewer reaches that peer (relays that can black-hole it: the soak's partition of
        #: one node); read when a node (re)starts, so set it, then restart the nodes
        self.routes: dict[str, list[int]] = dict(routes or {})
        if nodes is None:
            nodes = [
                ZooKeeperNode(i + 1, self.base_dir / f"zk{i + 1}", 0, 0, 0) for i in range(size)
            ]
            self.nodes = nodes
            self._assign_ports(ports)
        if len(nodes) != size:
            raise ValueError(f"{len(nodes)} nodes given for an ensemble of {size}")
        self.nodes = nodes

    # -- addresses ------------------------------------------------------------------------

    @property
    def connect_string(self) -> str:
        return ",".join(f"{HOST}:{n.client_port}" for n in self.nodes)

    def client_port(self, i: int) -> int:
        return self.nodes[i].client_port

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0, attempts: int = 3) -> None:
        """Start every node that is not running and wait for a leader and its followers.

        On the very first start, if a node could not bind one of its ports (another program
        took it after we chose it), the ensemble gets new ports and starts again, up to
        ``attempts`` times: read :attr:`connect_string` after this returns.  Never on a
        restart, since clients already hold the connect string.
        """
        fresh = all(n.process is None for n in self.nodes)
        for attempt in range(1, attempts + 1):
            log_sizes = {path: _size(path) for path in self._log_paths()}
            for i, node in enumerate(self.nodes):
                if node.process is None or not node.process.alive():
                    self.start_node(i, wait=False)
            try:
                self.wait_ready(timeout)
                return
            except StartupFailed:
                if not fresh or attempt == attempts or not _says_port_taken(log_sizes):
                    raise
                self.stop()
                self._assign_ports()

    def _assign_ports(self, wanted: list[int] | None = None) -> None:
        ports = wanted if wanted and len(wanted) == 3 * self.size else free_ports(3 * self.size)
        for i, node in enumerate(self.nodes):
            node.client_port, node.quorum_port, node.election_port = ports[3 * i : 3 * i + 3]

    def _log_paths(self) -> list[Path]:
        return [p for n in self.nodes for p in (n.log_path, n.dir / "console.log")]

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            node.wanted = False
        processes.stop_all([n.process for n in self.nodes if n.process is not None], timeout)

    def start_node(self, i: int, wait: bool = True, timeout: float = 60.0) -> ManagedProcess:
        """(Re)start node ``i``; with ``wait``, until the ensemble has its quorum again."""
        node = self.nodes[i]
        if node.process is not None and node.process.alive():
            raise StartupFailed(f"{node.name} is already running (pid {node.process.pid})")
        cfg = self._write_config(node)
        classpath = [str(node.dir / "conf"), *find_classpath()]
        argv = [
            find_java(),
            f"-Xmx{self.heap_mb}m",
            # Serial GC: three small JVMs on one machine do not need parallel collectors.
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dzookeeper.log.dir={node.dir}",
            "-Dzookeeper.root.logger=INFO,ROLLINGFILE",
            "-cp",
            ":".join(classpath),
            MAIN_CLASS,
            str(cfg),
        ]
        spec = ProcessSpec(node.name, argv, node.dir / "console.log", cwd=node.dir)
        node.process = processes.start(spec)
        node.wanted = True
        if wait:
            self.wait_ready(timeout)
        return node.process

    def stop_node(self, i: int, timeout: float = 10.0) -> None:
        self.nodes[i].wanted = False
        proc = self.nodes[i].process
        if proc is not None:
            proc.stop(timeout)

    def kill_node(self, i: int) -> None:
        """SIGKILL: no shutdown hook runs, like a crash."""
        self.nodes[i].wanted = False
        proc = self.nodes[i].process
        if proc is not None:
            proc.kill(group=True)
            proc.wait(10.0)

    def pause_node(self, i: int) -> None:
        """SIGSTOP: the node hangs, its peers and clients time out on it."""
        proc = self.nodes[i].process
        if proc is not None:
            proc.pause()

    def resume_node(self, i: int) -> None:
        proc = self.nodes[i].process
        if proc is not None:
            proc.resume()

    def _write_config(self, node: ZooKeeperNode) -> Path:
        data = node.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (node.dir / "conf").mkdir(exist_ok=True)
        (node.dir / "conf" / "log4j.properties").write_text(LOG4J_PROPERTIES)
        (data / "myid").write_text(f"{node.myid}\n")
        lines = [
            f"tickTime={self.tick_ms}",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={data}",
            f"clientPort={node.client_port}",
            f"clientPortAddress={HOST}",
            "admin.enableServer=false",
            f"4lw.commands.whitelist={FOUR_LETTER_WORDS}",
            # Keep a dev cluster's disk use bounded (purgeInterval is in hours).
            "autopurge.snapRetainCount=3",
            "autopurge.purgeInterval=1",
        ]
        if self.min_session_ms is not None:
            lines.append(f"minSessionTimeout={self.min_session_ms}")
        if self.max_session_ms is not None:
            lines.append(f"maxSessionTimeout={self.max_session_ms}")
        if self.size > 1:
            # Without this, a quorum config shrunk to one server would silently run
            # standalone; we always want the quorum protocol the production ensemble runs.
            lines.append("standaloneEnabled=false")
            lines += [
                "server.{}={}:{}:{}".format(n.myid, HOST, *self._peer_ports(node, n))
                for n in self.nodes
            ]
        cfg = node.dir / "zoo.cfg"
        cfg.write_text("# Written by zkq.dev.zookeeper\n" + "\n".join(lines) + "\n")
        return cfg

    def _peer_ports(self, viewer: ZooKeeperNode, peer: ZooKeeperNode) -> list[int]:
        route = self.routes.get(f"{viewer.myid}>{peer.myid}")
        return route if route is not None else [peer.quorum_port, peer.election_port]

    # -- health ---------------------------------------------------------------------------

    def node_status(self, i: int, timeout: float = 2.0) -> dict[str, Any]:
        """One node's process and server state; mode "down" when it does not answer."""
        node = self.nodes[i]
        proc = node.process
        alive = proc is not None and proc.alive()
        status: dict[str, Any] = {
            "name": node.name,
            "index": i,
            "myid": node.myid,
            "client_port": node.client_port,
            "pid": None if proc is None else proc.pid,
            "alive": alive,
            "rss_bytes": proc.rss_bytes() if proc is not None and alive else None,
            "ruok": False,
            "mode": "down",
            "log": str(node.log_path),
        }
        if not alive:
            return status
        try:
            status["ruok"] = four_letter(HOST, node.client_port, "ruok", timeout) == "imok"
            status.update(parse_srvr(four_letter(HOST, node.client_port, "srvr", timeout)))
            mntr = parse_mntr(four_letter(HOST, node.client_port, "mntr", timeout))
        except OSError:
            return status
        for key in (
            "zk_watch_count",
            "zk_ephemerals_count",
            "zk_approximate_data_size",
            "zk_synced_followers",
        ):
            if key in mntr:
                status[key.removeprefix("zk_")] = int(float(mntr[key]))
        return status

    def status(self) -> list[dict[str, Any]]:
        return [self.node_status(i) for i in range(self.size)]

    def leader_index(self) -> int | None:
        for i, node in enumerate(self.nodes):
            try:
                mode = parse_srvr(four_letter(HOST, node.client_port, "srvr", 1.0)).get("mode")
            except OSError:
                continue
            if mode in ("leader", "standalone"):
                return i
        return None

    def _check_ready(self) -> bool:
        running = [n for n in self.nodes if n.process is not None and n.wanted]
        modes: list[str] = []
        for node in running:
            assert node.process is not None
            if not node.process.alive():
                raise StartupFailed(
                    f"ZooKeeper node {node.name} (pid {node.process.pid}) exited; "
                    f"see {node.log_path} and {node.process.log_path}:\n"
                    + (processes.tail(node.log_path, 15) or node.process.log_tail(15))
                )
            try:
                if four_letter(HOST, node.client_port, "ruok", 1.0) != "imok":
                    return False
                modes.append(
                    parse_srvr(four_letter(HOST, node.client_port, "srvr", 1.0)).get(
                        "mode", "unknown"
                    )
                )
            except OSError:
                return False
        # A minority of running nodes never gets here: they stay "not serving".
        return all_serving(modes)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every running node serves: one leader, the others followers."""
        try:
            wait_until(
                self._check_ready,
                timeout,
                interval=0.1,
                what=f"ZooKeeper ensemble at {self.connect_string} to elect a leader",
            )
        except TimeoutError as exc:
            tails = "\n".join(
                f"--- {n.log_path}\n{processes.tail(n.log_path, 5)}" for n in self.nodes
            )
            raise StartupFailed(f"{exc}\n{tails}") from exc

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_dir": str(self.base_dir),
            "size": self.size,
            "tick_ms": self.tick_ms,
            "min_session_ms": self.min_session_ms,
            "max_session_ms": self.max_session_ms,
            "heap_mb": self.heap_mb,
            "nodes": [n.to_dict() for n in self.nodes],
            "routes": self.routes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ZooKeeperEnsemble:
        return cls(
            base_dir=Path(data["base_dir"]),
            size=int(data["size"]),
            tick_ms=int(data["tick_ms"]),
            min_session_ms=data.get("min_session_ms"),
            max_session_ms=data.get("max_session_ms"),
            heap_mb=int(data["heap_mb"]),
            nodes=[ZooKeeperNode.from_dict(n) for n in data["nodes"]],
            routes=data.get("routes"),
        )
