"""The web source's manners: each host's robots.txt (read once per run, user agent `postrag`),
a pause between two requests to one host, and no request outside the source's scope."""

from __future__ import annotations

import logging
import time
import urllib.robotparser
from collections.abc import Callable, Mapping

from app.providers.source_http import Body, SourceHttp
from app.providers.web_urls import Scope, origin

log = logging.getLogger(__name__)
USER_AGENT = "postrag"
_ROBOTS_MAX_BYTES = 512 * 1024
_MAX_CRAWL_DELAY_S = 60.0


class Hosts:
    """Requests to the hosts of a `scope`, `delay_s` apart per host (longer when robots.txt
    asks for a Crawl-delay, up to a minute)."""

    def __init__(
        self,
        http: SourceHttp,
        scope: Scope,
        delay_s: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http, self._scope, self._delay_s = http, scope, delay_s
        self._sleep, self._clock = sleep, clock
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._last: dict[str, float] = {}  # origin -> when its last answer came

    def get(self, url: str, max_bytes: int, headers: Mapping[str, str] | None = None) -> Body:
        """A GET of `url`, after the host's pause; never to a host outside the scope."""
        host = origin(url)
        if not self._scope.reaches(url):
            raise ValueError(f"{host} is outside the source's scope")  # a bug, not a page
        wait = self._last.get(host, float("-inf")) + self._delay(host) - self._clock()
        if wait > 0:
            self._sleep(wait)
        try:
            return self._http.get_capped(
                url, max_bytes, headers={"User-Agent": USER_AGENT, **(headers or {})}
            )
        finally:
            self._last[host] = self._clock()

    def allowed(self, url: str) -> bool:
        """Whether the host's robots.txt lets `postrag` read `url`."""
        return self._rules(origin(url)).can_fetch(USER_AGENT, url)

    def _delay(self, host: str) -> float:
        rules = self._robots.get(host)
        asked = rules.crawl_delay(USER_AGENT) if rules is not None else None
        return max(self._delay_s, min(float(asked or 0), _MAX_CRAWL_DELAY_S))

    def _rules(self, host: str) -> urllib.robotparser.RobotFileParser:
        """The host's robots.txt, read once. None there (4xx) allows everything; a refusal
        (401, 403) or a server error disallows everything, as RFC 9309 and urllib do."""
        rules = self._robots.get(host)
        if rules is not None:
            return rules
        rules = urllib.robotparser.RobotFileParser(f"{host}/robots.txt")
        self._robots[host] = rules
        answer = self.get(f"{host}/robots.txt", _ROBOTS_MAX_BYTES, {"Accept": "text/plain"})
        if answer.status_code == 200:
            rules.parse(answer.content.decode("utf-8", "replace").splitlines())
        elif answer.status_code in {401, 403} or answer.status_code >= 500:
            log.info("web source: %s/robots.txt answered %s", host, answer.status_code)
            rules.parse(["User-agent: *", "Disallow: /"])
        else:
            rules.parse([])
        return rules
