"""The registry's configuration-signing key in a SoftHSM2 token: the configuration it signs verifies where a security
server verifies a download (the configuration client's bundle check against the anchor)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa

from central_registry.cli import registry
from central_registry.conf_signing_key import ConfSigningSettings, create_in_token, load_conf_signing_key
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.store import RegistryStore
from security_server.confclient.bundle import ConfBundle, assemble
from security_server.core.config import IniLayer, LayeredConfig
from security_server.core.errors import BusError, ConfigurationError
from security_server.core.globalconf import parse_configuration_anchor
from security_server.core.globalconf.algorithms import RSA_PSS_SHA512_URI, RSA_SHA512_URI
from security_server.core.identifiers import ClientId
from security_server.signer.pkcs11_key import Pkcs11RsaKey
from security_server.signer.token import KeyNotAvailable, SoftTokenError
from tests.security_server.signer.softhsm import SoftHsmToken, shared_softhsm

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PIN_ENV = "FEDBUS_REGISTRY_HSM_PIN"


def _settings(hsm: SoftHsmToken, mechanism: str = "CKM_RSA_PKCS", label: str = "fedbus conf-signing") -> ConfSigningSettings:
    text = (
        f"[conf-signing]\ntoken = hsm1\nkey-label = {label}\n"
        f"[pkcs11:hsm1]\nlibrary = {hsm.module}\ntoken-label = {hsm.label}\npin-env = {PIN_ENV}\n"
        f"sign-mechanism = {mechanism}\n"
    )
    return ConfSigningSettings.from_config(LayeredConfig.from_layers([IniLayer("central-registry.ini", text)]))


def _publisher(tmp_path: Path, key: SelfSignedKey) -> Publisher:
    store = RegistryStore(tmp_path / "registry.db")
    store.initialise("EE")
    store.add_member(ClientId("EE", "GOV", "1"), "First")
    tls = SelfSignedKey.create(tmp_path / "tls", "EE registry", NOW)
    return Publisher(
        store, tmp_path / "published", key, public_url="http://127.0.0.1:1",
        management_url="https://127.0.0.1:1/managementservice", management_cert_der=tls.cert_der,
    )


@pytest.mark.parametrize(
    ("mechanism", "algorithm_id"), [("CKM_RSA_PKCS", RSA_SHA512_URI), ("CKM_RSA_PKCS_PSS", RSA_PSS_SHA512_URI)]
)
def test_configuration_signed_in_the_token_verifies_on_the_security_server(
    tmp_path: Path, mechanism: str, algorithm_id: str
) -> None:
    """A configuration signed by the token key (PKCS#1 v1.5 or PSS, as the token is configured) passes the
    configuration client's verification against an anchor carrying the token key's certificate."""
    hsm = shared_softhsm().init_token()
    settings = _settings(hsm, mechanism)
    environ = {PIN_ENV: hsm.pin}
    create_in_token(tmp_path / "conf-signing", settings, "EE configuration signing", NOW, environ=environ)
    assert sorted(p.name for p in (tmp_path / "conf-signing").iterdir()) == ["cert.pem"]  # the key stays in the token
    key = load_conf_signing_key(tmp_path / "conf-signing", settings, environ=environ)
    assert isinstance(key.key, Pkcs11RsaKey)
    publisher = _publisher(tmp_path, key)
    anchor = parse_configuration_anchor(publisher.anchor(NOW))
    publication = publisher.build(NOW)
    assert f"Signature-Algorithm-Id: {algorithm_id}".encode() in publication.directory
    conf = assemble(ConfBundle(publication.content_type, publication.directory, publication.files), anchor, NOW)
    assert conf.instance == "EE"
    # and a byte changed in the directory is refused, as for a file key
    tampered = publication.directory.replace(b"shared-params.xml", b"shared-params.xmk", 1)
    with pytest.raises(BusError):
        assemble(ConfBundle(publication.content_type, tampered, publication.files), anchor, NOW + timedelta(seconds=1))


def test_without_a_token_the_key_file_is_used(tmp_path: Path) -> None:
    """No [conf-signing] token: the key.pem of the folder, as before (a software key, PKCS#1 v1.5)."""
    made = SelfSignedKey.create(tmp_path / "conf-signing", "EE configuration signing", NOW)
    settings = ConfSigningSettings.from_config(LayeredConfig.from_layers([]))
    loaded = load_conf_signing_key(tmp_path / "conf-signing", settings)
    assert isinstance(loaded.key, rsa.RSAPrivateKey) and not isinstance(loaded.key, Pkcs11RsaKey)
    assert loaded.cert == made.cert and loaded.signature_algorithm_id == RSA_SHA512_URI


def test_a_token_name_without_its_section_is_refused() -> None:
    """[conf-signing] token must name an enabled [pkcs11:NAME] section."""
    config = LayeredConfig.from_layers([IniLayer("local.ini", "[conf-signing]\ntoken = nowhere\n")])
    with pytest.raises(ConfigurationError, match="pkcs11:nowhere"):
        ConfSigningSettings.from_config(config)


def test_a_certificate_of_another_key_or_a_missing_key_is_refused(tmp_path: Path) -> None:
    """The folder's certificate must belong to the token key; a label the token lacks is key_not_found."""
    hsm = shared_softhsm().init_token()
    environ = {PIN_ENV: hsm.pin}
    settings = _settings(hsm)
    create_in_token(tmp_path / "a", settings, "EE configuration signing", NOW, environ=environ)
    SelfSignedKey.create(tmp_path / "b", "someone else", NOW)
    (tmp_path / "b" / "key.pem").unlink()
    with pytest.raises(ConfigurationError, match="not the certificate"):
        load_conf_signing_key(tmp_path / "b", settings, environ=environ)
    with pytest.raises(KeyNotAvailable) as caught:
        load_conf_signing_key(tmp_path / "a", _settings(hsm, label="no such key"), environ=environ)
    assert caught.value.fault_code == "signer.key_not_found"
    with pytest.raises(ConfigurationError, match="key file"):
        SelfSignedKey.create(tmp_path / "c", "soft", NOW)
        create_in_token(tmp_path / "c", settings, "EE configuration signing", NOW, environ=environ)


def test_a_second_key_with_the_same_label_is_refused(tmp_path: Path) -> None:
    """The label finds one key: making another with it in the same token is refused, the first stays usable."""
    hsm = shared_softhsm().init_token()
    environ = {PIN_ENV: hsm.pin}
    settings = _settings(hsm)
    create_in_token(tmp_path / "a", settings, "EE configuration signing", NOW, environ=environ)
    with pytest.raises(SoftTokenError, match="already holds"):
        create_in_token(tmp_path / "b", settings, "EE configuration signing", NOW, environ=environ)
    assert load_conf_signing_key(tmp_path / "a", settings, environ=environ).cert_der


def test_cli_makes_the_key_in_the_token_and_publishes_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`registry conf-signing-key` makes the key in the configured token; `publish` and `anchor` then sign and
    name it, and the published directory verifies against that anchor."""
    hsm = shared_softhsm().init_token()
    monkeypatch.setenv(PIN_ENV, hsm.pin)
    config = tmp_path / "registry.ini"
    config.write_text(
        f"[conf-signing]\ntoken = hsm1\n[pkcs11:hsm1]\nlibrary = {hsm.module}\ntoken-label = {hsm.label}\n"
        f"pin-env = {PIN_ENV}\nsign-mechanism = CKM_RSA_PKCS_PSS\n",
        encoding="utf-8",
    )
    root = tmp_path / "registry"

    def run(*args: str) -> None:
        result = CliRunner().invoke(registry, [*args, "--registry-dir", str(root)], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    run("init", "--instance", "EE", "--no-dev-ca")
    refused = CliRunner().invoke(
        registry, ["conf-signing-key", "--registry-dir", str(root), "--config", str(config)], catch_exceptions=False
    )
    assert refused.exit_code != 0 and "key file" in refused.output
    (root / "conf-signing" / "key.pem").rename(tmp_path / "old-conf-signing-key.pem")
    run("conf-signing-key", "--config", str(config))
    run("publish", "--config", str(config))
    run("anchor", "--config", str(config), "--out", str(tmp_path / "anchor.xml"))
    anchor = parse_configuration_anchor((tmp_path / "anchor.xml").read_bytes())
    published = root / "published"
    directory = (published / "internalconf").read_bytes()
    assert f"Signature-Algorithm-Id: {RSA_PSS_SHA512_URI}".encode() in directory
    boundary = directory.split(b"\r\n", 1)[0][2:].decode()
    files = {
        "/" + str(path.relative_to(published)): path.read_bytes()
        for path in published.rglob("*.xml")
    }
    conf = assemble(ConfBundle(f'multipart/related; boundary="{boundary}"', directory, files), anchor, datetime.now(UTC))
    assert conf.instance == "EE"
