"""Each connector asks its CRM for a picklist whose values are the segment ids, labelled in words."""

from __future__ import annotations

from crm_upsell_hubspot.property_setup import option_list
from crm_upsell_salesforce.connector import SalesforceConnector
from crm_upsell_zoho.mapping import field_body

from crm_upsell_connector.models import FieldSpec

SEGMENT = FieldSpec(
    name="segment",
    label="Upsell: segment",
    type="enumeration",
    options=("at_risk", "champion"),
    option_labels=("Churn risk", "チャンピオン"),
)


def hubspot_pairs(spec: FieldSpec) -> list[tuple[str, str]]:
    return [(o["value"], o["label"]) for o in option_list(spec)]


def test_hubspot_options_carry_the_labels() -> None:
    assert hubspot_pairs(SEGMENT) == [("at_risk", "Churn risk"), ("champion", "チャンピオン")]


def test_salesforce_picklist_values_carry_the_labels() -> None:
    meta = SalesforceConnector._metadata(SEGMENT)
    assert meta["type"] == "Picklist"
    values = meta["valueSet"]["valueSetDefinition"]["value"]
    assert values == [
        {"fullName": "at_risk", "label": "Churn risk"},
        {"fullName": "champion", "label": "チャンピオン"},
    ]


def test_zoho_pick_list_values_carry_the_labels() -> None:
    body = field_body(SEGMENT, "Upsell: segment")
    assert body["data_type"] == "picklist"
    assert body["pick_list_values"] == [
        {"display_value": "Churn risk", "actual_value": "at_risk"},
        {"display_value": "チャンピオン", "actual_value": "champion"},
    ]


def test_without_labels_the_values_are_the_labels() -> None:
    bare = SEGMENT.model_copy(update={"option_labels": ()})
    assert hubspot_pairs(bare) == [("at_risk", "at_risk"), ("champion", "champion")]
    assert field_body(bare, "x")["pick_list_values"][0] == {
        "display_value": "at_risk",
        "actual_value": "at_risk",
    }
