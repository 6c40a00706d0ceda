"""FHIR DocumentReference -> `Note`.

The note text is the first attachment in `content` that carries inline `data` with a
`text/*` content type, decoded from base64 and then with the attachment's charset
(`text/plain; charset=gb18030`; UTF-8 when none is named). A DocumentReference with no such
attachment (only a URL, or a PDF/image) is well formed but has no text MedSpace can keep:
it is *skipped* with unit type "DocumentReference (no inline text)", never turned into an
empty note. Data without a contentType breaks FHIR invariant att-1 and is rejected.
"""

from __future__ import annotations

import base64
import binascii
import codecs

from medspace.connectors._unit import (
    LANGUAGE_GUESSED,
    UnitRejected,
    UnitSkipped,
    guess_language,
    language_from_tag,
)
from medspace.connectors.fhir._clinical import optional_code, subject
from medspace.connectors.fhir._refs import References
from medspace.connectors.fhir._values import (
    Json,
    first_obj,
    get_datetime,
    get_list,
    get_obj,
    get_str,
    period_start_end,
)
from medspace.model import Note, Record

NO_INLINE_TEXT = "DocumentReference (no inline text)"


def _charset(content_type: str, path: str) -> str:
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"')
    try:
        return codecs.lookup(charset).name
    except LookupError:
        raise UnitRejected(f"{path}.contentType: names a charset Python does not know") from None


def _decode_base64(data: str, path: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # some producers wrap base64 lines; FHIR base64Binary allows whitespace
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UnitRejected(f"{path}.data: not valid base64") from None


def _text(res: Json) -> tuple[str, Json]:
    """(text, attachment) of the first inline text attachment; skips the unit if none."""
    for i, content in enumerate(get_list(res, "content", "DocumentReference")):
        path = f"DocumentReference.content[{i}]"
        if not isinstance(content, dict):
            raise UnitRejected(f"{path}: must be a JSON object")
        attachment = get_obj(content, "attachment", path)
        if attachment is None:
            raise UnitRejected(f"{path}.attachment: required")
        apath = f"{path}.attachment"
        data = get_str(attachment, "data", apath)
        if data is None:
            continue
        content_type = get_str(attachment, "contentType", apath)
        if not content_type:
            raise UnitRejected(f"{apath}.contentType: required when data is present (att-1)")
        if not content_type.strip().lower().startswith("text/"):
            continue
        charset = _charset(content_type, apath)
        raw = _decode_base64(data, apath)
        try:
            return raw.decode(charset), attachment
        except UnicodeDecodeError:
            raise UnitRejected(f"{apath}.data: not valid {charset} text") from None
    raise UnitSkipped(NO_INLINE_TEXT)


def map_document_reference(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """DocumentReference: subject required; date (or context.period.start) is the time."""
    rtype = "DocumentReference"
    flags: list[str] = []
    patient_id = subject(res, rtype, refs)
    text, attachment = _text(res)
    time = get_datetime(res, "date", rtype, flags)
    encounter_id = None
    context = get_obj(res, "context", rtype)
    if context is not None:
        if time is None:
            time = period_start_end(context, "period", f"{rtype}.context", flags)[0]
        first = first_obj(context, "encounter", f"{rtype}.context")
        if first is not None:
            encounter_id = refs.resolve(
                first, f"{rtype}.context.encounter[0]", "Encounter", required=False
            )
    language = language_from_tag(get_str(attachment, "language", "attachment"))
    if language is None:
        language = language_from_tag(get_str(res, "language", rtype))
    if language is None:
        language = guess_language(text)
        flags.append(LANGUAGE_GUESSED)
    types = res.get("type")
    kind = optional_code(types, f"{rtype}.type", flags) if types is not None else None
    return (Note(rid, patient_id, text, encounter_id, time, kind, language, tuple(flags)),)
