"""The fields this product writes into the CRM, by canonical name (connectors add their prefix)."""

from __future__ import annotations

from crm_upsell_connector.models import FieldSpec

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
        type="string",
        description="Cell of the loyalty x utilization matrix",
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
