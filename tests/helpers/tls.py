"""TLS certificates for the tests, made with ``openssl``: a test CA, a server certificate
it signs (for ``127.0.0.1``/``localhost``) and an unrelated "wrong" CA."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers.databases import require_tool


@dataclass(frozen=True)
class TLSFiles:
    """Certificates made for the session."""

    ca: Path
    """The test CA that signed :attr:`server_cert`."""
    server_cert: Path
    server_key: Path
    wrong_ca: Path
    """A CA that signed nothing this suite's servers use."""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tls_files(d: Path) -> TLSFiles:
    """Make a CA, a server certificate signed by it for 127.0.0.1, and an unrelated CA in
    the directory ``d`` with ``openssl``."""
    require_tool(shutil.which("openssl"), "openssl")
    for name in ("ca", "wrong-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-subj", f"/CN=flask-entitydb {name}", cwd=d,
        )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d,
    )  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.pem", cwd=d,
    )  # fmt: skip
    return TLSFiles(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        wrong_ca=d / "wrong-ca.pem",
    )
