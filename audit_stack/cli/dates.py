"""``--since``/``--until``: ISO 8601 input, and the event-key range of a time range (pure)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from audit_stack.cli.errors import UsageError
from audit_stack.lambda_code import contract

__all__ = ["Moment", "event_key_bounds", "iso_moment", "timestamp"]

# An event key is "<occurred_at>#<event_id>"; "~" sorts after "#" and every id character, so
# "<timestamp>~" is an upper bound for every key of that timestamp.
_KEY_UPPER_BOUND_SUFFIX: Final = "~"


@dataclass(frozen=True)
class Moment:
    """A --since/--until value: an instant, and whether it was given as a whole day."""

    value: datetime
    whole_day: bool

    def shown(self) -> str:
        """As the operator gave it: the day, or the instant in UTC."""
        return self.value.date().isoformat() if self.whole_day else timestamp(self.value)


def iso_moment(text: str) -> Moment:
    """argparse type: an ISO 8601 date or date-time; naive means UTC."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return Moment(datetime(day.year, day.month, day.day, tzinfo=UTC), whole_day=True)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or date-time "
            "(e.g. 2026-11-29, 2026-11-29T10:00:00Z, 2026-11-29T11:00:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Moment(moment.astimezone(UTC), whole_day=False)


def timestamp(moment: datetime) -> str:
    """The events' timestamp format (contract.TIMESTAMP_FORMAT): text order is time order."""
    return moment.astimezone(UTC).strftime(contract.TIMESTAMP_FORMAT)


def event_key_bounds(since: Moment | None, until: Moment | None) -> tuple[str | None, str | None]:
    """The lowest and highest event key of a time range, both inclusive (a date means the whole
    day); UsageError when the range is empty by construction."""
    lower = timestamp(since.value) if since else None
    upper = None
    if until is not None:
        end = until.value + timedelta(days=1, microseconds=-1) if until.whole_day else until.value
        upper = timestamp(end) + _KEY_UPPER_BOUND_SUFFIX
    if lower and upper and lower > upper:
        raise UsageError("--since is after --until")
    return lower, upper
