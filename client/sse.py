"""A small Server-Sent Events reader (the WHATWG event-stream format) over a streamed response."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator


@dataclass
class Event:
    """One dispatched event: its type (default "message"), its data text and its id."""

    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        """The data parsed as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    """Events from decoded lines; comments (keep-alives) are skipped, a blank line dispatches."""
    event, data, last_id = "", [], None
    for line in lines:
        if line == "":
            if data:
                yield Event(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value
    if data:
        yield Event(event or "message", "\n".join(data), last_id)
