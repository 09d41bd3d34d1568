"""Layered INI configuration, parsed once into frozen values.

X-Road keeps defaults in one file and lets a local file override them (``/etc/xroad/conf.d/local.ini``);
fedbus does the same, with a third layer given on the command line. This module is pure: it takes the
text of each layer with the name of its file, merges them in order (later layers win key by key) and offers
typed getters whose errors name the file, section and key that hold the bad value. Reading the files is the
caller's job (:mod:`security_server.configfile`).
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

from security_server.core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class IniLayer:
    """The text of one INI file and the name to cite in errors."""

    source: str
    text: str


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """One raw value and the file it came from."""

    value: str
    source: str


@dataclass(frozen=True, slots=True)
class LayeredConfig:
    """The merged values of all layers, each remembering its file."""

    values: Mapping[tuple[str, str], ConfigValue] = field(default_factory=dict)

    @classmethod
    def from_layers(cls, layers: Sequence[IniLayer]) -> LayeredConfig:
        """Merge ``layers`` in order; a malformed file raises :class:`ConfigurationError` naming it."""
        merged: dict[tuple[str, str], ConfigValue] = {}
        for layer in layers:
            parser = configparser.ConfigParser(interpolation=None, default_section="__no_defaults__")
            parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
            try:
                parser.read_string(layer.text, source=layer.source)
            except configparser.Error as err:
                raise ConfigurationError(f"{layer.source}: not a valid INI file: {err}") from err
            for section in parser.sections():
                for key, value in parser.items(section, raw=True):
                    merged[(section, key)] = ConfigValue(value.strip(), layer.source)
        return cls(merged)

    def _raw(self, section: str, key: str, default: str | None) -> ConfigValue | None:
        found = self.values.get((section, key))
        if found is not None:
            return found
        if default is None:
            return None
        return ConfigValue(default, "<built-in default>")

    def _fail(self, found: ConfigValue, section: str, key: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"{found.source}: [{section}] {key} = {found.value!r}: {problem}")

    def get_str(self, section: str, key: str, default: str | None = None) -> str:
        """A string value; a missing key without a default is an error naming section and key."""
        found = self._raw(section, key, default)
        if found is None:
            raise ConfigurationError(f"[{section}] {key} is required but set in no configuration file")
        return found.value

    def get_int(
        self, section: str, key: str, default: int | None = None, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """An integer value within ``[minimum, maximum]``."""
        found = self._raw(section, key, None if default is None else str(default))
        if found is None:
            raise ConfigurationError(f"[{section}] {key} is required but set in no configuration file")
        try:
            number = int(found.value, 10)
        except ValueError as err:
            raise self._fail(found, section, key, "not an integer") from err
        if minimum is not None and number < minimum:
            raise self._fail(found, section, key, f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise self._fail(found, section, key, f"must be at most {maximum}")
        return number

    def get_bool(self, section: str, key: str, default: bool | None = None) -> bool:
        """A boolean: true/false, yes/no, on/off, 1/0."""
        found = self._raw(section, key, None if default is None else str(default).lower())
        if found is None:
            raise ConfigurationError(f"[{section}] {key} is required but set in no configuration file")
        lowered = found.value.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise self._fail(found, section, key, "not a boolean (true/false)")

    def get_choice(self, section: str, key: str, choices: Sequence[str], default: str | None = None) -> str:
        """A value from a fixed set."""
        value = self.get_str(section, key, default)
        if value not in choices:
            found = self._raw(section, key, default)
            assert found is not None
            raise self._fail(found, section, key, f"must be one of {', '.join(choices)}")
        return value


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """How structlog renders events: ``auto`` (JSON unless on a terminal), ``json`` or ``console``."""

    level: str = "info"
    format: str = "auto"

    @classmethod
    def from_config(cls, config: LayeredConfig) -> LoggingConfig:
        """Read ``[logging]``."""
        return cls(
            level=config.get_choice("logging", "level", ("debug", "info", "warning", "error"), "info"),
            format=config.get_choice("logging", "format", ("auto", "json", "console"), "auto"),
        )


@dataclass(frozen=True, slots=True)
class MessageLimits:
    """Limits on what a client may send (SECURITY-CASES.md: oversized input)."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_uri_chars: int = 2000
    max_header_bytes: int = 64 * 1024
    max_attachments: int = 100

    DEFAULTS: ClassVar[tuple[int, int, int, int]] = (10 * 1024 * 1024, 2000, 64 * 1024, 100)

    @classmethod
    def from_config(cls, config: LayeredConfig) -> MessageLimits:
        """Read ``[limits]``."""
        body, uri, header, attachments = cls.DEFAULTS
        return cls(
            max_body_bytes=config.get_int("limits", "max-body-bytes", body, minimum=1024),
            max_uri_chars=config.get_int("limits", "max-uri-chars", uri, minimum=64),
            max_header_bytes=config.get_int("limits", "max-header-bytes", header, minimum=1024),
            max_attachments=config.get_int("limits", "max-attachments", attachments, minimum=0),
        )


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long one proxy port waits for a client and how many it serves at once (``[proxy]``, issue 22 item 3).

    X-Road's nearest equivalents (ug-syspar ``[proxy]``): the header timeout is ``client-connector-initial-idle-time``
    / ``server-connector-initial-idle-time`` (30 s), the idle timeout ``server-connector-max-idle-time`` (120 s in
    the FI package; X-Road's 0, no limit, is what let slow clients stay for ever). The body timeout is how long a
    request body may make no progress. A timeout of 0 is no limit; ``max_connections`` 0 is a quarter of the
    process's file-descriptor limit, resolved where the port listens (proxy/connection_limits.py).
    """

    header_timeout_seconds: int = 30
    """From the connection (or the first byte of the next request on a kept-alive one) to the end of the head."""
    body_timeout_seconds: int = 30
    """The longest time a request body may make no progress."""
    idle_timeout_seconds: int = 120
    """The longest time a connection may wait between requests (or on anything else)."""
    max_connections: int = 0
    """Open connections on the port; more are refused with 503 (0: a quarter of ``ulimit -n``)."""

    @classmethod
    def from_config(cls, config: LayeredConfig, side: str) -> ConnectionLimits:
        """Read ``[proxy] <side>-...`` for ``side`` ``client`` (the client proxy) or ``server`` (the server proxy)."""
        if side not in ("client", "server"):
            raise ValueError(f"side must be client or server, not {side!r}")
        base = cls()
        day = 24 * 3600
        return cls(
            header_timeout_seconds=config.get_int(
                "proxy", f"{side}-header-timeout-seconds", base.header_timeout_seconds, minimum=0, maximum=day
            ),
            body_timeout_seconds=config.get_int(
                "proxy", f"{side}-body-timeout-seconds", base.body_timeout_seconds, minimum=0, maximum=day
            ),
            idle_timeout_seconds=config.get_int(
                "proxy", f"{side}-idle-timeout-seconds", base.idle_timeout_seconds, minimum=0, maximum=day
            ),
            max_connections=config.get_int(
                "proxy", f"{side}-max-connections", base.max_connections, minimum=0, maximum=1_000_000
            ),
        )


DATABASE_URL_SCHEMES = ("postgresql", "postgres")
"""The URL schemes ``[database] url`` accepts (libpq's two spellings)."""


def url_without_password(url: str) -> str:
    """``url`` with any password removed (from the user part and from a ``password=`` query parameter), for
    messages and logs; what cannot be parsed is replaced by its scheme alone."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return f"{url.partition(':')[0]}://..."
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where a store's shared database is (``[database] url``): None keeps the embedded SQLite file.

    Read for the security server's configuration store and the registry's store; the message log is always
    SQLite, local to each node (issue 19).
    """

    url: str | None = None

    SECTION: ClassVar[str] = "database"
    SETTING: ClassVar[str] = "[database] url"

    @classmethod
    def from_config(cls, config: LayeredConfig) -> DatabaseConfig:
        """Read ``[database] url``: empty or absent, or a ``postgresql://`` URL (its password never in an error)."""
        found = config.values.get((cls.SECTION, "url"))
        if found is None or not found.value:
            return cls()
        try:
            parts = urlsplit(found.value)
            parts.port  # noqa: B018  # raises ValueError for a port that is not a number in range
        except ValueError as err:
            raise ConfigurationError(
                f"{found.source}: {cls.SETTING} = {url_without_password(found.value)!r}: not a valid URL"
            ) from err
        if parts.scheme not in DATABASE_URL_SCHEMES:
            raise ConfigurationError(
                f"{found.source}: {cls.SETTING} = {url_without_password(found.value)!r}: must be a postgresql:// URL"
                " (or empty for the embedded SQLite database)"
            )
        return cls(found.value)

    @property
    def display_url(self) -> str | None:
        """The URL without its password, for messages."""
        return None if self.url is None else url_without_password(self.url)
