"""``crm-upsell discover``: what the CRM holds that the product can use; and ``check``'s config validation."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crm_upsell_connector.cli.app import _session, app
from crm_upsell_connector.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    from crm_upsell_connector.connector import Connector
    from crm_upsell_connector.discovery import CrmSchema
    from crm_upsell_connector.models import CheckResult
    from crm_upsell_connector.pipeline import Session
    from crm_upsell_connector.validate import Problem


@app.command()
def discover(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="everything found, as JSON")] = False,
    sample: Annotated[
        int, typer.Option(min=0, max=2000, help="accounts read to count how often each field is filled")
    ] = 200,
) -> None:
    """What the CRM holds that the product can use: account fields (types, fill), products, owners."""
    from crm_upsell_connector.cli import output

    session = _session(ctx)

    async def go() -> CrmSchema:
        async with session.connector() as connector:
            return await connector.describe(sample_size=sample)

    schema = asyncio.run(go())
    if as_json:
        output.print_json(schema.to_json())
        return
    render_schema(schema)


def render_schema(schema: CrmSchema) -> None:
    from crm_upsell_connector.cli import output

    for obj in schema.objects:
        sampled = f", fill counted over {obj.sampled} record(s)" if obj.sampled else ""
        output.console.print(f"{obj.object} = {obj.crm_name}: {len(obj.fields)} field(s){sampled}")
        for f in sorted(obj.fields, key=lambda f: f.name.lower()):
            filled = f"  {f.filled}/{obj.sampled} filled" if obj.sampled and f.filled is not None else ""
            flags = "" if f.writable else "  read-only"
            output.console.print(f"  {f.name:<36} {f.kind:<11} {f.crm_type:<14}{filled}{flags}  {f.label}")
    if schema.products is not None:
        output.console.print(f"products: {len(schema.products)}")
        for p in schema.products:
            price = f"  {p.unit_price:g}" if p.unit_price is not None else ""
            state = "" if p.active else "  (inactive)"
            output.console.print(f"  {p.sku or '(no SKU)':<24} {p.name}{price}{state}")
    if schema.owners is not None:
        output.console.print(f"owners: {len(schema.owners)}")
        for o in schema.owners:
            output.console.print(f"  {o.id:<20} {o.name} {o.email or ''}{'' if o.active else ' (inactive)'}")
    for feature, field in schema.mapped.items():
        output.console.print(f"mapped {feature} -> {field or '(no such field)'}")


def check_against_crm(session: Session) -> int:
    """``check``'s CRM part: the connector's own checks, then the config against the CRM.

    Returns the exit code: 2 (configuration error) when the config does not fit the CRM or the
    product's fields are missing, 1 when another check failed, 0 otherwise (warnings included).
    """
    from crm_upsell_connector.cli import output

    async def go() -> tuple[list[CheckResult], list[Problem] | None, bool]:
        async with session.connector() as connector:
            results = await connector.check()
            if not results or not results[0].ok:  # the credentials failed: nothing more to read
                return results, None, False
            return results, *await validate_config(session, connector)

    results, problems, no_fields = asyncio.run(go())
    output.check_results(results)
    if problems is not None:
        print_problems(problems)
    if no_fields or (problems and any(p.severity == "error" for p in problems)):
        return ConfigError.exit_code
    return 0 if all(r.ok for r in results) else 1


async def validate_config(session: Session, connector: Connector) -> tuple[list[Problem], bool]:
    """The config's problems against the CRM (see ``validate.py``), and whether the product's fields
    are missing (the connector's ``check`` has a line about those already)."""
    from crm_upsell_connector.validate import Problem, validate

    try:
        schema = await connector.describe()
    except ConnectorError as exc:  # a missing scope, say: one line, and check goes on
        return [
            Problem("error", "discover", f"cannot read the CRM's fields and products: {exc.one_line()}")
        ], False
    problems = validate(schema, session.rules, missing_product_fields=False)
    return problems, bool(schema.missing_product_fields())


def print_problems(problems: list[Problem]) -> None:
    from crm_upsell_connector.cli import output

    for p in problems:
        output.console.print(("FAIL " if p.severity == "error" else "warn ") + p.line())
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    if problems:
        output.console.print(f"config against the CRM: {errors} error(s), {warnings} warning(s)")
    else:
        output.console.print("ok   config against the CRM: the mapped fields and the catalogue")


def discover_into_config(path: Path, connection: str | None) -> None:
    """``init --discover``: rewrite ``[features.fields]`` of the config at ``path`` from the CRM and
    add the catalogue skeleton; the new text is checked before it replaces the file."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.config import parse_config
    from crm_upsell_connector.init import write_text_atomically
    from crm_upsell_connector.pipeline import Session
    from crm_upsell_connector.propose import apply_proposal, propose_mapping

    session = Session.from_path(path, connection)

    async def go() -> CrmSchema:
        async with session.connector() as connector:
            return await connector.describe()

    schema = asyncio.run(go())
    if session.config.connections[session.name].rules is not None:
        raise ConfigError(
            f"connections.{session.name}.rules: this connection's rules live in their own file",
            hint="run 'crm-upsell discover' and edit [features.fields] in that file",
        )
    text = path.read_text(encoding="utf-8")
    new_text = apply_proposal(text, schema, session.rules)
    parse_config(tomllib.loads(new_text), str(path))
    write_text_atomically(path, new_text)
    mapped, extra = propose_mapping(schema, session.rules)
    lost = [p.feature for p in mapped if p.note.startswith("NOT FOUND")]
    output.console.print(
        f"[features.fields]: {len(mapped) - len(lost)} of {len(mapped)} feature(s) mapped to CRM fields"
        + (f"; not found: {', '.join(lost)} (edit their field names)" if lost else "")
        + (f"; {len(extra)} more field(s) offered as comments" if extra else "")
    )
    known = {p.sku for p in session.rules.products}
    missing = [p for p in schema.products or [] if p.active and p.sku and p.sku not in known]
    if missing:
        output.console.print(
            f"catalogue: {len(missing)} CRM product(s) added as commented [[products]] to review"
        )
    output.console.print(f"wrote {path}; next: crm-upsell check")
