"""The date a document gives its sentences: a dated heading above them, or a daily note's name.

A heading whose whole text is a date or a year ("## 2020", "## 2024-03-14",
"### 3 January 2024", "## January 2024", "## Monday, 3 January") dates its section,
which runs to the next heading of the same or a higher level; the innermost dated
heading wins. A heading with a day and month but no year takes the year of an enclosing
dated heading, else of the file name, else it dates nothing. Outside dated sections a
daily note named ``YYYY-MM-DD.md`` dates every sentence.

A date is stored as ISO ``YYYY-MM-DD``, truncated to what is known by taking the
period's first day ("2020" is "2020-01-01", "January 2024" is "2024-01-01"): it compares
as text with the store's ISO timestamps, so ``facts list --as-of`` and the validity of
facts stay one string comparison.
"""

from __future__ import annotations

import re
from datetime import date

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)?"
_MONTH = r"(?P<month>[a-z]+)\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:1[89]|2\d)\d\d)"
_FORMS = [
    re.compile(rf"{_YEAR}"),
    re.compile(r"(?P<year>(?:1[89]|2\d)\d\d)-(?P<nmonth>\d{1,2})(?:-(?P<day>\d{1,2}))?"),
    re.compile(rf"{_WEEKDAY}{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?"),
    re.compile(rf"{_WEEKDAY}{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?"),
    re.compile(rf"{_MONTH},?\s+{_YEAR}"),
]
_FILE = re.compile(r"(?<!\d)((?:1[89]|2\d)\d\d)-(\d\d)-(\d\d)(?!\d)")


def parse_heading(text: str, year: int | None = None) -> str | None:
    """The ISO date ``text`` is when it is a date or a year, else None.

    ``year`` completes a day and month written without one.
    """
    cleaned = text.strip().strip("#*_:.,;()[] ").casefold()
    for form in _FORMS:
        match = form.fullmatch(cleaned)
        if match is None:
            continue
        found = match.groupdict()
        month = MONTHS.get(found.get("month") or "") if found.get("month") else None
        if found.get("month") and month is None:
            continue  # "Projects 2020" is not a month
        month = month or int(found.get("nmonth") or 1)
        written = int(found["year"]) if found.get("year") else year
        return _iso(written, month, int(found.get("day") or 1))
    return None


def file_date(name: str) -> str | None:
    """The date a daily note's file name (``2025-03-14.md``) gives, else None."""
    match = _FILE.search(name)
    return _iso(*(int(part) for part in match.groups())) if match else None


def _iso(year: int | None, month: int, day: int) -> str | None:
    if year is None:
        return None
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


class DocumentDates:
    """The date of the sentence being read, as the document's headings go by."""

    def __init__(self, file_name: str = "") -> None:
        self._file = file_date(file_name)
        self._open: list[tuple[int, str | None]] = []  # (level, date) of enclosing headings

    def heading(self, level: int, text: str) -> None:
        """A heading of ``level``: it ends sections as deep or deeper, and may date its own."""
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        enclosing = self.date
        self._open.append((level, parse_heading(text, int(enclosing[:4]) if enclosing else None)))

    @property
    def date(self) -> str | None:
        """The innermost dated heading's date, else the file name's, else None."""
        return next((d for _, d in reversed(self._open) if d), None) or self._file
