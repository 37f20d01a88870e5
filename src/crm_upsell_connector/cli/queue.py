"""``crm-upsell run --queue``: hand a run to the workers of a PostgreSQL store, from any host."""

from __future__ import annotations

import typer

from crm_upsell_connector.cli import output
from crm_upsell_connector.config import load_config
from crm_upsell_connector.errors import ConfigError


def queue_command(ctx: typer.Context, *, dry_run: bool, full: bool) -> None:
    """Queue one run of the chosen connection; it starts when a worker is free and no other run of
    the connection is going (the connection's locks). ``status`` shows it queued, running or failed.
    """
    from crm_upsell_connector.cli.app import _globals
    from crm_upsell_connector.jobs.admin import queue_run

    if dry_run or full:
        flag = "--dry-run" if dry_run else "--full"
        raise ConfigError(
            f"run --queue cannot be combined with {flag}: queued runs are regular runs",
            hint=f"run 'crm-upsell run {flag}' on this host instead",
        )
    g = _globals(ctx)
    config = load_config(g.config)
    name, _ = config.connection(g.connection)
    job_id = queue_run(config, name)
    output.console.print(
        f"queued job {job_id}: a run of '{name}' starts when a worker is free (see 'crm-upsell status')"
    )
