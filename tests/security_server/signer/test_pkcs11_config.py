"""[pkcs11:NAME] sections: one way to find the token, one PIN source, a known mechanism, errors naming the file."""

from __future__ import annotations

import pytest

from security_server.core.config import IniLayer, LayeredConfig
from security_server.core.errors import ConfigurationError
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, SignMechanism, pkcs11_tokens_from_config


def _config(text: str) -> LayeredConfig:
    return LayeredConfig.from_layers([IniLayer("local.ini", text)])


def test_sections_become_token_configs_in_name_order() -> None:
    """Each enabled [pkcs11:NAME] section is one token config; a disabled one is left out."""
    tokens = pkcs11_tokens_from_config(_config(
        "[server]\nclient-proxy-port = 1\n"
        "[pkcs11:zeta]\nlibrary = /lib/z.so\nslot = 3\npin-env = ZETA_PIN\nsign-mechanism = CKM_RSA_PKCS_PSS\n"
        "[pkcs11:alpha]\nlibrary = /lib/a.so\ntoken-label = fedbus\npin-file = /etc/a.pin\n"
        "[pkcs11:off]\nlibrary = /lib/o.so\nslot = 1\nenabled = false\n"
    ))
    assert tokens == (
        Pkcs11TokenConfig("alpha", "/lib/a.so", SignMechanism.RSA_PKCS, None, "fedbus", "/etc/a.pin", None),
        Pkcs11TokenConfig("zeta", "/lib/z.so", SignMechanism.RSA_PKCS_PSS, 3, None, None, "ZETA_PIN"),
    )
    assert tokens[1].where == "slot 3" and tokens[0].where == "label 'fedbus'"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("slot = 1\n", "library"),
        ("library = /l.so\n", "exactly one of slot and token-label"),
        ("library = /l.so\nslot = 1\ntoken-label = x\n", "exactly one of slot and token-label"),
        ("library = /l.so\nslot = 1\npin-file = /p\npin-env = P\n", "at most one of pin-file and pin-env"),
        ("library = /l.so\nslot = -1\n", "at least 0"),
        ("library = /l.so\nslot = 1\nsign-mechanism = CKM_DSA\n", "must be one of"),
        ("library = /l.so\nslot = 1\npin = 1234\n", "the PIN itself never goes in configuration"),
        ("library = /l.so\nslot = 1\npin_file = /p\n", "unknown key"),
    ],
)
def test_a_bad_section_is_a_configuration_error(body: str, problem: str) -> None:
    """Missing library, two or no ways to find the token, two PIN sources, a bad slot or mechanism, a PIN or an
    unknown key are refused."""
    with pytest.raises(ConfigurationError, match=problem):
        pkcs11_tokens_from_config(_config("[pkcs11:hsm]\n" + body))


def test_no_sections_no_tokens() -> None:
    """A configuration without [pkcs11:...] sections has no PKCS#11 tokens."""
    assert pkcs11_tokens_from_config(_config("[server]\nx = 1\n")) == ()
