"""Finding and reading fedbus's INI files: defaults in ``conf/``, then ``conf.d/local.ini``, then an extra file.

This is the I/O half of :mod:`security_server.core.config`: it only locates files and reads their text.
"""

from __future__ import annotations

import sys
from pathlib import Path

from security_server.core.config import IniLayer, LayeredConfig
from security_server.core.errors import ConfigurationError


def shipped_dir(name: str) -> Path:
    """The ``conf`` or ``schemas`` folder: beside the packages in a checkout, else under ``share/fedbus``."""
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    installed = Path(sys.prefix) / "share" / "fedbus" / name
    if installed.is_dir():
        return installed
    raise ConfigurationError(f"cannot find fedbus's {name} folder (looked in {checkout} and {installed})")


def load_config(role: str, *, local_dir: Path | None = None, extra: Path | None = None) -> LayeredConfig:
    """Merge ``conf/<role>.ini``, ``<local_dir>/local.ini`` (default ``conf.d``) and ``extra``, in that order.

    A missing defaults file or a missing ``extra`` file is an error; a missing ``local.ini`` is not.
    """
    paths: list[tuple[Path, bool]] = [(shipped_dir("conf") / f"{role}.ini", True)]
    paths.append(((local_dir if local_dir is not None else Path("conf.d")) / "local.ini", False))
    if extra is not None:
        paths.append((extra, True))
    layers = []
    for path, required in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as err:
            if required:
                raise ConfigurationError(f"{path}: configuration file not found") from err
            continue
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigurationError(f"{path}: cannot read configuration file: {err}") from err
        layers.append(IniLayer(str(path), text))
    return LayeredConfig.from_layers(layers)
