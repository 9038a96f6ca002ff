"""Parse the dates that pages show in bylines and datelines into ISO 8601 strings.

Only what the text states is returned: a date alone when no time is shown, a
time without zone when no zone is shown, and an offset only when the text gives
UTC/GMT/Z, a numeric offset or a zone abbreviation with one fixed offset.
Month names are English and French (full and abbreviated). Every pattern is a
sequence of bounded character classes and alternations of literals, with no
nested quantifiers, so matching stays linear in the length of the text.
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Month names and abbreviations, English and French; accents optional because pages drop them.
MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "janvier": 1, "janv": 1,
    "february": 2, "feb": 2, "febr": 2, "février": 2, "fevrier": 2, "févr": 2, "fevr": 2, "fév": 2, "fev": 2,
    "march": 3, "mar": 3, "mars": 3,
    "april": 4, "apr": 4, "avril": 4, "avr": 4,
    "may": 5, "mai": 5,
    "june": 6, "jun": 6, "juin": 6,
    "july": 7, "jul": 7, "juillet": 7, "juil": 7,
    "august": 8, "aug": 8, "août": 8, "aout": 8,
    "september": 9, "sep": 9, "sept": 9, "septembre": 9,
    "october": 10, "oct": 10, "octobre": 10,
    "november": 11, "nov": 11, "novembre": 11,
    "december": 12, "dec": 12, "décembre": 12, "decembre": 12, "déc": 12,
}

# Weekday names a dateline may start with ("Monday, December 12, 2016", "lundi 28 mars 2016").
WEEKDAYS: tuple[str, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
)
# Each weekday name's day (Monday 0, as datetime.date.weekday()), to read a numeric date
# that reads two ways ("Tuesday, 11.06.2012" is 6 November: 11 June 2012 was a Monday).
WEEKDAY_NUMBERS: dict[str, int] = {
    name: day
    for names in (
        ("monday", "mon", "lundi"), ("tuesday", "tue", "tues", "mardi"), ("wednesday", "wed", "mercredi"),
        ("thursday", "thu", "thur", "thurs", "jeudi"), ("friday", "fri", "vendredi"),
        ("saturday", "sat", "samedi"), ("sunday", "sun", "dimanche"),
    )
    for day in [("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday").index(names[0])]
    for name in names
}

# Zone abbreviations with a single fixed offset; ambiguous ones (CST, IST, ET) are left zone-less.
ZONE_OFFSETS: dict[str, str] = {
    "utc": "+00:00", "gmt": "+00:00", "z": "+00:00",
    "est": "-05:00", "edt": "-04:00", "cdt": "-05:00", "mst": "-07:00", "mdt": "-06:00",
    "pst": "-08:00", "pdt": "-07:00", "bst": "+01:00", "cet": "+01:00", "cest": "+02:00",
    # Australia, New Zealand and East Asia ("7:39 pm AEST"), Eastern Europe and Moscow, and
    # the French names of Canada's zones ("14h18 HNE": heure normale de l'Est).
    "aest": "+10:00", "aedt": "+11:00", "acst": "+09:30", "acdt": "+10:30", "awst": "+08:00",
    "nzst": "+12:00", "nzdt": "+13:00", "jst": "+09:00", "kst": "+09:00", "hkt": "+08:00",
    "sgt": "+08:00", "eet": "+02:00", "eest": "+03:00", "msk": "+03:00",
    "hne": "-05:00", "hae": "-04:00", "hnc": "-06:00", "hac": "-05:00", "hnp": "-08:00", "hap": "-07:00",
}

# Zone names read as part of the time but giving no offset: several zones share them
# (CST: US Central or China; IST: India, Ireland or Israel; ET/PT: standard or daylight).
ZONES_WITHOUT_OFFSET: tuple[str, ...] = ("et", "pt", "ct", "mt", "cst", "ist", "ast", "hst")

# Years outside this range are far more often counts or ids than dates on news pages.
MIN_YEAR = 1900
MAX_YEAR = 2099

# Text a whole-line date may be wrapped in ("(Dec 12, 2016)", "— 12/12/2016 |").
WRAPPING_CHARS = " \t()[]{}|,;.-–—·•"


def _alternation(words: list[str] | tuple[str, ...]) -> str:
    """A regex alternation of literal words, longest first so 'sept' wins over 'sep'."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_MONTH = rf"(?P<month>{_alternation(list(MONTHS))})\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th|er|e)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
# A year cut to two digits after an apostrophe ("Nov 6th '12"); only beside a month name,
# as "11.05.12" reads three ways. Read as strptime's %y does: 69-99 are 1969-1999.
_SHORT_YEAR = r"['’‘](?P<year>\d\d)"
SHORT_YEAR_PIVOT = 69
# Two-digit years are read in a line of at most this many characters (a byline or dateline:
# "Nov 6th '12 by Jane Roe @ 12:36pm 4 Comments" has 45): in prose "'12" is as often a
# quote or a season as a date, and looking for it in every paragraph slowed find_date by a
# third on the dragnet head lines.
SHORT_YEAR_MAX_CHARS = 100
# Seconds are optional; 'h' is the French separator ("14h18"); a.m./p.m. in any common spelling.
_TIME = (
    r"(?P<hour>[0-2]?\d)(?::|h)(?P<minute>[0-5]\d)(?::(?P<second>[0-5]\d))?"
    r"(?:\s?(?P<ampm>[ap])\.?\s?m\.?(?![a-z]))?"
    r"(?:\s?(?:(?P<zname>utc|gmt)(?:\s?(?P<zoff>[+-]\d{1,2}(?::?\d\d)?))?(?![a-z])"
    r"|(?P<zabbr>" + _alternation([z for z in ZONE_OFFSETS if z not in ("utc", "gmt", "z")]) + r")(?![a-z])"
    r"|(?P<znone>" + _alternation(ZONES_WITHOUT_OFFSET) + r")(?![a-z])"
    r"|(?P<znum>[+-]\d\d:?\d\d)(?!\d)"
    r"|(?P<zulu>z)(?![a-z])))?"
)
# Between a date and its time ("Dec 12, 2016 at 14:18", "28 mars 2016 à 14h18", "11.06.2012 /
# 4:05 PM"): a slash is not read inside a numeric date, whose separators are taken. Possessive
# quantifiers (Python 3.11+) keep a long run of spaces from being rescanned by each alternative.
_DATE_TIME_GAP = r"(?=[\s,|@\-–—·/])\s*+(?:[,|@\-–—·/]\s*+)?(?:(?:at|à|a)\s++)?"
_TIME_DATE_GAP = r"(?=[\s,|\-–—·/])\s*+(?:[,|\-–—·/]\s*+)?(?:on\s++)?"
# Between day and year: a comma, spaces, or both ("December 12, 2016", "Dec 12 2016").
_DAY_YEAR_GAP = r"(?=[\s,])\s*+,?\s*+"

_MDY = rf"{_MONTH}\s*+{_DAY}{_DAY_YEAR_GAP}{_YEAR}"
_DMY = rf"{_DAY}(?:\s++of)?\s++{_MONTH}{_DAY_YEAR_GAP}{_YEAR}"
_MDY_SHORT = rf"{_MONTH}\s*+{_DAY}{_DAY_YEAR_GAP}{_SHORT_YEAR}"
_DMY_SHORT = rf"{_DAY}(?:\s++of)?\s++{_MONTH}{_DAY_YEAR_GAP}{_SHORT_YEAR}"
_ISO = r"(?P<year>(?:19|20)\d\d)-(?P<month>[01]\d)-(?P<day>[0-3]\d)"
_NUMERIC = r"(?P<first>[0-3]?\d)(?P<sep>[/.-])(?P<second_part>[0-3]?\d)(?P=sep)(?P<year>(?:19|20)\d\d)"
_NUMERIC_YMD = r"(?P<year>(?:19|20)\d\d)(?P<sep>[/.])(?P<month>[01]?\d)(?P=sep)(?P<day>[0-3]?\d)"

# Word boundaries are spelled out because '\b' fails next to the '.' of "Dec." and at digits.
_LEFT = r"(?<![\w/.-])"
_RIGHT = r"(?![\w/-]|\.\d)"


@dataclass(frozen=True, slots=True)
class _Form:
    """One date layout, with and without a time around it."""

    name: str
    core: str


_FORMS: tuple[_Form, ...] = (
    _Form("mdy", _MDY),
    _Form("dmy", _DMY),
    _Form("iso", _ISO),
    _Form("numeric", _NUMERIC),
    _Form("numeric_ymd", _NUMERIC_YMD),
    _Form("mdy_short", _MDY_SHORT),
    _Form("dmy_short", _DMY_SHORT),
)


def _compile(form: _Form) -> list[tuple[str, re.Pattern[str]]]:
    """Three variants per layout: time after, time before, date alone (tried in that order)."""
    after_gap = r"(?:T|\s++)" if form.name == "iso" else _DATE_TIME_GAP
    return [
        (form.name, re.compile(rf"{_LEFT}{form.core}{after_gap}{_TIME}{_RIGHT}", re.IGNORECASE)),
        (form.name, re.compile(rf"{_LEFT}{_TIME}{_TIME_DATE_GAP}{form.core}{_RIGHT}", re.IGNORECASE)),
        (form.name, re.compile(rf"{_LEFT}{form.core}{_RIGHT}", re.IGNORECASE)),
    ]


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [p for form in _FORMS for p in _compile(form)]

# What a text must hold somewhere for each layout to match in it, read off the patterns
# above: a month name (mdy, dmy), or the year next to its separators; and for the
# variants with a time, an hour and minutes ("14:18", "14h18"). A quick first check.
_MONTH_NAME = re.compile(_alternation(list(MONTHS)))  # MONTHS are lower case


def _has_month(text: str) -> bool:
    """Whether the month alternation of the patterns (case-insensitive) may match in `text`.
    In folded text a case-sensitive search for the lower-case names is quicker and says the
    same (see folded: the names are ASCII and Latin-1 letters)."""
    lower = folded(text)
    return lower is None or _MONTH_NAME.search(lower) is not None


def _searcher(pattern: str) -> Callable[[str], bool]:
    regex = re.compile(pattern)
    return lambda text: regex.search(text) is not None


_SHORT_YEAR_MARK = re.compile(r"['’‘]\d\d")


def _has_short_year(text: str) -> bool:
    """Whether `text` is short and holds an apostrophe and two digits ("'12"); see
    SHORT_YEAR_MAX_CHARS."""
    return len(text) <= SHORT_YEAR_MAX_CHARS and _SHORT_YEAR_MARK.search(text) is not None


_FORM_NEEDS: dict[str, tuple[Callable[[str], bool], ...]] = {
    "mdy": (_has_month,),
    "dmy": (_has_month,),
    "iso": (_searcher(r"(?:19|20)\d\d-[01]\d-[0-3]\d"),),
    "numeric": (_searcher(r"[/.-](?:19|20)\d\d"),),
    "numeric_ymd": (_searcher(r"(?:19|20)\d\d[/.]"),),
    "mdy_short": (_has_short_year, _has_month),
    "dmy_short": (_has_short_year, _has_month),
}
# The time's "h" is matched case-insensitively: "h" or "H", nothing else.
_HAS_CLOCK = _searcher(r"\d(?::|[hH])[0-5]\d")
# Per pattern of _PATTERNS (time after, time before, date alone, for each layout); the
# cheaper test first.
_PATTERN_NEEDS: list[tuple[Callable[[str], bool], ...]] = [
    needs for form in _FORMS for needs in (
        (_HAS_CLOCK, *_FORM_NEEDS[form.name]), (_HAS_CLOCK, *_FORM_NEEDS[form.name]), _FORM_NEEDS[form.name])
]


# The distinct needs, in the order they are first asked for; then, for each combination of
# them that a text can hold, the patterns it admits (every text asks every need: each
# layout's date-alone variant needs its layout's need, and the first variant the clock).
_NEEDS: tuple[Callable[[str], bool], ...] = tuple(dict.fromkeys(need for needs in _PATTERN_NEEDS for need in needs))
_POSSIBLE: dict[tuple[bool, ...], tuple[tuple[str, re.Pattern[str]], ...]] = {
    held: tuple(form_pattern for form_pattern, needs in zip(_PATTERNS, _PATTERN_NEEDS)
                if all(held[_NEEDS.index(need)] for need in needs))
    for held in itertools.product((False, True), repeat=len(_NEEDS))
}


def _possible(text: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The patterns of _PATTERNS that may match in `text`, in order."""
    if not _has_year(text):
        return ()  # every layout has a year
    return _POSSIBLE[tuple([need(text) for need in _NEEDS])]


_WEEKDAY_PREFIX = re.compile(rf"^(?:{_alternation(WEEKDAYS)})\.?(?=[\s,])\s*+,?\s*+", re.IGNORECASE)


def strip_weekday(text: str) -> str:
    """`text` without a leading weekday name ("Monday, December 12" -> "December 12")."""
    found = _WEEKDAY_PREFIX.match(text)  # (anchored: what a sub would remove, without a copy)
    return text[found.end():] if found else text


def _ymd(form: str, m: re.Match[str]) -> tuple[int, int, int] | None:
    """Year, month, day of a match, or None when a numeric date reads two ways."""
    year = int(m.group("year"))
    if form in ("mdy_short", "dmy_short"):
        year += 2000 if year < SHORT_YEAR_PIVOT else 1900
    if form in ("mdy", "dmy", "mdy_short", "dmy_short"):
        month = MONTHS[m.group("month").lower().rstrip(".")]
        return year, month, int(m.group("day"))
    if form in ("iso", "numeric_ymd"):
        return year, int(m.group("month")), int(m.group("day"))
    first, second = int(m.group("first")), int(m.group("second_part"))
    if first == second:
        return year, first, first  # 12/12/2016 reads the same both ways
    if first > 12 and second <= 12:
        return year, second, first  # day-first: 28/03/2016
    if second > 12 and first <= 12:
        return year, first, second  # month-first: 03/28/2016
    # 03/04/2016: US and European readings differ, unless a weekday right before it fits one.
    weekday = _WEEKDAY_BEFORE.search(m.string, max(0, m.start() - _WEEKDAY_BEFORE_CHARS), m.start())
    if weekday is not None:
        day_number = WEEKDAY_NUMBERS[weekday.group("weekday").lower()]
        fitting = [(year, month, day) for month, day in ((first, second), (second, first))
                   if first <= 12 and second <= 12 and _weekday(year, month, day) == day_number]
        if len(fitting) == 1:
            return fitting[0]
    return None


# A weekday name ending right before a date, with its comma ("Tuesday, 11.06.2012"); looked
# for in the _WEEKDAY_BEFORE_CHARS characters before it (the longest name, a period, a comma
# and spaces).
_WEEKDAY_BEFORE_CHARS = 14
_WEEKDAY_BEFORE = re.compile(
    rf"(?<![^\W\d_])(?P<weekday>{_alternation(WEEKDAYS)})\.?\s*+,?\s*+$", re.IGNORECASE
)


def _weekday(year: int, month: int, day: int) -> int | None:
    """The weekday of a date (Monday 0), None when it is not a real date."""
    try:
        return _dt.date(year, month, day).weekday()
    except ValueError:
        return None


def _zone(m: re.Match[str]) -> str | None:
    """The offset the match states, '+HH:MM', or None when it states none we can trust."""
    zname, zoff, zabbr, znum, zulu = m.group("zname", "zoff", "zabbr", "znum", "zulu")
    if zname:
        return _offset(zoff) if zoff else "+00:00"
    if zulu:
        return "+00:00"
    if zabbr:
        return ZONE_OFFSETS[zabbr.lower()]
    if znum:
        return _offset(znum)
    return None


def _offset(text: str) -> str | None:
    """'+1' / '+0530' / '-05:00' -> '+01:00' / '+05:30' / '-05:00'; None when out of range."""
    sign, digits = text[0], text[1:].replace(":", "")
    hours, minutes = (int(digits), 0) if len(digits) <= 2 else (int(digits[:-2]), int(digits[-2:]))
    if hours > 14 or minutes > 59:
        return None
    return f"{sign}{hours:02d}:{minutes:02d}"


def _iso(form: str, m: re.Match[str]) -> str | None:
    """The ISO string of one match, or None if any part is not a real date or time."""
    parts = _ymd(form, m)
    if parts is None:
        return None
    year, month, day = parts
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        date = _dt.date(year, month, day)
    except ValueError:
        return None  # Feb 30, day 0, month 13
    if "hour" not in m.re.groupindex:
        return date.isoformat()
    # (Every pattern with an hour has the other groups of a time.)
    hour_text, minute_text, second_text, ampm, zname, zoff = m.group("hour", "minute", "second", "ampm",
                                                                     "zname", "zoff")
    if hour_text is None:
        return date.isoformat()
    hour, minute = int(hour_text), int(minute_text)
    second = int(second_text or 0)
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
    if hour > 23:
        return None
    stamp = f"{date.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}"
    zone = _zone(m)
    if zname and zoff and zone is None:
        return None  # "UTC+99" is not a zone
    return stamp + (zone or "")


def _candidates(text: str) -> Iterator[tuple[str, int, int]]:
    """Every valid (iso, start, end) that some pattern finds, in no particular order."""
    if not _has_year(text):
        return  # every layout has a year
    for form, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            iso = _iso(form, m)
            if iso is not None:
                yield iso, m.start(), m.end()


# Every date layout holds a year (four digits, or two after an apostrophe): a text without
# one has no date (a quick first check; see _has_year).
_YEAR = re.compile(r"(?:19|20)\d\d")


_ANY_YEAR = re.compile(r"(?:19|20|['’‘])\d\d")


def _has_year(text: str) -> bool:
    """Whether `text` holds a year of some layout: in a long text, only a four-digit one
    (see SHORT_YEAR_MAX_CHARS; the literal prefix of _YEAR makes its search the quicker)."""
    pattern = _ANY_YEAR if len(text) <= SHORT_YEAR_MAX_CHARS else _YEAR
    return pattern.search(text) is not None


# The characters re's IGNORECASE matches with an ASCII letter that str.lower() does not
# turn into it (İ, ı, ſ, the Kelvin sign); computed from re's own case tables. Reading a
# month or zone name with one of them fails (KeyError), so in a text that has one every
# match is read, in order, as it always was.
_CASE_TROUBLE = re.compile("[\u0130\u0131\u017f\u212a]")


def folded(text: str) -> str | None:
    """`text` lower-cased so that a case-insensitive regex's literal of ASCII, Latin-1
    letters or uncased characters ("says", "déc", "©") matches in `text` only where the
    lower-cased literal occurs in it; None for the few texts where str.lower() cannot
    promise that. (Checked against re's case tables: no other character matches one of
    those literals case-insensitively unless str.lower() turns it into it.)"""
    if text.isascii():
        return text.lower()
    if "\u0130" in text or "\u0131" in text or "\u017f" in text or "\u212a" in text:  # _CASE_TROUBLE
        return None
    return text.lower()


_CACHE_SIZE = 4096  # find_date and parse_date see the same lines several times per article


@functools.lru_cache(maxsize=_CACHE_SIZE)
def find_date(text: str) -> tuple[str, int, int] | None:
    """The first date expression in `text` as (iso, start, end); the longest wins at a tie."""
    best: tuple[str, int, int] | None = None
    exhaustive = _CASE_TROUBLE.search(text) is not None
    for form, pattern in _possible(text):
        # Each pattern's matches come left to right, so only its first valid one can win,
        # and none that starts after the best so far.
        if exhaustive:  # see _CASE_TROUBLE: every match is read, as reading one may fail
            for m in pattern.finditer(text):
                iso = _iso(form, m)
                if iso is not None and (best is None or m.start() < best[1]
                                        or (m.start() == best[1] and m.end() > best[2])):
                    best = (iso, m.start(), m.end())
            continue
        for m in pattern.finditer(text):
            start = m.start()
            if best is not None and start > best[1]:
                break
            iso = _iso(form, m)
            if iso is None:
                continue
            if best is None or start < best[1] or (start == best[1] and m.end() > best[2]):
                best = (iso, start, m.end())
            break
    return best


def find_date_at_start(text: str) -> tuple[str, int, int] | None:
    """find_date(text) when the date it finds starts `text`, else None (as quickly)."""
    if _CASE_TROUBLE.search(text) is not None:  # see _CASE_TROUBLE
        found = find_date(text)
        return found if found is not None and found[1] == 0 else None
    # A pattern's match at 0 is its first (re.match finds it), and find_date's first date
    # starts at 0 exactly when some pattern's does: the longest of those, the earlier on a tie.
    best: tuple[str, int, int] | None = None
    for form, pattern in _possible(text):
        m = pattern.match(text)
        if m is not None and (best is None or m.end() > best[2]):
            iso = _iso(form, m)
            if iso is not None:
                best = (iso, 0, m.end())
    return best


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_date(text: str) -> str | None:
    """ISO 8601 for a text that is only a date (optionally with weekday and time), else None."""
    body = text.strip(WRAPPING_CHARS)
    # The date starts after the weekday, which stays in the text for _ymd to read.
    at = len(body) - len(strip_weekday(body))
    if _CASE_TROUBLE.search(body) is not None:  # every match is read, as reading one may fail
        for iso, start, end in _candidates(body):
            if start == at and end == len(body):
                return iso
        return None
    for form, pattern in _possible(body):
        # The first match of a pattern is the only one that can start at `at`, and one that
        # starts there is what re.match finds.
        m = pattern.match(body, at)
        if m is not None and m.end() == len(body):
            iso = _iso(form, m)
            if iso is not None:
                return iso
    return None
