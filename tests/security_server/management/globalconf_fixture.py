"""A real global configuration for the management API tests: instance EE, two members, two servers, one TSA."""

from __future__ import annotations

from datetime import timedelta

from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.sharedparams import (
    ApprovedTsa,
    GlobalSettings,
    MemberClass,
    MemberInfo,
    SecurityServerInfo,
    SharedParameters,
)
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.federation.gconf import private_parameters
from tests.federation.pki import SAMPLE_TIME, rsa_issued

OWNER = ClientId("EE", "GOV", "70000310")
OTHER = ClientId("EE", "COM", "12345")
OWN_SERVER = SecurityServerId(OWNER, "ss1")
OTHER_SERVER = SecurityServerId(OTHER, "ss9")


def global_conf() -> GlobalConf:
    """The configuration: members Ministry (GOV 70000310) and Company (COM 12345), their servers, TSA ``Dev TSA``."""
    tsa = rsa_issued("management test TSA")
    shared = SharedParameters(
        instance="EE",
        global_settings=GlobalSettings(3600, (MemberClass("COM", "Companies"), MemberClass("GOV", "Government"))),
        approved_tsas=(ApprovedTsa("Dev TSA", "http://127.0.0.1:9/tsa", tsa.der),),
        members=(MemberInfo(OWNER, "Ministry", ("registry",)), MemberInfo(OTHER, "Company", ("app",))),
        security_servers=(
            SecurityServerInfo(OWN_SERVER, "10.0.0.1", (), (OWNER,)),
            SecurityServerInfo(OTHER_SERVER, None, (), (OTHER,)),
        ),
    )
    private = private_parameters("EE", OWNER.subsystem("management"), tsa.der)
    return GlobalConf(shared, private, SAMPLE_TIME + timedelta(days=3650))
