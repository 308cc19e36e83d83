"""TLS test certificates (trustme) and a TLS server, for the HTTPS and HTTP/2 tests."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

if TYPE_CHECKING:
    from ..conftest import RunningServer

PASSWORD = "correct horse"


@dataclass
class Certs:
    ca: trustme.CA
    server_pem: str  # the server's own certificate
    cert: str  # its chain, as --ssl-certfile
    key: str
    combined: str  # key and chain in one file
    encrypted_key: str  # the key, encrypted with PASSWORD
    other_key: str  # another certificate's key
    ca_file: str
    client: trustme.LeafCert


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    paths = {name: str(d / f"{name}.pem") for name in ("cert", "key", "combined", "encrypted", "other", "ca")}
    for pem in leaf.cert_chain_pems:
        pem.write_to_path(paths["cert"], append=True)
    leaf.private_key_pem.write_to_path(paths["key"])
    leaf.private_key_and_cert_chain_pem.write_to_path(paths["combined"])
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    Path(paths["encrypted"]).write_bytes(encrypted)
    ca.issue_cert("elsewhere.example").private_key_pem.write_to_path(paths["other"])
    ca.cert_pem.write_to_path(paths["ca"])
    # A comma in the name: RFC 4514 escaping shows in client_cert_name.
    client = ca.issue_cert("client.example", common_name="alice, admin", organization_name="Example Org")
    return Certs(
        ca=ca,
        server_pem=leaf.cert_chain_pems[0].bytes().decode(),
        cert=paths["cert"],
        key=paths["key"],
        combined=paths["combined"],
        encrypted_key=paths["encrypted"],
        other_key=paths["other"],
        ca_file=paths["ca"],
        client=client,
    )


def client_context(certs: Certs, with_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    certs.ca.configure_trust(ctx)
    if with_cert:
        certs.client.configure_cert(ctx)
    return ctx


def tls_server(serve: Callable[..., RunningServer], certs: Certs, app: Any, **config: Any) -> RunningServer:
    config.setdefault("ssl_keyfile", certs.key)
    return serve(app, ssl_certfile=certs.cert, **config)
