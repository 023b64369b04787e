"""A certificate authority of the local cluster's own, and HAProxy's certificate from it.

Each ``up`` makes, in ``<state dir>/tls/``::

    ca.pem       the CA's certificate: what clients trust (``ZKQ_CA_FILE``, ``--ca-file``)
    haproxy.pem  HAProxy's certificate and private key, in one file as HAProxy reads it (0600)

The CA's private key never reaches the disk for longer than the signing takes: it is
deleted once the server certificate is signed, so the CA a developer trusts can vouch for
that one certificate and for nothing anyone makes later.

The ``openssl`` command does the work (Debian's ``openssl`` package, which HAProxy's own
package already pulls in): zkq does not depend on ``cryptography``, and adding a compiled
dependency for a development convenience is not worth it.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zkq.dev.errors import DevClusterError, StartupFailed

TLS_DIR = "tls"
#: long enough for any dev cluster, short enough that a leaked CA file soon means nothing
DAYS = 30
#: ECDSA P-256: small and quick to make, and every TLS client and HAProxy take it
CURVE = "prime256v1"


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    #: certificate then key, as HAProxy's ``crt`` reads them
    server_pem: Path


def openssl_binary() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise DevClusterError("no openssl command: apt-get install openssl")
    return found


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(
        [openssl_binary(), *argv], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise StartupFailed(f"openssl {argv[0]} failed: {done.stderr.strip()[-500:]}")


def make_certificates(directory: Path, hosts: Sequence[str]) -> TlsFiles:
    """A fresh CA and a server certificate for ``hosts`` (IP addresses or DNS names)."""
    if not hosts:
        raise ValueError("a certificate needs at least one host name or address")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_file, server_pem = directory / "ca.pem", directory / "haproxy.pem"
    # The keys are made in a private temporary directory inside ours and never outlive it.
    with tempfile.TemporaryDirectory(dir=directory) as work_dir:
        work = Path(work_dir)
        ca_key, key, csr, cert = (work / n for n in ("ca.key", "server.key", "csr", "cert"))
        _run(
            [
                "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}",
                "-nodes", "-keyout", str(ca_key), "-out", str(ca_file), "-days", str(DAYS),
                "-subj", "/O=zkq/CN=zkq dev cluster CA",
                "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]
        )  # fmt: skip
        _run(
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}",
                "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/O=zkq/CN={hosts[0]}",
            ]
        )  # fmt: skip
        extensions = work / "ext.cnf"
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid:always\n"
            f"subjectAltName={_alt_names(hosts)}\n"
        )
        _run(
            [
                "x509", "-req", "-in", str(csr), "-CA", str(ca_file), "-CAkey", str(ca_key),
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                "-days", str(DAYS), "-extfile", str(extensions), "-out", str(cert),
            ]
        )  # fmt: skip
        # created 0600 before any secret is written into it
        fd = os.open(server_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(cert.read_text() + key.read_text())
    ca_file.chmod(0o644)  # public: what clients are given
    return TlsFiles(ca_file, server_pem)


def _alt_names(hosts: Sequence[str]) -> str:
    """``IP:`` for addresses, ``DNS:`` for names: a client matches an address only
    against an IP entry."""
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append(f"DNS:{host}")
        else:
            names.append(f"IP:{host}")
    return ",".join(names)
