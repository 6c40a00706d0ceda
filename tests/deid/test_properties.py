"""Property tests: no valid resident ID survives scrubbing; date text round-trips."""

from __future__ import annotations

import re
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.deid import datetext
from medspace.deid.checksums import resident_id_check_char
from medspace.deid.keys import DeidKey
from medspace.deid.normalise import fold
from medspace.deid.scrub import scrub_text

_KEY = DeidKey(bytes(range(32)))
_FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    """A valid 18-character resident ID, written in one of the ways notes write them."""
    region = str(draw(st.integers(110000, 829999)))
    born = draw(st.dates(date(1900, 1, 1), date(2024, 12, 31))).strftime("%Y%m%d")
    body = region + born + f"{draw(st.integers(0, 999)):03d}"
    rid = body + resident_id_check_char(body)
    if rid.endswith("X") and draw(st.booleans()):
        rid = rid[:-1] + "x"
    layout = draw(st.sampled_from(["plain", "6-8-4", "dashes", "fours", "random", "wide"]))
    if layout == "6-8-4":
        return f"{rid[:6]} {rid[6:14]} {rid[14:]}"
    if layout == "dashes":
        return f"{rid[:6]}-{rid[6:14]}-{rid[14:]}"
    if layout == "fours":
        return " ".join(rid[i : i + 4] for i in range(0, 18, 4))
    if layout == "random":
        cuts = draw(st.lists(st.sampled_from([" ", "-", ""]), min_size=17, max_size=17))
        return "".join(ch + cut for ch, cut in zip(rid, [*cuts, ""], strict=True))
    if layout == "wide":
        return rid.translate(_FULL_WIDTH)
    return rid


_FILLER = st.text(
    alphabet=st.sampled_from(list("患者王秀英身份证号码电话住址abcXYZ 0123456789,.:-，。：()\n")),
    max_size=24,
)


def _compact(text: str) -> str:
    return re.sub(r"[ -]", "", fold(text)).upper()


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(st.tuples(_FILLER, resident_ids()), min_size=1, max_size=3),
    tail=_FILLER,
    mode=st.sampled_from(["tag", "surrogate", "pseudonym"]),
)
def test_no_valid_resident_id_from_the_input_survives(
    parts: list[tuple[str, str]], tail: str, mode: str
) -> None:
    text = "".join(filler + rid for filler, rid in parts) + tail
    out = _compact(scrub_text(text, key=_KEY, mode=mode, patient_id="p").text)
    for _, rid in parts:
        assert _compact(rid) not in out


@settings(max_examples=100, deadline=None)
@given(
    day=st.dates(date(1950, 1, 1), date(2040, 12, 31)),
    shift=st.integers(-365, 365),
    form=st.sampled_from(
        ["%Y-%m-%d", "%m/%d/%Y", "%B %d, %Y", "%d %B %Y", "%Y年%m月%d日", "%d-%b-%Y", "%Y%m%d"]
    ),
)
def test_shifted_dates_keep_their_form_and_move_by_the_offset(
    day: date, shift: int, form: str
) -> None:
    written = day.strftime(form)
    moved = datetext.shifted(written, shift)
    assert moved is not None
    back = datetext.parse(moved)
    assert back is not None and back.value == day + timedelta(days=shift)
    assert datetext.year_only(written) in (str(day.year), f"{day.year}年")
