"""Per-account features computed by SQL aggregates in the store, the inputs of the rule engine.

A handful of ``GROUP BY account`` queries (accounts, contacts, deals, line items, activities, task
keys) produce one flat dict per account whose names and types are listed in the feature schema.
The work scales with the database: no per-account query, and the same SQLAlchemy Core runs on
SQLite and PostgreSQL.

Conventions every rule can rely on:

- numbers are Python floats (CEL does not mix int and double);
- counts and sums over a synced table are real zeros when nothing matched (``meetings_90d == 0.0``);
- recencies, tenure and mapped account fields are ``None`` when the data is missing, never zero;
- activities dated after ``now`` (scheduled meetings, due dates) are ignored, so that a run "as of"
  a date is reproducible; tasks are not engagement and are left out of activity counts;
- every amount (revenue, open deal amounts) is in the org's home currency: a deal's ``amount_home``,
  or its ``amount`` where the CRM gave no home amount and the deal is in the home currency (or in no
  stated currency); see ``features.deals``;
- complaints are found in subjects and whole bodies of notes, calls, meetings and e-mails that are
  not our own outbound ones, with every configured language's words; see ``features.activity``.

The package is split by job: ``spec`` (names, types, configuration), ``values`` (conversions and SQL
helpers), ``activity``, ``deals`` and ``compute`` (the rows).
"""

from __future__ import annotations

from crm_upsell_connector.features.compute import compute_features
from crm_upsell_connector.features.spec import (
    ACTIVITY_KINDS,
    DEFAULT_COMPLAINT_KEYWORDS,
    DEFAULT_COMPLAINT_WORDS,
    DEFAULT_RENEWAL_KEYWORDS,
    FEATURE_SCHEMA,
    WINDOWS,
    CatalogueItem,
    DerivedFeature,
    FeaturesConfig,
    FeatureSpec,
    FeatureType,
    MappedField,
    MappedType,
    feature_schema,
)
from crm_upsell_connector.features.values import convert_mapped

__all__ = [
    "ACTIVITY_KINDS",
    "DEFAULT_COMPLAINT_KEYWORDS",
    "DEFAULT_COMPLAINT_WORDS",
    "DEFAULT_RENEWAL_KEYWORDS",
    "FEATURE_SCHEMA",
    "WINDOWS",
    "CatalogueItem",
    "DerivedFeature",
    "FeatureSpec",
    "FeatureType",
    "FeaturesConfig",
    "MappedField",
    "MappedType",
    "compute_features",
    "convert_mapped",
    "feature_schema",
]
