"""``crm-upsell init``: a config file made from the documented example, checked before it is written."""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

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


SECRET_FIELDS = ("token", "client_secret", "refresh_token", "private_key")
_EXAMPLE_CRM = "hubspot"


def render_config(
    *,
    crm: str,
    name: str,
    token_ref: str | None = None,
    base_url: str | None = None,
    store_url: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """The example config for one connection; every setting given is written uncommented.

    ``settings`` are the connector's settings keys (validated values); ``token_ref`` and ``base_url``
    are shorthands for the ``token`` and ``base_url`` keys. Secret keys must be references.
    """
    given: dict[str, Any] = dict(settings or {})
    if token_ref is not None:
        given.setdefault("token", token_ref)
    if base_url:
        given.setdefault("base_url", base_url)
    for key in SECRET_FIELDS:
        if key in given:
            parse_ref(str(given[key]))
    text = example_text()
    text = text.replace("[connections.main]", f"[connections.{name}]").replace(
        "[connections.main.settings]", f"[connections.{name}.settings]"
    )
    text = re.sub(r'(?m)^crm = "[a-z]+"', f'crm = "{crm}"', text, count=1)
    if store_url:
        text = re.sub(r'(?m)^# url = "[^"]*"', f"url = {json.dumps(store_url)}", text, count=1)
    if crm == _EXAMPLE_CRM:
        text = _set_example_settings(text, name, given)
    else:
        text = _replace_settings(text, name, crm, given)
    parse_config(tomllib.loads(text), "the new config")
    return text


def _settings_block(text: str, name: str) -> tuple[int, int]:
    header = f"[connections.{name}.settings]"
    start = text.index(header)
    end = text.find("\n\n", start)
    return start, len(text) if end < 0 else end


def _set_example_settings(text: str, name: str, given: Mapping[str, Any]) -> str:
    """The example's HubSpot block with each given key set (uncommented where the example comments it)."""
    start, end = _settings_block(text, name)
    block = text[start:end]
    for key, value in given.items():
        line = f"{key} = {toml_value(value)}"
        pattern = re.compile(rf"(?m)^(# )?{re.escape(key)} = .*$")
        found = pattern.search(block)
        if found:
            block = block[: found.start()] + line + block[found.end() :]
        else:
            block += "\n" + line
    return text[:start] + block + text[end:]


def toml_value(value: Any) -> str:
    """A setting's value as TOML writes it (strings quoted, numbers and booleans bare, lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _replace_settings(text: str, name: str, crm: str, given: Mapping[str, Any]) -> str:
    """The example's HubSpot settings swapped for the named connector's, each key documented.

    Keys given are written uncommented; required secrets not given get a ``keyring:`` reference so
    that ``crm-upsell auth set`` is all that is left to do; other keys stay commented with their default.
    """
    from crm_upsell_connector.connector import load_plugins

    plugins = load_plugins()
    if crm not in plugins:
        raise ConfigError(
            f"no connector named {crm!r} is installed", hint=f"installed: {', '.join(sorted(plugins))}"
        )
    start, end = _settings_block(text, name)
    lines = [
        f"[connections.{name}.settings]",
        f"# {plugins[crm].title} settings; see the connector's README for the set-up steps.",
    ]
    for key, info in plugins[crm].settings_model.model_fields.items():
        if info.description:
            lines.append(f"# {info.description}")
        if key in given:
            lines.append(f"{key} = {toml_value(given[key])}")
        elif key in SECRET_FIELDS:
            ref = f'"keyring:{crm}-{key.replace("_", "-")}"'
            lines.append(f"{key} = {ref}" if info.is_required() else f"# {key} = {ref}")
        elif info.is_required():
            lines.append(f'# {key} = ""   (required: fill it in)')
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
    token_ref: str | None = None,
    base_url: str | None = None,
    store_url: str | None = None,
    force: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write the config atomically; refuses to overwrite unless ``force``."""
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists", hint="use --force to overwrite it, or --config for another path"
        )
    text = render_config(
        crm=crm, name=name, token_ref=token_ref, base_url=base_url, store_url=store_url, settings=settings
    )
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
