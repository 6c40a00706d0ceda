"""A summary carries no free text: a code's display that is long or holds what the PHI
scrubber finds is left out (the code stays), as a reaction name is."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from medspace.connectors.base import Parsed
from medspace.lookup.summary import MatchInfo, build_summary
from medspace.model import Code, Condition, Drug, Identity, Patient
from medspace.node import init_node, open_node

FREE_TEXT = "Fall at home; found by daughter Ngozi Okafor (tel 415-555-0132), SSN 078-05-1121"


def test_free_text_in_a_code_display_does_not_reach_the_summary(tmp_path: Path) -> None:
    init_node(tmp_path / "h9", "h9")
    records = [
        Patient(
            "P1",
            "female",
            date(1975, 7, 2),
            identity=Identity(family_name="Okafor", given_name="Adaeze"),
        ),
        Condition("C1", "P1", Code("ICD-10", "W19", FREE_TEXT), onset=date(2025, 3, 1)),
        Condition("C2", "P1", Code("ICD-10", "E11.9", "Type 2 diabetes mellitus"), onset=None),
        Drug(
            "D1",
            "P1",
            Code("ATC", "B01AA03", "Warfarin 5 mg nightly per Dr Jones, MRN 4471123"),
            start=date(2025, 1, 10),
            status="active",
        ),
    ]
    with open_node(tmp_path / "h9") as node:
        node.store.ingest(
            [Parsed("test", f"u{i}", (r,)) for i, r in enumerate(records)], source="test"
        )
        with node.store.read_connection() as conn:
            summary = build_summary(conn, "P1", MatchInfo("exact", 1.0), today=date(2025, 6, 1))
    texts = {d["code"]: d["text"] for d in [*summary["diagnoses"], *summary["drugs"]]}
    assert texts == {"W19": None, "E11.9": "Type 2 diabetes mellitus", "B01AA03": None}
    shown = repr(summary)
    assert "Okafor" not in shown and "415-555" not in shown and "Jones" not in shown
