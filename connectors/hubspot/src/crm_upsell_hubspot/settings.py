"""The ``[connections.<name>]`` settings of a HubSpot connection, validated before any call is made."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_upsell_connector.http.urls import check_url
from crm_upsell_connector.secrets import secret_ref_field

DEFAULT_BASE_URL = "https://api.hubapi.com"


class HubSpotSettings(BaseModel):
    """How to reach one HubSpot account and how hard to use its API."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        DEFAULT_BASE_URL, description="API root; override for the sandbox or an egress proxy"
    )
    auth: Literal["private_app", "oauth"] = Field(
        "private_app", description="'private_app' (a static access token) or 'oauth' (refresh token)"
    )
    token: str | None = Field(
        None, description="private app access token, as a reference like 'keyring:hubspot-token'"
    )
    client_id: str | None = Field(None, description="OAuth app client id (not a secret)")
    client_secret: str | None = Field(None, description="OAuth client secret reference")
    refresh_token: str | None = Field(None, description="OAuth refresh token reference")
    token_url: str | None = Field(
        None, description="OAuth token endpoint; default base_url + /oauth/v1/token"
    )
    rate_limit_max: int = Field(
        190, ge=1, description="requests per interval (190 on Pro/Enterprise, 100 on Free/Starter)"
    )
    rate_limit_interval_s: float = Field(10.0, gt=0, description="length of the rate-limit window")
    daily_api_share: float = Field(
        0.25, gt=0, le=1, description="most of the portal's remaining daily API calls one run may use"
    )
    search_rate_per_s: int = Field(5, ge=1, description="search requests per second (its own, lower limit)")
    search_page_size: int = Field(
        200, ge=1, le=200, description="records per search page (HubSpot's maximum is 200)"
    )
    property_prefix: str = Field("crm_upsell_", pattern=r"^[a-z][a-z0-9_]*$")
    property_group: str = Field("crm_upsell", pattern=r"^[a-z][a-z0-9_]*$")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_url(value, what="base_url", example=DEFAULT_BASE_URL)

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else check_url(value, what="token_url", example=DEFAULT_BASE_URL + "/oauth/v1/token")
        )

    @field_validator("token", "client_secret", "refresh_token")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        return secret_ref_field(value)

    @model_validator(mode="after")
    def _credentials(self) -> HubSpotSettings:
        if self.auth == "private_app" and not self.token:
            raise ValueError(
                "auth = 'private_app' needs token = 'keyring:NAME' (the private app's access token)"
            )
        if self.auth == "oauth":
            missing = [
                name for name in ("client_id", "client_secret", "refresh_token") if not getattr(self, name)
            ]
            if missing:
                raise ValueError("auth = 'oauth' needs " + ", ".join(missing))
        return self

    @property
    def oauth_token_url(self) -> str:
        return self.token_url or f"{self.base_url}/oauth/v1/token"
