"""A PKCS#11 token (an HSM, a smart card, SoftHSM2): the :class:`~security_server.signer.token.Token` seam over
python-pkcs11, configured by a ``[pkcs11:NAME]`` section (security_server/signer/pkcs11_config.py).

What lives where. Everything is in the token, so a replicated HSM carries it all:

* a key pair is generated inside the token: the private key with ``CKA_TOKEN``, ``CKA_PRIVATE``, ``CKA_SENSITIVE``
  true and ``CKA_EXTRACTABLE`` false, able to sign only; its public key beside it. Both get ``CKA_ID`` = the key id
  (the 20 bytes of :func:`~security_server.signer.token.key_id_of`, as the soft token) and ``CKA_LABEL`` =
  ``"<kind> <owner>"`` (``sign MEMBER:EE/GOV/70000310``, ``auth SERVER:EE/GOV/70000310/ss1``), which is what the
  soft token keeps in its ``K.json``. Keys without such a label (another application's) are not listed.
* an imported certificate is a ``CKO_CERTIFICATE`` object (X.509, ``CKA_VALUE`` the DER) with the key's ``CKA_ID``;
  a newer import replaces it (the new object is written first, then the old one destroyed).

Signing: fedbus hashes, the token signs the digest (pkcs11_key.py): ``CKM_RSA_PKCS`` over a DigestInfo,
``CKM_RSA_PKCS_PSS`` or ``CKM_ECDSA``, as X-Road's signer does.

Token state (X-Road: active / inactive / not available): the token is looked up and logged in on first use, with
the PIN read then from its file or environment variable (never logged, never kept beyond the login call). When an
operation finds the session or the token gone (removed, module error), the module is initialised again and the
token looked up once more, so a token that comes back is used again without a restart; a key that is no longer in
the token is ``key_not_found``. A PIN the token refused is not offered again until it changes, so that polling the
status never locks the PIN. Every failure is a :class:`~security_server.core.errors.BusError` with its fault code
(``signer.token_not_available``, ``signer.token_not_active``, ``signer.pin_incorrect``, ``signer.key_not_found``,
``signer.cannot_sign``); PKCS#11 calls return or fail, they are never retried in a loop.

The PKCS#11 calls are blocking; the module is shared by every token that names it (a module is initialised once per
process), and one lock per module orders the calls.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import pkcs11
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, SignMechanism
from security_server.signer.pkcs11_key import Pkcs11EcKey, Pkcs11RsaKey
from security_server.signer.token import (
    CertImportFailed,
    KeyAlgorithm,
    KeyInfo,
    KeyKind,
    KeyNotAvailable,
    KeyNotFound,
    PinIncorrect,
    PrivateKey,
    SoftTokenError,
    TokenNotActive,
    TokenNotAvailable,
    TokenOperationFailed,
    TokenStatus,
    check_cert_for_key,
    check_csr_subject,
    check_key_id,
    check_request,
    choose_usable,
    key_id_of,
    load_cert,
    sorted_keys,
)

_log = structlog.get_logger("fedbus.signer.pkcs11")
T = TypeVar("T")

_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
"""DER DigestInfo prefixes (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs the DigestInfo, not the bare digest."""
_PSS_HASH = {
    "sha256": (Mechanism.SHA256, pkcs11.MGF.SHA256),
    "sha384": (Mechanism.SHA384, pkcs11.MGF.SHA384),
    "sha512": (Mechanism.SHA512, pkcs11.MGF.SHA512),
}
_GONE: tuple[type[Exception], ...] = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.SlotIDInvalid,
    p11.GeneralError,
    p11.UserNotLoggedIn,
)
"""Errors that mean the session or the token is gone: look the token up again (once)."""
_STALE_HANDLE: tuple[type[Exception], ...] = (p11.ObjectHandleInvalid, p11.KeyHandleInvalid)
_MAX_PIN_BYTES = 256


class _Module:
    """One PKCS#11 library, loaded once per process and shared by every token that names it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.generation = 0
        """Bumped each time the module is initialised again; sessions of an older generation are gone."""
        self._lib: Any = None

    def lib(self) -> Any:
        """The loaded module (loading it on first use)."""
        if self._lib is None:
            if not Path(self.path).is_file():
                raise TokenNotAvailable(f"no PKCS#11 module at {self.path}")
            try:
                self._lib = pkcs11.lib(self.path)
            except (RuntimeError, OSError) as err:
                raise TokenNotAvailable(f"cannot load the PKCS#11 module {self.path}", reason=repr(err)) from err
        return self._lib

    @property
    def loaded(self) -> bool:
        """Whether the module has been loaded."""
        return self._lib is not None

    def reset(self, seen_generation: int) -> None:
        """Initialise the module again (C_Finalize, C_Initialize) unless someone did since ``seen_generation``."""
        if self._lib is None or seen_generation != self.generation:
            return
        try:
            self._lib.reinitialize()
        except (RuntimeError, OSError) as err:
            _log.warning("pkcs11_reinitialize_failed", module=self.path, error=type(err).__name__)
        self.generation += 1


_MODULES: dict[str, _Module] = {}
_MODULES_LOCK = threading.Lock()


def _module(path: str) -> _Module:
    with _MODULES_LOCK:
        found = _MODULES.get(path)
        if found is None:
            found = _MODULES[path] = _Module(path)
        return found


def _label(kind: KeyKind, owner: ClientId | SecurityServerId) -> str:
    return f"{kind.value} {owner.to_display()}"


def _parse_label(label: str) -> tuple[KeyKind, ClientId | SecurityServerId] | None:
    kind_text, _, owner_text = label.partition(" ")
    try:
        kind = KeyKind(kind_text)
        if kind is KeyKind.AUTH:
            return kind, SecurityServerId.parse_display(owner_text)
        return kind, ClientId.parse_display(owner_text)
    except (ValueError, InvalidClientIdentifier):
        return None


def _public_key(obj: Any) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The ``cryptography`` public key of a token public-key object (RSA or EC P-256)."""
    key_type = obj[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        modulus = int.from_bytes(obj[Attribute.MODULUS], "big")
        exponent = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if key_type == KeyType.EC:
        if obj[Attribute.EC_PARAMS] != encode_named_curve_parameters("secp256r1"):
            raise ValueError("only EC keys on P-256 are supported")
        point = obj[Attribute.EC_POINT]
        # CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40 §2.3.3); a short form length here.
        if len(point) >= 2 and point[0] == 0x04 and point[1] == len(point) - 2:
            point = point[2:]
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    raise ValueError(f"unsupported key type {key_type!r}")


def _algorithm_of(public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> KeyAlgorithm | None:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return KeyAlgorithm.EC_P256
    return {2048: KeyAlgorithm.RSA2048, 3072: KeyAlgorithm.RSA3072}.get(public.key_size)


class Pkcs11Token:
    """The keys and certificates of one PKCS#11 token (see the module docstring)."""

    def __init__(
        self, config: Pkcs11TokenConfig, *, environ: Mapping[str, str] | None = None, allow_auth_keys: bool = False
    ) -> None:
        """``environ`` is where ``pin-env`` is looked up (default ``os.environ``). Nothing is loaded until used.

        ``allow_auth_keys`` lets :meth:`generate` make authentication keys here. It is off because the mutual-TLS
        link cannot use a token key yet: pyOpenSSL runs on the OpenSSL that the cryptography wheel bundles, which
        has no ENGINE API and binds no provider or store functions, so TLS needs the auth key as a file (soft
        token). Management requests and CSRs would work with a token auth key; the handshake would not."""
        self.config = config
        self.allow_auth_keys = allow_auth_keys
        self._environ = environ if environ is not None else os.environ
        self._module = _module(config.library)
        self._session: Any = None
        self._slot: Any = None
        self._generation = -1
        self._keys: dict[str, Any] = {}
        self._refused_pin: bytes | None = None
        self.last_problem: str | None = None
        """Why the token was last unusable (a fault code and message, never the PIN), or None."""

    @property
    def name(self) -> str:
        """The ``NAME`` of the ``[pkcs11:NAME]`` section."""
        return self.config.name

    def __repr__(self) -> str:
        return f"<Pkcs11Token {self.name} {self.config.where} in {self.config.library}>"

    # --- connecting -------------------------------------------------------------------------------------------------

    def _read_pin(self) -> str:
        config = self.config
        if config.pin_env is not None:
            pin = self._environ.get(config.pin_env)
            if not pin:
                raise TokenNotActive(f"token {self.name}: the PIN variable {config.pin_env} is not set")
            return pin
        if config.pin_file is None:
            raise TokenNotActive(f"token {self.name}: no pin-file or pin-env configured, so it stays logged out")
        path = Path(config.pin_file)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise TokenNotActive(
                    f"token {self.name}: PIN file {path} may be read by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
                )
            with path.open("rb") as handle:
                data = handle.read(_MAX_PIN_BYTES + 1)
        except OSError as err:
            raise TokenNotActive(f"token {self.name}: cannot read the PIN file {path}: {err.strerror}") from err
        lines = data.splitlines()
        if len(data) > _MAX_PIN_BYTES or not lines or not lines[0]:
            raise TokenNotActive(f"token {self.name}: the PIN file {path} must hold the PIN on its first line")
        return lines[0].decode("utf-8", "replace")

    def _find(self, lib: Any) -> Any:
        config = self.config
        try:
            if config.slot is not None:
                slots = [s for s in lib.get_slots() if s.slot_id == config.slot]
                if not slots:
                    raise TokenNotAvailable(f"token {self.name}: the module has no slot {config.slot}")
                return slots[0].get_token()
            found = list(lib.get_tokens(token_label=config.token_label))
        except p11.PKCS11Error as err:
            raise TokenNotAvailable(f"token {self.name}: no token in {config.where}", reason=repr(err)) from err
        if not found:
            raise TokenNotAvailable(f"token {self.name}: no token with {config.where}")
        if len(found) > 1:
            raise TokenNotAvailable(f"token {self.name}: {len(found)} tokens have {config.where}; use slot")
        return found[0]

    def _connect(self) -> Any:
        if self._session is not None and self._generation == self._module.generation:
            return self._session
        self._drop()
        fresh = not self._module.loaded
        lib = self._module.lib()
        try:
            token = self._find(lib)
        except TokenNotAvailable:
            if fresh:
                raise
            # A token that came back (re-inserted, its directory restored) shows only after C_Initialize again.
            self._module.reset(self._module.generation)
            token = self._find(self._module.lib())
        generation = self._module.generation
        pin = self._read_pin()
        pin_digest = hashlib.sha256(pin.encode("utf-8")).digest()
        if pin_digest == self._refused_pin:
            raise PinIncorrect(f"token {self.name} refused this PIN before; it is not offered again until it changes")
        try:
            session = token.open(user_pin=pin, rw=True)
        except p11.UserAlreadyLoggedIn:
            session = token.open(rw=True)  # another session of this process logged the token in already
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as err:
            self._refused_pin = pin_digest
            raise PinIncorrect(f"token {self.name} refused the PIN") from err
        except (p11.PinLocked, p11.PinExpired, p11.UserPinNotInitialized) as err:
            raise TokenNotActive(f"token {self.name}: the user PIN is locked, expired or not set", reason=repr(err)) from err
        except p11.PKCS11Error as err:
            raise TokenNotAvailable(f"token {self.name}: cannot open a session", reason=repr(err)) from err
        finally:
            del pin
        self._refused_pin = None
        self._session, self._slot, self._generation = session, token.slot, generation
        return session

    def _drop(self) -> None:
        """Forget the session without closing it. Closing is never safe here: after C_Initialize again, handle
        numbers are reused, so closing a stale session could close a live one; and python-pkcs11's close() logs
        the whole process out (C_Logout). A session that had an error is forgotten too, because python-pkcs11
        keeps the session's operation lock held when an operation fails to start, and the next operation on it from
        another thread would wait forever. The module's next C_Finalize releases forgotten sessions."""
        self._session, self._keys = None, {}

    def _lost(self) -> None:
        generation = self._generation
        self._drop()
        self._module.reset(generation)

    def _run(self, what: str, operation: Callable[[Any], T]) -> T:
        """``operation(session)`` under the module lock; a lost session or stale handle is retried once, after
        looking the token up again; every failure becomes a BusError."""
        with self._module.lock:
            try:
                for attempt in (1, 2):
                    session = self._connect()
                    try:
                        result = operation(session)
                    except _STALE_HANDLE as err:
                        self._drop()
                        if attempt == 2:
                            raise TokenOperationFailed(f"{what} failed in token {self.name}", reason=repr(err)) from err
                        continue
                    except _GONE as err:
                        self._lost()
                        if attempt == 2:
                            raise TokenNotAvailable(f"token {self.name} is not available", reason=repr(err)) from err
                        continue
                    except p11.PKCS11Error as err:
                        self._drop()
                        raise TokenOperationFailed(f"{what} failed in token {self.name}", reason=repr(err)) from err
                    self.last_problem = None
                    return result
                raise AssertionError("unreachable")
            except BusError as err:
                if not isinstance(err, SoftTokenError):
                    self.last_problem = f"{err.fault_code}: {err.message}"
                raise

    def _check_present(self) -> None:
        """Ask the token for its info: a removed token fails here (SoftHSM2: CKR_GENERAL_ERROR), even when object
        searches still answer with nothing."""
        self._slot.get_token()

    # --- status -----------------------------------------------------------------------------------------------------

    def status(self) -> TokenStatus:
        """Logged in, logged out (no PIN, wrong or locked PIN) or not present (module, slot or token missing)."""
        try:
            self._run("status", lambda session: self._check_present())
        except (TokenNotActive, PinIncorrect):
            return TokenStatus.LOGGED_OUT
        except BusError:
            return TokenStatus.NOT_PRESENT
        return TokenStatus.LOGGED_IN

    # --- keys -------------------------------------------------------------------------------------------------------

    def _objects(self, session: Any, object_class: ObjectClass, key_id: str | None = None) -> list[Any]:
        attrs: dict[Attribute, Any] = {Attribute.CLASS: object_class}
        if key_id is not None:
            attrs[Attribute.ID] = bytes.fromhex(key_id)
        return list(session.get_objects(attrs))

    def _info(self, session: Any, private: Any) -> KeyInfo | None:
        try:
            raw_id = private[Attribute.ID]
            label = private[Attribute.LABEL]
        except p11.AttributeTypeInvalid:
            return None
        parsed = _parse_label(label or "")
        if parsed is None or len(raw_id) != 20:
            return None
        key_id = bytes(raw_id).hex()
        publics = self._objects(session, ObjectClass.PUBLIC_KEY, key_id)
        if len(publics) != 1:
            return None
        try:
            algorithm = _algorithm_of(_public_key(publics[0]))
        except ValueError:
            return None
        if algorithm is None:
            return None
        kind, owner = parsed
        return KeyInfo(key_id, kind, owner, algorithm, self._cert(session, key_id))

    def _cert(self, session: Any, key_id: str) -> x509.Certificate | None:
        certs = [x509.load_der_x509_certificate(bytes(c[Attribute.VALUE])) for c in self._objects(session, ObjectClass.CERTIFICATE, key_id)]
        return max(certs, key=lambda c: c.not_valid_before_utc) if certs else None

    def _list(self, session: Any) -> tuple[KeyInfo, ...]:
        found = [self._info(session, private) for private in self._objects(session, ObjectClass.PRIVATE_KEY)]
        return sorted_keys(info for info in found if info is not None)

    def _key_info(self, session: Any, key_id: str) -> KeyInfo:
        privates = self._objects(session, ObjectClass.PRIVATE_KEY, key_id)
        info = self._info(session, privates[0]) if len(privates) == 1 else None
        if info is None:
            self._check_present()
            raise KeyNotFound(f"no key {key_id} on token {self.name}")
        return info

    def list(self) -> tuple[KeyInfo, ...]:
        """Every fedbus key in the token, auth keys first, then by owner and id."""
        return self._run("listing keys", self._list)

    def key(self, key_id: str) -> KeyInfo:
        """The key ``key_id``; :class:`KeyNotFound` if it is not in the token."""
        check_key_id(key_id)
        return self._run("reading a key", lambda session: self._key_info(session, key_id))

    def generate(
        self, kind: KeyKind, owner: ClientId | SecurityServerId, algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048
    ) -> str:
        """Generate a key pair inside the token for ``owner``; the private key is sensitive and not extractable."""
        kind, algorithm = check_request(kind, owner, algorithm)
        if kind is KeyKind.AUTH and not self.allow_auth_keys:
            raise SoftTokenError(
                f"authentication keys stay in the soft token: TLS cannot use a key in token {self.name} yet"
            )
        if algorithm is not KeyAlgorithm.EC_P256 and self.config.sign_mechanism is SignMechanism.ECDSA:
            raise SoftTokenError(f"token {self.name} signs with CKM_ECDSA: generate an ec-p256 key")
        label = _label(kind, owner)
        return self._run("generating a key", lambda session: self._make_pair(session, label, algorithm))

    def _make_pair(self, session: Any, label: str, algorithm: KeyAlgorithm) -> str:
        """A key pair made inside the token with CKA_LABEL ``label`` and CKA_ID the key id; returns the key id."""
        temporary = os.urandom(20)
        public_template = {Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.VERIFY: True,
                           Attribute.ENCRYPT: False, Attribute.WRAP: False}
        private_template = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                            Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
                            Attribute.UNWRAP: False, Attribute.DERIVE: False}
        options: dict[str, Any] = dict(
            id=temporary, label=label, store=True, capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            public_template=public_template, private_template=private_template,
        )
        if algorithm is KeyAlgorithm.EC_P256:
            parameters = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
            )
            public, private = parameters.generate_keypair(**options)
        else:
            bits = 2048 if algorithm is KeyAlgorithm.RSA2048 else 3072
            public, private = session.generate_keypair(KeyType.RSA, bits, **options)
        try:
            key_id = key_id_of(_public_key(public))
            public[Attribute.ID] = bytes.fromhex(key_id)
            private[Attribute.ID] = bytes.fromhex(key_id)
        except BaseException:
            public.destroy()
            private.destroy()
            raise
        return key_id

    def csr(self, key_id: str, subject: x509.Name) -> bytes:
        """A PKCS#10 request (PEM) for ``subject``, signed inside the token by key ``key_id``."""
        info = self.key(key_id)
        check_csr_subject(info, subject)
        key = self._private_key(key_id, KeyNotFound)
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
        if isinstance(key, Pkcs11RsaKey) and key.sign_mechanism is SignMechanism.RSA_PKCS_PSS:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
            request = builder.sign(key, hashes.SHA256(), rsa_padding=pss)
        else:
            request = builder.sign(key, hashes.SHA256())
        return request.public_bytes(serialization.Encoding.PEM)

    def import_cert(self, data: bytes, *, now: datetime) -> str:
        """Store a certificate (PEM or DER) in the token as a certificate object with its key's CKA_ID."""
        cert = load_cert(data)
        key_id = key_id_of(cert.public_key())

        def store(session: Any) -> None:
            try:
                info = self._key_info(session, key_id)
            except KeyNotFound as err:
                raise CertImportFailed(f"no key on token {self.name} matches the certificate's public key") from err
            check_cert_for_key(info, cert, now)
            old = self._objects(session, ObjectClass.CERTIFICATE, key_id)
            session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.ID: bytes.fromhex(key_id),
                Attribute.LABEL: _label(info.kind, info.owner),
                Attribute.SUBJECT: cert.subject.public_bytes(),
                Attribute.ISSUER: cert.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: _der_integer(cert.serial_number),
                Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
            })
            for obj in old:
                obj.destroy()

        self._run("importing a certificate", store)
        return key_id

    # --- signing ----------------------------------------------------------------------------------------------------

    def _private_key(self, key_id: str, missing: type[BusError]) -> PrivateKey:
        def load(session: Any) -> PrivateKey:
            publics = self._objects(session, ObjectClass.PUBLIC_KEY, key_id)
            if len(publics) != 1 or len(self._objects(session, ObjectClass.PRIVATE_KEY, key_id)) != 1:
                self._check_present()
                raise missing(f"no key {key_id} on token {self.name}")
            return self._key_object(key_id, _public_key(publics[0]))

        return self._run("reading a key", load)

    def _key_object(self, key_id: str, public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> PrivateKey:
        if isinstance(public, ec.EllipticCurvePublicKey):
            return Pkcs11EcKey(self, key_id, public)
        mechanism = self.config.sign_mechanism
        return Pkcs11RsaKey(self, key_id, public, SignMechanism.RSA_PKCS if mechanism is SignMechanism.ECDSA else mechanism)

    def sign_digest(
        self, key_id: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm, mechanism: SignMechanism, salt_length: int
    ) -> bytes:
        """Sign ``digest`` with key ``key_id`` inside the token (what :mod:`pkcs11_key` keys call)."""

        def sign(session: Any) -> bytes:
            private = self._keys.get(key_id)
            if private is None:
                try:
                    private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(key_id))
                except (p11.NoSuchKey, p11.MultipleObjectsReturned) as err:
                    self._check_present()
                    raise KeyNotAvailable(f"key {key_id} is no longer on token {self.name}") from err
                self._keys[key_id] = private
            if mechanism is SignMechanism.RSA_PKCS:
                return bytes(private.sign(_DIGEST_INFO[hash_algorithm.name] + digest, mechanism=Mechanism.RSA_PKCS))
            if mechanism is SignMechanism.RSA_PKCS_PSS:
                hash_mechanism, mgf = _PSS_HASH[hash_algorithm.name]
                return bytes(private.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS,
                                          mechanism_param=(hash_mechanism, mgf, salt_length)))
            return bytes(private.sign(digest, mechanism=Mechanism.ECDSA))

        return self._run("signing", sign)

    def signing_key(self, member: ClientId, *, now: datetime | None = None) -> tuple[PrivateKey, x509.Certificate]:
        """The signing key and certificate of ``member`` in this token (the newest valid certificate)."""
        if not isinstance(member, ClientId):
            raise SoftTokenError("signing keys are looked up by member")
        key_id, cert = choose_usable(self.list(), KeyKind.SIGN, member.member, now)
        return self._private_key(key_id, KeyNotAvailable), cert

    def auth_key(self, *, now: datetime | None = None) -> tuple[PrivateKey, x509.Certificate]:
        """This server's authentication key and certificate in this token."""
        key_id, cert = choose_usable(self.list(), KeyKind.AUTH, None, now)
        return self._private_key(key_id, KeyNotAvailable), cert


    # --- keys of a role of their own (the registry's configuration-signing key) ------------------------------------

    def generate_labelled(self, label: str, algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048) -> PrivateKey:
        """A new key pair found again by ``label`` alone (not a member's or a server's key, so :meth:`list` does not
        show it); refused when a key with that label is in the token already."""
        if not label or not label.isprintable() or _parse_label(label) is not None:
            raise SoftTokenError("a key label is printable text that does not name a member's or a server's key")
        algorithm = KeyAlgorithm(algorithm)
        if algorithm is not KeyAlgorithm.EC_P256 and self.config.sign_mechanism is SignMechanism.ECDSA:
            raise SoftTokenError(f"token {self.name} signs with CKM_ECDSA: generate an ec-p256 key")

        def generate(session: Any) -> str:
            if list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label})):
                raise SoftTokenError(f"token {self.name} already holds a key labelled {label!r}")
            return self._make_pair(session, label, algorithm)

        self._run("generating a key", generate)
        return self.labelled_key(label)

    def labelled_key(self, label: str) -> PrivateKey:
        """The key whose private half has CKA_LABEL ``label`` (:class:`KeyNotAvailable` unless exactly one)."""

        def load(session: Any) -> PrivateKey:
            privates = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}))
            if len(privates) != 1:
                self._check_present()
                raise KeyNotAvailable(f"token {self.name} holds {len(privates)} keys labelled {label!r}, not one")
            key_id = bytes(privates[0][Attribute.ID]).hex()
            publics = self._objects(session, ObjectClass.PUBLIC_KEY, key_id)
            if len(publics) != 1:
                raise KeyNotAvailable(f"token {self.name} has no public key beside the key labelled {label!r}")
            return self._key_object(key_id, _public_key(publics[0]))

        return self._run("reading a key", load)


def _der_integer(value: int) -> bytes:
    """DER INTEGER (CKA_SERIAL_NUMBER holds the DER encoding of the serial, PKCS#11 2.40 §4.6.3)."""
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    if len(body) < 128:
        return bytes([0x02, len(body)]) + body
    length = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([0x02, 0x80 | len(length)]) + length + body
