"""Secret references: keyring (the default), environment variables, and clear errors when neither works."""

from __future__ import annotations

import io
from collections.abc import Iterator

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from crm_upsell_connector.errors import AuthError, ConfigError
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.secrets import SERVICE, SecretResolver, env_name, parse_ref


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in a dict, standing in for the desktop keyring or Secret Service."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.data[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the login keyring is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("the login keyring is locked")


@pytest.fixture
def restore_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(restore_keyring: None) -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture
def no_keyring(restore_keyring: None) -> None:
    keyring.set_keyring(fail.Keyring())


# --- references ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("hubspot-token", "CRM_UPSELL_HUBSPOT_TOKEN"),
        ("sf.client_secret", "CRM_UPSELL_SF_CLIENT_SECRET"),
        ("zoho", "CRM_UPSELL_ZOHO"),
    ],
)
def test_env_name(name: str, variable: str) -> None:
    assert env_name(name) == variable


@pytest.mark.parametrize(
    "value",
    [
        "pat-na1-0123abcd-4567",
        "hubspot-token",
        "keyring:",
        "env:",
        "file:/etc/token",
        "keyring:a b",
        "keyring:" + "x" * 65,
    ],
)
def test_values_that_are_not_references_are_rejected(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ref(value)

    assert "keyring:hubspot-token" in info.value.one_line()
    assert "crm-upsell auth set NAME" in info.value.one_line()


def test_env_reference_resolves_from_the_environment() -> None:
    resolver = SecretResolver({"HUBSPOT_TOKEN": "env-secret-value-0001"})

    assert resolver.resolve("env:HUBSPOT_TOKEN", what="HubSpot token") == "env-secret-value-0001"


def test_env_reference_uses_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TEST_TOKEN_VAR", "process-env-secret-0002")

    assert SecretResolver().resolve("env:CRM_TEST_TOKEN_VAR", what="token") == "process-env-secret-0002"


@pytest.mark.parametrize("environ", [{}, {"HUBSPOT_TOKEN": ""}])
def test_missing_env_variable_says_which(environ: dict[str, str]) -> None:
    with pytest.raises(AuthError) as info:
        SecretResolver(environ).resolve("env:HUBSPOT_TOKEN", what="connections.main token")

    message = info.value.one_line()
    assert "connections.main token" in message
    assert "HUBSPOT_TOKEN is not set" in message
    assert "export HUBSPOT_TOKEN=" in message


# --- keyring -------------------------------------------------------------------------------------


def test_store_resolve_delete_round_trip(memory_keyring: MemoryKeyring) -> None:
    resolver = SecretResolver({})

    resolver.store("hubspot-token", "pat-stored-secret-0003")

    assert memory_keyring.data == {(SERVICE, "hubspot-token"): "pat-stored-secret-0003"}
    assert resolver.resolve("keyring:hubspot-token", what="HubSpot token") == "pat-stored-secret-0003"
    assert resolver.delete("hubspot-token") is True
    assert memory_keyring.data == {}
    assert resolver.delete("hubspot-token") is False


def test_missing_keyring_secret_names_the_fix(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(AuthError) as info:
        SecretResolver({}).resolve("keyring:hubspot-token", what="connections.main token")

    message = info.value.one_line()
    assert "connections.main token" in message
    assert "no secret named 'hubspot-token'" in message
    assert "crm-upsell auth set hubspot-token" in message
    assert "CRM_UPSELL_HUBSPOT_TOKEN" in message
    assert info.value.exit_code == 3


def test_environment_overrides_the_keyring(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(SERVICE, "hubspot-token", "keyring-value-0004")
    resolver = SecretResolver({"CRM_UPSELL_HUBSPOT_TOKEN": "override-value-0005"})

    assert resolver.resolve("keyring:hubspot-token", what="token") == "override-value-0005"


@pytest.mark.usefixtures("no_keyring")
def test_environment_override_works_without_any_keyring() -> None:
    # A headless server or CI: no keyring backend, the secret comes from the environment.
    resolver = SecretResolver({"CRM_UPSELL_SF_CLIENT_SECRET": "headless-value-0006"})

    assert resolver.resolve("keyring:sf.client_secret", what="client secret") == "headless-value-0006"


@pytest.mark.usefixtures("no_keyring")
def test_no_keyring_backend_is_a_clear_auth_error() -> None:
    resolver = SecretResolver({})

    with pytest.raises(AuthError) as info:
        resolver.resolve("keyring:hubspot-token", what="token")

    message = info.value.one_line()
    assert "no keyring backend is available" in message
    assert "CRM_UPSELL_" in message
    assert "Traceback" not in message


@pytest.mark.usefixtures("no_keyring")
def test_storing_without_a_keyring_backend_is_a_clear_auth_error() -> None:
    with pytest.raises(AuthError, match="no keyring backend"):
        SecretResolver({}).store("hubspot-token", "pat-unstored-0007")
    with pytest.raises(AuthError, match="no keyring backend"):
        SecretResolver({}).delete("hubspot-token")


@pytest.mark.usefixtures("restore_keyring")
def test_locked_keyring_is_an_auth_error() -> None:
    keyring.set_keyring(LockedKeyring())
    resolver = SecretResolver({})

    with pytest.raises(AuthError) as info:
        resolver.resolve("keyring:hubspot-token", what="token")
    assert "could not be read (KeyringLocked)" in info.value.one_line()
    assert "CRM_UPSELL_HUBSPOT_TOKEN" in info.value.one_line()

    with pytest.raises(AuthError, match="refused to store 'hubspot-token'") as stored:
        resolver.store("hubspot-token", "pat-locked-secret-0008")
    assert "pat-locked-secret-0008" not in stored.value.one_line()


@pytest.mark.usefixtures("memory_keyring")
def test_store_rejects_empty_values_and_bad_names() -> None:
    resolver = SecretResolver({})
    with pytest.raises(ConfigError, match="empty"):
        resolver.store("hubspot-token", "")
    with pytest.raises(ConfigError):
        resolver.store("has space", "pat-value-0009")


# --- redaction of what was resolved --------------------------------------------------------------


def test_resolved_values_are_masked_everywhere(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(SERVICE, "from-keyring", "kr-resolved-secret-0010")
    resolver = SecretResolver(
        {"PLAIN_ENV": "env-resolved-secret-0011", "CRM_UPSELL_FROM_OVERRIDE": "ov-resolved-secret-0012"}
    )

    values = [
        resolver.resolve("keyring:from-keyring", what="a"),
        resolver.resolve("env:PLAIN_ENV", what="b"),
        resolver.resolve("keyring:from-override", what="c"),
    ]

    line = "sending " + " / ".join(values)
    for value in values:
        assert value not in scrub(line)


def test_stored_values_are_masked(memory_keyring: MemoryKeyring) -> None:
    SecretResolver({}).store("new-token", "freshly-stored-secret-0013")

    assert "freshly-stored-secret-0013" not in scrub("token freshly-stored-secret-0013")


# --- issue 16: where a missing secret is asked for; unsafe keyrings; auth set checks first ---------


class PlaintextKeyring(MemoryKeyring):
    """Stands in for keyrings.alt.file.PlaintextKeyring (secrets base64-encoded in a file)."""


@pytest.fixture
def plaintext_keyring(restore_keyring: None) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    return backend


def test_a_missing_secret_names_the_config_key_and_the_variable(memory_keyring: MemoryKeyring) -> None:
    resolver = SecretResolver({})
    resolver.note_config_keys("main", {"token": "keyring:hubspot-token", "base_url": "http://x"})

    with pytest.raises(AuthError) as info:
        resolver.resolve("keyring:hubspot-token", what="HubSpot private app token")

    message = info.value.one_line()
    assert "connections.main.settings.token = 'keyring:hubspot-token'" in message
    assert "CRM_UPSELL_HUBSPOT_TOKEN is not set" in message


def test_a_missing_env_secret_names_the_config_key() -> None:
    resolver = SecretResolver({})
    resolver.note_config_keys("emea", {"client_secret": "env:SF_SECRET"})

    with pytest.raises(AuthError) as info:
        resolver.resolve("env:SF_SECRET", what="Salesforce consumer secret")

    assert "environment variable SF_SECRET is not set" in info.value.one_line()
    assert "connections.emea.settings.client_secret" in info.value.one_line()


def test_an_insecure_keyring_is_refused_with_the_reason(plaintext_keyring: PlaintextKeyring) -> None:
    resolver = SecretResolver({})

    with pytest.raises(AuthError) as info:
        resolver.store("hubspot-token", "pat-value-0101")
    message = info.value.one_line()
    assert "not safe for secrets" in message
    assert "PlaintextKeyring" in message
    assert "CRM_UPSELL_ALLOW_INSECURE_KEYRING=1" in message
    assert plaintext_keyring.data == {}
    with pytest.raises(AuthError):
        resolver.resolve("keyring:hubspot-token", what="token")


def test_an_insecure_keyring_can_be_allowed_explicitly(plaintext_keyring: PlaintextKeyring) -> None:
    resolver = SecretResolver({"CRM_UPSELL_ALLOW_INSECURE_KEYRING": "1"})

    resolver.store("hubspot-token", "pat-value-0102")

    assert resolver.resolve("keyring:hubspot-token", what="token") == "pat-value-0102"


@pytest.mark.usefixtures("no_keyring")
def test_auth_set_checks_the_keyring_before_asking(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_upsell_connector.cli import main

    stdin = io.StringIO("pat-never-read-0103\n")
    monkeypatch.setattr("sys.stdin", stdin)

    assert main(["auth", "set", "hubspot-token"]) == 3

    err = capsys.readouterr().err
    assert "no keyring backend is available" in err
    assert stdin.read() == "pat-never-read-0103\n"  # the value was never asked for


def test_auth_set_refuses_an_insecure_keyring_before_asking(
    plaintext_keyring: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_upsell_connector.cli import main

    monkeypatch.delenv("CRM_UPSELL_ALLOW_INSECURE_KEYRING", raising=False)
    stdin = io.StringIO("pat-never-read-0104\n")
    monkeypatch.setattr("sys.stdin", stdin)

    assert main(["auth", "set", "hubspot-token"]) == 3
    assert "not safe for secrets" in capsys.readouterr().err
    assert stdin.read() == "pat-never-read-0104\n"
    assert plaintext_keyring.data == {}
