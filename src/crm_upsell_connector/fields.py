"""The fields this product writes into the CRM, by canonical name (connectors add their prefix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_upsell_connector.labels import Labels
from crm_upsell_connector.models import FieldSpec

if TYPE_CHECKING:
    from crm_upsell_connector.rules.config import RulesConfig

_EN = Labels.for_language("en")
# The segments of the default matrix ([segments] in config.example.toml), for ALL_FIELDS.
_DEFAULT_SEGMENTS: tuple[str, ...] = (
    "at_risk",
    "nurture",
    "activate",
    "develop",
    "expand",
    "loyal",
    "champion",
    "unmeasured",
)

ACCOUNT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="loyalty_score",
        label="Upsell: loyalty score",
        type="number",
        description="Loyalty score 0-100 computed by crm-upsell-connector",
    ),
    FieldSpec(
        name="segment",
        label="Upsell: segment",
        type="enumeration",
        description="Cell of the loyalty x utilization matrix",
        options=_DEFAULT_SEGMENTS,
        option_labels=tuple(_EN.segment(s) for s in _DEFAULT_SEGMENTS),
    ),
    FieldSpec(
        name="next_product",
        label="Upsell: next product",
        type="string",
        description="The one product proposed next (upgrade, cross-sell or retention offer)",
    ),
    FieldSpec(
        name="reason",
        label="Upsell: reason",
        type="text",
        description="Why this product, with the facts behind it",
    ),
    FieldSpec(
        name="expected_uplift",
        label="Upsell: expected uplift",
        type="number",
        description="Expected yearly revenue uplift of the proposal",
    ),
    FieldSpec(
        name="updated_at",
        label="Upsell: updated at",
        type="datetime",
        description="When crm-upsell-connector last changed these fields",
    ),
)

# On tasks: the key that lets the product recognise its own tasks and never create one twice.
TASK_KEY_FIELD = FieldSpec(
    name="key",
    label="Upsell: task key",
    type="string",
    object="task",
    description="Identifies a follow-up task created by crm-upsell-connector",
)

ALL_FIELDS: tuple[FieldSpec, ...] = (*ACCOUNT_FIELDS, TASK_KEY_FIELD)
ACCOUNT_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in ACCOUNT_FIELDS)


def segment_ids(rules: RulesConfig) -> tuple[str, ...]:
    """Every segment the configured matrix can give, in matrix order, then the missing-utilization one."""
    seen: dict[str, None] = {}
    for row in rules.segments.cells:
        for cell in row:
            seen.setdefault(cell, None)
    seen.setdefault(rules.segments.missing_utilization, None)
    return tuple(seen)


def fields_for(rules: RulesConfig) -> tuple[FieldSpec, ...]:
    """The fields ``setup`` creates for a rule set: ``segment`` lists its segments with their labels."""
    from crm_upsell_connector.rules.locale import labels_for

    labels = labels_for(rules)
    ids = segment_ids(rules)
    account = tuple(
        spec.model_copy(update={"options": ids, "option_labels": tuple(labels.segment(i) for i in ids)})
        if spec.name == "segment"
        else spec
        for spec in ACCOUNT_FIELDS
    )
    return (*account, TASK_KEY_FIELD)
