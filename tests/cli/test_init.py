"""``crm-upsell init``: every installed connector's settings from flags, written uncommented."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from crm_upsell_connector.cli import main
from crm_upsell_connector.config import load_config
from crm_upsell_connector.connector import load_plugins


def _settings(path: Path) -> dict[str, Any]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    settings: dict[str, Any] = data["connections"]["main"]["settings"]
    return settings


def _init(tmp_path: Path, *args: str) -> tuple[int, Path]:
    path = tmp_path / "config.toml"
    return main(["init", "--config", str(path), *args]), path


def test_zoho_settings_from_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, path = _init(tmp_path, "--crm", "zoho", "--client-id", "1000.ABC", "--data-centre", "eu")

    assert code == 0, capsys.readouterr().err
    settings = _settings(path)
    assert settings["client_id"] == "1000.ABC"
    assert settings["data_centre"] == "eu"
    # required secrets get a keyring reference, uncommented, and the next steps say how to store them
    assert settings["client_secret"] == "keyring:zoho-client-secret"
    assert settings["refresh_token"] == "keyring:zoho-refresh-token"
    load_plugins()["zoho"].settings_model.model_validate(settings)
    out = capsys.readouterr().out
    assert "crm-upsell auth set zoho-client-secret" in out


def test_salesforce_settings_from_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, path = _init(
        tmp_path,
        "--crm=salesforce",
        "--login-url",
        "https://test.salesforce.com",
        "--client-id=3MVG9",
        "--username",
        "integration@example.com",
        "--private-key",
        "keyring:sf-key",
        "--rate-limit-max",
        "50",
    )

    assert code == 0, capsys.readouterr().err
    settings = _settings(path)
    assert settings["login_url"] == "https://test.salesforce.com"
    assert settings["client_id"] == "3MVG9"
    assert settings["username"] == "integration@example.com"
    assert settings["private_key"] == "keyring:sf-key"
    assert settings["rate_limit_max"] == 50  # written as a number, not text
    assert load_config(path).connection("main")[1].crm == "salesforce"


def test_hubspot_base_url_and_token_from_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, path = _init(
        tmp_path, "--crm", "hubspot", "--base-url", "http://127.0.0.1:8080", "--token", "env:HS"
    )

    assert code == 0, capsys.readouterr().err
    settings = _settings(path)
    assert settings == {"auth": "private_app", "token": "env:HS", "base_url": "http://127.0.0.1:8080"}


def test_an_unknown_settings_flag_is_a_usage_error_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, path = _init(tmp_path, "--crm", "zoho", "--client-idd", "x")

    assert code == 2
    err = capsys.readouterr().err
    assert "Usage: crm-upsell init" in err
    assert "No such option: --client-idd" in err
    assert "Did you mean --client-id?" in err
    assert not path.exists()


def test_a_pasted_secret_in_a_flag_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, path = _init(tmp_path, "--crm", "zoho", "--client-id", "x", "--client-secret", "s3cr3t-value-123")

    assert code == 2
    assert "s3cr3t-value-123" not in capsys.readouterr().err
    assert not path.exists()


def test_a_wrong_value_names_its_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, path = _init(tmp_path, "--crm", "zoho", "--client-id", "x", "--data-centre", "mars")

    assert code == 2
    assert "--data-centre" in capsys.readouterr().err
    assert not path.exists()


def test_init_help_lists_each_connectors_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--help"]) == 0
    out = capsys.readouterr().out
    assert "zoho: " in out and "--data-centre" in out
    assert "salesforce: " in out and "--login-url" in out
    assert "hubspot: " in out and "--base-url" in out


def test_interactive_init_offers_only_installed_connectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    asked: list[str] = []
    answers = iter(["pipedrive", "zoho", "1000.XYZ"])

    def prompt(text: str, default: object = None, **_: object) -> str:
        asked.append(text)
        return next(answers)

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(typer, "prompt", prompt)

    code, path = _init(tmp_path)

    assert code == 0, capsys.readouterr().err
    installed = ", ".join(sorted(load_plugins()))
    assert asked[0] == f"CRM ({installed})"
    assert asked[1] == asked[0]  # asked again: pipedrive is not installed
    assert "is not installed" in capsys.readouterr().err
    assert _settings(path)["client_id"] == "1000.XYZ"
