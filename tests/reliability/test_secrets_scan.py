"""Secrets, for every CRM: no token, secret or refresh token appears in logs (DEBUG, ``-vv``), error
messages, reports, the store or the outbox, even with failures injected; TLS verification is never
turned off and plain http is refused for anything but loopback; the store file is created 0600.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from crm_upsell_connector.cli import main
from crm_upsell_connector.connector import load_plugins
from crm_upsell_connector.errors import AuthError, ConnectorError
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.server import FaultOptions, SandboxOptions
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store

from .faults_support import (
    CRMS,
    CrmEnv,
    crm_env,
    dump_store,
    run_pipeline,
    setup_fields,
    use_hubspot_oauth,
    write_cli_config,
)

REPO = Path(__file__).resolve().parents[2]
FAULTS = FaultOptions(seed=6, error_rate=0.1, drop_rate=0.05, partial_batch_rate=0.3)


def planted() -> dict[str, str]:
    """Distinctive credentials no code would ever print by accident."""
    tag = uuid.uuid4().hex
    return {
        "token": f"pat-na1-PLANTEDTOKEN{tag}",
        "client_secret": f"PLANTEDCLIENTSECRET{tag}",
        "refresh_token": f"PLANTEDREFRESH{tag}",
    }


def issued_tokens(env: CrmEnv) -> set[str]:
    """Every access token the sandbox handed out (they are secrets too)."""
    return set(getattr(env.state(), "tokens", {}))


def store_texts(env: CrmEnv) -> list[str]:
    """Every row of every table, and the raw bytes of the store and its journal files."""
    engine = open_store(env.store_url)
    try:
        texts = [repr(dump_store(engine))]
    finally:
        engine.dispose()
    for path in env.store_path.parent.glob(env.store_path.name + "*"):
        texts.append(path.read_bytes().decode("latin-1"))
    return texts


def assert_no_secret(secrets: set[str], texts: dict[str, str]) -> None:
    assert all(len(s) >= 16 for s in secrets), "planted values must be distinctive"
    leaks = [
        (where, secret[:12] + "...") for where, text in texts.items() for secret in secrets if secret in text
    ]
    assert leaks == [], f"secrets found in: {leaks}"


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(str(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


@pytest.mark.parametrize("crm", CRMS)
async def test_no_secret_in_logs_errors_reports_or_store(
    crm: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    values = planted()
    with crm_env(crm, tmp_path, accounts=25, seed=41, **values) as env:
        use_hubspot_oauth(env)
        errors: list[str] = []
        reports: list[str] = []
        session = env.session()
        try:
            await setup_fields(session)
            env.set_faults(**FAULTS.model_dump())
            first = await run_pipeline(session)
            env.state().expire_tokens()
            second = await run_pipeline(session)
            reports += [
                repr(first.report),
                repr(second.report),
                first.plan.render(),
                repr(first.plan.to_json()),
            ]
            assert first.report.failed, "the injected faults should fail some writes"
        finally:
            session.engine.dispose()

        # Wrong credentials: the refusal names neither the wrong nor the right value.
        wrong = {k: f"WRONG{v}" for k, v in env.secrets_env().items()}
        bad = Session.open(session.config, "demo", secrets=SecretResolver(environ=wrong))
        try:
            with pytest.raises(ConnectorError) as refused:
                async with bad.connector() as connector:
                    await bad.sync(connector)
            assert isinstance(refused.value, AuthError), refused.value
            errors += [str(refused.value), refused.value.one_line(), repr(refused.value)]
        finally:
            bad.engine.dispose()

        secrets = set(values.values()) | issued_tokens(env) | set(wrong.values())
        texts = {"logs": log_text(caplog), "errors": "\n".join(errors), "reports": "\n".join(reports)}
        texts.update({f"store{i}": t for i, t in enumerate(store_texts(env))})
        assert caplog.records, "DEBUG logging should have captured something"
        assert_no_secret(secrets, texts)
        assert stat.S_IMODE(os.stat(env.store_path).st_mode) == 0o600


@pytest.mark.parametrize("crm", CRMS)
def test_cli_vv_with_failures_prints_no_secret(
    crm: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Under pytest the root logger already has handlers, so -vv's basicConfig adds none: capture DEBUG
    # here instead (the CLI still installs its redacting filter on these handlers).
    caplog.set_level(logging.DEBUG)
    values = planted()
    with crm_env(crm, tmp_path, accounts=25, seed=42, **values) as env:
        for name, value in env.secrets_env().items():
            monkeypatch.setenv(name, value)
        config = write_cli_config(env, tmp_path / "config.toml")
        assert main(["--config", str(config), "-vv", "setup"]) == 0
        env.set_faults(**FAULTS.model_dump())
        assert main(["--config", str(config), "-vv", "run"]) == 1
        env.faults_off()
        env.state().expire_tokens()
        assert main(["--config", str(config), "-vv", "check"]) == 0
        for name, value in env.secrets_env().items():
            monkeypatch.setenv(name, "WRONG" + value)
        assert main(["--config", str(config), "-vv", "sync"]) == 3
        out, err = capsys.readouterr()
        secrets = (
            set(values.values()) | issued_tokens(env) | {"WRONG" + v for v in env.secrets_env().values()}
        )
        texts = {"stdout": out, "stderr": err, "logs": log_text(caplog)}
        texts.update({f"store{i}": t for i, t in enumerate(store_texts(env))})
        assert "failed" in out
        assert any(r.levelno == logging.DEBUG for r in caplog.records), "-vv should log at DEBUG"
        assert_no_secret(secrets, texts)
        assert stat.S_IMODE(os.stat(env.store_path).st_mode) == 0o600


# ---- TLS ------------------------------------------------------------------------------------------------

URL_SETTINGS = [
    ("hubspot", "base_url", "https://api.hubapi.com"),
    ("hubspot", "token_url", "https://api.hubapi.com/oauth/v1/token"),
    ("salesforce", "login_url", "https://acme.my.salesforce.com"),
    ("zoho", "accounts_url", "https://accounts.zoho.eu"),
    ("zoho", "api_domain", "https://www.zohoapis.eu"),
]


@pytest.mark.parametrize(("crm", "key", "https_url"), URL_SETTINGS)
def test_plain_http_is_refused_except_on_loopback(crm: str, key: str, https_url: str) -> None:
    plugin = load_plugins()[crm]
    base: dict[str, Any] = dict(plugin.sandbox_settings("https://127.0.0.1:1", SandboxOptions(accounts=1)))
    model = plugin.settings_model

    def settings(url: str) -> Any:
        return model.model_validate({**base, key: url})

    assert settings(https_url) is not None
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080"):
        settings(f"http://{host}")
    plain = https_url.replace("https://", "http://")
    for url in (plain, "http://10.0.0.5:8080", "http://127.0.0.1.evil.example"):
        with pytest.raises(ValidationError) as refused:
            settings(url)
        assert "https" in str(refused.value)


def test_no_code_turns_tls_verification_off() -> None:
    pattern = re.compile(
        r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context|"
        r"PYTHONHTTPSVERIFY|verify_ssl\s*=\s*False"
    )
    roots = [REPO / "src", *sorted((REPO / "connectors").glob("*/src"))]
    files = [p for root in roots for p in root.rglob("*.py")]
    assert len(files) > 20
    found = [
        f"{p.relative_to(REPO)}:{n}"
        for p in files
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_store_file_is_created_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "store.sqlite3"
    old = os.umask(0)
    try:
        engine = open_store(f"sqlite:///{path}")
        with engine.begin():
            pass
        engine.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_scan_finds_a_planted_value() -> None:
    """The scanner itself works: a leak is reported with where it was found."""
    secret = planted()["client_secret"]
    with pytest.raises(AssertionError, match="stdout"):
        assert_no_secret({secret}, {"stdout": f"oops {secret} here", "stderr": ""})
