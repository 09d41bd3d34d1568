"""The client proxy's HTTPS port's TLS options: the internal TLS certificate, re-read when its files change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from structlog.testing import capture_logs

from security_server.configfile import load_config
from security_server.core.errors import ConfigurationError
from security_server.management.tls import (
    INTERNAL_CERT_NAME,
    INTERNAL_KEY_NAME,
    make_certificate,
    new_internal_identity,
    write_internal_certificate,
)
from security_server.proxy.client_proxy_tls import InternalTlsOptions
from security_server.service import ServerSettings


def served(options: InternalTlsOptions) -> bytes:
    """The certificate (DER) a new connection would present."""
    cert = options.serverConnectionForTLS(None).get_certificate()
    assert cert is not None
    return cert.to_cryptography().public_bytes(serialization.Encoding.DER)


def test_the_certificate_is_made_when_missing_and_announced(tmp_path: Path) -> None:
    """Options over an empty directory make the internal key and certificate, serve it and announce its DER."""
    announced: list[bytes] = []
    options = InternalTlsOptions(tmp_path, on_change=announced.append)
    assert (tmp_path / INTERNAL_KEY_NAME).is_file() and (tmp_path / INTERNAL_CERT_NAME).is_file()
    cert = x509.load_pem_x509_certificate((tmp_path / INTERNAL_CERT_NAME).read_bytes())
    assert served(options) == cert.public_bytes(serialization.Encoding.DER) == announced[-1]


def test_a_new_certificate_is_served_from_the_next_connection(tmp_path: Path) -> None:
    """A new key and certificate written while serving are served by the next connection, without a restart."""
    announced: list[bytes] = []
    options = InternalTlsOptions(tmp_path, on_change=announced.append)
    before = served(options)
    new = new_internal_identity(tmp_path, datetime.now(UTC)).cert.public_bytes(serialization.Encoding.DER)
    assert new != before
    assert served(options) == new and announced[-1] == new
    assert served(options) == new and len(announced) == 2  # unchanged files: the same context, no new announcement


def test_a_certificate_of_another_key_keeps_the_old_one(tmp_path: Path) -> None:
    """A certificate file that does not match the key (half-replaced) leaves the old context in use, logged."""
    options = InternalTlsOptions(tmp_path)
    before = served(options)
    stranger = make_certificate(ec.generate_private_key(ec.SECP256R1()), "", datetime.now(UTC))
    write_internal_certificate(tmp_path, [stranger])
    with capture_logs() as logs:
        assert served(options) == before
    assert [e["event"] for e in logs] == ["internal_tls_reload_failed"]


def test_the_https_port_is_off_unless_configured(tmp_path: Path) -> None:
    """``[server] client-proxy-https-port`` is 0 (no HTTPS port) as shipped, read when set, refused out of range."""
    def settings(text: str) -> ServerSettings:
        extra = tmp_path / "extra.ini"
        extra.write_text(text, encoding="utf-8")
        return ServerSettings.from_config(tmp_path, load_config("security-server", local_dir=tmp_path, extra=extra))

    assert settings("").client_proxy_https_port == 0
    assert settings("[server]\nclient-proxy-https-port = 8443\n").client_proxy_https_port == 8443
    with pytest.raises(ConfigurationError):
        settings("[server]\nclient-proxy-https-port = 70000\n")
