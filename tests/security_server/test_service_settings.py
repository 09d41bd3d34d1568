"""``[server]`` and ``[messagelog]`` settings the security server reads at start-up (``ServerSettings``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.configfile import load_config
from security_server.core.errors import ConfigurationError
from security_server.messagelog.store import Synchronous
from security_server.proxy.mtls import DEFAULT_PEER_POOL_SIZE
from security_server.service import ServerSettings


def _settings(tmp_path: Path, text: str) -> ServerSettings:
    extra = tmp_path / "extra.ini"
    extra.write_text(text, encoding="utf-8")
    return ServerSettings.from_config(tmp_path, load_config("security-server", local_dir=tmp_path, extra=extra))


def test_shipped_defaults_keep_a_pool_and_a_durable_log(tmp_path: Path) -> None:
    """Unless told otherwise: 64 idle connections per peer, batch signing, and every commit of the log fsynced."""
    settings = _settings(tmp_path, "")
    assert settings.peer_pool_size == DEFAULT_PEER_POOL_SIZE == 64
    assert settings.messagelog_synchronous is Synchronous.FULL
    assert settings.batch_signing is True
    assert settings.heap_trim_seconds == 60


def test_pool_size_batch_signing_and_synchronous_are_read(tmp_path: Path) -> None:
    """The settings are read from the INI layers; ``synchronous`` is written in lower case."""
    settings = _settings(
        tmp_path,
        "[server]\npeer-pool-size = 0\nbatch-signing = false\nheap-trim-seconds = 0\n\n[messagelog]\nsynchronous = normal\n",
    )
    assert settings.heap_trim_seconds == 0
    assert settings.peer_pool_size == 0
    assert settings.batch_signing is False
    assert settings.messagelog_synchronous is Synchronous.NORMAL


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\npeer-pool-size = -1\n", "peer-pool-size"),
        ("[server]\npeer-pool-size = many\n", "peer-pool-size"),
        ("[server]\npeer-pool-size = 10001\n", "peer-pool-size"),
        ("[messagelog]\nsynchronous = off\n", "synchronous"),
        ("[messagelog]\nsynchronous = EXTRA\n", "synchronous"),
        ("[server]\nbatch-signing = sometimes\n", "batch-signing"),
        ("[server]\nheap-trim-seconds = -5\n", "heap-trim-seconds"),
        ("[server]\nheap-trim-seconds = hourly\n", "heap-trim-seconds"),
    ],
)
def test_a_bad_value_names_its_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    """A value out of range or not one of the choices is refused with the file, section and key named."""
    with pytest.raises(ConfigurationError) as info:
        _settings(tmp_path, text)
    assert "extra.ini" in str(info.value) and key in str(info.value)
