"""The token seam: the soft token is a Token, and reports its status."""

from __future__ import annotations

import shutil
from pathlib import Path

from security_server.signer.softtoken import SoftToken
from security_server.signer.token import Token, TokenStatus


def test_soft_token_is_a_token_and_logged_in_while_its_directory_is_there(tmp_path: Path) -> None:
    """SoftToken implements the Token protocol; its status is logged in, or not present once its folder is gone."""
    token: Token = SoftToken(tmp_path / "keys")
    assert token.name == "soft"
    assert token.status() is TokenStatus.LOGGED_IN
    shutil.rmtree(tmp_path / "keys")
    assert token.status() is TokenStatus.NOT_PRESENT
