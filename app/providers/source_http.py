"""HTTP for the sources' clients: a bearer token refreshed once after a 401, 429 and 503 waited
out as `Retry-After` says (bounded), and failures as SourceFailed naming the source, never the
token."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from app.providers.source_items import SourceFailed

# (force_refresh) -> a current access token; True after the source answered 401 with the last one.
TokenSource = Callable[[bool], str]
_WAIT_STATUSES = {429, 503}


def retry_after_s(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), else `default`."""
    if not value:
        return default
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class SourceHttp:
    """GETs to one source (`name` in messages), as one user when `token` is given."""

    def __init__(
        self,
        name: str,
        token: TokenSource | None = None,
        *,
        timeout_s: float = 30.0,
        max_wait_s: float = 120.0,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._token, self._sleep = token, sleep
        self._max_wait_s, self._attempts = max_wait_s, attempts
        self._client = httpx.Client(
            timeout=timeout_s, headers={"Accept": "application/json", **(headers or {})}
        )

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """The answer to a GET. 429 and 503 are retried after their Retry-After (at most
        `max_wait_s` each, `attempts` tries in all); a 401 refreshes the token once. Any other
        status is the caller's to read."""
        refreshed = False
        for attempt in range(1, self._attempts + 1):
            response = self._send(url, params, force_refresh=False)
            if response.status_code == 401 and self._token is not None and not refreshed:
                refreshed = True
                response = self._send(url, params, force_refresh=True)
            if response.status_code not in _WAIT_STATUSES or attempt == self._attempts:
                return response
            wait = retry_after_s(response.headers.get("Retry-After"), default=2.0**attempt)
            if wait > self._max_wait_s:
                raise SourceFailed(
                    f"{self.name} asks to wait {wait:.0f} s (more than {self._max_wait_s:.0f} s)"
                )
            self._sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returned

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON body of a 200; SourceFailed for any other status or a body that is not JSON."""
        response = self.get(url, params)
        if response.status_code != 200:
            raise SourceFailed(f"{self.name} answered {response.status_code} for {_path(url)}")
        try:
            return response.json()
        except ValueError:
            raise SourceFailed(f"{self.name} answered something that is not JSON") from None

    def _send(
        self, url: str, params: Mapping[str, Any] | None, force_refresh: bool
    ) -> httpx.Response:
        headers = {}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token(force_refresh)}"
        try:
            return self._client.get(url, params=params, headers=headers)
        except httpx.TimeoutException:
            raise SourceFailed(f"{self.name} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SourceFailed(f"{self.name} cannot be reached ({type(exc).__name__})") from None


def _path(url: str) -> str:
    return httpx.URL(url).path  # no query: it may name what the user searched for
