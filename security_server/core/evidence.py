"""Offline verification of a logged message's evidence: the container, and who signed it, when, under what trust.

An auditor holds an ASiC-E container (``core.asic``) and the *verification configuration*: the shared
parameters of the global configuration, which name the approved CAs (with their OCSP responders and
certificate profiles) and the approved TSAs. That is what X-Road's ``asicverifier`` takes
(``verificationconf/<instance>/shared-params.xml`` plus ``verificationconf/instance-identifier``; SIGDOC §3),
and :func:`read_verification_conf` reads the same layout, so X-Road's own configuration in the vectors works.

:func:`verify_evidence` does what X-Road's ``AsicContainerVerifier`` does, and says each step in words:

1. the container (``core.asic.verify_container``): entries, references, the timestamp's hash chain and
   imprint, the RFC 3161 token (CMS signature, signer an approved TSA: ``core.timestamp``), then the XAdES
   signature with its hash chain;
2. the signer named by the message: the client of a request, the service provider of a response (SOAP: a
   response's body element ends in ``Response``; REST: a response part starts with its status code);
3. the signing certificate chains to an approved CA and was valid at the signing time;
4. an OCSP response in the signature, from the CA or a responder it authorised, said *good* and was fresh at
   the signing time (``ocspFreshnessSeconds`` of the configuration);
5. the certificate belongs to the named member, read with the CA's certificate profile (fedbus's own, or
   X-Road's EJBCA, Estonian or Finnish ``FiVRK`` one, the last used by X-Road's test CA: core/certprofile.py).

A SOAP record logged without its body (``message-body-logging`` off: core/body_logging.py) no longer matches its
signed digest: every step above is still made, over the digest the signature states, the message check is reported
``skipped`` and the verdict is ``valid_without_message``, never ``valid`` (core/unlogged_message.py).

This module is pure: ``now`` is an argument (used only to refuse timestamps from the future).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from security_server.core import certprofile, digests
from security_server.core.asic import (
    VALID,
    VALID_WITHOUT_MESSAGE,
    CheckStatus,
    ContainerCheck,
    ContainerVerdict,
    ZipLimits,
    error_code,
    verify_container,
)
from security_server.core.body_logging import is_soap_without_body, with_stand_in_body
from security_server.core.errors import (
    BusError,
    CertValidation,
    IncorrectCertificate,
    IncorrectValidationInfo,
    InvalidClientIdentifier,
    InvalidConfiguration,
    MalformedSignature,
)
from security_server.core.globalconf.sharedparams import SharedParameters, parse_shared_parameters
from security_server.core.identifiers import ClientId
from security_server.core.soap import parse_soap
from security_server.core.timestamp import read_timestamp_token, verify_timestamp_token
from security_server.core.trust import (
    CERT_DECODE_ERRORS,
    DEFAULT_CLOCK_SKEW_SECONDS,
    check_ocsp_response,
    describe,
    verify_cert_path,
)

FEDBUS_PROFILE = certprofile.FEDBUS_PROFILE
"""The certificate profile name the registry publishes for its CAs (``core.certprofile``)."""
FIVRK_PROFILE = "ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider"
"""X-Road's FiVRK profile (core/xroad_certprofiles.py), the one X-Road's test CA uses."""

INSTANCE_IDENTIFIER_FILE = "instance-identifier"
SHARED_PARAMS_FILE = "shared-params.xml"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest ``message.xml`` read to find the signer (the message itself was already digested in full)."""

_IMPRINT_NAMES = {"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512"}
_STATUS_LINE = re.compile(rb"[1-9][0-9]{2}\r?\n")


# --- the verification configuration ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerificationConf:
    """What a verifier trusts: approved CA and TSA certificates, OCSP responders, profiles and freshness."""

    instance: str
    approved_roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    ocsp_responders: tuple[x509.Certificate, ...]
    tsa_certs: tuple[x509.Certificate, ...]
    ocsp_freshness_seconds: int
    profiles: tuple[tuple[bytes, str], ...] = field(repr=False)
    """(DER subject of an approved top or intermediate CA, its certificate profile name)."""

    def profile_for(self, issuer: x509.Name) -> str | None:
        """The certificate profile of the approved CA whose certificate has subject ``issuer``."""
        key = issuer.public_bytes()
        return next((profile for subject, profile in self.profiles if subject == key), None)


def _load(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except CERT_DECODE_ERRORS as err:
        raise InvalidConfiguration(f"verification configuration holds a broken {what} certificate") from err


def verification_conf(shared: Iterable[SharedParameters], instance: str) -> VerificationConf:
    """Join the shared parameters of one or more instances into one :class:`VerificationConf` for ``instance``.

    ``ocspFreshnessSeconds`` is taken from ``instance``'s own parameters.
    """
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    responders: list[x509.Certificate] = []
    tsas: list[x509.Certificate] = []
    profiles: list[tuple[bytes, str]] = []
    freshness: int | None = None
    for params in shared:
        if params.instance == instance:
            freshness = params.global_settings.ocsp_freshness_seconds
        for ca in params.approved_cas:
            top = _load(ca.top_ca.cert, "CA")
            roots.append(top)
            profiles.append((top.subject.public_bytes(), ca.certificate_profile))
            for info in ca.intermediates:
                intermediate = _load(info.cert, "intermediate CA")
                intermediates.append(intermediate)
                profiles.append((intermediate.subject.public_bytes(), ca.certificate_profile))
            for info in ca.ca_infos():
                responders += [_load(r.cert, "OCSP responder") for r in info.ocsp_responders if r.cert is not None]
        tsas += [_load(tsa.cert, "TSA") for tsa in params.approved_tsas]
    if freshness is None:
        raise InvalidConfiguration(f"verification configuration has no shared parameters for instance {instance}")
    return VerificationConf(
        instance=instance,
        approved_roots=tuple(roots),
        intermediates=tuple(intermediates),
        ocsp_responders=tuple(responders),
        tsa_certs=tuple(tsas),
        ocsp_freshness_seconds=freshness,
        profiles=tuple(profiles),
    )


def read_verification_conf(files: Mapping[str, bytes]) -> VerificationConf:
    """Read a verification configuration in X-Road's layout from ``{relative path: bytes}``.

    ``instance-identifier`` names the verifier's own instance; each ``<instance>/shared-params.xml`` is the
    shared parameters of one instance (a leading ``verificationconf/`` folder is accepted too).
    """
    normalised = {name.removeprefix("verificationconf/"): data for name, data in files.items()}
    raw_instance = normalised.get(INSTANCE_IDENTIFIER_FILE)
    if raw_instance is None:
        raise InvalidConfiguration(f"verification configuration has no {INSTANCE_IDENTIFIER_FILE} file")
    try:
        instance = raw_instance.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise InvalidConfiguration(f"{INSTANCE_IDENTIFIER_FILE} is not UTF-8") from err
    shared = []
    for name, data in sorted(normalised.items()):
        parts = name.split("/")
        if len(parts) == 2 and parts[1] == SHARED_PARAMS_FILE:
            params = parse_shared_parameters(data)
            if params.instance != parts[0]:
                raise InvalidConfiguration(f"{name} holds the parameters of instance {params.instance}")
            shared.append(params)
    return verification_conf(shared, instance)


def verification_conf_files(shared_params_xml: bytes, instance: str) -> dict[str, bytes]:
    """The files of a verification configuration for ``instance`` (X-Road's layout), plus PEM copies.

    Besides ``instance-identifier`` and ``<instance>/shared-params.xml`` (what X-Road's ``asicverifier`` and
    :func:`read_verification_conf` read), ``ca.pem``, ``ocsp.pem`` and ``tsa.pem`` hold the approved CA, OCSP
    responder and TSA certificates for independent tools (``openssl ts -verify -CAfile``, ``xmlsec1
    --trusted-pem``). Raises :class:`InvalidConfiguration` if the parameters are not ``instance``'s.
    """
    params = parse_shared_parameters(shared_params_xml)
    if params.instance != instance:
        raise InvalidConfiguration(f"shared parameters of {params.instance}, not of {instance}")
    conf = verification_conf([params], instance)

    def pem(certs: Sequence[x509.Certificate]) -> bytes:
        return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)

    return {
        INSTANCE_IDENTIFIER_FILE: instance.encode("utf-8"),
        f"{instance}/{SHARED_PARAMS_FILE}": shared_params_xml,
        "ca.pem": pem(conf.approved_roots + conf.intermediates),
        "ocsp.pem": pem(conf.ocsp_responders),
        "tsa.pem": pem(conf.tsa_certs),
    }


# --- who signed: the message names its sender ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageSigner:
    """Whom a logged message names as its signer, and whether it is a response."""

    client: ClientId
    response: bool
    kind: str  # "SOAP" or "REST"


def message_signer(message: bytes) -> MessageSigner:
    """The party that must have signed ``message`` (X-Road ``AsicContainerVerifier.getSigner``).

    A SOAP request is signed by its ``client``, a SOAP response (body element ending in ``Response``, or
    carrying ``requestHash``) by the service's provider. A REST message part (pr-rest, protocol-examples §11.3)
    is a response when it starts with a status code; the signer is then the provider named in
    ``x-road-service``, else the client in ``x-road-client``. Raises :class:`MalformedSignature`.
    """
    if message.lstrip()[:1] == b"<":
        # Logged without its body (core/body_logging.py): its header read with a stand-in body element, and a
        # response known by its requestHash header alone.
        without_body = is_soap_without_body(message)
        try:
            readable = with_stand_in_body(message) if without_body else message
            parsed = parse_soap(readable, "text/xml", max_bytes=MAX_MESSAGE_BYTES, is_response=True)
        except BusError as err:
            raise MalformedSignature("message.xml is not an X-Road message", reason=f"message.xml: {err.reason}") from err
        if parsed.header is None or parsed.wrapper is None:
            raise MalformedSignature("message.xml is a fault without X-Road headers: no signer named")
        named_response = not without_body and parsed.wrapper.localname.endswith("Response")
        response = named_response or parsed.header.request_hash is not None
        client = parsed.header.service.client if response else parsed.header.client
        return MessageSigner(client, response, "SOAP")
    return _rest_signer(message)


def _rest_signer(message: bytes) -> MessageSigner:
    response = _STATUS_LINE.match(message) is not None
    wanted = "x-road-service" if response else "x-road-client"
    head = message.split(b"\r\n\r\n", 1)[0][:MAX_MESSAGE_BYTES]
    for line in re.split(rb"\r?\n", head):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == wanted.encode("ascii"):
            try:
                parts = value.strip().decode("utf-8").split("/")
                if response:
                    # INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/VERSION]: REST services are a subsystem's (pr-rest §4)
                    parts = parts[:4] if len(parts) >= 5 else parts[:3]
                return MessageSigner(ClientId.parse_path("/".join(parts)), response, "REST")
            except (UnicodeDecodeError, InvalidClientIdentifier) as err:
                raise MalformedSignature(f"REST message names no valid {wanted}") from err
    raise MalformedSignature("message.xml is neither SOAP nor a REST message part naming its signer")


def member_from_certificate(cert: x509.Certificate, profile: str | None, instance: str | None = None) -> ClientId:
    """The member a signing certificate belongs to under its CA's certificate ``profile`` (core/certprofile.py: fedbus's
    own or X-Road's, by name or Java class); ``instance`` is the named member's, for profiles that do not write it
    (X-Road's Estonian one). :class:`CertValidation` when the certificate does not fit or the profile is unknown."""
    if profile is None or not certprofile.is_known_profile(profile):
        raise CertValidation(
            "the certificate's CA uses a certificate profile this verifier does not know", reason=repr(profile)
        )
    return certprofile.member_from_signing_cert_as(cert, profile, instance or "")


# --- the whole verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidenceReport:
    """The verdict on a container with every check made; ``code`` is ``valid``, ``valid_without_message`` (a SOAP
    record logged without its body: the message check skipped, every other check passed) or the first failure's code."""

    code: str
    checks: tuple[ContainerCheck, ...]
    container: ContainerVerdict
    signer: MessageSigner | None = None
    error: BusError | None = None

    @property
    def ok(self) -> bool:
        """True when every check passed and none was skipped."""
        return self.error is None and all(check.status is CheckStatus.PASSED for check in self.checks)


def _timestamp_check(conf: VerificationConf, now: datetime, skew_seconds: float) -> Callable[[bytes, bytes], None]:
    def check(token: bytes, stamped: bytes) -> None:
        info = read_timestamp_token(token)
        algorithm = digests.lookup_name(_IMPRINT_NAMES[info.hash_algorithm])
        if algorithm is None:
            raise IncorrectValidationInfo(f"time-stamp token uses imprint algorithm {info.hash_algorithm}")
        # The token's CMS signature, ESS signing certificate, and signer: an approved TSA (or issued by one).
        verify_timestamp_token(token, algorithm.digest(stamped), conf.tsa_certs, now, skew_seconds=skew_seconds)

    return check


def verify_evidence(
    data: bytes,
    conf: VerificationConf,
    now: datetime,
    *,
    strict: bool = True,
    require_timestamp: bool = True,
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
    limits: ZipLimits = ZipLimits(),
) -> EvidenceReport:
    """Verify a container against ``conf`` as X-Road's asicverifier does, and report every step.

    ``strict`` refuses container entries that no signature or timestamp covers (X-Road ignores them; pass
    False for exactly its verdicts).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    verdict = verify_container(
        data,
        verify_timestamp=_timestamp_check(conf, now, skew_seconds),
        require_timestamp=require_timestamp,
        allow_extra_entries=not strict,
        limits=limits,
    )
    checks = list(verdict.checks)
    if not verdict.ok or verdict.signature is None or verdict.message is None:
        return EvidenceReport(verdict.code, tuple(checks), verdict, error=verdict.error)
    signature = verdict.signature

    def failed(name: str, err: BusError, signer: MessageSigner | None = None) -> EvidenceReport:
        said = err.message if err.reason == err.message else f"{err.message}: {err.reason}"
        checks.append(ContainerCheck(name, CheckStatus.FAILED, f"{error_code(err)}: {said}"))
        return EvidenceReport(error_code(err), tuple(checks), verdict, signer, err)

    try:
        signer = message_signer(verdict.message)
    except BusError as err:
        return failed("signer", err)
    role = "provider of the service (response)" if signer.response else "client (request)"
    checks.append(ContainerCheck("signer", CheckStatus.PASSED, f"{signer.kind} message names {signer.client} as the {role}"))

    cert = signature.signing_cert
    at = signature.signing_time
    try:
        path = verify_cert_path(cert, conf.intermediates + signature.extra_certs, conf.approved_roots, at)
    except BusError as err:
        return failed("certificate", err, signer)
    checks.append(
        ContainerCheck(
            "certificate",
            CheckStatus.PASSED,
            f"{describe(cert)} chains to approved CA {describe(path[-1])}, valid at signing time {at.isoformat()}",
        )
    )

    issuer = path[1] if len(path) > 1 else path[0]
    ocsp_error: BusError | None = None
    for response in signature.ocsp_responses:
        try:
            status = check_ocsp_response(
                response,
                cert,
                issuer,
                at,
                freshness_seconds=conf.ocsp_freshness_seconds,
                skew_seconds=skew_seconds,
                trusted_responders=conf.ocsp_responders,
            )
        except BusError as err:
            ocsp_error = ocsp_error or err
            continue
        checks.append(
            ContainerCheck(
                "OCSP",
                CheckStatus.PASSED,
                f"good per {status.responder}, produced {status.produced_at.isoformat()}, fresh at signing time",
            )
        )
        break
    else:
        return failed("OCSP", ocsp_error or IncorrectValidationInfo("no OCSP response for the signing certificate"), signer)

    try:
        member = member_from_certificate(cert, conf.profile_for(cert.issuer), signer.client.instance)
        if member != signer.client.member:
            raise IncorrectCertificate(
                "signing certificate does not belong to the member that the message names",
                reason=f"certificate of {member}, message names {signer.client}",
            )
    except BusError as err:
        return failed("member", err, signer)
    checks.append(ContainerCheck("member", CheckStatus.PASSED, f"signing certificate belongs to {member}"))
    if verdict.timestamp is not None and verdict.timestamp.gen_time + timedelta(seconds=skew_seconds) < at:
        return failed("timestamp time", MalformedSignature("the timestamp is older than the signature"), signer)
    # valid_without_message (a SOAP record logged without its body) stays its own verdict: never plain "valid".
    return EvidenceReport(verdict.code if verdict.code == VALID_WITHOUT_MESSAGE else VALID, tuple(checks), verdict, signer)
