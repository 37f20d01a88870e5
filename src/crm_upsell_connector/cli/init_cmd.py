"""``crm-upsell init``: every installed connector's settings as flags, prompts only for installed CRMs.

A connector's settings key ``client_id`` is the flag ``--client-id`` (``--data-centre``,
``--login-url``, ``--base-url``...). The flags are read after click has parsed the command's own
options, so they follow the connector chosen with ``--crm``; an unknown one is a usage error with the
nearest valid flag suggested, like any other unknown option.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperCommand

from crm_upsell_connector.errors import ConfigError

#: the options ``init`` declares itself (besides the connector's settings).
OWN_FLAGS = ("--crm", "--name", "--token", "--store-url", "--force", "--no-force", "--help")


def flag_for(key: str) -> str:
    return "--" + key.replace("_", "-")


class InitCommand(TyperCommand):
    """``init --help`` lists the settings flags of every installed connector (loaded only for the help)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.epilog = settings_help()
        super().format_help(ctx, formatter)


def settings_help() -> str:
    from crm_upsell_connector.connector import load_plugins

    parts = ["Connection settings, by connector (each settings key as a flag, e.g. --client-id ID):"]
    for name, plugin in sorted(load_plugins().items()):
        flags = " ".join(flag_for(k) for k in plugin.settings_model.model_fields)
        parts.append(f"{name}: {flags}")
    return "\n\n".join(parts)


def parse_setting_flags(ctx: typer.Context, args: list[str], crm: str, model: Any) -> dict[str, str]:
    """``--client-id X --data-centre=eu`` as ``{"client_id": "X", "data_centre": "eu"}``."""
    known = {flag_for(k): k for k in model.model_fields}
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        token = args[i]
        flag, eq, inline = token.partition("=")
        if not flag.startswith("--"):
            raise UsageError(f"Got unexpected extra argument ({token})", ctx=ctx)
        if flag not in known:
            close = difflib.get_close_matches(flag, [*known, *OWN_FLAGS], n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise UsageError(
                f"No such option: {flag} (the {crm} connector's settings are {', '.join(known)}).{hint}",
                ctx=ctx,
            )
        if eq:
            value = inline
        elif i + 1 < len(args):
            i += 1
            value = args[i]
        else:
            raise UsageError(f"Option '{flag}' requires an argument.", ctx=ctx)
        values[known[flag]] = value
        i += 1
    return values


def validated_settings(crm: str, model: Any, raw: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The given settings as their typed values, and the required keys still missing.

    Every wrong value is reported at once, each under its flag.
    """
    from pydantic import ValidationError

    try:
        parsed = model.model_validate(raw)
        missing: list[str] = []
    except ValidationError as exc:
        problems = []
        missing = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "missing":
                missing.append(key)
            elif key in raw:
                problems.append(f"{flag_for(key)}: {err['msg'].removeprefix('Value error, ')}")
            elif not key:
                # A check across keys (e.g. "auth = 'oauth' needs client_id"): it may pass once filled in.
                continue
        if problems:
            raise ConfigError(f"{crm} settings: " + "; ".join(problems)) from None
        return {k: _typed(model, k, v) for k, v in raw.items()}, missing
    return {k: getattr(parsed, k) for k in raw}, missing


def _typed(model: Any, key: str, value: str) -> Any:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(model.model_fields[key].annotation).validate_python(value)
    except ValidationError:
        return value


def run_init(
    ctx: typer.Context,
    *,
    config: Path | None,
    crm: str | None,
    name: str,
    token: str | None,
    store_url: str | None,
    force: bool,
) -> None:
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.config import default_config_path
    from crm_upsell_connector.connector import load_plugins
    from crm_upsell_connector.init import SECRET_FIELDS, write_config

    plugins = load_plugins()
    if not plugins:
        raise ConfigError(
            "no connector is installed", hint="install one, e.g. 'pip install crm-upsell-hubspot'"
        )
    installed = sorted(plugins)
    interactive = sys.stdin.isatty()
    if crm is None:
        default = "hubspot" if "hubspot" in plugins else installed[0]
        crm = _choose(installed, default) if interactive else default
    if crm not in plugins:
        raise ConfigError(
            f"no connector named {crm!r} is installed", hint=f"installed: {', '.join(installed)}"
        )
    model = plugins[crm].settings_model
    raw = parse_setting_flags(ctx, list(ctx.args), crm, model)
    if token is not None:
        if "token" not in model.model_fields:
            raise UsageError(
                f"--token is HubSpot's private-app token; {crm} takes "
                f"{', '.join(flag_for(k) for k in SECRET_FIELDS if k in model.model_fields)}",
                ctx=ctx,
            )
        raw.setdefault("token", token)
    if crm == "hubspot" and "token" not in raw and raw.get("auth", "private_app") == "private_app":
        default_ref = f"keyring:{crm}-token"
        raw["token"] = (
            typer.prompt("Secret reference for the token", default=default_ref)
            if interactive
            else default_ref
        )
    settings, missing = validated_settings(crm, model, raw)
    if interactive:
        for key in [k for k in missing if k not in SECRET_FIELDS]:
            raw[key] = typer.prompt(f"{crm} {key} ({model.model_fields[key].description or key})")
        settings, missing = validated_settings(crm, model, raw)
    path = config or default_config_path()
    written = write_config(path, crm=crm, name=name, store_url=store_url, force=force, settings=settings)
    output.console.print(f"wrote {written}")
    secrets = [
        str(v).partition(":")[2]
        for k, v in _secret_refs(written, name).items()
        if str(v).startswith("keyring:") and k in SECRET_FIELDS
    ]
    todo = [
        f"fill in {', '.join(k for k in missing if k not in SECRET_FIELDS)} in [connections.{name}.settings]"
    ]
    if not [k for k in missing if k not in SECRET_FIELDS]:
        todo = []
    todo += [f"crm-upsell auth set {s}" for s in secrets]
    todo.append("crm-upsell init --discover (proposes the field mapping and catalogue from your CRM)")
    todo.append("crm-upsell check")
    output.console.print("next: " + ", then ".join(todo))


def _secret_refs(path: Path, name: str) -> dict[str, Any]:
    import tomllib

    data = tomllib.loads(path.read_text(encoding="utf-8"))
    settings: dict[str, Any] = data["connections"][name].get("settings", {})
    return settings


def _choose(installed: list[str], default: str) -> str:
    """Ask for a CRM among the installed connectors, until the answer is one of them."""
    while True:
        answer = str(typer.prompt(f"CRM ({', '.join(installed)})", default=default)).strip().lower()
        if answer in installed:
            return answer
        typer.echo(f"{answer!r} is not installed; choose one of {', '.join(installed)}", err=True)
