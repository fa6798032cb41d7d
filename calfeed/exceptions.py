"""calfeed's errors: each knows the HTTP status (and CLI exit code) it becomes."""

from __future__ import annotations

from typing import Any

from calfeed.sanitize import excerpt


class CalfeedError(Exception):
    """Base of every error calfeed reports to a user."""

    status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Extra response headers that go with this error."""
        return {}


class SettingsError(CalfeedError):
    """A setting has a value of the wrong type."""

    exit_code = 2


class BadRequest(CalfeedError):
    """The client asked for something that cannot be served."""

    status = 400
    exit_code = 2


class InvalidParameter(BadRequest):
    """A query parameter has a value outside what it allows.

    The message echoes at most a short prefix of the value: it is a stranger's text, of
    any length, and goes into logs and error pages.
    """

    def __init__(self, name: str, value: str, allowed: str, *, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"invalid value {excerpt(value)!r} for parameter {excerpt(name)!r}{why}: {allowed}"
        )
        self.name = name
        self.value = value


class RepeatedParameter(BadRequest):
    """A parameter that takes one value was given more than once."""

    def __init__(self, name: str, count: int, allowed: str) -> None:
        super().__init__(
            f"parameter {name!r} given {count} times; it takes one value: {allowed}"
        )
        self.name = name


class UnknownParameter(BadRequest):
    """A query parameter the feed does not know."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown parameter {excerpt(name)!r}; known parameters: {', '.join(known)}"
        )
        self.name = name


class ServeError(CalfeedError):
    """The server cannot start (the port is taken, the address is not this machine's)."""

    exit_code = 2


class NotFound(CalfeedError):
    """A path calfeed does not serve."""

    status = 404
    exit_code = 2


class InputError(CalfeedError):
    """A file given to `calfeed build --input` is not LL2 JSON."""

    exit_code = 2


class UpstreamError(CalfeedError):
    """LL2 could not give us data; served as 503 with Retry-After when nothing else is at hand."""

    status = 503
    exit_code = 3

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Retry-After in whole seconds, at least one."""
        seconds = max(1, int(self.retry_after + 0.999)) if self.retry_after else 60
        return {"Retry-After": str(seconds)}


class UpstreamUnreachable(UpstreamError):
    """Connection refused, DNS failure or timeout talking to LL2.

    `reached` is False when no connection was made at all (no network, DNS failure,
    refused, connect timeout): such a try costs nothing at LL2, so it costs nothing in
    calfeed's budget either.
    """

    def __init__(self, message: str, retry_after: float | None = None,
                 *, reached: bool = True) -> None:
        super().__init__(message, retry_after)
        self.reached = reached


class UpstreamThrottled(UpstreamError):
    """LL2 answered 429; nothing may be sent before retry_after has passed."""


class UpstreamServerError(UpstreamError):
    """LL2 answered with an unexpected HTTP status."""


class UpstreamBadResponse(UpstreamError):
    """LL2 answered 200 with something that is not an LL2 list page."""


class UpstreamIncomplete(UpstreamBadResponse):
    """A paginated LL2 list could not be fetched whole; the last complete one stays."""


class UpstreamShifted(UpstreamIncomplete):
    """A list whose items moved while it was read: `items`, all that arrived, lack
    `shortfall` that LL2 still has (which, is unknown), so they may update, not replace."""

    def __init__(self, message: str, items: list[dict[str, Any]], shortfall: int) -> None:
        super().__init__(message)
        self.items = items
        self.shortfall = shortfall


class BudgetExhausted(UpstreamError):
    """The hourly request budget has no room for another call yet."""


class NoDataYet(UpstreamError):
    """No dataset has been fetched yet and upstream cannot be asked now."""
