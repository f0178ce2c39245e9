"""HTTP for the sources' clients: a bearer token refreshed once after a 401, 429 and 503 waited
out as `Retry-After` says (bounded), bodies read up to a cap when asked, only addresses the
`reach` allows (app/providers/source_reach.py), and failures as SourceFailed naming the source,
never the token."""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import httpx

from app.providers.source_items import SourceFailed
from app.providers.source_reach import Reach

# (force_refresh) -> a current access token; True after the source answered 401 with the last one.
TokenSource = Callable[[bool], str]
_WAIT_STATUSES = {429, 503}


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...


_A = TypeVar("_A", bound=_Answer)


@dataclass(frozen=True)
class Body:
    """An answer whose body was read up to a cap (a web page, not an API's JSON)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    complete: bool  # False when the body was longer than the cap: `content` is its start


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
        reach: Reach | None = None,
    ) -> None:
        self.name = name
        self._token, self._sleep, self._reach = token, sleep, reach
        self._resolved: dict[tuple[str, int | None], str | None] = {}  # host checks, this life
        self._max_wait_s, self._attempts = max_wait_s, attempts
        self._client = httpx.Client(
            timeout=timeout_s, headers={"Accept": "application/json", **(headers or {})}
        )

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer to a GET. 429 and 503 are retried after their Retry-After (at most
        `max_wait_s` each, `attempts` tries in all); a 401 refreshes the token once. Any other
        status is the caller's to read."""
        return self._retried(lambda refresh: self._send(url, params, refresh, headers))

    def get_capped(
        self, url: str, max_bytes: int, *, headers: Mapping[str, str] | None = None
    ) -> Body:
        """As `get`, the body streamed and read up to `max_bytes` (decompressed); redirects
        are answers like any other, for the caller to judge."""
        return self._retried(lambda refresh: self._send_capped(url, refresh, headers, max_bytes))

    def _retried(self, send: Callable[[bool], _A]) -> _A:
        refreshed = False
        for attempt in range(1, self._attempts + 1):
            response = send(False)
            if response.status_code == 401 and self._token is not None and not refreshed:
                refreshed = True
                response = send(True)
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
        self,
        url: str,
        params: Mapping[str, Any] | None,
        force_refresh: bool,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        with self._reaching():
            request = self._client.build_request(
                "GET", url, params=params, headers=self._headers(force_refresh, headers)
            )
            response = self._opened(request)
            try:
                response.read()
            finally:
                response.close()
            return response

    def _send_capped(
        self, url: str, force_refresh: bool, headers: Mapping[str, str] | None, max_bytes: int
    ) -> Body:
        chunks, size = [], 0
        with self._reaching():
            request = self._client.build_request(
                "GET", url, headers=self._headers(force_refresh, headers)
            )
            response = self._opened(request)
            try:
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        break
            finally:
                response.close()
        content = b"".join(chunks)
        return Body(response.status_code, response.headers, content[:max_bytes], size <= max_bytes)

    def _opened(self, request: httpx.Request) -> httpx.Response:
        """The answer to `request`, its body not read yet; refused (SourceFailed) before it is
        sent, or before its body is read, when the address is not one to reach."""
        url, refusal = str(request.url), None
        if self._reach is not None:
            host = (request.url.host, request.url.port)
            if host not in self._resolved:  # the address reached is checked on every request
                self._resolved[host] = self._reach.refusal(url)
            refusal = self._resolved[host]
        if refusal is not None:
            raise SourceFailed(f"{self.name} may not reach {refusal}")
        response = self._client.send(request, stream=True)
        refusal = self._reach.reached_refusal(url, response) if self._reach is not None else None
        if refusal is not None:
            response.close()
            raise SourceFailed(f"{self.name} may not reach {refusal}")
        return response

    def _headers(self, force_refresh: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token(force_refresh)}"
        return headers

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise SourceFailed(f"{self.name} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SourceFailed(f"{self.name} cannot be reached ({type(exc).__name__})") from None


def _path(url: str) -> str:
    return httpx.URL(url).path  # no query: it may name what the user searched for
