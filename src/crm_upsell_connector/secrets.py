"""Secret references: ``keyring:NAME`` or ``env:VARIABLE``, never secret values in files.

``keyring:NAME`` reads the system keyring (service ``crm-upsell-connector``); on a headless server
or in CI the environment variable ``CRM_UPSELL_<NAME>`` (upper case, ``-`` as ``_``) overrides it,
so ``keyring:hubspot-token`` can come from ``CRM_UPSELL_HUBSPOT_TOKEN``. Every value resolved is
registered for redaction before it is returned.

A keyring backend that keeps secrets readable in a file (keyrings.alt's ``PlaintextKeyring``, which
base64-encodes them, or any plain-text/base64 backend) is refused with the reason, unless
``CRM_UPSELL_ALLOW_INSECURE_KEYRING=1`` allows it explicitly. A missing secret names the config key
that refers to it and the environment variable that would supply it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from crm_upsell_connector.errors import AuthError, ConfigError
from crm_upsell_connector.http.redact import register_secret

SERVICE = "crm-upsell-connector"
ALLOW_INSECURE_ENV = "CRM_UPSELL_ALLOW_INSECURE_KEYRING"
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


def secret_ref_field(value: str | None) -> str | None:
    """A settings field holding a secret reference, for a pydantic ``field_validator``: the value
    unchanged (None stays None), or ``ValueError`` with ``parse_ref``'s one-line message."""
    if value is None:
        return None
    try:
        parse_ref(value)
    except ConfigError as exc:
        raise ValueError(exc.one_line()) from None
    return value


class SecretResolver:
    """Resolves references; ``environ`` is injectable for tests.

    ``config_keys`` maps a reference to the config key holding it (``connections.main.settings.token``),
    so that a missing secret says where it is asked for; ``note_config_keys`` fills it from a
    connection's settings.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, *, allow_insecure: bool | None = None
    ) -> None:
        self._environ = environ if environ is not None else os.environ
        self._allow_insecure = allow_insecure
        self.config_keys: dict[str, str] = {}

    @property
    def allow_insecure(self) -> bool:
        if self._allow_insecure is not None:
            return self._allow_insecure
        return self._environ.get(ALLOW_INSECURE_ENV, "").strip().lower() in ("1", "true", "yes")

    def note_config_keys(self, connection: str, settings: Mapping[str, Any]) -> None:
        """Remember which settings key of ``connection`` holds each reference."""
        for key, value in settings.items():
            if isinstance(value, str) and value.startswith(("keyring:", "env:")):
                self.config_keys.setdefault(value, f"connections.{connection}.settings.{key}")

    def _where(self, ref: str) -> str:
        key = self.config_keys.get(ref)
        return f" ({key} = '{ref}')" if key else ""

    def resolve(self, ref: str, *, what: str) -> str:
        scheme, name = parse_ref(ref)
        if scheme == "env":
            value = self._environ.get(name)
            if not value:
                raise AuthError(
                    f"{what}: environment variable {name} is not set{self._where(ref)}",
                    hint=f"export {name}=...",
                )
            register_secret(value)
            return value
        override = self._environ.get(env_name(name))
        if override:
            register_secret(override)
            return override
        value = self._keyring_get(name)
        if not value:
            raise AuthError(
                f"{what}: no secret named '{name}' in the keyring and {env_name(name)} is not set"
                f"{self._where(ref)}",
                hint=f"run 'crm-upsell auth set {name}', or set {env_name(name)} on a headless machine",
            )
        register_secret(value)
        return value

    def check_backend(self) -> str:
        """The keyring backend's name, or AuthError where there is none or it is not safe for secrets."""
        keyring = _keyring(self.allow_insecure)
        backend = keyring.get_keyring()
        return f"{type(backend).__module__}.{type(backend).__name__}"

    def _keyring_get(self, name: str) -> str | None:
        try:
            keyring = _keyring(self.allow_insecure)
        except AuthError as exc:
            raise AuthError(f"{exc.message}; or set {env_name(name)} instead", hint=exc.hint) from None
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
        keyring = _keyring(self.allow_insecure)
        register_secret(value)
        try:
            keyring.set_password(SERVICE, name, value)
        except keyring.errors.KeyringError as exc:
            raise AuthError(f"the keyring refused to store '{name}' ({type(exc).__name__})") from None

    def delete(self, name: str) -> bool:
        """Remove a stored secret; False where there was none."""
        parse_ref(f"keyring:{name}")
        keyring = _keyring(allow_insecure=True)  # deleting from an unsafe store only makes it safer
        try:
            keyring.delete_password(SERVICE, name)
        except keyring.errors.PasswordDeleteError:
            return False
        except keyring.errors.KeyringError as exc:
            raise AuthError(f"the keyring refused to delete '{name}' ({type(exc).__name__})") from None
        return True


def insecure_reason(backend: Any) -> str | None:
    """Why a keyring backend is not safe for secrets, or None where it is."""
    cls = type(backend)
    name = f"{cls.__module__}.{cls.__name__}"
    lowered = name.lower()
    if "plaintext" in lowered or "base64" in lowered:
        return f"{name} keeps secrets in a file anyone who can read it can decode (plain text or base64)"
    if cls.__module__.startswith("keyring.backends.null"):
        return f"{name} stores nothing"
    for inner in getattr(backend, "backends", ()) or ():
        reason = insecure_reason(inner)
        if reason:
            return reason
    return None


def _keyring(allow_insecure: bool = False) -> Any:
    """The keyring module, or a clear error where this machine has no usable, safe backend."""
    import keyring
    import keyring.errors
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (
        type(backend).__name__ == "ChainerBackend" and not getattr(backend, "backends", True)
    ):
        raise AuthError(
            "no keyring backend is available on this machine",
            hint="install one (a Secret Service such as gnome-keyring, KWallet, macOS Keychain, "
            "Windows Credential Locker), or give secrets as CRM_UPSELL_<NAME> environment variables",
        )
    reason = insecure_reason(backend)
    if reason and not allow_insecure:
        raise AuthError(
            f"the keyring backend is not safe for secrets: {reason}",
            hint=f"use a system keyring or CRM_UPSELL_<NAME> environment variables; to use this backend "
            f"anyway set {ALLOW_INSECURE_ENV}=1",
        )
    return keyring
