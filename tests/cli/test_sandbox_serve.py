"""``crm-upsell sandbox serve`` prints what to connect with: a config section and the credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from crm_upsell_connector.cli import main


@pytest.mark.parametrize("crm", ["hubspot", "salesforce", "zoho"])
def test_the_instructions_hold_every_setting_and_credential(crm: str) -> None:
    from crm_upsell_connector.connector import load_plugins
    from crm_upsell_connector.demo import sandbox_instructions
    from crm_upsell_connector.sandbox.server import SandboxOptions

    plugin = load_plugins()[crm]
    text = sandbox_instructions(plugin, "http://127.0.0.1:9", SandboxOptions())
    section = "\n".join(x for x in text.splitlines() if not x.startswith(("export ", "#")))
    settings = tomllib.loads(section)["connections"]["sandbox"]["settings"]
    plugin.settings_model.model_validate(settings)
    for name, value in plugin.sandbox_secrets(SandboxOptions()).items():
        assert f"export {name}={value}" in text


@pytest.mark.parametrize("crm", ["zoho"])
def test_serve_prints_a_config_and_credentials_that_work(crm: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crm_upsell_connector",
            "sandbox",
            "serve",
            "--crm",
            crm,
            "--port",
            "0",
            "--accounts",
            "12",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if len([x for x in lines if x.startswith("export ")]) == len(_secrets(crm)):
                break
        text = "\n".join(lines)
        section = "\n".join(x for x in lines if not x.startswith(("export ", "#")))
        data = tomllib.loads(section)
        settings = data["connections"]["sandbox"]["settings"]
        assert data["connections"]["sandbox"]["crm"] == crm
        environ = dict(os.environ)
        for line in lines:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                environ[name] = value.strip("'")
        assert all(name in environ for name in _secrets(crm)), text

        config = tmp_path / "config.toml"
        config.write_text(section + f'\n\n[store]\nurl = "sqlite:///{tmp_path}/s.db"\n', encoding="utf-8")
        base = next(v for k, v in settings.items() if k in ("base_url", "login_url", "accounts_url"))
        _wait_up(base)
        done = subprocess.run(
            [sys.executable, "-m", "crm_upsell_connector", "--config", str(config), "check"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # The printed settings and credentials get in (the product's fields are not set up yet).
        assert "ok   credentials" in done.stdout, done.stdout + done.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)


def _secrets(crm: str) -> list[str]:
    from crm_upsell_connector.connector import load_plugins
    from crm_upsell_connector.sandbox.server import SandboxOptions

    return sorted(load_plugins()[crm].sandbox_secrets(SandboxOptions()))


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)


def test_serve_help_mentions_the_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "serve", "--help"]) == 0
    assert "credentials" in capsys.readouterr().out
