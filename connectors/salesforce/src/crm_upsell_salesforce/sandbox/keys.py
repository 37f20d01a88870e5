"""The fixed RSA key pair the sandbox trusts for the JWT bearer flow."""

from __future__ import annotations

import functools
from typing import NamedTuple

from crm_upsell_connector.sandbox.keys import deterministic_rsa_keypair

# ---- the fixed JWT key pair --------------------------------------------------------------------------


_SEED = 20_261_101


class SandboxKeypair(NamedTuple):
    """PEM texts: the private key signs JWT assertions (client side), the public key verifies them."""

    private_pem: str
    public_pem: str


@functools.cache
def sandbox_keypair() -> SandboxKeypair:
    """The RSA-2048 key pair the sandbox trusts for the JWT bearer flow.

    Derived from a fixed seed, so it is the same in every process; computed once (about half a second)
    on first use and cached.
    """
    return SandboxKeypair(*deterministic_rsa_keypair(_SEED))
