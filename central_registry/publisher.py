"""Generating, signing and publishing the global configuration (pr-gconf; XROAD-REFERENCE.md §5).

Every generation turns the registry's current state into shared and private parameters, writes them under
``V3/<generation>/`` in the publication folder, then replaces the signed directory ``internalconf`` in one
atomic rename, so a downloader sees either the old or the new configuration and never a half-written one.
Older generations are kept for a while so that a download that read the previous directory still finds its
files.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from central_registry.admin.ha_status import record_generation
from central_registry.admin.trusted_anchors import published_anchors
from central_registry.admin.configuration_parts import uploaded_parts
from central_registry.admin.management_services import published_provider
from central_registry.store import RegistryStore
from security_server.edge.atomic_file import write_atomically
from security_server.core.errors import ConfigurationError
from security_server.core.globalconf import (
    CONFIGURATION_VERSION,
    MONITORING_FILE,
    MONITORING_PARAMETERS,
    PRIVATE_PARAMETERS,
    SHARED_PARAMETERS,
    AnchorSource,
    ApprovedCa,
    ApprovedTsa,
    ConfigurationAnchor,
    DirectoryEntry,
    ManagementService,
    PrivateParameters,
    build_configuration_anchor,
    build_monitoring_parameters,
    build_private_parameters,
    build_shared_parameters,
    build_signed_directory,
)
from security_server.core.globalconf.sharedparams import (
    CaInfo,
    ConfigurationSource,
    GlobalGroup,
    GlobalSettings,
    MemberClass,
    MemberInfo,
    OcspResponder,
    SecurityServerInfo,
    SharedParameters,
)
from security_server.core.signature import RSA_PSS_SHA512
from security_server.schemafiles import load_schema
from security_server.signer.pkcs11_key import signature_algorithm_for
from security_server.signer.softtoken_pin import LOGINS, key_password
from security_server.signer.token import TokenNotActive

DIRECTORY_NAME = "internalconf"
KEEP_GENERATIONS = 10
_GENERATION = re.compile(r"[0-9]{20}")
CERTIFICATE_PROFILE = "fedbus"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str, now: datetime) -> x509.Certificate:
    """A ten-year self-signed certificate for ``key`` (a file key, or a key in a token that signs it there: with
    RSA-PSS when the token signs PSS only)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]), False)
    )
    if signature_algorithm_for(key) is RSA_PSS_SHA512:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
        return builder.sign(key, hashes.SHA256(), rsa_padding=pss)
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class SelfSignedKey:
    """A registry key with a self-signed certificate: the configuration-signing key, or the TLS key."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_der(self) -> bytes:
        """The certificate in DER, as it goes into anchors and directories."""
        return _der(self.cert)

    @property
    def signature_algorithm_id(self) -> str:
        """The directory signature's algorithm: RSA-SHA512 (X-Road's default), or RSA-PSS-SHA512 for a key in a
        token configured with CKM_RSA_PKCS_PSS (central_registry/conf_signing_key.py)."""
        return signature_algorithm_for(self.key).uri

    def key_pem(self, secret: bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM: in clear, or encrypted under a token PIN's ``secret`` (the soft token's
        PBES2, security_server/signer/softtoken_pin.py)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.NoEncryption() if secret is None else serialization.BestAvailableEncryption(key_password(secret)))
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    @classmethod
    def create(cls, directory: Path, common_name: str, now: datetime, *, secret: bytes | None = None) -> SelfSignedKey:
        """Make a new key and self-signed certificate in ``directory`` (refused if one exists); the key file is
        encrypted under ``secret`` when one is given (a configuration-signing key of a token with a PIN)."""
        key_path, cert_path = directory / "key.pem", directory / "cert.pem"
        if key_path.exists():
            raise ConfigurationError(f"{directory} already holds a key")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        made = cls(key, self_signed_certificate(key, common_name, now))
        write_atomically(key_path, made.key_pem(secret), mode=0o600)
        write_atomically(cert_path, made.cert.public_bytes(serialization.Encoding.PEM))
        return made

    @classmethod
    def load(cls, directory: Path, *, token: Path | None = None) -> SelfSignedKey:
        """Load the key and certificate from ``directory``. A key file encrypted under a token PIN is read with the
        secret of the login of ``token`` (by default ``directory``) in this process; :class:`TokenNotActive`
        while that token is logged out (central_registry/conf_signing_key.py)."""
        try:
            pem = (directory / "key.pem").read_bytes()
            password = None
            if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem:
                login = LOGINS.get(token or directory)
                if login is None:
                    raise TokenNotActive(f"the key in {directory} is encrypted under the token PIN: log in first")
                password = key_password(login.secret)
            key = serialization.load_pem_private_key(pem, password=password)
            cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
        except (OSError, ValueError, TypeError) as err:
            raise ConfigurationError(f"cannot load the key in {directory}: {err}") from err
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"the key in {directory} is not an RSA key")
        return cls(key, cert)


# --- from registry state to parameters -------------------------------------------------------------------------


def _intermediates(store: RegistryStore, ca_name: str) -> tuple[CaInfo, ...]:
    """The intermediate CAs of an approved CA (central_registry/admin/trust_services.py), in the order added."""
    rows = store.db.query(
        "SELECT cert_der, ocsp_url, ocsp_cert_der FROM intermediate_cas WHERE ca_name = ? ORDER BY id", [ca_name])
    return tuple(
        CaInfo(bytes(r["cert_der"]),
               (OcspResponder(r["ocsp_url"], None if r["ocsp_cert_der"] is None else bytes(r["ocsp_cert_der"])),)
               if r["ocsp_url"] else ())
        for r in rows
    )


def shared_parameters(
    store: RegistryStore, source: ConfigurationSource | tuple[ConfigurationSource, ...]
) -> SharedParameters:
    """The shared parameters of the registry's current state (``source``: every node of a clustered registry)."""
    settings = store.settings()
    return SharedParameters(
        instance=settings.instance,
        global_settings=GlobalSettings(
            ocsp_freshness_seconds=settings.ocsp_freshness_seconds,
            member_classes=tuple(MemberClass(code, text) for code, text in store.member_classes().items()),
        ),
        sources=source if isinstance(source, tuple) else (source,),
        approved_cas=tuple(
            ApprovedCa(
                name=ca.name,
                top_ca=CaInfo(
                    ca.cert_der,
                    (OcspResponder(ca.ocsp_url, ca.ocsp_cert_der),) if ca.ocsp_url else (),
                ),
                certificate_profile=ca.profile,
                intermediates=_intermediates(store, ca.name),
                authentication_only=ca.authentication_only,
            )
            for ca in store.cas()
        ),
        approved_tsas=tuple(ApprovedTsa(tsa.name, tsa.url, tsa.cert_der) for tsa in store.tsas()),
        members=tuple(MemberInfo(m.id, m.name, m.subsystems) for m in store.members()),
        security_servers=tuple(
            SecurityServerInfo(s.id, s.address, s.auth_cert_hashes, s.clients) for s in store.security_servers()
        ),
        global_groups=tuple(GlobalGroup(g.id, g.description, g.members) for g in store.groups()),
    )


def private_parameters(store: RegistryStore, management: ManagementService) -> PrivateParameters:
    """The private parameters: where to send management requests, the timestamping interval, trusted anchors."""
    settings = store.settings()
    return PrivateParameters(
        instance=settings.instance,
        management_service=management,
        time_stamping_interval_seconds=settings.timestamping_interval_seconds,
        # Other instances' anchors (federation, central_registry/admin/trusted_anchors.py), as X-Road lists them.
        configuration_anchors=published_anchors(store),
    )


@dataclass(frozen=True, slots=True)
class Publication:
    """One generation: the signed directory and the files it lists, keyed by their ``Content-location``."""

    generation: str
    content_type: str
    directory: bytes
    files: dict[str, bytes]
    expires_at: datetime


class Publisher:
    """Builds a signed configuration from the store and publishes it in a folder that a web server serves."""

    def __init__(
        self,
        store: RegistryStore,
        folder: Path,
        signing_key: SelfSignedKey | x509.Certificate,
        *,
        public_url: str,
        management_url: str,
        management_cert_der: bytes,
        conf_signing_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.folder = folder
        self._key: SelfSignedKey | None = None
        self.signing_cert: x509.Certificate
        """The active signing key's certificate (known while the token is logged out too: the anchor lists it)."""
        self.logged_out = False
        """The registry's token is logged out (through its API, or it started so: its key file is encrypted under
        the PIN and no one logged in yet): nothing is signed until it logs in."""
        if isinstance(signing_key, x509.Certificate):
            self.signing_cert, self.logged_out = signing_key, True
        else:
            self.signing_key = signing_key
        self.conf_signing_dir = conf_signing_dir
        """The soft token's folder, whose inactive signing keys (``keys/*/cert.pem``) the anchor and the shared
        parameters list beside the active one (central_registry/admin/signing_keys.py); None: only the active."""
        self.public_url = public_url.rstrip("/")
        self.management_url = management_url
        self.management_cert_der = management_cert_der

    @property
    def signing_key(self) -> SelfSignedKey:
        """The active signing key; :class:`TokenNotActive` while its encrypted key is not unlocked."""
        if self._key is None:
            raise TokenNotActive("the registry's token is logged out: its signing key is not unlocked")
        return self._key

    @signing_key.setter
    def signing_key(self, key: SelfSignedKey) -> None:
        self._key, self.signing_cert = key, key.cert

    def forget_key(self) -> None:
        """Drop the decrypted signing key (a logout of a token with a PIN); its certificate stays known."""
        self._key, self.logged_out = None, True

    def sources(self) -> tuple[tuple[str, bytes], ...]:
        """The configuration sources (directory URL, signing certificate DER): this registry, and the other nodes
        of a clustered registry (issue 19), so that the anchor lists every node and clients fail over."""
        own = (f"{self.public_url}/{DIRECTORY_NAME}", _der(self.signing_cert))
        nodes = self.store.nodes()
        return tuple(nodes) if own in nodes else (own, *nodes)

    def verification_certs(self, url: str, cert_der: bytes) -> tuple[bytes, ...]:
        """The certificates a source's configuration may be verified with: for this registry's own source, its
        active signing certificate and those of its other signing keys; for another node, its own."""
        own = (f"{self.public_url}/{DIRECTORY_NAME}", _der(self.signing_cert))
        if (url, cert_der) != own or self.conf_signing_dir is None:
            return (cert_der,)
        keys = self.conf_signing_dir / "keys"
        others = sorted(p / "cert.pem" for p in keys.glob("[!.]*") if (p / "cert.pem").is_file()) if keys.is_dir() else []
        return (cert_der, *(_der(x509.load_pem_x509_certificate(p.read_bytes())) for p in others))

    def management_service(self) -> ManagementService:
        """Where security servers send registration requests; the registry itself answers them."""
        # X-Road names a management-service provider subsystem; the registry answers directly, so it names the one
        # an administrator chose, else the instance's reserved identity (central_registry/admin/management_services.py).
        return ManagementService(self.management_url, published_provider(self.store), self.management_cert_der)

    def build(self, now: datetime) -> Publication:
        """Generate and sign one configuration at ``now``."""
        settings = self.store.settings()
        generation = now.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S%f")
        if self.logged_out:
            raise TokenNotActive("the registry's token is logged out: the configuration is not signed")
        sources = tuple(ConfigurationSource(url, self.verification_certs(url, cert)) for url, cert in self.sources())
        shared = build_shared_parameters(shared_parameters(self.store, sources), load_schema("shared-parameters.xsd"))
        private = build_private_parameters(
            private_parameters(self.store, self.management_service()), load_schema("private-parameters.xsd")
        )
        base = f"/V{CONFIGURATION_VERSION}/{generation}"
        files = {f"{base}/private-params.xml": private, f"{base}/shared-params.xml": shared}
        entries = [
            DirectoryEntry.for_content(PRIVATE_PARAMETERS, settings.instance, f"{base}/private-params.xml", private,
                                       file_name="private-params.xml"),
            DirectoryEntry.for_content(SHARED_PARAMETERS, settings.instance, f"{base}/shared-params.xml", shared,
                                       file_name="shared-params.xml"),
        ]
        if settings.monitoring_client is not None:
            # The optional monitoring part (UG-CS §14), only once a central monitoring client is named.
            monitoring = build_monitoring_parameters(settings.monitoring_client)
            files[f"{base}/{MONITORING_FILE}"] = monitoring
            entries.append(DirectoryEntry.for_content(
                MONITORING_PARAMETERS, settings.instance, f"{base}/{MONITORING_FILE}", monitoring, file_name=MONITORING_FILE
            ))
        for part in uploaded_parts(self.store):
            # An optional part an administrator uploaded (central_registry/admin/configuration_parts.py).
            location = f"{base}/{part.file_name}"
            files[location] = part.data
            entries.append(DirectoryEntry.for_content(part.content_identifier, settings.instance, location, part.data,
                                                      file_name=part.file_name))
        expires_at = (now + timedelta(seconds=settings.conf_expire_seconds)).replace(microsecond=0)
        content_type, directory = build_signed_directory(
            entries, expires_at, CONFIGURATION_VERSION, self.signing_key.key, self.signing_key.cert_der,
            signature_algorithm_id=self.signing_key.signature_algorithm_id,
        )
        return Publication(generation, content_type, directory, files, expires_at)

    def publish(self, now: datetime) -> Publication:
        """Build and publish atomically: files first, then the directory that points to them; prune old ones."""
        publication = self.build(now)
        for location, content in publication.files.items():
            target = self.folder / location.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, content)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / DIRECTORY_NAME, publication.directory)
        self._prune()
        record_generation(self.store, f"{self.public_url}/{DIRECTORY_NAME}", now)
        return publication

    def _prune(self) -> None:
        versions = self.folder / f"V{CONFIGURATION_VERSION}"
        generations = sorted(p for p in versions.iterdir() if _GENERATION.fullmatch(p.name))
        for old in generations[:-KEEP_GENERATIONS]:
            shutil.rmtree(old, ignore_errors=True)

    def anchor(self, now: datetime) -> bytes:
        """The configuration anchor XML that security servers are initialised with (pr-gconf Annex E)."""
        anchor = ConfigurationAnchor(
            self.store.settings().instance,
            tuple(AnchorSource(url, self.verification_certs(url, cert)) for url, cert in self.sources()),
            generated_at=now.replace(microsecond=0),
        )
        return build_configuration_anchor(anchor, load_schema("configuration-anchor.xsd"))
