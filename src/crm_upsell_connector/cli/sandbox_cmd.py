"""``crm-upsell demo`` and ``crm-upsell sandbox serve``: the product against a bundled CRM sandbox."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from crm_upsell_connector.cli.app import app

sandbox_app = typer.Typer(
    help="Run a CRM sandbox (an emulator of the CRM's API) on loopback.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(sandbox_app, name="sandbox")


@app.command()
def demo(
    crm: Annotated[str, typer.Option(help="which CRM's sandbox")] = "hubspot",
    accounts: Annotated[int, typer.Option(min=10, max=50000, help="companies in the sandbox")] = 1000,
    seed: Annotated[int, typer.Option(help="scenario seed")] = 7,
    usage_csv: Annotated[
        bool,
        typer.Option("--usage-csv", help="add a product-usage CSV (seat use by domain) as a usage source"),
    ] = False,
) -> None:
    """Run the whole product against a CRM sandbox: setup, sync, score, plan, apply, and again."""
    from crm_upsell_connector.demo import run_demo

    asyncio.run(run_demo(crm=crm, accounts=accounts, seed=seed, usage_csv=usage_csv))


@sandbox_app.command("serve")
def sandbox_serve(
    crm: Annotated[str, typer.Option(help="which CRM to emulate")] = "hubspot",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port on 127.0.0.1 (0: any free one)")] = 8080,
    accounts: Annotated[int, typer.Option(min=1, max=200000, help="companies to seed")] = 1000,
    seed: Annotated[int, typer.Option(help="scenario seed")] = 7,
    latency_ms: Annotated[int, typer.Option(min=0, help="added latency per request")] = 0,
    rate_limit: Annotated[int | None, typer.Option(help="requests per rate-limit interval")] = None,
) -> None:
    """Serve a seeded CRM sandbox until interrupted.

    Prints what to connect with on standard output: a [connections.sandbox] section for a config
    file and the sandbox's fixed credentials as environment variables to export.
    """
    from crm_upsell_connector.demo import serve_sandbox

    serve_sandbox(
        crm=crm, port=port, accounts=accounts, seed=seed, latency_ms=latency_ms, rate_limit=rate_limit
    )
