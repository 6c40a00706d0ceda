"""Privacy models for tables: k-anonymity, l-diversity, t-closeness and re-identification
risk, and generalisation/suppression to reach a target with the least information loss."""

from medspace.deid.table.anonymise import (
    DIRECT_IDENTIFIER_COLUMNS,
    AnonymisationResult,
    Target,
    anonymise,
    guess_hierarchy,
)
from medspace.deid.table.frame import Table, read_csv, write_csv
from medspace.deid.table.hierarchy import (
    CategoricalHierarchy,
    DateHierarchy,
    Hierarchy,
    ICD10Hierarchy,
    IntervalHierarchy,
    MappingHierarchy,
    PrefixHierarchy,
    icd10_chapter,
)
from medspace.deid.table.measure import Risk
from medspace.deid.table.report import RiskReport, measure_table, render_reports

__all__ = [
    "DIRECT_IDENTIFIER_COLUMNS",
    "AnonymisationResult",
    "CategoricalHierarchy",
    "DateHierarchy",
    "Hierarchy",
    "ICD10Hierarchy",
    "IntervalHierarchy",
    "MappingHierarchy",
    "PrefixHierarchy",
    "Risk",
    "RiskReport",
    "Table",
    "Target",
    "anonymise",
    "guess_hierarchy",
    "icd10_chapter",
    "measure_table",
    "read_csv",
    "render_reports",
    "write_csv",
]
