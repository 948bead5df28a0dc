"""Calendar arithmetic in Japan time, as the rulebooks count it.

Japan has not observed daylight saving time since 1951, so a fixed +09:00
offset is exact for every date a rulebook can mean and needs no tz database
on the host. Conventions (RULES.md):

- "N months later" adds N to the month and clamps the day to the end of the
  target month: 1/31 + 1 month = 2/28 (2/29 in a leap year).
- "until 24:00 on day D" is the instant D+1 00:00:00; that instant is
  already too late, so deadlines compare with `<`.
- "within N days of D" (初日不算入) runs until 24:00 on D+N.
"""

from __future__ import annotations

import calendar as _cal
import functools
import json
import re
from datetime import UTC, date, datetime, time, timedelta, timezone

from engine.core.i18n import Msg
from engine.core.jsonvalue import JST

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ASCII digits only: `\d` would also take full-width ones, which facts refuse.
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)


def _quoted(text: str) -> str:
    shown = json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def parse_date(text: str) -> date:
    """A strict `YYYY-MM-DD` date; ValueError with a message for a person otherwise."""
    match = _DATE.fullmatch(text)
    if match is not None:
        try:
            return date(*(int(g) for g in match.groups()))
        except ValueError:
            pass
    raise ValueError(Msg("{text} is not a valid date (YYYY-MM-DD)", text=_quoted(text)))


@functools.lru_cache(maxsize=4096)
def parse_datetime(text: str) -> datetime:
    """The one parser of instants, for facts and `at` alike: RFC 3339 with a required UTC
    offset. `24:00:00` is the next day's 00:00:00 (the rulebooks speak of "the 21st,
    24:00"; RFC 3339 has no hour 24). Digits past microseconds are cut. An instant that
    leaves the years 1-9999 in UTC or in Japan time is refused: nothing could show it."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError(Msg("{text} is not a valid date-time (RFC 3339)", text=_quoted(text)))
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    if not zulu and not sign:
        raise ValueError(Msg("{text} needs a UTC offset such as +09:00 or Z", text=_quoted(text)))
    micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if second == 60:  # valid RFC 3339 text, but Python's datetime (and UTC as used) has none
        raise ValueError(
            Msg(
                "{text} is a leap second, which is not supported: write :59 or the next second",
                text=_quoted(text),
            )
        )
    end_of_day = hour == 24
    if end_of_day:
        hour = 25 if minute or second or micros else 0  # 25: refused below
    try:
        tz = UTC if zulu else _offset(sign, int(off_h), int(off_m))
        value = datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
        if end_of_day:
            value += timedelta(days=1)
        value.astimezone(UTC), value.astimezone(JST)  # OverflowError outside years 1-9999
    except ValueError:
        raise ValueError(
            Msg("{text} is not a valid date-time (RFC 3339)", text=_quoted(text))
        ) from None
    except OverflowError:
        raise ValueError(out_of_range(text)) from None
    return value


_AGO = re.compile(r"([0-9]{1,9})([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z: no instant before it can be shown


def out_of_range(text: str) -> Msg:
    """The words for an instant outside the years 1-9999 (as written, or once made an
    instant: a date in Japan, a duration ago)."""
    return Msg(
        "{text} is out of range: instants must fall within the years 1-9999 "
        "in UTC and in Japan time",
        text=_quoted(text),
    )


def instant_ms(text: str, now: float) -> int:
    """Milliseconds since the epoch of '30d', '12h', '15m', '45s' before `now` (seconds
    since the epoch, the caller's clock), of a date (YYYY-MM-DD: its start in Japan) or
    of an RFC 3339 date-time; ValueError else, also for an instant before year 1.
    Every `since`/`until` of the CLI and the service (never a rule's: rules read `at`)."""
    match = _AGO.fullmatch(text.strip())
    if match:
        ms = int((now - int(match.group(1)) * _SECONDS[match.group(2)]) * 1000)
    elif _DAY.fullmatch(text):
        ms = int(start_of_day(parse_date(text)).timestamp() * 1000)
    else:
        return int(parse_datetime(text).timestamp() * 1000)
    if ms < FIRST_MS:  # 30000d ago; 0001-01-01 in Japan, which starts in year 0 in UTC
        raise ValueError(out_of_range(text))
    return ms


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _offset(sign: str, hours: int, minutes: int) -> timezone:
    if hours > 23 or minutes > 59:
        raise ValueError(Msg("invalid UTC offset"))
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta)


def local_date(value: date | datetime) -> date:
    """The calendar date in Japan of an instant (a date is returned as it is)."""
    if isinstance(value, datetime):
        return value.astimezone(JST).date()
    return value


def start_of_day(value: date | datetime) -> datetime:
    return datetime.combine(local_date(value), time(0), JST)


def end_of_day(value: date | datetime) -> datetime:
    """24:00 of the day: the first instant that is no longer on it."""
    return start_of_day(local_date(value) + timedelta(days=1))


def add_days(value: date | datetime, days: int) -> date | datetime:
    try:
        return _shown_anywhere(value + timedelta(days=days))
    except OverflowError:  # past year 9999, or more days than a timedelta holds
        raise ValueError(Msg("date out of range")) from None


def add_months(value: date | datetime, months: int) -> date | datetime:
    """Calendar months, day clamped to the end of the target month."""
    if isinstance(value, datetime):
        local = value.astimezone(JST)
        moved = _shift_month(local.date(), months)
        return _shown_anywhere(datetime.combine(moved, local.timetz()))
    return _shift_month(value, months)


def _shown_anywhere(value: date | datetime) -> date | datetime:
    """`value`, if it is a date, or an instant within the years 1-9999 both in UTC and in
    Japan time, as parse_datetime requires of one read: 0001-01-01T05:00+09:00 falls in
    year 0 in UTC, and nothing could show it. ValueError else."""
    if isinstance(value, datetime):
        try:
            value.astimezone(UTC), value.astimezone(JST)
        except OverflowError:
            raise ValueError(Msg("date out of range")) from None
    return value


def _shift_month(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise ValueError(Msg("date out of range"))
    last = _cal.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def with_day(value: date | datetime, day: int) -> date:
    """Day `day` of the same month, clamped to the month's last day."""
    local = local_date(value)
    last = _cal.monthrange(local.year, local.month)[1]
    if day < 1:
        raise ValueError(Msg("day must be at least 1, got {day}", day=day))
    return local.replace(day=min(day, last))


def start_of_month(value: date | datetime) -> date:
    return local_date(value).replace(day=1)


def end_of_month(value: date | datetime) -> date:
    local = local_date(value)
    return local.replace(day=_cal.monthrange(local.year, local.month)[1])


def days_between(start: date | datetime, end: date | datetime) -> int:
    """Calendar days from `start` to `end` in Japan (negative if `end` is earlier)."""
    return (local_date(end) - local_date(start)).days


def months_between(start: date | datetime, end: date | datetime) -> int:
    """Whole calendar months from `start` to `end`: the largest n with start + n months <= end,
    backwards too (3/30 to 2/28 is -2: 3/30 - 1 month is 2/29, after 2/28).

    Instants count to the microsecond: two datetimes one month apart to the
    second are one month apart; one second less is zero months.
    """
    a = start.astimezone(JST) if isinstance(start, datetime) else start
    b = end.astimezone(JST) if isinstance(end, datetime) else end
    # start + n months falls in the month n after start's: in end's month for this n, so
    # the largest n is this one, or the one before if that day (clamped) is after end.
    months = (b.year - a.year) * 12 + (b.month - a.month)
    if add_months(a, months) > b:  # type: ignore[operator]
        months -= 1
    return months


def to_epoch_micros(value: datetime) -> int:
    """Exact integer form of an instant, for engines that only compare numbers."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_day_number(value: date) -> int:
    return value.toordinal()
