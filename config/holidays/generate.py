#!/usr/bin/env python3
"""Generate config/holidays/holidays.tsv from the Python `holidays` package.

Usage (from the repository root):

    python3 -m venv /tmp/holidays-venv
    /tmp/holidays-venv/bin/pip install holidays==0.108
    /tmp/holidays-venv/bin/python config/holidays/generate.py

The output is one line per holiday, tab-separated:

    country <TAB> subdivision-or-empty <TAB> YYYY-MM-DD <TAB> name

National holidays have an empty subdivision. A subdivision line is written only
for a date that is a holiday in the subdivision but not a national holiday that
date (callers check national OR subdivision), which keeps the file small.
Names are in each country's own language (the package's default language for
that country); several holidays on one date are joined by "; " as the package
does. Only the package's default category (public holidays) is used.

The output is deterministic: lines are sorted, the language is fixed, and the
"generated" date in the header is kept from the existing file when the data
lines have not changed (so a rerun with the same package version rewrites the
same bytes). Set SOURCE_DATE_EPOCH to pin the date of a new file.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import holidays

PINNED_VERSION = "0.108"
COUNTRIES = ("CO", "MX", "CL", "PE", "BR", "AR", "ES", "US")
FIRST_YEAR = 2020
LAST_YEAR = 2035
OUT = Path(__file__).resolve().parent / "holidays.tsv"
COMMAND = "python3 config/holidays/generate.py"


def calendar(country: str, subdiv: str | None) -> dict[dt.date, str]:
    cls = holidays.country_holidays(country).__class__
    cal = holidays.country_holidays(
        country,
        subdiv=subdiv,
        years=range(FIRST_YEAR, LAST_YEAR + 1),
        # Fixed, so the environment's locale never changes the names.
        language=cls.default_language,
    )
    return {
        day: name
        for day, name in cal.items()
        if FIRST_YEAR <= day.year <= LAST_YEAR
    }


def clean(field: str, what: str) -> str:
    if any(c in field for c in "\t\r\n") or field != field.strip() or not field:
        sys.exit(f"generate.py: {what} {field!r} is empty or has a tab, newline or edge space")
    return field


def data_lines() -> list[str]:
    lines = []
    for country in COUNTRIES:
        national = calendar(country, None)
        for day, name in national.items():
            lines.append(f"{country}\t\t{day.isoformat()}\t{clean(name, 'name')}")
        cls = holidays.country_holidays(country).__class__
        for subdiv in cls.subdivisions:
            clean(subdiv, "subdivision")
            for day, name in calendar(country, subdiv).items():
                if day not in national:
                    lines.append(f"{country}\t{subdiv}\t{day.isoformat()}\t{clean(name, 'name')}")
    return sorted(lines)


def existing(path: Path) -> tuple[str | None, list[str]]:
    """The generated date and data lines of the file already there, if any."""
    if not path.exists():
        return None, []
    date, body = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# generated: "):
            date = line.removeprefix("# generated: ")
        elif not line.startswith("#"):
            body.append(line)
    return date, body


def main() -> None:
    if holidays.__version__ != PINNED_VERSION:
        sys.exit(
            f"generate.py: holidays {holidays.__version__} is installed, the pinned version is "
            f"{PINNED_VERSION}: install holidays=={PINNED_VERSION}, or change PINNED_VERSION "
            "on purpose (and review the diff of holidays.tsv)"
        )
    lines = data_lines()
    old_date, old_body = existing(OUT)
    if old_date is not None and old_body == lines:
        generated = old_date
    elif "SOURCE_DATE_EPOCH" in os.environ:
        stamp = int(os.environ["SOURCE_DATE_EPOCH"])
        generated = dt.datetime.fromtimestamp(stamp, dt.timezone.utc).date().isoformat()
    else:
        generated = dt.datetime.now(dt.timezone.utc).date().isoformat()
    header = [
        "# plazo holiday calendars: public holidays by country and subdivision.",
        f"# generator: {COMMAND}",
        f"# source: Python package holidays=={holidays.__version__} (default category: public)",
        f"# countries: {' '.join(COUNTRIES)}",
        f"# years: {FIRST_YEAR}-{LAST_YEAR} inclusive",
        f"# generated: {generated}",
        "# format: country<TAB>subdivision-or-empty<TAB>YYYY-MM-DD<TAB>name",
        "# A subdivision line is a day that is a holiday there but not nationally.",
        "# Do not edit by hand: rerun the generator, or use an operator override file.",
    ]
    OUT.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(lines)} holidays)")


if __name__ == "__main__":
    main()
