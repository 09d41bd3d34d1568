"""The development certificate authority: a root CA that issues auth and signing certificates from CSRs.

Production installs approve an outside CA; development, tests and the demo use this one. Everything lives in
one directory:

================  =================================================================================
``ca-key.pem``    the root key, PKCS#8 PEM, mode 0600
``ca-cert.pem``   the self-signed root certificate (cA, keyCertSign, cRLSign)
``ocsp-*.pem``    optional delegated OCSP-signing key and certificate (id-kp-OCSPSigning, ocsp-nocheck)
``tsa-*.pem``     optional TSA key and certificate (critical extendedKeyUsage id-kp-timeStamping)
``index.json``    the CA's name, OCSP URL and every certificate it issued, with revocations;
                  always replaced whole (temporary file, then ``os.replace``)
================  =================================================================================

Certificates are issued only from a PKCS#10 request whose signature verifies and whose subject fits the CA's
certificate profile (security_server/core/certprofile.py), chosen when the CA is made (``profile`` in
``index.json``; an index without one is fedbus's profile): under fedbus's the issued subject is rebuilt from the
identity read, under one of X-Road's (EJBCA, EE, FI) the request's subject is issued as it is, as a CA of that
profile does. Serial numbers are random (159 bits, RFC 5280 §4.1.2.2 allows up to 20 octets) and checked unique
against the index.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from central_registry.trust.serials import SerialSource, ca_serial
from security_server.edge.atomic_file import write_atomically
from security_server.core.certprofile import (
    FEDBUS,
    FEDBUS_PROFILE,
    auth_subject,
    check_auth_csr_subject,
    check_signing_csr_subject,
    is_known_profile,
    member_name,
    profile_named,
    signing_subject,
)
from security_server.core.errors import BadRequest, CertValidation, ConfigurationError

CA_KEY = "ca-key.pem"
CA_CERT = "ca-cert.pem"
OCSP_KEY = "ocsp-key.pem"
OCSP_CERT = "ocsp-cert.pem"
TSA_KEY = "tsa-key.pem"
TSA_CERT = "tsa-cert.pem"
INDEX = "index.json"
INDEX_FORMAT = 1

BACKDATE = timedelta(minutes=5)
"""notBefore is set this far before ``now`` so a peer whose clock is a little behind accepts a new certificate."""

ANY_INSTANCE = "fedbus-ca"
"""The instance the CA reads an EE-profile request under: that profile does not write it, and the CA checks the
subject's shape only (the registry binds the member when the certificate is registered)."""

MIN_RSA_BITS = 2048
ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class CertKind(enum.StrEnum):
    """What an issued certificate is for."""

    AUTH = "auth"
    SIGN = "sign"
    OCSP = "ocsp"
    TSA = "tsa"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return moment


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """One certificate in the CA's index, with its revocation if any."""

    serial: int
    kind: CertKind
    subject: str
    not_before: datetime
    not_after: datetime
    cert_pem: bytes
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        if self.serial <= 0:
            raise ValueError("serial numbers are positive")
        if (self.revoked_at is None) != (self.reason is None):
            raise ValueError("a revocation has both a time and a reason")

    @property
    def revoked(self) -> bool:
        """Whether the certificate has been revoked."""
        return self.revoked_at is not None

    def certificate(self) -> x509.Certificate:
        """The certificate itself."""
        return x509.load_pem_x509_certificate(self.cert_pem)

    def to_json(self) -> dict[str, Any]:
        """The index entry as JSON-ready values (serial in upper-case hex, as ``openssl`` prints it)."""
        return {
            "serial": f"{self.serial:X}",
            "kind": str(self.kind),
            "subject": self.subject,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "status": "revoked" if self.revoked else "valid",
            "revoked_at": _iso(self.revoked_at) if self.revoked_at else None,
            "reason": self.reason.value if self.reason else None,
            "cert_pem": self.cert_pem.decode("ascii"),
        }

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> IssuedCert:
        """Read an index entry written by :meth:`to_json`."""
        revoked_at = entry.get("revoked_at")
        reason = entry.get("reason")
        return cls(
            serial=int(entry["serial"], 16),
            kind=CertKind(entry["kind"]),
            subject=str(entry["subject"]),
            not_before=_parse_time(entry["not_before"]),
            not_after=_parse_time(entry["not_after"]),
            cert_pem=str(entry["cert_pem"]).encode("ascii"),
            revoked_at=_parse_time(revoked_at) if revoked_at else None,
            reason=x509.ReasonFlags(reason) if reason else None,
        )


@dataclass(frozen=True, slots=True)
class CaState:
    """A snapshot of the CA that the OCSP responder answers from."""

    ca_cert: x509.Certificate
    ca_key: CertificateIssuerPrivateKeyTypes
    issued: Mapping[int, IssuedCert] = field(default_factory=dict)
    responder_cert: x509.Certificate | None = None
    responder_key: CertificateIssuerPrivateKeyTypes | None = None

    def __post_init__(self) -> None:
        if (self.responder_cert is None) != (self.responder_key is None):
            raise ValueError("a delegated responder needs both its certificate and its key")
        object.__setattr__(self, "issued", MappingProxyType(dict(self.issued)))


def _write_key(path: Path, key: CertificateIssuerPrivateKeyTypes) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomically(path, pem, 0o600)


def _read_key(path: Path) -> CertificateIssuerPrivateKeyTypes:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise ConfigurationError(f"cannot read key {path}: {err}") from err
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigurationError(f"key {path} is neither RSA nor EC")
    return key


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigurationError(f"cannot read certificate {path}: {err}") from err


def _check_request_key(csr: x509.CertificateSigningRequest) -> None:
    """Refuse weak or unusual keys: RSA of at least 2048 bits or EC on P-256/384/521."""
    try:
        key = csr.public_key()
    except (ValueError, TypeError) as err:
        raise CertValidation("certificate request has an unreadable key", reason=str(err)) from err
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertValidation(f"certificate request has an RSA key under {MIN_RSA_BITS} bits")
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ALLOWED_CURVES):
        return
    raise CertValidation("certificate request key must be RSA (2048+ bits) or EC P-256/P-384/P-521")


def _decoded(subject: x509.Name) -> x509.Name:
    """``subject``, or :class:`CertValidation` when it cannot be decoded (cryptography decodes lazily)."""
    try:
        subject.rfc4514_string()
    except ValueError as err:
        raise CertValidation("certificate request subject cannot be decoded", reason=str(err)) from err
    return subject


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Read a PEM or DER PKCS#10 request; :class:`CertValidation` if it is neither or its signature is bad."""
    try:
        csr = (
            x509.load_pem_x509_csr(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_csr(data)
        )
    except ValueError as err:
        raise CertValidation("certificate request cannot be decoded", reason=str(err)) from err
    try:
        valid = csr.is_signature_valid
    except (ValueError, TypeError) as err:
        raise CertValidation("certificate request signature cannot be checked", reason=str(err)) from err
    if not valid:
        raise CertValidation("certificate request signature does not verify (proof of possession failed)")
    return csr


class DevelopmentCA:
    """A root CA persisted in a directory; see the module docstring for the files."""

    def __init__(self, directory: Path, key: CertificateIssuerPrivateKeyTypes, cert: x509.Certificate) -> None:
        self.directory = directory
        self._key = key
        self._cert = cert
        self.shared_serials: SerialSource | None = None
        """On a clustered registry, the shared sequence its serials come from (central_registry/trust/serials.py)."""

    # --- creating and opening ---------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        directory: Path,
        name: str,
        now: datetime,
        *,
        key_size: int = 3072,
        validity_days: int = 3650,
        ocsp_url: str | None = None,
        profile: str = FEDBUS_PROFILE,
    ) -> DevelopmentCA:
        """Create a new root CA in ``directory`` (which must not hold one already) issuing under certificate
        ``profile`` (a short name or X-Road's class name; kept as X-Road's class name for X-Road's profiles)."""
        if not name or len(name) > 64:
            raise BadRequest("CA name must be 1 to 64 characters")
        if not is_known_profile(profile):
            raise BadRequest(f"unknown certificate profile {profile!r}")
        chosen = profile_named(profile)
        kept = chosen.xroad_class or chosen.name
        if key_size < MIN_RSA_BITS:
            raise BadRequest(f"CA key must have at least {MIN_RSA_BITS} bits")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (directory / CA_KEY).exists() or (directory / INDEX).exists():
            raise ConfigurationError(f"{directory} already holds a CA")
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(directory / CA_KEY, key)
        write_atomically(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
        ca = cls(directory, key, cert)
        ca._write_index(
            {"format": INDEX_FORMAT, "name": name, "ocsp_url": ocsp_url, "profile": kept, "certificates": []}
        )
        return ca

    @classmethod
    def open(cls, directory: Path, *, shared_serials: SerialSource | None = None) -> DevelopmentCA:
        """Open the CA in ``directory``; :class:`ConfigurationError` if there is none. With ``shared_serials`` (a
        clustered registry) every serial it issues comes from that shared sequence (:func:`ca_serial`)."""
        if not (directory / CA_KEY).is_file() or not (directory / INDEX).is_file():
            raise ConfigurationError(f"{directory} holds no CA (run `fedbus registry ca init` first)")
        ca = cls(directory, _read_key(directory / CA_KEY), _read_cert(directory / CA_CERT))
        ca.shared_serials = shared_serials
        return ca

    # --- the index ------------------------------------------------------------------------------------

    def _read_index(self) -> dict[str, Any]:
        path = self.directory / INDEX
        try:
            index = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigurationError(f"cannot read CA index {path}: {err}") from err
        if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
            raise ConfigurationError(f"CA index {path} has an unknown format")
        return index

    def _write_index(self, index: Mapping[str, Any]) -> None:
        data = json.dumps(index, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        write_atomically(self.directory / INDEX, data)

    def issued(self) -> list[IssuedCert]:
        """Every certificate this CA issued, in issue order."""
        try:
            return [IssuedCert.from_json(entry) for entry in self._read_index()["certificates"]]
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigurationError(f"CA index in {self.directory} is corrupt: {err}") from err

    def _record(self, cert: x509.Certificate, kind: CertKind) -> None:
        index = self._read_index()
        entry = IssuedCert(
            serial=cert.serial_number,
            kind=kind,
            subject=cert.subject.rfc4514_string(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        )
        index["certificates"].append(entry.to_json())
        self._write_index(index)

    # --- properties ---------------------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        """The root certificate."""
        return self._cert

    @property
    def name(self) -> str:
        """The CA's name (its certificate's CN)."""
        return str(self._read_index().get("name", ""))

    @property
    def profile(self) -> str:
        """The certificate profile the CA issues under, as an approved CA names it (``fedbus`` or X-Road's class)."""
        return str(self._read_index().get("profile") or FEDBUS_PROFILE)

    @property
    def ocsp_url(self) -> str | None:
        """The OCSP URL written into issued certificates' authorityInfoAccess, if configured."""
        url = self._read_index().get("ocsp_url")
        return str(url) if url else None

    # --- issuing --------------------------------------------------------------------------------------

    def _new_serial(self) -> int:
        taken = {entry.serial for entry in self.issued()} | {self._cert.serial_number}
        while True:
            serial = x509.random_serial_number() if self.shared_serials is None else ca_serial(self.shared_serials.next())
            if serial not in taken:
                return serial

    def _builder(
        self, subject: x509.Name, public_key: Any, now: datetime, validity_days: int
    ) -> x509.CertificateBuilder:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(public_key)
            .serial_number(self._new_serial())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        url = self.ocsp_url
        if url:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url))]
                ),
                critical=False,
            )
        return builder

    def issue(
        self, csr_data: bytes, kind: CertKind, now: datetime, *, validity_days: int = 730
    ) -> x509.Certificate:
        """Issue an auth or signing certificate from a PKCS#10 request (PEM or DER).

        The request must be signed by its own key and its subject must fit the CA's certificate profile; under
        fedbus's the issued subject is rebuilt from the identity read from it, so the encoding is always the
        profile's; under X-Road's the request's subject is issued unchanged.
        """
        csr = load_csr(csr_data)
        _check_request_key(csr)
        profile = profile_named(self.profile)
        subject = csr.subject
        if kind is CertKind.AUTH:
            if profile is FEDBUS:
                server = check_auth_csr_subject(csr)
                subject = auth_subject(server, member_name(csr.subject))
            else:
                profile.auth_names(_decoded(subject))
            usage = _key_usage(digital_signature=True, key_encipherment=True)
            eku: list[x509.ObjectIdentifier] | None = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        elif kind is CertKind.SIGN:
            if profile is FEDBUS:
                member = check_signing_csr_subject(csr)
                subject = signing_subject(member, member_name(csr.subject))
            else:
                profile.member_from_signing_subject(_decoded(subject), ANY_INSTANCE)
            usage = _key_usage(digital_signature=True, content_commitment=True)
            eku = None
        else:
            raise BadRequest(f"the CA issues only auth and sign certificates from requests, not {kind}")
        builder = self._builder(subject, csr.public_key(), now, validity_days).add_extension(usage, critical=True)
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        self._record(cert, kind)
        return cert

    def _issue_service_cert(
        self,
        kind: CertKind,
        common_name: str,
        now: datetime,
        validity_days: int,
        key_path: str,
        cert_path: str,
    ) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, (self.name or "fedbus")[:64]),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        builder = self._builder(subject, key.public_key(), now, validity_days)
        if kind is CertKind.OCSP:
            builder = (
                builder.add_extension(_key_usage(digital_signature=True), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
                .add_extension(x509.OCSPNoCheck(), critical=False)
            )
        else:
            # RFC 3161 §2.3: the TSA certificate has exactly one, critical, extendedKeyUsage: timeStamping.
            builder = builder.add_extension(
                _key_usage(digital_signature=True, content_commitment=True), critical=True
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        cert = builder.sign(self._key, hashes.SHA256())
        _write_key(self.directory / key_path, key)
        write_atomically(self.directory / cert_path, cert.public_bytes(serialization.Encoding.PEM))
        self._record(cert, kind)
        return cert

    def issue_ocsp_cert(self, now: datetime, *, validity_days: int = 365) -> x509.Certificate:
        """Make (or replace) the delegated OCSP-signing key and certificate the responder signs with."""
        return self._issue_service_cert(
            CertKind.OCSP, f"{self.name} OCSP responder"[:64], now, validity_days, OCSP_KEY, OCSP_CERT
        )

    def issue_tsa_cert(self, now: datetime, *, validity_days: int = 1825) -> x509.Certificate:
        """Make (or replace) the TSA key and certificate (critical extendedKeyUsage id-kp-timeStamping)."""
        return self._issue_service_cert(
            CertKind.TSA, f"{self.name} TSA"[:64], now, validity_days, TSA_KEY, TSA_CERT
        )

    def tsa_credentials(self) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
        """The TSA key and certificate; :class:`ConfigurationError` if none was made."""
        if not (self.directory / TSA_KEY).is_file():
            raise ConfigurationError(f"{self.directory} has no TSA certificate (run `fedbus registry ca tsa-cert`)")
        return _read_key(self.directory / TSA_KEY), _read_cert(self.directory / TSA_CERT)

    # --- revocation and state ---------------------------------------------------------------------------

    def revoke(self, serial: int, reason: x509.ReasonFlags, now: datetime) -> IssuedCert:
        """Record a revocation; the OCSP responder answers "revoked" with this time and reason from then on."""
        if reason is x509.ReasonFlags.remove_from_crl:
            raise BadRequest("removeFromCRL is not a revocation reason")
        index = self._read_index()
        for position, entry in enumerate(index["certificates"]):
            issued = IssuedCert.from_json(entry)
            if issued.serial != serial:
                continue
            if issued.revoked:
                raise BadRequest(f"certificate {serial:X} is already revoked")
            revoked = IssuedCert(
                serial=issued.serial,
                kind=issued.kind,
                subject=issued.subject,
                not_before=issued.not_before,
                not_after=issued.not_after,
                cert_pem=issued.cert_pem,
                revoked_at=now.replace(microsecond=0),
                reason=reason,
            )
            index["certificates"][position] = revoked.to_json()
            self._write_index(index)
            return revoked
        raise BadRequest(f"this CA issued no certificate with serial {serial:X}")

    def state(self) -> CaState:
        """A snapshot for the OCSP responder, read from disk now (so revocations made by the CLI show at once)."""
        responder_cert = responder_key = None
        if (self.directory / OCSP_KEY).is_file():
            responder_key = _read_key(self.directory / OCSP_KEY)
            responder_cert = _read_cert(self.directory / OCSP_CERT)
        issued = {entry.serial: entry for entry in self.issued()}
        return CaState(self._cert, self._key, issued, responder_cert, responder_key)


def _key_usage(
    *, digital_signature: bool = False, content_commitment: bool = False, key_encipherment: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )

