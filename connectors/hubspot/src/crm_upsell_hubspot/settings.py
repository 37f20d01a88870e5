"""The ``[connections.<name>]`` settings of a HubSpot connection, validated before any call is made."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.secrets import parse_ref

DEFAULT_BASE_URL = "https://api.hubapi.com"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, what: str) -> str:
    """``value`` without a trailing slash; https everywhere, plain http only on this machine."""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{what} must be an absolute http(s) URL like {DEFAULT_BASE_URL}, not {value!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(
            f"{what} must use https (plain http is only allowed for a sandbox on this machine "
            f"such as http://127.0.0.1:8080); got {value!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not carry a query string or fragment")
    return value.strip().rstrip("/")


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
    search_rate_per_s: int = Field(5, ge=1, description="search requests per second (its own, lower limit)")
    search_page_size: int = Field(
        200, ge=1, le=200, description="records per search page (HubSpot's maximum is 200)"
    )
    property_prefix: str = Field("crm_upsell_", pattern=r"^[a-z][a-z0-9_]*$")
    property_group: str = Field("crm_upsell", pattern=r"^[a-z][a-z0-9_]*$")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_url(value, what="base_url")

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, what="token_url")

    @field_validator("token", "client_secret", "refresh_token")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_ref(value)
        except ConfigError as exc:
            raise ValueError(exc.one_line()) from None
        return value

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
