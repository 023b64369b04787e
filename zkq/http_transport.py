"""The HTTP client's dealings with the wire that are not the API's: which TLS
certificates it trusts (``ca_file``, ``ZKQ_CA_FILE``, the system's CAs) and how it words a
rejected one, and how an error response becomes a zkq error.  :mod:`zkq.http_client` is
the client itself."""

from __future__ import annotations

import os

import requests

from zkq.coordinator.errors import ConfigError, ZkqError, from_code

#: what a body without an error code means, by status: only a proxy in front of HAProxy
#: answers so, and only these say "try again"
_CODELESS = {502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout"}
#: where a CA file comes from when the constructor is given none
CA_FILE_ENV = "ZKQ_CA_FILE"


class CertificateRejected(ConfigError):
    """The server's TLS certificate did not verify against the CA the client trusts.

    Raised by the client alone (no server answers with it), so it is not in the tree's
    table of codes."""

    code = "certificate_rejected"


def trust(ca_file: str | os.PathLike[str] | None) -> str | bool:
    """What ``requests`` verifies with: ``ca_file``, else ``$ZKQ_CA_FILE``, else ``True``
    (the system's CAs).  A named file that cannot be read is a :class:`ConfigError` now,
    rather than an obscure TLS failure on the first request."""
    chosen = os.fspath(ca_file) if ca_file is not None else os.environ.get(CA_FILE_ENV) or None
    if chosen is None:
        return True
    if not os.path.isfile(chosen) or not os.access(chosen, os.R_OK):
        source = "ca_file" if ca_file is not None else CA_FILE_ENV
        raise ConfigError(f"{source}: cannot read the CA file {chosen!r}: give a readable PEM file")
    return chosen


def error_of(response: requests.Response) -> ZkqError:
    """The zkq error an error response stands for, by its body's ``code``, with the
    HTTP ``.status`` and ``.retry_after``."""
    status = response.status_code
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code = _CODELESS.get(status, "http_error")
        message = response.text[:200] or response.reason
    error = from_code(code, message)
    error.status = status
    retry = response.headers.get("Retry-After")
    if retry and retry.isdigit():
        error.retry_after = float(retry)
    return error


def trusted(verify: str | bool) -> str:
    """What the client trusts, in words, for a message."""
    return "the system's CAs" if verify is True else f"CA file {verify}"


def tls_reason(exc: requests.exceptions.SSLError) -> str:
    """The innermost TLS complaint (e.g. "certificate verify failed: self-signed
    certificate in certificate chain"), not urllib3's nest of wrappers."""
    text = str(exc)
    marker = "SSLError("
    if marker in text:
        text = text[text.rfind(marker) + len(marker) :]
    return text.split("(_ssl.c")[0].strip(" '\"(),")[:300]


__all__ = ["CA_FILE_ENV", "CertificateRejected", "error_of", "tls_reason", "trust", "trusted"]
