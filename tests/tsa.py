"""A real RFC 3161 Time Stamping Authority on 127.0.0.1 for tests: `openssl ts -reply` behind http.server.

A throwaway CA and a TSA certificate (extendedKeyUsage critical timeStamping) are made with the openssl CLI;
each POSTed application/timestamp-query is piped to ``openssl ts -reply`` and its answer sent back, exactly as
a public TSA answers. ``mode`` makes it misbehave: "garbage" (200 with HTML), "500", "slow" (no answer in
time). The token carries only the TSA's own certificate (no ``certs =``): OpenSSL writes a chain in
insertion order, not the DER order of a SET OF, which rfc3161-client 1.0.9 refuses to parse
(InvalidSetOrdering). :meth:`LocalTSA.openssl_verify` checks a token independently with ``openssl ts -verify``.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

_TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
serial = {dir}/serial
crypto_device = builtin
signer_cert = {dir}/tsa.pem
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def make_ca(folder: Path, name: str = "catalogmark test TSA") -> Path:
    """A CA (ca.pem, ca.key) and a TSA certificate it signed (tsa.pem, tsa.key) in ``folder``."""
    if not Path(OPENSSL).exists():
        pytest.skip("openssl CLI not installed")
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
             "-subj", f"/CN={name} root", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name}", cwd=folder)
    (folder / "tsa-ext.cnf").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                        "extendedKeyUsage=critical,timeStamping\n")
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tsa.pem", "-days", "3650", "-extfile", "tsa-ext.cnf", cwd=folder)
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(_TSA_CONFIG.format(dir=folder))
    return folder


class LocalTSA:
    """``with LocalTSA(folder) as tsa:`` a TSA at ``tsa.url`` whose CA is ``tsa.ca_file``."""

    def __init__(self, folder: Path, *, mode: str = "ok", name: str = "catalogmark test TSA") -> None:
        self.folder = make_ca(folder, name)
        self.mode = mode
        self.requests = 0
        self._lock = threading.Lock()
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with tsa._lock:
                    tsa.requests += 1
                    n = tsa.requests
                if tsa.mode == "500":
                    self.send_error(500, "Internal Server Error")
                    return
                if tsa.mode == "slow":
                    time.sleep(3)
                if tsa.mode == "garbage":
                    self._send(b"<html><body>Service temporarily unavailable</body></html>", "text/html")
                    return
                qfile, rfile = tsa.folder / f"q{n}.tsq", tsa.folder / f"r{n}.tsr"
                qfile.write_bytes(query)
                with tsa._lock:  # openssl ts -reply updates the serial file
                    r = subprocess.run([OPENSSL, "ts", "-reply", "-queryfile", str(qfile), "-config",
                                        str(tsa.folder / "tsa.cnf"), "-out", str(rfile)],
                                       capture_output=True, timeout=60)
                if r.returncode != 0:
                    self.send_error(400, "Bad Request")
                    return
                self._send(rfile.read_bytes(), "application/timestamp-reply")

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up ("slow" mode) makes the late answer a broken pipe: expected

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/tsa"

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    def __enter__(self) -> LocalTSA:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def openssl_verify(self, token: bytes, merkle_root: str, *, ca_file: Path | None = None,
                       where: Path | None = None) -> subprocess.CompletedProcess:
        """``openssl ts -verify`` of a DER TimeStampResp against the root's hex text and a CA file."""
        where = where or self.folder
        (where / "check.tsr").write_bytes(token)
        (where / "root.txt").write_text(merkle_root)
        return subprocess.run([OPENSSL, "ts", "-verify", "-data", str(where / "root.txt"), "-in",
                               str(where / "check.tsr"), "-CAfile", str(ca_file or self.ca_file)],
                              capture_output=True, text=True, timeout=60)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"
