"""The ``[connections.<name>]`` settings of a Salesforce connection, validated before any call is made."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_upsell_connector.http.urls import check_url, is_loopback
from crm_upsell_connector.secrets import secret_ref_field

LOGIN_URL = "https://login.salesforce.com"
TEST_LOGIN_URL = "https://test.salesforce.com"
DEFAULT_API_VERSION = "62.0"
_SHARED_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
# A field API name goes into SOQL as an identifier: letters, digits and single underscores only.
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*(__c)?$")


def _check_field_name(name: str) -> str:
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Salesforce field API name (like 'Direction__c')")
    return name


class SalesforceSettings(BaseModel):
    """How to reach one Salesforce org and how much of its API allocation to use."""

    model_config = ConfigDict(extra="forbid")

    login_url: str = Field(
        LOGIN_URL,
        description="token host: https://login.salesforce.com, https://test.salesforce.com (sandbox "
        "orgs) or your My Domain, e.g. https://acme.my.salesforce.com",
    )
    api_version: str = Field(DEFAULT_API_VERSION, description="REST API version, e.g. '62.0'")
    auth: Literal["jwt", "refresh_token", "client_credentials"] = Field(
        "jwt", description="OAuth flow: 'jwt' (JWT bearer), 'refresh_token' or 'client_credentials'"
    )
    client_id: str | None = Field(None, description="the connected app's consumer key (not a secret)")
    username: str | None = Field(None, description="jwt: the Salesforce username the app acts as")
    private_key: str | None = Field(
        None, description="jwt: reference to the PEM private key, e.g. 'keyring:salesforce-jwt-key'"
    )
    private_key_path: str | None = Field(None, description="jwt: path of the PEM private key file")
    jwt_audience: str | None = Field(
        None,
        description="jwt: the 'aud' claim; default https://test.salesforce.com for sandbox orgs, "
        "else https://login.salesforce.com",
    )
    client_secret: str | None = Field(None, description="consumer secret reference")
    refresh_token: str | None = Field(None, description="refresh_token: the refresh token reference")
    session_ttl_s: float = Field(
        1800.0, gt=60, description="assumed session lifetime (Salesforce does not say); 401 refreshes anyway"
    )
    daily_api_share: float = Field(
        0.25, gt=0, le=1, description="most of the org's remaining daily API calls one run may use"
    )
    rate_limit_max: int = Field(100, ge=1, description="requests per rate interval (client-side pacing)")
    rate_limit_interval_s: float = Field(1.0, gt=0)
    field_prefix: str = Field(
        "Crm_Upsell_",
        pattern=r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*_$",
        description="prefix of the product's custom fields (Crm_Upsell_Loyalty_Score__c ...)",
    )
    product_extra_fields: tuple[str, ...] = Field(
        (), description="extra Product2 fields kept in the product's extra, e.g. ['Tier__c']"
    )
    activity_direction_field: str | None = Field(
        None,
        description="a Task field holding Inbound/Outbound for e-mails (calls use CallType), "
        "e.g. 'Direction__c'",
    )
    meeting_outcome_field: str | None = Field(
        None, description="an Event field holding the meeting's outcome, e.g. 'Outcome__c'"
    )

    @field_validator("login_url")
    @classmethod
    def _login_url(cls, value: str) -> str:
        return check_url(value, what="login_url", example=LOGIN_URL, bare_host=True)

    @field_validator("jwt_audience")
    @classmethod
    def _audience(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else check_url(value, what="jwt_audience", example=LOGIN_URL, bare_host=True)
        )

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        text = value.strip().lstrip("vV")
        if not re.fullmatch(r"\d{2,3}\.0", text):
            raise ValueError(f"api_version must look like '{DEFAULT_API_VERSION}', not {value!r}")
        return text

    @field_validator("product_extra_fields")
    @classmethod
    def _field_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _check_field_name(name)
        return value

    @field_validator("activity_direction_field", "meeting_outcome_field")
    @classmethod
    def _field_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_field_name(value)

    @field_validator("private_key", "client_secret", "refresh_token")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        return secret_ref_field(value)

    @model_validator(mode="after")
    def _credentials(self) -> SalesforceSettings:
        if not self.client_id:
            raise ValueError("client_id (the connected app's consumer key) is required")
        if self.auth == "jwt":
            if not self.username:
                raise ValueError("auth = 'jwt' needs username (the user the connected app acts as)")
            if bool(self.private_key) == bool(self.private_key_path):
                raise ValueError(
                    "auth = 'jwt' needs exactly one of private_key = 'keyring:NAME' or private_key_path"
                )
        elif self.auth == "refresh_token":
            if not self.refresh_token:
                raise ValueError("auth = 'refresh_token' needs refresh_token = 'keyring:NAME'")
        else:
            if not self.client_secret:
                raise ValueError("auth = 'client_credentials' needs client_secret = 'keyring:NAME'")
            if self.login_host in _SHARED_LOGIN_HOSTS:
                raise ValueError(
                    "auth = 'client_credentials' needs login_url = your My Domain "
                    "(https://MYDOMAIN.my.salesforce.com); Salesforce refuses it on "
                    f"{self.login_host}"
                )
        return self

    @property
    def login_host(self) -> str:
        return urlsplit(self.login_url).hostname or ""

    @property
    def token_url(self) -> str:
        return f"{self.login_url}/services/oauth2/token"

    @property
    def audience(self) -> str:
        """The JWT ``aud``: the shared login host of the org's kind, whatever host takes the token."""
        if self.jwt_audience:
            return self.jwt_audience
        host = self.login_host
        if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
            return TEST_LOGIN_URL
        if is_loopback(host):
            return self.login_url
        return LOGIN_URL
