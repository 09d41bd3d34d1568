"""``fedbus registry ...``: the registry administrator's commands (so far the development CA, ``registry ca``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.trust.atomic_file import write_atomically
from central_registry.trust.ca import CertKind, DevelopmentCA, IssuedCert
from security_server.core.errors import BusError

REASONS = [flag.value for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl]

_DIR_OPTION = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The CA directory (keys, certificates, index.json).",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _open(directory: Path) -> DevelopmentCA:
    try:
        return DevelopmentCA.open(directory)
    except BusError as err:
        raise click.ClickException(err.message) from err


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@click.group()
def registry() -> None:
    """Central registry administration."""


@registry.group()
def ca() -> None:
    """The development certificate authority (for development, tests and the demo)."""


@ca.command("init")
@_DIR_OPTION
@click.option("--name", default="fedbus development CA", show_default=True, help="The CA's common name.")
@click.option("--key-size", default=3072, show_default=True, type=click.IntRange(min=2048), help="RSA key size.")
@click.option("--days", default=3650, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
@click.option("--ocsp-url", default=None, help="OCSP URL to write into issued certificates (authorityInfoAccess).")
def init_command(directory: Path, name: str, key_size: int, days: int, ocsp_url: str | None) -> None:
    """Create a root CA key and self-signed certificate in DIR."""
    try:
        authority = DevelopmentCA.init(
            directory, name, _now(), key_size=key_size, validity_days=days, ocsp_url=ocsp_url
        )
    except BusError as err:
        raise click.ClickException(err.message) from err
    click.echo(f"initialised CA {authority.certificate.subject.rfc4514_string()} in {directory}")
    click.echo(f"certificate: {directory / 'ca-cert.pem'}")


@ca.command("issue")
@_DIR_OPTION
@click.option("--csr", "csr_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", required=True, type=click.Choice(["auth", "sign"]), help="Authentication or signing.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--days", default=730, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
def issue_command(directory: Path, csr_path: Path, kind: str, out_path: Path, days: int) -> None:
    """Issue a certificate from a PKCS#10 request (PEM or DER) whose subject fits the certificate profile."""
    authority = _open(directory)
    try:
        cert = authority.issue(csr_path.read_bytes(), CertKind(kind), _now(), validity_days=days)
    except BusError as err:
        raise click.ClickException(f"{err.message} ({err.reason})" if err.reason != err.message else err.message) from err
    write_atomically(out_path, _pem(cert))
    click.echo(f"issued {kind} certificate {cert.serial_number:X} for {cert.subject.rfc4514_string()} -> {out_path}")


@ca.command("revoke")
@_DIR_OPTION
@click.option("--serial", required=True, help="Serial number in hex, as `ca list` shows it.")
@click.option("--reason", default="unspecified", show_default=True, type=click.Choice(REASONS))
def revoke_command(directory: Path, serial: str, reason: str) -> None:
    """Revoke an issued certificate; the OCSP responder answers "revoked" from now on."""
    try:
        number = int(serial.removeprefix("0x").removeprefix("0X").replace(":", ""), 16)
    except ValueError as err:
        raise click.ClickException(f"serial {serial!r} is not a hex number") from err
    authority = _open(directory)
    try:
        revoked = authority.revoke(number, x509.ReasonFlags(reason), _now())
    except BusError as err:
        raise click.ClickException(err.message) from err
    click.echo(f"revoked {revoked.serial:X} ({reason}) {revoked.subject}")


def _row(entry: IssuedCert) -> tuple[str, str, str, str, str]:
    status = f"revoked ({entry.reason.value})" if entry.reason else "valid"
    return f"{entry.serial:X}", str(entry.kind), status, entry.not_after.strftime("%Y-%m-%d"), entry.subject


@ca.command("list")
@_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
def list_command(directory: Path, as_json: bool) -> None:
    """List every certificate the CA issued, with revocations."""
    authority = _open(directory)
    try:
        entries = authority.issued()
    except BusError as err:
        raise click.ClickException(err.message) from err
    if as_json:
        records = [{k: v for k, v in entry.to_json().items() if k != "cert_pem"} for entry in entries]
        click.echo(json.dumps(records, indent=2))
        return
    rows = [("SERIAL", "KIND", "STATUS", "NOT AFTER", "SUBJECT"), *(_row(entry) for entry in entries)]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])


@ca.command("ocsp-cert")
@_DIR_OPTION
@click.option("--days", default=365, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
def ocsp_cert_command(directory: Path, days: int) -> None:
    """Make a delegated OCSP-signing key and certificate; the responder signs with it from then on."""
    authority = _open(directory)
    try:
        cert = authority.issue_ocsp_cert(_now(), validity_days=days)
    except BusError as err:
        raise click.ClickException(err.message) from err
    click.echo(f"issued OCSP-signing certificate {cert.serial_number:X} -> {directory / 'ocsp-cert.pem'}")


@ca.command("tsa-cert")
@_DIR_OPTION
@click.option("--days", default=1825, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
def tsa_cert_command(directory: Path, days: int) -> None:
    """Make the TSA key and certificate (critical extendedKeyUsage timeStamping)."""
    authority = _open(directory)
    try:
        cert = authority.issue_tsa_cert(_now(), validity_days=days)
    except BusError as err:
        raise click.ClickException(err.message) from err
    click.echo(f"issued TSA certificate {cert.serial_number:X} -> {directory / 'tsa-cert.pem'}")
