"""``check``'s config validation against the CRM: the same rules for every CRM, from ``Connector.describe``.

- every ``[features.fields]`` mapping names a field that exists on the CRM's account object, with a
  type its feature type can be read from (a sample shows whether any account fills it);
- every catalogue SKU (``[[products]]``) is among the CRM's products, and active CRM products missing
  from the catalogue are listed;
- the product's own fields exist and the integration user may write them.

Each problem is one line naming the config key (or the CRM field) and the fix. Errors stop ``check``
with the configuration-error exit code; warnings do not.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from crm_upsell_connector.discovery import CrmObject, CrmSchema, FieldKind
from crm_upsell_connector.rules.config import RulesConfig, key_text

Severity = Literal["error", "warning"]

# Feature type -> CRM field kinds it reads cleanly, and kinds it reads only where values parse.
_CLEAN: dict[str, frozenset[FieldKind]] = {
    "number": frozenset({"number"}),
    "string": frozenset(
        {"string", "text", "enumeration", "number", "bool", "date", "datetime", "reference", "other"}
    ),
    "bool": frozenset({"bool"}),
    "date": frozenset({"date", "datetime"}),
}
_PARSED: dict[str, frozenset[FieldKind]] = {
    "number": frozenset({"string", "enumeration", "other"}),
    "string": frozenset(),
    "bool": frozenset({"string", "enumeration", "number", "other"}),
    "date": frozenset({"string", "other"}),
}
_TITLES = {"hubspot": "HubSpot", "salesforce": "Salesforce", "zoho": "Zoho CRM"}


@dataclass(frozen=True)
class Problem:
    severity: Severity
    key: str  # the config key, or the CRM object.field for the product's fields
    message: str  # what is wrong and how to fix it

    def line(self) -> str:
        return f"{self.key}: {self.message}"


def validate(schema: CrmSchema, rules: RulesConfig, *, missing_product_fields: bool = True) -> list[Problem]:
    """Every problem of ``rules`` against ``schema``; errors first, then warnings.

    ``missing_product_fields=False`` leaves out the product's missing fields, for callers that show
    the connector's own ``check`` line about them (which names the permission ``setup`` needs).
    """
    problems = [
        *_mapped_fields(schema, rules),
        *_catalogue(schema, rules),
        *_product_fields(schema, missing_product_fields),
    ]
    return sorted(problems, key=lambda p: p.severity != "error")


def _mapped_fields(schema: CrmSchema, rules: RulesConfig) -> list[Problem]:
    problems: list[Problem] = []
    accounts = schema.object("account")
    crm = _TITLES.get(schema.crm, schema.crm)
    where = f"{crm} {accounts.crm_name}" if accounts else crm
    for feature, mapping in rules.features.fields.items():
        key = f"features.fields.{key_text(feature)}.field"
        resolved = schema.mapped.get(mapping.field)
        found = accounts.field(resolved) if accounts is not None and resolved else None
        if found is None:
            hint = _closest(mapping.field, accounts)
            problems.append(
                Problem(
                    "error",
                    key,
                    f"no field {mapping.field!r} on {where}"
                    + (f"; did you mean {hint!r}?" if hint else "")
                    + " Correct the name ('crm-upsell discover' lists the fields) or create the field in the CRM",
                )
            )
            continue
        shown = f"{found.name!r} ({found.crm_type or found.kind})"
        if found.kind in _CLEAN[mapping.type]:
            pass
        elif found.kind in _PARSED[mapping.type]:
            problems.append(
                Problem(
                    "warning",
                    key,
                    f"{shown} is read as {mapping.type}; values that do not parse become null. "
                    f'Map a {mapping.type} field, or set type = "string"',
                )
            )
        else:
            problems.append(
                Problem(
                    "error",
                    key,
                    f"{shown} cannot be read as {mapping.type}; "
                    f"map a {mapping.type} field or change features.fields.{key_text(feature)}.type",
                )
            )
            continue
        if accounts is not None and accounts.sampled and found.filled == 0:
            problems.append(
                Problem(
                    "warning",
                    key,
                    f"{found.name!r} is empty on all {accounts.sampled} sampled accounts, so {feature!r} is null "
                    "everywhere; check that this is the field your team fills",
                )
            )
    return problems


def _closest(name: str, accounts: CrmObject | None) -> str | None:
    if accounts is None:
        return None
    by_lower = {f.name.lower(): f.name for f in accounts.fields}
    by_lower.update({f.label.lower(): f.name for f in accounts.fields if f.label})
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[match[0]] if match else None


def _catalogue(schema: CrmSchema, rules: RulesConfig) -> list[Problem]:
    if schema.products is None:
        return []
    crm_skus = {p.sku for p in schema.products if p.sku}
    catalogue = {p.sku for p in rules.products}
    problems: list[Problem] = []
    absent = [p.sku for p in rules.products if p.sku not in crm_skus]
    if absent:
        every = " (none of the catalogue matches)" if len(absent) == len(catalogue) else ""
        problems.append(
            Problem(
                "warning",
                "products",
                f"SKU(s) {', '.join(absent)} are not among the CRM's products{every}: what accounts own of "
                "them is never seen and rules on them never fire. Use the CRM's SKUs "
                "('crm-upsell discover' lists them)",
            )
        )
    missing = [p for p in schema.products if p.active and p.sku and p.sku not in catalogue]
    if missing:
        listed = ", ".join(f"{p.sku} ({p.name})" if p.name else p.sku or "" for p in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        problems.append(
            Problem(
                "warning",
                "products",
                f"the CRM sells {len(missing)} product(s) missing from the catalogue: {listed}{more}. "
                "Add them as [[products]] so owned products and proposals count them",
            )
        )
    no_sku = [p for p in schema.products if p.active and not p.sku]
    if no_sku:
        problems.append(
            Problem(
                "warning",
                "products",
                f"{len(no_sku)} active CRM product(s) have no SKU (e.g. {no_sku[0].name or no_sku[0].id!r}) and "
                "cannot be matched to the catalogue; give them a SKU in the CRM",
            )
        )
    return problems


def _product_fields(schema: CrmSchema, report_missing: bool) -> list[Problem]:
    problems: list[Problem] = []
    for obj_name, names in schema.product_fields.items():
        obj = schema.object(obj_name)
        where = obj.crm_name if obj is not None else obj_name
        absent: list[str] = []
        for canonical, crm_name in names.items():
            found = obj.field(crm_name) if obj is not None and crm_name else None
            if found is None:
                absent.append(crm_name or canonical)
            elif not found.writable:
                problems.append(
                    Problem(
                        "error",
                        f"{where}.{found.name}",
                        "the product's field is read-only for the integration user; "
                        "give it edit access to this field in the CRM",
                    )
                )
        if absent and report_missing:
            problems.append(
                Problem(
                    "error",
                    f"{where}",
                    f"the product's field(s) {', '.join(absent)} are missing; run 'crm-upsell setup' to create them",
                )
            )
    return problems
