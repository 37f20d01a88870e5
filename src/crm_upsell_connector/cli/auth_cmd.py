"""``crm-upsell auth set NAME`` and ``auth delete NAME``: secrets in the system keyring."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from crm_upsell_connector.cli.app import app
from crm_upsell_connector.errors import ConfigError

auth_app = typer.Typer(
    help="Store or delete secrets in the system keyring.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(auth_app, name="auth")


@auth_app.command("set")
def auth_set(
    name: Annotated[str, typer.Argument(help="the name used in the config, e.g. hubspot-token")],
) -> None:
    """Store a secret in the keyring (asked for without echo, or read from standard input)."""
    import getpass

    from crm_upsell_connector.cli import output
    from crm_upsell_connector.secrets import SecretResolver, parse_ref

    parse_ref(f"keyring:{name}")
    resolver = SecretResolver()
    resolver.check_backend()  # before asking for the value: no secret typed in for nothing
    value = getpass.getpass(f"value for {name}: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    resolver.store(name, value)
    output.console.print(f"stored {name} in the keyring")


@auth_app.command("delete")
def auth_delete(name: Annotated[str, typer.Argument(help="the secret's name")]) -> None:
    """Remove a secret from the keyring."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.secrets import SecretResolver

    if SecretResolver().delete(name):
        output.console.print(f"deleted {name}")
    else:
        raise ConfigError(f"no secret named {name!r} in the keyring")
