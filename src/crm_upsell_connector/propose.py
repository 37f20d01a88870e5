"""``init --discover``: a ``[features.fields]`` mapping and a catalogue skeleton proposed from the CRM.

Each configured feature is mapped to the CRM account field it names when that exists, else to the
closest field by name or label whose type the feature can read (the one more accounts fill wins a
tie). Other filled custom fields the CRM has are offered as commented lines, and the CRM's active
products that the catalogue lacks as commented ``[[products]]`` blocks (family from the CRM, else the
SKU's prefix; tier by price within the family), for a person to review: a rule can only use what a
person has decided the product means.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass

from crm_upsell_connector.discovery import CrmField, CrmSchema, FieldKind
from crm_upsell_connector.rules.config import RulesConfig

# Feature type -> CRM field kinds that read as it without loss (as ``validate.py`` judges them).
_READS: dict[str, frozenset[FieldKind]] = {
    "number": frozenset({"number"}),
    "string": frozenset({"string", "text", "enumeration"}),
    "bool": frozenset({"bool"}),
    "date": frozenset({"date", "datetime"}),
}
_TYPE_OF: dict[FieldKind, str] = {
    "number": "number",
    "bool": "bool",
    "date": "date",
    "datetime": "date",
    "string": "string",
    "enumeration": "string",
}


@dataclass(frozen=True)
class Proposal:
    feature: str
    field: str
    type: str
    description: str
    note: str  # why this field (a comment beside the line)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_").removesuffix("_c")


def _best(name: str, wanted: str, fields: list[CrmField]) -> CrmField | None:
    usable = [f for f in fields if f.kind in _READS.get(wanted, frozenset())]
    scored: list[tuple[float, int, CrmField]] = []
    for f in usable:
        ratio = max(
            difflib.SequenceMatcher(None, _norm(name), _norm(f.name)).ratio(),
            difflib.SequenceMatcher(None, _norm(name), _norm(f.label)).ratio() if f.label else 0.0,
        )
        if ratio >= 0.75:
            scored.append((ratio, f.filled or 0, f))
    if not scored:
        return None
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    return scored[0][2]


def propose_mapping(schema: CrmSchema, rules: RulesConfig) -> tuple[list[Proposal], list[Proposal]]:
    """(the configured features mapped to CRM fields, other filled custom fields worth a look)."""
    account = schema.object("account")
    fields = list(account.fields) if account is not None else []
    sampled = account.sampled if account is not None else 0
    mapped: list[Proposal] = []
    used: set[str] = set()
    for feature, spec in rules.features.fields.items():
        resolved = schema.mapped.get(spec.field)
        found = next((f for f in fields if f.name == resolved), None) if resolved else None
        note = "as configured"
        if found is None:
            found = _best(spec.field, spec.type, fields) or _best(feature, spec.type, fields)
            note = f"closest to {spec.field!r}" if found is not None else ""
        if found is None:
            mapped.append(Proposal(feature, spec.field, spec.type, spec.description, "NOT FOUND in the CRM"))
            continue
        used.add(found.name)
        fill = (
            f", filled on {found.filled} of {sampled} sampled accounts"
            if sampled and found.filled is not None
            else ""
        )
        mapped.append(Proposal(feature, found.name, spec.type, spec.description, note + fill))
    product_fields = {n for names in schema.product_fields.values() for n in names.values() if n}
    extra: list[Proposal] = []
    for f in fields:
        if not f.custom or f.name in used or f.name in product_fields or f.kind not in _TYPE_OF:
            continue
        if sampled and not f.filled:
            continue
        feature = _norm(f.name) or "field"
        if not feature[0].isalpha():
            feature = "f_" + feature
        fill = f"filled on {f.filled} of {sampled} sampled accounts" if sampled else "not sampled"
        extra.append(Proposal(feature, f.name, _TYPE_OF[f.kind], f.label or f.name, fill))
    return mapped, extra


def _line(p: Proposal) -> str:
    return (
        f"{p.feature} = {{ field = {json.dumps(p.field)}, type = {json.dumps(p.type)}, "
        f"description = {json.dumps(p.description, ensure_ascii=False)} }}"
    )


def fields_section(mapped: list[Proposal], extra: list[Proposal]) -> list[str]:
    """The lines of a ``[features.fields]`` section (header included)."""
    lines = ["[features.fields]"]
    for p in mapped:
        lines.append(f"# {p.note}")
        lines.append(_line(p))
    if extra:
        lines.append("# Other fields the CRM fills (uncomment to use them as features):")
        lines.extend(f"# {_line(p)}  # {p.note}" for p in extra)
    return lines


def catalogue_skeleton(schema: CrmSchema, rules: RulesConfig) -> list[str]:
    """Commented ``[[products]]`` blocks for the CRM's active products the catalogue lacks."""
    known = {p.sku for p in rules.products}
    missing = [p for p in schema.products or [] if p.active and p.sku and p.sku not in known]
    if not missing:
        return []
    families: dict[str, list[float]] = {}
    for p in missing:
        families.setdefault(_family(p.family, p.sku or ""), []).append(p.unit_price or 0.0)
    lines = [
        "# Products the CRM sells that the catalogue lacks (from 'crm-upsell init --discover'): review",
        "# family, tier, period and per_seat, then uncomment them.",
    ]
    for p in missing:
        family = _family(p.family, p.sku or "")
        prices = sorted(set(families[family]))
        lines += [
            "# [[products]]",
            f"# sku = {json.dumps(p.sku)}",
            f"# name = {json.dumps(p.name or p.sku, ensure_ascii=False)}",
            f"# family = {json.dumps(family)}",
            f"# tier = {prices.index(p.unit_price or 0.0) + 1}",
            f"# unit_price = {float(p.unit_price or 0.0)!r}",
            '# period = "month"',
            "",
        ]
    return lines


def _family(family: str | None, sku: str) -> str:
    if family:
        return _norm(family) or "other"
    return _norm(sku.split("-", 1)[0]) or "other"


def apply_proposal(text: str, schema: CrmSchema, rules: RulesConfig) -> str:
    """``text`` (a config) with its ``[features.fields]`` replaced and the catalogue skeleton added."""
    mapped, extra = propose_mapping(schema, rules)
    lines = text.split("\n")
    try:
        start = lines.index("[features.fields]")
    except ValueError:
        start = -1
    section = fields_section(mapped, extra)
    if start >= 0:
        end = start + 1
        while end < len(lines) and lines[end].strip() and not lines[end].startswith("["):
            end += 1
        lines[start:end] = section
    else:
        lines += ["", *section]
    skeleton = catalogue_skeleton(schema, rules)
    if skeleton and skeleton[0] not in lines:  # proposed once already: not again
        lines += ["", *skeleton]
    return "\n".join(lines)
