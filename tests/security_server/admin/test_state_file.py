"""A small JSON object file in the server directory: read whole, written whole, errors naming the file."""

from __future__ import annotations

import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.admin import state_file
from security_server.admin.server_dir import ServerDirectory
from security_server.core.errors import ConfigurationError
from security_server.edge.atomic_file import PRIVATE_MODE, PUBLIC_MODE

NAME = "some-state.json"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=5), st.sampled_from([1, None]))
def test_what_is_written_is_read_back(content: dict[str, Any], indent: int | None) -> None:
    """Any JSON object written, indented or on one line, reads back equal."""
    with tempfile.TemporaryDirectory() as folder:
        server_dir = ServerDirectory(Path(folder))
        state_file.write(server_dir, NAME, content, indent=indent)
        assert state_file.read(server_dir, NAME) == content


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    """No file yet reads as None (the caller decides what that means: no entries, no change waiting)."""
    assert state_file.read(ServerDirectory(tmp_path), NAME) is None


@pytest.mark.parametrize("body", [b"{x", b"", b"\x80{}"], ids=["malformed", "empty", "not-utf8"])
def test_a_file_that_is_not_json_is_an_error_naming_it(tmp_path: Path, body: bytes) -> None:
    """A file that does not parse as JSON is a ConfigurationError that names its path."""
    (tmp_path / NAME).write_bytes(body)
    with pytest.raises(ConfigurationError, match=re.escape(f"cannot read {tmp_path / NAME}: ")):
        state_file.read(ServerDirectory(tmp_path), NAME)


def test_a_file_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path) -> None:
    """A path that is there but is no readable file (a folder) is a ConfigurationError that names it."""
    (tmp_path / NAME).mkdir()
    with pytest.raises(ConfigurationError, match=re.escape(f"cannot read {tmp_path / NAME}: ")):
        state_file.read(ServerDirectory(tmp_path), NAME)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"3", b"null"])
def test_a_json_value_that_is_not_an_object_is_an_error_naming_it(tmp_path: Path, body: bytes) -> None:
    """A list (or any JSON value but an object) is a ConfigurationError: the path, then 'is not a JSON object'."""
    (tmp_path / NAME).write_bytes(body)
    with pytest.raises(ConfigurationError) as caught:
        state_file.read(ServerDirectory(tmp_path), NAME)
    assert str(caught.value) == f"{tmp_path / NAME} is not a JSON object"


def test_the_caller_words_the_wrong_shape(tmp_path: Path) -> None:
    """``wrong_shape`` replaces what the error says after the path (each caller keeps its own message)."""
    (tmp_path / NAME).write_bytes(b"[]")
    with pytest.raises(ConfigurationError) as caught:
        state_file.read(ServerDirectory(tmp_path), NAME, wrong_shape="holds no address")
    assert str(caught.value) == f"{tmp_path / NAME} holds no address"


def test_the_bytes_are_sorted_indented_and_end_in_a_newline(tmp_path: Path) -> None:
    """Keys come out sorted whatever their order in, one space a level, non-ASCII escaped, then one newline."""
    state_file.write(ServerDirectory(tmp_path), NAME, {"b": "2", "a": {"é": 1}, "C": None})
    assert (tmp_path / NAME).read_bytes() == b'{\n "C": null,\n "a": {\n  "\\u00e9": 1\n },\n "b": "2"\n}\n'


def test_without_indent_the_object_is_on_one_line(tmp_path: Path) -> None:
    """``indent=None`` writes the object on one line (as address-change.json is), sorted, ending in a newline."""
    state_file.write(ServerDirectory(tmp_path), NAME, {"z": 1, "address": "ss1.example:5500"}, indent=None)
    assert (tmp_path / NAME).read_bytes() == b'{"address": "ss1.example:5500", "z": 1}\n'


def test_an_empty_object_is_written_as_one(tmp_path: Path) -> None:
    """An object with no members is written as ``{}`` and reads back as an empty object, not as a missing file."""
    server_dir = ServerDirectory(tmp_path)
    state_file.write(server_dir, NAME, {})
    assert (tmp_path / NAME).read_bytes() == b"{}\n"
    assert state_file.read(server_dir, NAME) == {}


@pytest.mark.parametrize("mode", [PUBLIC_MODE, PRIVATE_MODE])
def test_the_file_has_the_mode_asked_for(tmp_path: Path, mode: int) -> None:
    """The file gets exactly the mode asked for, also when it replaces one with another mode."""
    (tmp_path / NAME).write_bytes(b"{}")
    (tmp_path / NAME).chmod(0o640)
    state_file.write(ServerDirectory(tmp_path), NAME, {"k": "v"}, mode=mode)
    assert mode_of(tmp_path / NAME) == mode


def test_the_default_mode_is_public(tmp_path: Path) -> None:
    """Without a mode the file is PUBLIC_MODE (0644), as token-names.json and address-change.json are."""
    state_file.write(ServerDirectory(tmp_path), NAME, {"k": "v"})
    assert mode_of(tmp_path / NAME) == PUBLIC_MODE


def test_a_failed_write_is_an_error_naming_the_file(tmp_path: Path) -> None:
    """A write that cannot be done (here: no such folder) is a ConfigurationError naming the file."""
    missing = tmp_path / "missing"
    with pytest.raises(ConfigurationError, match=re.escape(f"cannot write {missing / NAME}: ")):
        state_file.write(ServerDirectory(missing), NAME, {"k": "v"})
    assert not missing.exists()
