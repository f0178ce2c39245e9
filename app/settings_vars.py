"""How a setting is declared: its variable's name, parser (with bounds), default and doc."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# The key under which a Settings field keeps the variable it is read from.
VAR = "postrag.var"


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Var(Generic[T]):
    """One environment variable; `default` is written as in the environment (and the README)."""

    name: str
    parse: Callable[[str, str], T]  # (name, text) -> value; a SettingsError names the variable
    default: str  # "": unset
    doc: str

    def read(self, env: Mapping[str, str]) -> T:
        """The value in `env`; unset and empty both mean the default."""
        return self.parse(self.name, env.get(self.name) or self.default)


def setting(var: Var[T]) -> T:
    """A Settings field read from `var`, whose default is the variable's."""
    default: T = var.parse(var.name, var.default)
    return field(default=default, metadata={VAR: var})


def required(var: Var[Any]) -> dict[str, Var[Any]]:
    """The metadata of a Settings field read from `var` that has no default when built directly."""
    return {VAR: var}


@dataclass(frozen=True)
class Integer:
    """An integer in [low, high]; kept times `unit` (MB -> bytes); 0 also allowed if `or_zero`."""

    low: int
    high: int | None = None
    unit: int = 1
    or_zero: bool = False  # 0 means "no limit" below a real minimum
    why: str = ""  # the reason for the upper bound, told with it

    def __call__(self, name: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {text!r}") from None
        if value < self.low and not (self.or_zero and value == 0):
            zero = "0 (no limit) or " if self.or_zero else ""
            raise SettingsError(f"{name} must be {zero}>= {self.low}, got {value}")
        if self.high is not None and value > self.high:
            why = f" ({self.why})" if self.why else ""
            raise SettingsError(f"{name} must be <= {self.high}{why}, got {value}")
        return value * self.unit


def available_cores() -> int:
    """The CPUs this process may use: its affinity mask (a container's cpuset, taskset), not
    every CPU of the machine, and no more than its cgroup's CPU quota (docker --cpus)."""
    counted = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counted is not None:
        cores = int(counted() or 1)
    elif hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0)) or 1
    else:
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return cores if quota is None else max(1, min(cores, quota))


def cpu_quota(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    """The cgroup v2 CPU quota in whole CPUs, rounded up ("200000 100000": 2; None: no quota,
    or no cgroup v2 here)."""
    try:
        quota, period = Path(path).read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return -(-int(quota) // int(period))


@dataclass(frozen=True)
class IntegerOrCores(Integer):
    """An Integer, or "auto": the cores available to the process (available_cores), at most
    `high`."""

    def __call__(self, name: str, text: str) -> int:
        if text.strip().lower() == "auto":
            cores = max(available_cores(), self.low)
            return cores if self.high is None else min(cores, self.high)
        return super().__call__(name, text)


@dataclass(frozen=True)
class Number:
    """A finite number in [low, high]."""

    low: float
    high: float

    def __call__(self, name: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {text!r}") from None
        if not self.low <= value <= self.high:  # also refuses nan
            raise SettingsError(f"{name} must be between {self.low} and {self.high}, got {value}")
        return value


@dataclass(frozen=True)
class Choice:
    """One of `choices`, after `fold` (e.g. str.upper) when given."""

    choices: tuple[str, ...]
    fold: Callable[[str], str] | None = None

    def __call__(self, name: str, text: str) -> str:
        value = self.fold(text) if self.fold else text
        if value not in self.choices:
            raise SettingsError(f"{name} must be one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class Text:
    """Any text ("" when unset), stripped of surrounding spaces if `strip`."""

    strip: bool = False

    def __call__(self, name: str, text: str) -> str:
        return text.strip() if self.strip else text


@dataclass(frozen=True)
class OptionalText:
    """Text of at least `min_length` characters, or None when unset."""

    min_length: int = 0

    def __call__(self, name: str, text: str) -> str | None:
        if not text:
            return None
        if len(text) < self.min_length:
            raise SettingsError(f"{name} must be at least {self.min_length} characters")
        return text


def flag(name: str, text: str) -> bool:
    """true/false, yes/no, on/off or 1/0."""
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {text!r}")


def memory(name: str, text: str) -> str:
    """A PostgreSQL memory setting such as 512MB or 2GB."""
    value = text.strip()
    if not re.fullmatch(r"[1-9][0-9]{0,6}(kB|MB|GB)", value):
        raise SettingsError(f"{name} must look like 512MB or 2GB, got {value!r}")
    return value


def model_suffix(name: str, text: str) -> str:
    """A model-name suffix: 1-20 characters, none of them a space or a slash (a URL's)."""
    value = text.strip()
    if not re.fullmatch(r"[^\s/]{1,20}", value):
        raise SettingsError(f"{name} must be 1-20 characters, no space or slash, got {value!r}")
    return value


def words(name: str, text: str) -> tuple[str, ...]:
    """Comma-separated values, stripped, empty ones dropped."""
    return tuple(word.strip() for word in text.split(",") if word.strip())


def origins(name: str, text: str) -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port]) or *."""
    found = tuple(origin.rstrip("/") for origin in words(name, text))
    for origin in found:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
            raise SettingsError(f"{name}: {origin!r} is not an origin like https://app.example")
    return found


# An OAuth scope token (RFC 6749 3.3): printable ASCII but space, double quote and backslash.
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")


@dataclass(frozen=True)
class Scopes:
    """Space-separated OAuth scopes, `must` among them."""

    must: str

    def __call__(self, name: str, text: str) -> tuple[str, ...]:
        found = tuple(text.split())
        bad = [scope for scope in found if not _SCOPE.fullmatch(scope)]
        if bad:
            raise SettingsError(f"{name}: {bad[0][:50]!r} is not an OAuth scope")
        if self.must not in found:
            raise SettingsError(f"{name} must include {self.must}, got {text!r}")
        return found


def http_url(name: str, text: str) -> str:
    """An http(s) URL without fragment (a query is kept), of 2000 characters at most."""
    if len(text) > 2000 or not re.fullmatch(r"https?://[^\s/?#]+[^\s#]*", text):
        raise SettingsError(f"{name} must be an http(s) URL, got {text[:100]!r}")
    return text
