"""`medspace deid`: scrub a note, anonymise a table, de-identify FHIR, make a key.

Each command turns a `MedSpaceError` into one line on stderr and the error's exit code.
Nothing printed on stderr contains patient data: counts, types, positions, file names.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from medspace.deid.errors import FhirError, KeyMissingError
from medspace.deid.keys import DeidKey
from medspace.deid.packs import DEFAULT_PACK, get_pack, pack_names
from medspace.errors import MedSpaceError, UsageError

app = typer.Typer(
    name="deid",
    help="De-identify notes, tables and FHIR resources under a rule pack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

PackOption = Annotated[
    str,
    typer.Option("--pack", help="Rule pack: hipaa-safe-harbor, pipl or gdpr-pseudonymise."),
]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        envvar="MEDSPACE_DEID_KEY_FILE",
        help="Key file (hex) for surrogates, pseudonyms, tokens and date shifts.",
    ),
]


def _fail(error: MedSpaceError) -> None:
    err.print(f"[bold red]error:[/] {error}", highlight=False)
    raise typer.Exit(error.exit_code)


def _key(path: Path | None) -> DeidKey | None:
    return DeidKey.from_file(path) if path is not None else None


@app.command("text")
def text_command(
    lang: Annotated[str, typer.Option("--lang", help="zh, en or auto.")] = "auto",
    pack: PackOption = DEFAULT_PACK,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="tag, surrogate or pseudonym (default: the pack's)."),
    ] = None,
    key_file: KeyOption = None,
    patient: Annotated[
        str | None, typer.Option("--patient", help="Patient id: scopes surrogates and date shifts.")
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Print counts of replaced PHI per type on stderr.")
    ] = False,
) -> None:
    """Scrub PHI from a note read on stdin; the scrubbed note goes to stdout.

    Bytes that are not UTF-8 are replaced (U+FFFD) and counted on stderr; nothing is dropped.
    """
    from medspace.deid.scrub import scrub_text

    raw = sys.stdin.buffer.read()
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - raw.count("\ufffd".encode())
    try:
        result = scrub_text(
            text, lang=lang, pack=pack, key=_key(key_file), mode=mode, patient_id=patient
        )
    except MedSpaceError as error:
        _fail(error)
    sys.stdout.buffer.write(result.text.encode("utf-8", errors="replace"))
    sys.stdout.buffer.flush()
    if bad > 0:
        err.print(f"warning: {bad} byte sequence(s) were not UTF-8 and were replaced by U+FFFD")
    if report:
        counts = RichTable(title=f"replaced ({result.language})", title_justify="left")
        counts.add_column("type")
        counts.add_column("count", justify="right")
        for entity, n in sorted(result.counts().items()):
            counts.add_row(entity, str(n))
        err.print(counts)


def _parse_hierarchies(specs: list[str]) -> dict[str, Any]:
    from medspace.deid.table import (
        CategoricalHierarchy,
        DateHierarchy,
        ICD10Hierarchy,
        IntervalHierarchy,
        PrefixHierarchy,
    )

    kinds: dict[str, Any] = {
        "interval": IntervalHierarchy,
        "age": lambda: IntervalHierarchy((5, 10, 20, 40)),
        "date": DateHierarchy,
        "prefix": PrefixHierarchy,
        "zip": PrefixHierarchy,
        "icd10": ICD10Hierarchy,
        "categorical": CategoricalHierarchy,
    }
    out: dict[str, Any] = {}
    for spec in specs:
        column, _, kind = spec.partition("=")
        if kind not in kinds:
            raise UsageError(
                f"--hierarchy {spec!r}: use COLUMN=KIND with KIND one of {', '.join(kinds)}"
            )
        out[column] = kinds[kind]()
    return out


@app.command("table")
def table_command(
    source: Annotated[Path, typer.Argument(help="Input CSV with a header row.")],
    target: Annotated[Path, typer.Argument(help="Output CSV.")],
    qi: Annotated[str, typer.Option("--qi", help="Quasi-identifier columns, comma-separated.")],
    pack: PackOption = DEFAULT_PACK,
    k: Annotated[int, typer.Option("--k", min=1, help="Smallest class size to reach.")] = 5,
    max_risk: Annotated[
        float | None, typer.Option("--max-risk", help="Highest prosecutor risk allowed, e.g. 0.09.")
    ] = None,
    sensitive: Annotated[
        str | None, typer.Option("--sensitive", help="Sensitive column for l and t.")
    ] = None,
    l_div: Annotated[int | None, typer.Option("--l", help="Distinct l-diversity to reach.")] = None,
    t_close: Annotated[float | None, typer.Option("--t", help="t-closeness to reach.")] = None,
    max_suppression: Annotated[
        float, typer.Option("--max-suppression", help="Share of records that may be suppressed.")
    ] = 0.05,
    hierarchy: Annotated[
        list[str] | None,
        typer.Option("--hierarchy", help="COLUMN=KIND (age, date, zip, icd10, categorical)."),
    ] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Input encoding.")] = "utf-8-sig",
    report_json: Annotated[
        Path | None, typer.Option("--json", help="Also write both risk reports as JSON here.")
    ] = None,
) -> None:
    """Generalise and suppress quasi-identifiers until the target holds; print the risk
    report before and after."""
    from medspace.deid.table import anonymise, read_csv, render_reports, write_csv

    out = Console()
    try:
        get_pack(pack)
        table = read_csv(source, encoding=encoding)
        result = anonymise(
            table,
            [c.strip() for c in qi.split(",") if c.strip()],
            k=k,
            max_risk=max_risk,
            l=l_div,
            t=t_close,
            sensitive=sensitive,
            max_suppression=max_suppression,
            hierarchies=_parse_hierarchies(hierarchy or []),
            pack=pack,
        )
        write_csv(result.table, target)
    except MedSpaceError as error:
        _fail(error)
    if result.dropped_columns:
        out.print(f"dropped direct identifiers: {', '.join(result.dropped_columns)}")
    render_reports(
        out, [("before", result.before), ("after", result.after)], title=f"risk ({pack})"
    )
    levels = ", ".join(f"{c}: level {lvl}" for c, lvl in result.levels.items())
    out.print(
        f"generalisation {levels}; suppressed {result.suppressed:,} of {table.rows:,} records; "
        f"information loss {result.loss:.3f}; {result.nodes_checked} of {result.lattice_size} "
        f"lattice nodes checked ({result.search})"
    )
    if report_json is not None:
        report_json.write_text(
            json.dumps(
                {
                    "before": result.before.as_dict(),
                    "after": result.after.as_dict(),
                    "levels": dict(result.levels),
                    "loss": result.loss,
                },
                indent=2,
            ),
            encoding="utf-8",
        )


def _fhir_inputs(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted(
            p for p in source.rglob("*") if p.suffix in (".json", ".ndjson") and p.is_file()
        )
        # Patients first, so their names and numbers are known when their notes are scrubbed.
        return sorted(files, key=lambda p: (not p.name.startswith("Patient"), str(p)))
    if not source.is_file():
        raise FhirError(f"{source} does not exist; give a .json, .ndjson file or a directory")
    return [source]


def _ndjson(path: Path, rejected: Counter[str]) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except ValueError:
                err.print(f"{path.name} line {number}: not JSON; skipped")
                rejected[path.name] += 1
                continue
            if not isinstance(resource, dict) or "resourceType" not in resource:
                err.print(f"{path.name} line {number}: not a FHIR resource; skipped")
                rejected[path.name] += 1
                continue
            yield resource


@app.command("fhir")
def fhir_command(
    source: Annotated[
        Path, typer.Argument(help="A .json resource or Bundle, .ndjson, or a directory.")
    ],
    target: Annotated[
        Path, typer.Argument(help="Output file, or directory for a directory input.")
    ],
    pack: PackOption = DEFAULT_PACK,
    key_file: KeyOption = None,
) -> None:
    """De-identify FHIR R4 resources; the output stays valid FHIR R4."""
    from medspace.deid.fhir import FhirDeidentifier

    written = 0
    rejected: Counter[str] = Counter()
    try:
        key = _key(key_file)
        if key is None:
            raise KeyMissingError(
                "FHIR de-identification needs a key so ids and references stay consistent; "
                "create one with `medspace deid key --out FILE` and pass --key-file"
            )
        deid = FhirDeidentifier(pack, key)
        inputs = _fhir_inputs(source)
        for path in inputs:
            out_path = target / path.relative_to(source) if source.is_dir() else target
            out_path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".ndjson":
                with out_path.open("w", encoding="utf-8") as out:
                    for resource in _ndjson(path, rejected):
                        out.write(json.dumps(deid.resource(resource), ensure_ascii=False) + "\n")
                        written += 1
            else:
                try:
                    resource = json.loads(path.read_text(encoding="utf-8", errors="replace"))
                except ValueError:
                    err.print(f"{path.name}: not JSON; skipped")
                    rejected[path.name] += 1
                    continue
                out_path.write_text(
                    json.dumps(deid.resource(resource), ensure_ascii=False, indent=1),
                    encoding="utf-8",
                )
                written += 1
    except MedSpaceError as error:
        _fail(error)
    Console().print(f"wrote {written:,} de-identified resource(s) to {target}")
    if rejected:
        skipped = sum(rejected.values())
        _fail(
            FhirError(
                f"{skipped} input unit(s) were not FHIR resources and were skipped (see above)"
            )
        )


@app.command("key")
def key_command(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the new key (must not exist).")
    ],
) -> None:
    """Create a de-identification key file (hex, readable only by you). Keep it: it reverses
    pseudonyms and keeps tokens and date shifts stable."""
    try:
        DeidKey.generate().write(out)
    except FileExistsError:
        _fail(UsageError(f"{out} exists; choose a new path (a key is never overwritten)"))
    Console().print(f"wrote a new key to {out}")


@app.command("packs")
def packs_command() -> None:
    """List the rule packs."""
    table = RichTable(title="rule packs", title_justify="left")
    for column in ("name", "title", "text replacement", "dates"):
        table.add_column(column)
    for name in pack_names():
        p = get_pack(name)
        table.add_row(p.name, p.title, p.text_mode, p.dates)
    Console().print(table)


__all__ = ["app"]
