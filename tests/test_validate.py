"""``validate``: the config against a described CRM, one problem per line naming the key and the fix."""

from __future__ import annotations

import tomllib

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.discovery import CrmField, CrmObject, CrmProduct, CrmSchema
from crm_upsell_connector.init import example_text
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.validate import validate


def rules() -> RulesConfig:
    return parse_config(tomllib.loads(example_text()), "config.example.toml").rules


def schema(
    fields: list[CrmField], *, sampled: int = 10, products: list[CrmProduct] | None = None
) -> CrmSchema:
    names = {f.name for f in fields}
    mapped = {
        n: (n if n in names else None)
        for n in ("seats_purchased", "seats_active", "nps_score", "onboarding_stage", "do_not_contact")
    }
    return CrmSchema(
        crm="hubspot",
        objects=[
            CrmObject(object="account", crm_name="companies", fields=fields, sampled=sampled),
            CrmObject(object="task", crm_name="tasks", fields=[CrmField(name="up_key", kind="string")]),
        ],
        products=products
        if products is not None
        else [CrmProduct(id=str(i), sku=p.sku) for i, p in enumerate(rules().products)],
        owners=[],
        mapped=mapped,
        product_fields={"account": {"segment": "up_segment"}, "task": {"key": "up_key"}},
    )


GOOD = [
    CrmField(name="seats_purchased", kind="number", filled=9),
    CrmField(name="seats_active", kind="number", filled=9),
    CrmField(name="nps_score", kind="number", filled=7),
    CrmField(name="onboarding_stage", kind="enumeration", filled=10),
    CrmField(name="do_not_contact", kind="bool", filled=10),
    CrmField(name="up_segment", kind="string"),
]


def test_a_config_that_fits_the_crm_has_no_problems() -> None:
    assert validate(schema(GOOD), rules()) == []


def test_types_that_cannot_be_read_are_errors_and_lossy_ones_warnings() -> None:
    fields = [f for f in GOOD if f.name not in ("seats_active", "nps_score", "do_not_contact")]
    fields += [
        CrmField(name="seats_active", kind="date", crm_type="date", filled=9),
        CrmField(name="nps_score", kind="string", crm_type="string", filled=7),
        CrmField(name="do_not_contact", kind="bool", filled=0),
    ]
    problems = {p.key: p for p in validate(schema(fields), rules())}
    assert problems["features.fields.seats_active.field"].severity == "error"
    assert "cannot be read as number" in problems["features.fields.seats_active.field"].message
    assert problems["features.fields.nps_score.field"].severity == "warning"
    assert "values that do not parse become null" in problems["features.fields.nps_score.field"].message
    empty = problems["features.fields.do_not_contact.field"]
    assert empty.severity == "warning" and "empty on all 10 sampled accounts" in empty.message


def test_read_only_product_fields_are_errors_naming_the_field() -> None:
    fields = [f for f in GOOD if f.name != "up_segment"] + [CrmField(name="up_segment", writable=False)]
    (problem,) = validate(schema(fields), rules())
    assert problem.severity == "error" and problem.key == "companies.up_segment"
    assert "read-only for the integration user" in problem.message


def test_catalogue_and_crm_products_are_compared_both_ways() -> None:
    crm = [
        CrmProduct(id="1", sku="CRM-PRO", name="CRM Professional"),
        CrmProduct(id="2", sku="NEW-1", name="New thing"),
        CrmProduct(id="3", sku="OLD-1", name="Retired", active=False),
        CrmProduct(id="4", sku=None, name="Unnamed bundle"),
    ]
    lines = [p.line() for p in validate(schema(GOOD, products=crm), rules())]
    absent = next(x for x in lines if "are not among the CRM's products" in x)
    assert "CRM-STARTER" in absent and "CRM-PRO," not in absent
    assert any("NEW-1 (New thing)" in x and "missing from the catalogue" in x for x in lines)
    assert not any("OLD-1" in x for x in lines)  # inactive products are not for sale
    assert any("have no SKU" in x and "Unnamed bundle" in x for x in lines)
