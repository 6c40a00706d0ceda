"""US-style addresses: street lines, "City, ST 12345", PO boxes, ZIP codes after a keyword,
and a town after "lives in" (HIPAA identifier B: everything below the state)."""

from __future__ import annotations

import re

from medspace.deid.recognizers.base import PatternRecognizer, alternation, register, wordlist, words
from medspace.deid.spans import ADDRESS, Span

_SUFFIXES = alternation(wordlist("us_street_suffixes.txt"))
_STATES = words(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ"
    " NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP"
)
# Codes that are also common clinical abbreviations: only a state when a ZIP follows.
_AMBIGUOUS = {
    "OR",
    "IN",
    "ME",
    "OK",
    "PA",
    "DE",
    "CO",
    "HI",
    "ID",
    "MD",
    "MS",
    "MA",
    "LA",
    "DC",
    "VA",
    "AS",
}
_STATE_NAMES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|"
    "Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|"
    "Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|"
    "New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|"
    "South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|"
    "Wisconsin|Wyoming"
)
_SAFE_STATES = alternation(s for s in _STATES if s not in _AMBIGUOUS)
_ALL_STATES = alternation(_STATES)
_ZIP = r"[0-9]{5}(?:-[0-9]{4})?"
_CAP = r"[A-Z][A-Za-z'.-]*"
_CITY = _CAP + r"(?: " + _CAP + r"){0,2}"
_UNIT = (
    r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Rm|Room|Bldg|Building|#)\.?\s*"
    r"#?[A-Za-z0-9-]+)?"
)
_DIRECTION = r"(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?"
_STREET = (
    r"[0-9][0-9]{0,5}[A-Za-z]?\s+" + _DIRECTION + r"(?:(?:[A-Z0-9][A-Za-z0-9'.-]*)\s+){1,4}"
    r"(?:" + _SUFFIXES + r")\.?(?![A-Za-z])(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\.?(?![A-Za-z]))?" + _UNIT
)
_CITY_STATE_ZIP = (
    r"(?:,?\s*"
    + _CITY
    + r",\s*(?:(?:"
    + _ALL_STATES
    + r")\.?\s+"
    + _ZIP
    + r"|(?:"
    + _SAFE_STATES
    + r"|"
    + _STATE_NAMES
    + r")(?:\s+"
    + _ZIP
    + r")?)(?![A-Za-z0-9]))?"
)
# ", ST 12345" (or a state name): the anchor of "City, ST"; the city is found leftwards.
_STATE_TAIL = re.compile(
    r",\s*(?:(?:"
    + _ALL_STATES
    + r")\.?\s+"
    + _ZIP
    + r"|(?:"
    + _SAFE_STATES
    + r"|"
    + _STATE_NAMES
    + r")(?:\s+"
    + _ZIP
    + r")?)(?![A-Za-z0-9])"
)
_CITY_BEFORE = re.compile(_CITY + r"$")


class CityStateRecognizer:
    """ "Springfield, IL 62704" and "Boston, MA": a town with its state (and ZIP)."""

    name = "city-state"
    languages = frozenset({"en"})

    def find(self, text: str) -> list[Span]:
        """Each ", ST" tail with the capitalised town words right before it."""
        out: list[Span] = []
        for m in _STATE_TAIL.finditer(text):
            lo = max(0, m.start() - 60)
            city = _CITY_BEFORE.search(text, lo, m.start())
            if city is None or (city.start() > 0 and text[city.start() - 1].isalpha()):
                continue
            out.append(Span(city.start(), m.end(), ADDRESS, 0.8, self.name))
        return out


ADDRESS_EN_RECOGNIZER = (
    PatternRecognizer("address-en", ("en",))
    .add(_STREET + _CITY_STATE_ZIP, ADDRESS, score=0.9, not_after="[A-Za-z0-9]")
    .add(r"[Pp]\.?\s?[Oo]\.?\s+(?:Box|BOX|box)\s+[0-9]+", ADDRESS, score=0.9, not_after="[A-Za-z]")
    # US military mail: ship or unit line, then APO/FPO/DPO with AA/AE/AP and a ZIP.
    .add(
        r"(?:(?:USNS|USNV|USS|USCGC)\s+[A-Z][a-z]+|PSC\s+[0-9]{4},?\s+Box\s+[0-9]{4}|"
        r"Unit\s+[0-9]{4},?\s+Box\s+[0-9]{4})(?:,?\s+(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+[0-9]{5})?",
        ADDRESS,
        score=0.9,
        not_after="[A-Za-z]",
    )
    .add(
        r"(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+[0-9]{5}(?![0-9])",
        ADDRESS,
        score=0.9,
        not_after="[A-Za-z]",
    )
    .add(
        r"(?:ZIP|Zip|zip|ZIP code|Zip code|zip code|postal code|Postal code|postcode|Postcode|"
        r"邮编|邮政编码)\s*[:#]?\s*([0-9]{5}(?:-[0-9]{4})?|[0-9]{6})(?![0-9])",
        ADDRESS,
        score=0.9,
        group=1,
        not_after="[A-Za-z]",
    )
    .add(
        r"(?:lives in|living in|resides in|resident of|moved to|relocated to|"
        r"native of|home in|from the town of|from the city of|Lives in|Resides in)\s+("
        + _CITY
        + r")",
        ADDRESS,
        score=0.8,
        group=1,
        not_after="[A-Za-z]",
    )
)

register(ADDRESS_EN_RECOGNIZER)
register(CityStateRecognizer())
