"""The one error tree of the product; the CLI turns each kind into one line and an exit code.

::

    ConnectorError                      anything this product raises on purpose (exit 1)
    ├── ConfigError                     config file, CLI argument or mapping is wrong (exit 2)
    │   ├── RuleError                   a rule expression does not compile or type-check (exit 2)
    │   └── UnsupportedError            the connector lacks an optional capability, e.g. describe (exit 2)
    ├── AuthError                       credentials missing, rejected or not refreshable (exit 3)
    ├── StoreError                      the local database cannot be used (exit 4)
    ├── QuotaError                      the run stopped to stay within an API allowance (exit 5)
    ├── BusyError                       another run holds this connection's store (exit 7)
    ├── MassChangeError                 the plan is over an [apply] threshold; nothing written (exit 8)
    ├── StopRequested                   SIGTERM/SIGINT: the run stopped at a checkpoint (exit 143)
    └── APIError(request, response)     the CRM answered with an error (exit 6)
        ├── RetriableAPIError           429, 5xx, transport failures: worth another try
        │   └── RateLimitError          429 / rate-limit body, carries the wait the CRM asked for
        └── FatalAPIError               4xx that another try will not fix

Messages never contain secrets: request URLs are redacted before they are stored here.
"""

from __future__ import annotations

from dataclasses import dataclass


class ConnectorError(Exception):
    """Base of every error this product raises on purpose."""

    exit_code = 1
    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint

    def one_line(self) -> str:
        """The message a user sees: what is wrong and how to fix it, on one line."""
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class ConfigError(ConnectorError):
    """``problems`` holds one line per problem where a file has several (all reported at once)."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems


class RuleError(ConfigError):
    """A rule expression is wrong; the message names the file, the key and the position."""


class UnsupportedError(ConfigError):
    """The connector does not offer an optional capability (``Connector.describe``); callers that
    can do without it catch this, the others show its line."""


class AuthError(ConnectorError):
    exit_code = 3


class StoreError(ConnectorError):
    exit_code = 4


class QuotaError(ConnectorError):
    """A run stopped on purpose to stay inside the configured share of an API allowance."""

    exit_code = 5


class BusyError(ConnectorError):
    """Another run writes this connection's store right now; never two writers at once."""

    exit_code = 7


class MassChangeError(ConnectorError):
    """The plan changes more than an ``[apply]`` threshold allows: stopped before any write."""

    exit_code = 8


class StopRequested(ConnectorError):
    """A stop was asked for (SIGTERM or SIGINT): the run stopped after committing its current page."""

    exit_code = 143


@dataclass(frozen=True)
class RequestInfo:
    """What is safe to keep about a failed request: method and redacted URL."""

    method: str
    url: str


@dataclass(frozen=True)
class ResponseInfo:
    """What is safe to keep about an error response."""

    status_code: int
    body: str
    error_code: str | None = None


class APIError(ConnectorError):
    exit_code = 6

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        response: ResponseInfo | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.request = request
        self.response = response

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response else None

    @property
    def error_code(self) -> str | None:
        return self.response.error_code if self.response else None


class RetriableAPIError(APIError):
    """A failure another attempt may fix (429, 5xx, connection dropped, timeout).

    ``not_sent`` is true where the request surely never reached the CRM (the connection could not
    be opened), so that even a write that is not idempotent may be sent again. ``retry_after`` is
    the wait in seconds the CRM asked for (a ``Retry-After`` header on a 429 or 503), if it did.
    """

    not_sent: bool = False
    retry_after: float | None = None


class RateLimitError(RetriableAPIError):
    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        policy: str | None = None,
        request: RequestInfo | None = None,
        response: ResponseInfo | None = None,
    ) -> None:
        super().__init__(message, request=request, response=response)
        self.retry_after = retry_after
        self.policy = policy


class FatalAPIError(APIError):
    """A failure another attempt will not fix (bad request, missing scope, not found)."""
