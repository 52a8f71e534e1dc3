"""API keys a rotation retired, still accepted by the gateway until their grace period ends.

Kept on the admin machine only, next to the host's current keys (same policy: 0700 directory, 0600 file,
:mod:`llmrack.secrets`)::

    <secrets>/<host>/retired_api_keys.json   [{"client": "default", "key": "sk-llmrack-...",
                                              "expires": "2026-12-04T09:30:00Z"}, ...]

Written by ``llmrack rotate-secrets`` only; a deploy reads it (never creates or changes it) and puts the keys
that have not expired into the gateway's key map, next to the current ones. An expired key, a key of a client
no longer in ``stack.gateway.api_clients`` or one that is a current key again is left out, so the first
deploy after the expiry time stops it. A rotation caps the expiry of every key a client retired earlier at the
new one: ``--grace-hours 0`` stops all of that client's old keys at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llmrack.errors import LlmrackError
from llmrack.secrets import KEY_RE, host_dir, read_private, write_private

RETIRED_API_KEYS = "retired_api_keys.json"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class RetiredKey:
    client: str
    key: str
    expires: datetime

    def __repr__(self) -> str:  # never print a key by accident
        return f"RetiredKey(client={self.client!r}, expires={format_time(self.expires)})"

    def live(self, now: datetime) -> bool:
        return self.expires > now

    def as_json(self) -> dict[str, str]:
        return {"client": self.client, "key": self.key, "expires": format_time(self.expires)}


def retired_path(project_dir: str | Path, host: str) -> Path:
    return host_dir(project_dir, host) / RETIRED_API_KEYS


def read_retired(path: Path) -> list[RetiredKey]:
    """The retired keys kept at ``path`` (none when the file does not exist); a malformed file stops the command
    naming it (delete it to stop every retired key at the next deploy)."""
    text = read_private(path)
    if text is None:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, list):
        raise LlmrackError("must be a JSON list of {client, key, expires} (delete the file to drop every retired "
                           "key)", source=str(path))
    found = []
    for i, entry in enumerate(data):
        try:
            client, key, expires = entry["client"], entry["key"], parse_time(entry["expires"])
        except (TypeError, KeyError, ValueError):
            raise LlmrackError(f"entry {i} is not {{client, key, expires: {TIME_FORMAT}}}",
                               source=str(path)) from None
        if not isinstance(client, str) or not isinstance(key, str) or not KEY_RE.match(key):
            raise LlmrackError(f"entry {i} does not hold a client name and an llmrack key", source=str(path))
        found.append(RetiredKey(client, key, expires))
    return found


def write_retired(path: Path, entries: Iterable[RetiredKey]) -> None:
    ordered = sorted(entries, key=lambda e: (e.client, e.expires, e.key))
    write_private(path, json.dumps([e.as_json() for e in ordered], indent=2) + "\n")


def accepted(entries: Iterable[RetiredKey], current: Mapping[str, str], now: datetime) -> list[RetiredKey]:
    """The retired keys the gateway still accepts: not expired, of a client that still has a current key, not a
    current key themselves (each key once)."""
    keep: dict[str, RetiredKey] = {}
    in_use = set(current.values())
    for e in sorted(entries, key=lambda e: (e.client, e.expires, e.key)):
        if e.live(now) and e.client in current and e.key not in in_use:
            keep[e.key] = e
    return sorted(keep.values(), key=lambda e: (e.client, e.expires, e.key))


def retire(entries: Iterable[RetiredKey], old: Mapping[str, str], expires: datetime,
           now: datetime) -> list[RetiredKey]:
    """``entries`` after retiring ``old`` (client -> the key it held) until ``expires``: every earlier key of those
    clients expires no later than that, expired entries are dropped."""
    out = []
    for e in entries:
        if e.client in old and e.expires > expires:
            e = RetiredKey(e.client, e.key, expires)
        if e.live(now):
            out.append(e)
    out += [RetiredKey(client, key, expires) for client, key in old.items()]
    return [e for e in out if e.live(now)]


def grace_end(now: datetime, hours: int) -> datetime:
    return now + timedelta(hours=hours)


def gateway_retired_keys(project_dir: str | Path, host: str, current: Mapping[str, str],
                         now: datetime | None = None) -> list[tuple[str, str, str]]:
    """(client, key, expires) of the retired keys the gateway of ``host`` accepts now, for the key map (read
    only: a deploy never writes this file)."""
    entries = read_retired(retired_path(project_dir, host))
    return [(e.client, e.key, format_time(e.expires)) for e in accepted(entries, current, now or utc_now())]
