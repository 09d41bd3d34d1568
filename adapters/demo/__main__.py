"""``python -m adapters.demo``: the same as ``fedbus demo``."""

from __future__ import annotations

from adapters.demo.cli import demo

if __name__ == "__main__":
    demo()
