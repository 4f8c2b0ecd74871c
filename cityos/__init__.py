"""cityos: a reference city-OS platform (都市OS) — OIDC provider, NGSI-LD subset, consent registry.

Run it with ``python -m cityos``; start it from tests with ``cityos.testing.run_cityos``.
See docs/cityos.md for ports, accounts, endpoints and the rules it enforces.
"""
from cityos.settings import Settings

__all__ = ["Settings"]
