"""Deterministic RSA key pairs for sandboxes: the same key in every process, derived from a seed.

A sandbox that verifies signed assertions (Salesforce's JWT bearer flow) needs a key its tests can
sign with without files or key generation at run time; deriving it from a fixed seed gives every
process (server, connector fixtures, benchmarks) the same key. Never use these keys outside a sandbox.
"""

from __future__ import annotations

import math
import random

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["deterministic_rsa_keypair"]

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]
_SMALL_PRODUCT = math.prod(_SMALL_PRIMES)


def _probable_prime(n: int, rng: random.Random) -> bool:
    if math.gcd(n, _SMALL_PRODUCT) != 1:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: random.Random, bits: int, e: int) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if (candidate - 1) % e and _probable_prime(candidate, rng):
            return candidate


def deterministic_rsa_keypair(seed: int) -> tuple[str, str]:
    """(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM) of an RSA-2048 key derived from ``seed``."""
    # Derived from a fixed seed so every process (and a connector's test fixtures) sees the same key.
    rng = random.Random(seed)
    e = 65_537
    p = _prime(rng, 1024, e)
    q = _prime(rng, 1024, e)
    while q == p:
        q = _prime(rng, 1024, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    key = numbers.private_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private_pem, public_pem
