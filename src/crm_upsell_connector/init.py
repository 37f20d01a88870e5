"""``crm-upsell init``: a config file made from the documented example, checked before it is written."""

from __future__ import annotations

import json
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
    if crm != _EXAMPLE_CRM:
        text = _replace_settings(text, name, crm)
    parse_config(tomllib.loads(text), "the new config")
    return text


_EXAMPLE_CRM = "hubspot"
_SECRET_FIELDS = ("token", "client_secret", "refresh_token", "private_key")


def _replace_settings(text: str, name: str, crm: str) -> str:
    """The example's HubSpot settings swapped for the named connector's, each key documented."""
    from crm_upsell_connector.connector import load_plugins

    plugins = load_plugins()
    if crm not in plugins:
        raise ConfigError(
            f"no connector named {crm!r} is installed", hint=f"installed: {', '.join(sorted(plugins))}"
        )
    header = f"[connections.{name}.settings]"
    start = text.index(header)
    end = text.index("\n\n", start)
    lines = [header, f"# {plugins[crm].title} settings; see the connector's README for the set-up steps."]
    for key, info in plugins[crm].settings_model.model_fields.items():
        if info.description:
            lines.append(f"# {info.description}")
        if key in _SECRET_FIELDS:
            lines.append(f'# {key} = "keyring:{crm}-{key.replace("_", "-")}"')
        elif info.default is not None and isinstance(info.default, (str, int, float, bool)):
            lines.append(f"# {key} = {json.dumps(info.default)}")
        else:
            lines.append(f'# {key} = ""')
    return text[:start] + "\n".join(lines) + text[end:]


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
    write_text_atomically(path, text)
    return path


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a crash leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
