"""The spec's cohort and variables as SQL (SQLAlchemy Core; SQLite and PostgreSQL).

`cohort_query` selects the patients of the cohort (internal person ids); `feature_table`
adds one column per variable, computed per patient in SQL (EXISTS for presence, a
correlated ORDER BY ... LIMIT 1 for earliest/latest values, CASE for categories), so the
statistics can be aggregated by GROUP BY without reading rows into Python.

Dates: a condition's date is its onset date, else its recorded date; a drug's its start
date; measurements', observations' and procedures' their time. Age is completed years
between birth date and the spec's reference date.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Float,
    Integer,
    MetaData,
    Select,
    Subquery,
    Table,
    Text,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import quoted_name
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType

from medspace.analytics.errors import AnalyticsError
from medspace.analytics.spec import (
    AgeBandVar,
    AgeVar,
    CodeFilter,
    Criteria,
    HasVar,
    IsVar,
    MeasurementVar,
    ObservationCategoryVar,
    QuerySpec,
    SexVar,
    Variable,
)
from medspace.store.schema import (
    condition_occurrence,
    drug_exposure,
    measurement,
    observation,
    person,
    procedure_occurrence,
)

_TABLES = {
    "condition": condition_occurrence,
    "drug": drug_exposure,
    "measurement": measurement,
    "observation": observation,
    "procedure": procedure_occurrence,
}
_DATE_COLUMN = {
    "drug": "start_date",
    "measurement": "time_date",
    "observation": "time_date",
    "procedure": "time_date",
}


def code_matches(column: ColumnElement[str], code: str) -> ColumnElement[bool]:
    """`column` equals `code`, or starts with it when `code` ends in `*`.

    The prefix is compared with SUBSTR, not LIKE: SQLite's LIKE ignores case and
    PostgreSQL's does not, and a query must mean the same on both. On SQLite the
    SUBSTR test is joined by the half-open range [prefix, next prefix), which holds
    exactly the strings with that prefix under SQLite's binary text order and lets an
    index on the code be searched instead of scanned (`_PrefixMatch`). PostgreSQL's
    text order follows the database collation, where such a range can miss matches,
    so it gets the SUBSTR test alone."""
    if not code.endswith("*"):
        return column == code
    prefix = code[:-1]
    if not prefix:
        return column.is_not(None)
    return _PrefixMatch(column, literal(prefix), literal(len(prefix)), literal(_after(prefix)))


def _after(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix` in code-point
    order (None when there is none, or it would be a lone surrogate)."""
    last = ord(prefix[-1]) + 1
    if last > 0x10FFFF or 0xD800 <= last <= 0xDFFF:
        return None
    return prefix[:-1] + chr(last)


class _PrefixMatch(FunctionElement[Any]):
    """column, prefix, len(prefix), next prefix: see `code_matches`. Untyped, so a
    WHERE does not compare it with 1 (which would hide the range from SQLite's planner)."""

    type = NullType()
    inherit_cache = True
    name = "prefix_match"


@compiles(_PrefixMatch)
def _prefix_match_default(element: _PrefixMatch, compiler: SQLCompiler, **kw: Any) -> str:
    column, prefix, length, _ = element.clauses
    return f"({compiler.process(func.substr(column, 1, length) == prefix, **kw)})"


@compiles(_PrefixMatch, "sqlite")
def _prefix_match_sqlite(element: _PrefixMatch, compiler: SQLCompiler, **kw: Any) -> str:
    column, prefix, length, after = element.clauses
    exact = func.substr(column, 1, length) == prefix
    bounds = [column >= prefix]
    if getattr(after, "value", None) is not None:
        bounds.append(column < after)
    return f"({compiler.process(and_(*bounds, exact), **kw)})"


def age_years(
    birth: ColumnElement[date], reference: date, dialect: str = "default"
) -> ColumnElement[int]:
    """Completed years between `birth` and `reference` (NULL without a birth date).

    On SQLite dates are ISO text, and slicing the text is several times faster than
    strftime (which `extract` compiles to); elsewhere EXTRACT."""
    year: ColumnElement[Any]
    birthday_later: ColumnElement[bool]
    if dialect == "sqlite":
        year = cast(func.substr(birth, 1, 4), Integer)
        birthday_later = func.substr(birth, 6, 5) > f"{reference.month:02d}-{reference.day:02d}"
    else:
        year = extract("year", birth)
        birthday_later = (extract("month", birth) * 100 + extract("day", birth)) > (
            reference.month * 100 + reference.day
        )
    return cast(literal(reference.year) - year - case((birthday_later, 1), else_=0), Integer)


def born_by(reference: date, years: int) -> date:
    """The latest birth date of someone at least `years` old on `reference` (Feb 29 of
    a non-leap year becomes Feb 28)."""
    year = reference.year - years
    day = reference.day
    while True:
        try:
            return date(year, reference.month, day)
        except ValueError:
            day -= 1


def age_between(
    birth: ColumnElement[date], reference: date, low: int, high: int
) -> ColumnElement[bool]:
    """low <= completed years at `reference` <= high, as plain date comparisons (no
    per-row date arithmetic; false without a birth date)."""
    return and_(birth <= born_by(reference, low), birth > born_by(reference, high + 1))


def _record_date(domain: str) -> ColumnElement[date]:
    table = _TABLES[domain]
    if domain == "condition":
        return func.coalesce(table.c.onset_date, table.c.recorded_date)
    return table.c[_DATE_COLUMN[domain]]


def _matches(flt: CodeFilter) -> ColumnElement[bool]:
    """The outer person has a record of `flt.domain` matching the filter.

    Written as `source_id IN (uncorrelated subquery)`: both databases evaluate the
    subquery once (SQLite into a temporary index, PostgreSQL as a hashed subplan),
    about twice as fast as a correlated EXISTS per patient."""
    table = _TABLES[flt.domain]
    where = [
        table.c.code_system == flt.system,
        code_matches(table.c.code, flt.code),
    ]
    if flt.min is not None:
        where.append(table.c.value >= flt.min)
    if flt.max is not None:
        where.append(table.c.value <= flt.max)
    if flt.value_code is not None:
        where.append(table.c.value_code_system == flt.value_code.system)
        where.append(code_matches(table.c.value_code, flt.value_code.code))
    if flt.after is not None:
        where.append(_record_date(flt.domain) >= flt.after)
    if flt.before is not None:
        where.append(_record_date(flt.domain) <= flt.before)
    return person.c.source_id.in_(select(table.c.person_source_id).where(*where))


def cohort_query(spec: QuerySpec, exclude_pseudonyms: Collection[str] = ()) -> Select[tuple[int]]:
    """SELECT person.id of every patient in the spec's cohort, opted-out patients left
    out."""
    return select(person.c.id).where(*_cohort_where(spec, exclude_pseudonyms))


def _cohort_where(
    spec: QuerySpec, exclude_pseudonyms: Collection[str]
) -> list[ColumnElement[bool]]:
    where = _criteria(spec.cohort, spec.reference_date)
    for group in spec.cohort.exclude:
        # CASE keeps NULL (no birth date) from turning NOT (...) into NULL
        met = case((and_(true(), *_criteria(group, spec.reference_date)), 1), else_=0)
        where.append(met == 0)
    if exclude_pseudonyms:
        where.append(person.c.pseudonym.not_in(list(exclude_pseudonyms)))
    return [and_(true(), *where)]


def _criteria(criteria: Criteria, reference: date) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for flt in criteria.filters:
        found = _matches(flt)
        where.append(found if flt.present else not_(found))
    if criteria.sex is not None:
        where.append(person.c.sex.in_(list(criteria.sex)))
    if criteria.age is not None:
        where.append(
            age_between(person.c.birth_date, reference, criteria.age.min, criteria.age.max)
        )
    return where


def _first_value(
    domain: str,
    system: str,
    code: str,
    pick: str,
    column: ColumnElement[Any],
    present: ColumnElement[Any],
) -> ColumnElement[Any]:
    """`column` of the person's earliest/latest record (by date, time, then row) among
    those with this code and a non-NULL `present`."""
    table = _TABLES[domain]
    when = table.c.time_date
    order = (when, table.c.time_datetime, table.c.id)
    ordered = [c.asc() for c in order] if pick == "earliest" else [c.desc() for c in order]
    return (
        select(column)
        .where(
            table.c.person_source_id == person.c.source_id,
            table.c.code_system == system,
            code_matches(table.c.code, code),
            present.is_not(None),
        )
        .order_by(*ordered)
        .limit(1)
        .scalar_subquery()
    )


def _linear(expr: ColumnElement[Any], centre: float, scale: float) -> ColumnElement[Any]:
    value: ColumnElement[Any] = cast(expr, Float)
    if centre != 0:
        value = value - centre
    if scale != 1:
        value = value / scale
    return value


def _base_expression(spec: QuerySpec, var: Variable, dialect: str) -> ColumnElement[Any]:
    if isinstance(var, AgeVar):
        age = age_years(person.c.birth_date, spec.reference_date, dialect)
        return _linear(age, var.centre, var.scale)
    if isinstance(var, MeasurementVar):
        m = measurement.c
        value = _first_value("measurement", var.system, var.code, var.pick, m.value, m.value)
        return _linear(value, var.centre, var.scale)
    if isinstance(var, SexVar):
        return case((person.c.sex.in_(list(var.categories)), person.c.sex), else_=null())
    if isinstance(var, AgeBandVar):
        birth, ref = person.c.birth_date, spec.reference_date
        return case(
            *((age_between(birth, ref, b.min, b.max), literal(b.label)) for b in var.bands),
            else_=null(),
        )
    if isinstance(var, HasVar):
        return case((_matches(var), 1), else_=0)
    if isinstance(var, ObservationCategoryVar):
        o = observation.c
        label = case(
            *(
                (
                    or_(
                        *(
                            and_(
                                o.value_code_system == ref.system,
                                code_matches(o.value_code, ref.code),
                            )
                            for ref in cat.codes
                        )
                    ),
                    literal(cat.label),
                )
                for cat in var.categories
            ),
            else_=null(),
        )
        return _first_value("observation", var.system, var.code, var.pick, label, o.value_code)
    raise AssertionError(var.kind)


def read_person_ids(conn: Connection, query: Select[tuple[int]]) -> npt.NDArray[np.int64]:
    """The person ids `query` selects, sorted.

    SQLite and PostgreSQL join them into one comma-separated text in SQL, which numpy
    parses in C: fetching one driver tuple per patient costs more than the query itself
    (measured ~45 ms against ~10 ms for 100k patients). Other databases get the tuples."""
    ids = query.subquery("ids")
    pid = ids.c[0]
    joined = joined_person_ids(pid, conn.dialect.name)
    if joined is None:
        rows = conn.execute(select(pid)).all()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
    text, found = conn.execute(select(joined, func.count())).one()
    return parse_person_ids([text], int(found))


def joined_person_ids(pid: ColumnElement[Any], dialect: str) -> ColumnElement[Any] | None:
    """An aggregate joining the person ids `pid` into one comma-separated text, for
    `parse_person_ids` (None on a database other than SQLite and PostgreSQL)."""
    if dialect == "sqlite":
        return func.group_concat(pid, ",")
    if dialect == "postgresql":
        return func.string_agg(cast(pid, Text), ",")
    return None


def parse_person_ids(texts: Iterable[str | None], count: int) -> npt.NDArray[np.int64]:
    """The person ids in `texts` (each from `joined_person_ids`; None for none), sorted.
    Raises `AnalyticsError` unless there are exactly `count` of them."""
    joined = ",".join(t for t in texts if t)
    parsed = np.zeros(0, dtype=np.int64)
    if joined:
        with suppress(ValueError):
            parsed = np.fromstring(joined, dtype=np.int64, sep=",")
    if parsed.size != count:
        raise AnalyticsError(
            "the node's database returned person ids that are not integers: check the store"
        )
    return np.sort(parsed)


def feature_table(
    spec: QuerySpec,
    names: Collection[str],
    exclude_pseudonyms: Collection[str] = (),
    dialect: str = "default",
) -> Subquery:
    """A subquery with `pid` and one column per named variable, one row per cohort
    patient (NULL where the variable is missing). `dialect` picks the fastest age
    expression (`conn.dialect.name`)."""
    wanted = {n for n in names if not isinstance(spec.variables[n], IsVar)}
    wanted |= {v.of for n in names if isinstance(v := spec.variables[n], IsVar)}
    # Variable names are always quoted: a researcher's "returning" or "nothing" is an
    # SQL keyword to SQLite that SQLAlchemy does not know to quote.
    columns = [person.c.id.label("pid")] + [
        _base_expression(spec, spec.variables[n], dialect).label(quoted_name(n, True))
        for n in sorted(wanted)
    ]
    first = select(*columns).where(*_cohort_where(spec, exclude_pseudonyms)).subquery("f0")
    derived: list[ColumnElement[Any]] = []
    for name in sorted(names):
        var = spec.variables[name]
        if isinstance(var, IsVar):
            parent = first.c[var.of]
            derived.append(
                case(
                    (parent.is_(None), null()),
                    (parent == var.category, 1),
                    else_=0,
                ).label(quoted_name(name, True))
            )
    return select(*first.c, *derived).subquery("f")


@contextmanager
def materialised(
    conn: Connection, spec: QuerySpec, names: Collection[str], exclude: Collection[str] = ()
) -> Iterator[Table]:
    """The feature rows of `names` copied into a temporary table for the duration of
    the block, so each statistic aggregates a narrow table: no per-patient subquery is
    evaluated twice (SQLite's flattener would repeat a correlated subquery in every
    place its column is used). Dropped afterwards, and the transaction rolled back."""
    source = feature_table(spec, sorted(names), exclude, conn.dialect.name)
    columns: list[Column[Any]] = [Column("pid", BigInteger().with_variant(Integer(), "sqlite"))]
    for column in source.c:
        if column.name == "pid":
            continue
        kind = spec.variables[column.name].kind
        sql_type: Any = Text()
        if kind in ("age", "measurement"):
            sql_type = Float()
        elif kind in ("has", "is"):
            sql_type = Integer()
        columns.append(Column(column.name, sql_type))
    table = Table(
        f"ms_features_{secrets.token_hex(6)}", MetaData(), *columns, prefixes=["TEMPORARY"]
    )
    table.create(conn)
    try:
        conn.execute(table.insert().from_select([c.name for c in columns], select(*source.c)))
        yield table
    finally:
        with suppress(SQLAlchemyError):
            table.drop(conn)
        conn.rollback()
