"""The ``[connections.<name>]`` settings of a Zoho CRM connection, validated before any call is made.

Zoho keeps every organisation in one data centre; its accounts server (where tokens are issued) is
``https://accounts.zoho.<dc>`` (Canada: ``https://accounts.zohocloud.ca``). The API host is not
configured: it is the ``api_domain`` the token response names.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.http.urls import check_url
from crm_upsell_connector.secrets import parse_ref

#: What ``trigger`` may name on an insert or update ("Insert Records",
#: https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html).
Trigger = Literal["workflow", "approval", "blueprint", "pathfinder", "orchestration"]
#: The ``owned_products`` sources besides ``subform:<api_name>``.
OWNED_SOURCES = ("deal_products", "sales_orders", "invoices")
DataCentre = Literal["com", "eu", "in", "com.au", "jp", "com.cn", "ca", "sa"]
#: data centre -> its accounts server (Canada's is on zohocloud.ca; the API hosts are www.zohoapis.<dc>).
ACCOUNTS_SERVERS: dict[str, str] = {
    "com": "https://accounts.zoho.com",
    "eu": "https://accounts.zoho.eu",
    "in": "https://accounts.zoho.in",
    "com.au": "https://accounts.zoho.com.au",
    "jp": "https://accounts.zoho.jp",
    "com.cn": "https://accounts.zoho.com.cn",
    "ca": "https://accounts.zohocloud.ca",
    "sa": "https://accounts.zoho.sa",
}
DATA_CENTRES: tuple[str, ...] = tuple(ACCOUNTS_SERVERS)
API_VERSION_PATTERN = r"^v[0-9]+(\.[0-9]+)?$"


def accounts_server(data_centre: str) -> str:
    """The OAuth accounts server of a data centre (``https://accounts.zoho.eu`` for ``eu``)."""
    if data_centre not in ACCOUNTS_SERVERS:
        raise ConfigError(
            f"unknown Zoho data centre {data_centre!r}", hint=f"one of {', '.join(DATA_CENTRES)}"
        )
    return ACCOUNTS_SERVERS[data_centre]


def api_name_for(label: str) -> str:
    """The api_name Zoho derives from a field label: words joined by ``_`` (``Upsell: segment`` ->
    ``Upsell_segment``)."""
    words = re.findall(r"[A-Za-z0-9]+", label)
    return "_".join(words)


class ZohoSettings(BaseModel):
    """How to reach one Zoho CRM organisation and how hard to use its API."""

    model_config = ConfigDict(extra="forbid")

    data_centre: DataCentre = Field(
        "com", description="where the organisation lives: com, eu, in, com.au, jp, com.cn, ca or sa"
    )
    accounts_url: str | None = Field(
        None,
        description="accounts server override (an egress proxy or the sandbox); "
        "default https://accounts.zoho.<data_centre>",
    )
    api_domain: str | None = Field(
        None,
        description="API host override; by default the api_domain of the token response is used",
    )
    client_id: str = Field(
        ..., min_length=1, description="the client id from api-console.zoho.<dc> (not a secret)"
    )
    client_secret: str = Field(..., description="client secret reference, e.g. 'keyring:zoho-client-secret'")
    refresh_token: str = Field(..., description="refresh token reference, e.g. 'keyring:zoho-refresh-token'")
    api_version: str = Field("v8", pattern=API_VERSION_PATTERN, description="records API version")
    credits_per_run: int | None = Field(
        None, ge=1, description="stop a run (QuotaError) before it spends more API credits; none = no cap"
    )
    max_concurrency: int = Field(
        5,
        ge=1,
        le=25,
        description="requests in flight at once (Zoho's per-app limit: Free 5 ... Ultimate 25)",
    )
    rate_limit_max: int = Field(
        100,
        ge=1,
        description="requests per rate_limit_interval_s (Zoho limits credits and concurrency, "
        "this only smooths bursts)",
    )
    rate_limit_interval_s: float = Field(1.0, gt=0)
    account_update_triggers: list[Trigger] = Field(
        default_factory=list,
        description="automations Zoho runs on our account field updates (workflow, approval, blueprint, "
        "pathfinder, orchestration); none by default, so a write-back of thousands of scores sends no "
        "e-mails and starts no approvals",
    )
    task_triggers: list[Trigger] = Field(
        default_factory=list,
        description="automations Zoho runs when we create follow-up tasks; none by default",
    )
    owned_products: list[str] = Field(
        default_factory=lambda: ["deal_products"],
        min_length=1,
        description="where what an account owns is read: 'deal_products' (the Products related list of "
        "won and open deals; works on every org), 'sales_orders' and 'invoices' (the product lines of "
        "Sales Orders / Invoices, where the edition has those modules) and/or 'subform:<api_name>' (a "
        "custom product subform on Deals)",
    )
    field_label_prefix: str = Field(
        "Upsell",
        min_length=1,
        max_length=20,
        pattern=r"^[A-Za-z][A-Za-z0-9 ]*$",
        description="our field labels start with this word; their api_names follow from the labels",
    )

    @field_validator("accounts_url", "api_domain")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else check_url(value, what="accounts_url / api_domain", example="https://accounts.zoho.eu")
        )

    @field_validator("owned_products")
    @classmethod
    def _owned(cls, value: list[str]) -> list[str]:
        for source in value:
            if source in OWNED_SOURCES:
                continue
            kind, _, api_name = source.partition(":")
            if kind != "subform" or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,99}", api_name):
                raise ValueError(
                    f"unknown owned_products source {source!r}: use 'deal_products', 'sales_orders', "
                    "'invoices' or 'subform:<api_name>' (for example 'subform:Deal_Products')"
                )
        return list(dict.fromkeys(value))

    @property
    def deal_subforms(self) -> tuple[str, ...]:
        """The custom product subforms on Deals named in ``owned_products``."""
        return tuple(s.partition(":")[2] for s in self.owned_products if s.startswith("subform:"))

    @field_validator("client_secret", "refresh_token")
    @classmethod
    def _secret_ref(cls, value: str) -> str:
        try:
            parse_ref(value)
        except ConfigError as exc:
            raise ValueError(exc.one_line()) from None
        return value

    @property
    def accounts_server(self) -> str:
        return self.accounts_url or accounts_server(self.data_centre)

    @property
    def token_url(self) -> str:
        return f"{self.accounts_server}/oauth/v2/token"

    def label_for(self, canonical_label: str) -> str:
        """Our label with the configured prefix: ``Upsell: segment`` -> ``<prefix>: segment``."""
        _, sep, rest = canonical_label.partition(":")
        return (
            f"{self.field_label_prefix}: {rest.strip()}"
            if sep
            else f"{self.field_label_prefix} {canonical_label}"
        )

    def api_name(self, canonical_label: str) -> str:
        return api_name_for(self.label_for(canonical_label))
