"""Every knob calfeed has: one frozen dataclass, filled from defaults, CALFEED_* and CLI flags."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from calfeed.exceptions import SettingsError
from calfeed.readers import MAX_DURATION

# the longest any interval, wait or timeout may be: past it the dates calfeed computes
# leave the calendar (OverflowError), and no deployment waits that long
A_YEAR = 366 * 86400
# the longest default duration: an event's longest
MAX_DURATION_SECONDS = int(MAX_DURATION.total_seconds())
# room for the largest calendar header (the longest name, twice), the component an empty
# feed holds and the footer, so that even an empty feed stays within max_feed_bytes
MIN_FEED_BYTES = 8192


def _setting(default: Any, help: str, *, least: float | None = None,
             most: float | None = None) -> Any:
    """A field with its help text and, for a number, the range it must lie in."""
    return field(default=default, metadata={"help": help, "least": least, "most": most})


@dataclass(frozen=True)
class Settings:
    """calfeed's configuration; each field is also CALFEED_<NAME> and --<name>."""

    host: str = _setting("127.0.0.1", "address the server listens on")
    port: int = _setting(8080, "port the server listens on", least=0, most=65535)
    upstream: str = _setting(
        "https://ll.thespacedevs.com/2.3.0",
        "LL2 base URL; its /2.2.0 or /2.3.0 path selects the API version",
    )
    ll2_token: str = _setting("", "LL2 API key, sent as 'Authorization: Token <key>'")
    max_past_days: int = _setting(
        30, "days of past events fetched from LL2 (past_days ceiling)",
        least=0, most=36_600
    )
    budget: int = _setting(
        0, "LL2 requests per hour calfeed may make; 0 = 15 without an API key, 300 with one",
        least=0
    )
    budget_reserve: int = _setting(2, "requests per hour left unused for manual use", least=0)
    state_dir: str = _setting(
        "", "folder for the persisted datasets and budget (default $XDG_DATA_HOME/calfeed)"
    )
    full_refresh_interval: int = _setting(
        3600, "seconds between full refreshes of the upcoming list (drops removed events)",
        least=1, most=A_YEAR
    )
    incremental_interval: int = _setting(
        900, "seconds between fetches of what changed, when nothing is imminent",
        least=1, most=A_YEAR
    )
    hot_window: int = _setting(
        10800, "seconds before an exactly timed event in which it counts as imminent",
        least=0, most=A_YEAR
    )
    hot_interval: int = _setting(
        0, "seconds between fetches of what changed while an event is imminent; "
        "0 = as often as the budget allows (at least 60)", least=0, most=A_YEAR
    )
    past_refresh_interval: int = _setting(
        21600, "seconds between refreshes of past events",
        least=1, most=A_YEAR
    )
    stale_after: int = _setting(
        10800, "seconds after the last successful sync when /healthz answers 503",
        least=1, most=A_YEAR
    )
    cold_start_wait: float = _setting(
        10.0, "seconds a request waits for the very first sync before a 503", least=0, most=A_YEAR
    )
    retry_backoff: int = _setting(
        60, "seconds to wait after a first upstream failure (doubles, with jitter)",
        least=1, most=A_YEAR
    )
    max_backoff: int = _setting(
        1800, "longest wait between attempts while upstream fails",
        least=1, most=A_YEAR
    )
    connect_timeout: float = _setting(
        10.0, "seconds to wait for a connection to LL2",
        least=0.001, most=A_YEAR
    )
    read_timeout: float = _setting(
        30.0, "seconds LL2 has to send a whole response once connected", least=0.001, most=A_YEAR
    )
    max_pages: int = _setting(
        50, "most pages followed per LL2 list (guards against next loops)",
        least=1
    )
    max_response_bytes: int = _setting(
        20_000_000, "largest LL2 response read (a detailed page of 100 launches is about 3 MB)",
        least=1024
    )
    default_duration: int = _setting(
        3600, "seconds a timed event lasts when LL2 gives no usable duration",
        least=0, most=MAX_DURATION_SECONDS
    )
    uid_domain: str = _setting("calfeed", "domain part of every VEVENT UID (keep it stable)")
    refresh_interval: int = _setting(
        3600, "seconds; REFRESH-INTERVAL, X-PUBLISHED-TTL and Cache-Control max-age of feeds",
        least=1, most=A_YEAR
    )
    max_feed_bytes: int = _setting(
        1_000_000, "largest feed body; Google drops events past about 1 MB",
        least=MIN_FEED_BYTES
    )
    body_cache_size: int = _setting(
        256, "rendered feed bodies kept (one per distinct query)",
        least=1
    )
    cache_bytes: int = _setting(
        64_000_000, "bytes of rendered feed bodies kept (plain and gzipped), and as many "
        "of prepared responses; the worst case of both is twice this (see README)", least=1
    )
    idle_timeout: float = _setting(
        60.0, "seconds a client connection has to send a whole request, and may stay idle "
        "between requests, before it is closed", least=0.001, most=A_YEAR
    )
    demo: bool = _setting(False, "serve bundled sample data instead of LL2 (no network)")
    public_url: str = _setting(
        "", "public base URL for every link calfeed prints, e.g. https://cal.example.org "
        "(default: the URL the request came to)"
    )
    trust_proxy: bool = _setting(
        False, "believe X-Forwarded-Proto/X-Forwarded-Host (only behind your own proxy)"
    )
    redis_url: str = _setting(
        "", "redis:// or rediss:// URL: several calfeed processes share one dataset, one "
        "LL2 budget and one syncer through it (empty: this process alone, state folder)"
    )
    redis_prefix: str = _setting(
        "calfeed", "prefix of every Redis key, so several deployments can share one Redis"
    )
    leader_lease: float = _setting(
        30.0, "seconds the syncing process's lease in Redis lasts unless renewed; another "
        "process takes over within this long after the leader dies or hangs",
        least=0.001, most=A_YEAR
    )
    workers: int = _setting(
        1, "server processes on one port (SO_REUSEPORT); more than 1 needs a Redis URL", least=1
    )

    def __post_init__(self) -> None:
        """Every number within its range, the Redis URL a Redis one: SettingsError naming
        the setting otherwise (an interval of 0 spun the sync loop, 0 cached bodies made
        every feed a 500, a NaN lease let no process lead)."""
        for f in _fields():
            least, most = f.metadata["least"], f.metadata["most"]
            value = getattr(self, f.name)
            if (least is None and most is None) or (
                    not isinstance(value, bool) and isinstance(value, int | float)
                    and math.isfinite(value) and (least is None or value >= least)
                    and (most is None or value <= most)):
                continue
            bounds = " and ".join(words for words in (
                f"at least {_number(least)}" if least is not None else "",
                f"at most {_number(most)}" if most is not None else "") if words)
            raise SettingsError(f"{_names(f.name)}: {value!r} is out of range, {bounds} "
                                f"({f.metadata['help']})")
        if self.redis_url and urlsplit(self.redis_url).scheme not in _REDIS_SCHEMES:
            raise SettingsError(f"{_names('redis_url')}: {self.redis_url[:60]!r} is not a "
                                "redis://, rediss:// or unix:// URL")

    @property
    def hourly_budget(self) -> int:
        """Requests per hour calfeed itself may make (the reserve kept back)."""
        total = self.budget or (300 if self.ll2_token else 15)
        return max(1, total - self.budget_reserve)


def parse_bool(text: str) -> bool:
    """1/true/yes/on or 0/false/no/off (or empty), any case; ValueError otherwise."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(text)


def _number(bound: float) -> str:
    """A bound as a person writes it: 31622400 and 0.001, not 3.16224e+07."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(Settings))


def _convert(f: dataclasses.Field[Any], raw: str, source: str) -> Any:
    kind: type[Any] = type(f.default)
    try:
        return parse_bool(raw) if kind is bool else kind(raw)
    except ValueError:
        raise SettingsError(
            f"{source}: {raw!r} is not a valid {kind.__name__} ({f.metadata['help']})"
        ) from None


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _names(name: str) -> str:
    return f"--{name.replace('_', '-')} ({env_name(name)})"


def env_name(name: str) -> str:
    """The environment variable that sets a field."""
    return "CALFEED_" + name.upper()


def settings_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then CALFEED_* variables, then explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in _fields():
        var = env_name(f.name)
        if var in environ:
            values[f.name] = _convert(f, environ[var], var)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def add_settings_arguments(parser: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """Add one --flag per setting (all, or those named) to an argparse parser."""
    for f in _fields():
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (env {env_name(f.name)}, default {f.default!r})"
        if isinstance(f.default, bool):
            parser.add_argument(flag, dest=f"setting_{f.name}", action="store_const",
                                const=True, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=f"setting_{f.name}", default=None, help=help_text,
                                metavar=f.name.upper())


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the environment with the parsed CLI flags on top."""
    overrides: dict[str, Any] = {}
    for f in _fields():
        raw = getattr(args, f"setting_{f.name}", None)
        if raw is None:
            continue
        overrides[f.name] = raw if isinstance(raw, bool) else _convert(
            f, raw, "--" + f.name.replace("_", "-"))
    return settings_from_env(environ, **overrides)


def range_words(name: str) -> str:
    """A setting's range as the README's table gives it ("1 to 31622400", "≥ 0"; empty for
    a setting that is no number or has none)."""
    metadata = next(f.metadata for f in _fields() if f.name == name)
    least, most = metadata["least"], metadata["most"]
    if least is not None and most is not None:
        return f"{_number(least)} to {_number(most)}"
    if least is not None:
        return f"≥ {_number(least)}"
    return f"≤ {_number(most)}" if most is not None else ""


def settings_table() -> list[tuple[str, str, str, str]]:
    """(flag, variable, default, help) for each setting, for the README and --help."""
    return [
        ("--" + f.name.replace("_", "-"), env_name(f.name), repr(f.default), f.metadata["help"])
        for f in _fields()
    ]
