"""``crm-upsell init``: a config file made from the documented example, checked before it is written."""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from importlib import resources
from pathlib import Path

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.secrets import parse_ref

EXAMPLE_NAME = "config.example.toml"


def example_text() -> str:
    """The shipped example config (packaged with the wheel; the repository copy in a checkout)."""
    packaged = resources.files("crm_upsell_connector").joinpath(EXAMPLE_NAME)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / EXAMPLE_NAME
    try:
        return checkout.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(f"the example config {EXAMPLE_NAME} is missing from this installation") from None


def render_config(
    *, crm: str, name: str, token_ref: str, base_url: str | None = None, store_url: str | None = None
) -> str:
    parse_ref(token_ref)
    text = example_text()
    text = text.replace("[connections.main]", f"[connections.{name}]").replace(
        "[connections.main.settings]", f"[connections.{name}.settings]"
    )
    text = re.sub(r'(?m)^crm = "[a-z]+"', f'crm = "{crm}"', text, count=1)
    text = re.sub(r'(?m)^token = "[^"]*"', f'token = "{token_ref}"', text, count=1)
    if base_url:
        text = re.sub(r'(?m)^# base_url = "[^"]*"', f'base_url = "{base_url}"', text, count=1)
    if store_url:
        text = re.sub(r'(?m)^# url = "[^"]*"', f'url = "{store_url}"', text, count=1)
    parse_config(tomllib.loads(text), "the new config")
    return text


def write_config(
    path: Path,
    *,
    crm: str,
    name: str,
    token_ref: str,
    base_url: str | None = None,
    store_url: str | None = None,
    force: bool = False,
) -> Path:
    """Write the config atomically; refuses to overwrite unless ``force``."""
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists", hint="use --force to overwrite it, or --config for another path"
        )
    text = render_config(crm=crm, name=name, token_ref=token_ref, base_url=base_url, store_url=store_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
