"""Global configuration: anchors, the signed directory, shared and private parameters (pr-gconf).

Pure: bytes, values and ``now`` in; values, bytes or errors out. The registry builds and signs with
:func:`build_shared_parameters`, :func:`build_private_parameters`, :func:`build_signed_directory` and
:func:`build_configuration_anchor`; a security server verifies with :func:`parse_signed_directory`,
:func:`verify_signed_directory` and :func:`assemble_global_conf`, then asks the resulting :class:`GlobalConf`.
"""

from __future__ import annotations

from security_server.core.globalconf.anchor import (
    AnchorSource,
    ConfigurationAnchor,
    anchor_hash,
    build_configuration_anchor,
    parse_configuration_anchor,
)
from security_server.core.globalconf.directory import (
    CONFIGURATION_VERSION,
    PRIVATE_PARAMETERS,
    SHARED_PARAMETERS,
    DirectoryEntry,
    SignedDirectory,
    Signer,
    VerifiedDirectory,
    build_signed_directory,
    parse_signed_directory,
    verify_part,
    verify_signed_directory,
)
from security_server.core.globalconf.globalconf import GlobalConf, assemble_global_conf
from security_server.core.globalconf.monitoringparams import (
    MONITORING_FILE,
    MONITORING_PARAMETERS,
    build_monitoring_parameters,
    parse_monitoring_parameters,
)
from security_server.core.globalconf.privateparams import (
    ManagementService,
    PrivateParameters,
    build_private_parameters,
    parse_private_parameters,
)
from security_server.core.globalconf.sharedparams import (
    ApprovedCa,
    ApprovedTsa,
    CaInfo,
    ConfigurationSource,
    GlobalGroup,
    GlobalSettings,
    MemberClass,
    MemberInfo,
    OcspResponder,
    SecurityServerInfo,
    SharedParameters,
    build_shared_parameters,
    parse_shared_parameters,
)

__all__ = [
    "CONFIGURATION_VERSION",
    "MONITORING_FILE",
    "MONITORING_PARAMETERS",
    "PRIVATE_PARAMETERS",
    "SHARED_PARAMETERS",
    "AnchorSource",
    "ApprovedCa",
    "ApprovedTsa",
    "CaInfo",
    "ConfigurationAnchor",
    "ConfigurationSource",
    "DirectoryEntry",
    "GlobalConf",
    "GlobalGroup",
    "GlobalSettings",
    "ManagementService",
    "MemberClass",
    "MemberInfo",
    "OcspResponder",
    "PrivateParameters",
    "SecurityServerInfo",
    "SharedParameters",
    "SignedDirectory",
    "Signer",
    "VerifiedDirectory",
    "anchor_hash",
    "assemble_global_conf",
    "build_configuration_anchor",
    "build_monitoring_parameters",
    "build_private_parameters",
    "build_shared_parameters",
    "build_signed_directory",
    "parse_configuration_anchor",
    "parse_monitoring_parameters",
    "parse_private_parameters",
    "parse_shared_parameters",
    "parse_signed_directory",
    "verify_part",
    "verify_signed_directory",
]
