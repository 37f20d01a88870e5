"""Secret references: ``keyring:NAME`` or ``env:VARIABLE``, never secret values in files.

``keyring:NAME`` reads the system keyring (service ``crm-upsell-connector``); on a headless server
or in CI the environment variable ``CRM_UPSELL_<NAME>`` (upper case, ``-`` as ``_``) overrides it,
so ``keyring:hubspot-token`` can come from ``CRM_UPSELL_HUBSPOT_TOKEN``. Every value resolved is
registered for redaction before it is returned.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from crm_upsell_connector.errors import AuthError, ConfigError
from crm_upsell_connector.http.redact import register_secret

SERVICE = "crm-upsell-connector"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def env_name(name: str) -> str:
    """The environment variable that stands in for keyring entry ``name``."""
    return "CRM_UPSELL_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def parse_ref(ref: str) -> tuple[str, str]:
    """Split a reference into (scheme, name), rejecting anything that looks like a pasted secret."""
    scheme, sep, name = ref.partition(":")
    if not sep or scheme not in ("keyring", "env") or not _NAME.match(name):
        raise ConfigError(
            "a secret must be a reference like 'keyring:hubspot-token' or 'env:HUBSPOT_TOKEN', not a value",
            hint="store the secret with 'crm-upsell auth set NAME' and put 'keyring:NAME' in the config",
        )
    return scheme, name


class SecretResolver:
    """Resolves references; ``environ`` is injectable for tests."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ

    def resolve(self, ref: str, *, what: str) -> str:
        scheme, name = parse_ref(ref)
        if scheme == "env":
            value = self._environ.get(name)
            if not value:
                raise AuthError(f"{what}: environment variable {name} is not set", hint=f"export {name}=...")
            register_secret(value)
            return value
        override = self._environ.get(env_name(name))
        if override:
            register_secret(override)
            return override
        value = self._keyring_get(name)
        if not value:
            raise AuthError(
                f"{what}: no secret named '{name}' in the keyring",
                hint=f"run 'crm-upsell auth set {name}', or set {env_name(name)} on a headless machine",
            )
        register_secret(value)
        return value

    def _keyring_get(self, name: str) -> str | None:
        keyring = _keyring()
        try:
            value: str | None = keyring.get_password(SERVICE, name)
        except keyring.errors.KeyringError as exc:
            raise AuthError(
                f"the keyring could not be read ({type(exc).__name__})",
                hint=f"unlock the keyring, or set {env_name(name)} instead",
            ) from None
        return value

    def keyring_name(self, ref: str) -> str | None:
        """The keyring entry ``ref`` reads, where writing it back changes what ``resolve`` answers:
        None for ``env:`` references and for keyring entries an environment variable overrides."""
        scheme, name = parse_ref(ref)
        if scheme != "keyring" or self._environ.get(env_name(name)):
            return None
        return name

    def store(self, name: str, value: str) -> None:
        parse_ref(f"keyring:{name}")
        if not value:
            raise ConfigError("refusing to store an empty secret")
        keyring = _keyring()
        register_secret(value)
        try:
            keyring.set_password(SERVICE, name, value)
        except keyring.errors.KeyringError as exc:
            raise AuthError(f"the keyring refused to store '{name}' ({type(exc).__name__})") from None

    def delete(self, name: str) -> bool:
        """Remove a stored secret; False where there was none."""
        parse_ref(f"keyring:{name}")
        keyring = _keyring()
        try:
            keyring.delete_password(SERVICE, name)
        except keyring.errors.PasswordDeleteError:
            return False
        except keyring.errors.KeyringError as exc:
            raise AuthError(f"the keyring refused to delete '{name}' ({type(exc).__name__})") from None
        return True


def _keyring() -> Any:
    """The keyring module, or a clear error where this machine has no usable backend."""
    import keyring
    import keyring.errors
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (
        type(backend).__name__ == "ChainerBackend" and not getattr(backend, "backends", True)
    ):
        raise AuthError(
            "no keyring backend is available on this machine",
            hint="install one (e.g. 'pip install keyrings.alt' or a Secret Service), "
            "or give secrets as CRM_UPSELL_<NAME> environment variables",
        )
    return keyring
