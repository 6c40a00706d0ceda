"""De-identification: throughput and quality against Presidio, and table anonymisation time.

Measured in one run, side by side, on the same synthetic notes (`medspace.synth`, fixed seed;
gold spans recorded by the generator when it inserted each item):

- our scrubber (find + replace, tags, `hipaa-safe-harbor`) in MB/s and notes/s, and Presidio's
  AnalyzerEngine + AnonymizerEngine with its predefined *pattern* recognisers only: no spaCy
  model can be downloaded here, so the analyzer runs on Presidio's NoOpNlpEngine (no NER, so
  no PERSON/LOCATION/ORGANIZATION from Presidio); reported as a ratio;
- precision / recall / F2 per entity type for both on the English notes (our numbers for
  Chinese notes too); Presidio's entity names are mapped to the gold types;
- 10 MB of notes scrubbed in one text (MB/s);
- 5-anonymisation (age, sex, ZIP; HIPAA pack) of 30k and 100k rows, in memory, best of 3.

Sizes: MEDSPACE_BENCH_DEID_PATIENTS (default 300 per hospital, 2 hospitals).
Presidio (bench-only dependency): `pip install presidio-analyzer presidio-anonymizer`.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench._metrics import metric
from medspace.deid.evaluate import EvalReport, GoldNote, evaluate, read_gold
from medspace.deid.scrub import Scrubber
from medspace.deid.spans import Span

PATIENTS = int(os.environ.get("MEDSPACE_BENCH_DEID_PATIENTS", "300"))
SEED = 20240305
BIG_TEXT_MB = 10

# Presidio entity -> gold type (what a de-identification evaluation would count it as).
_PRESIDIO_TYPES = {
    "PERSON": "PERSON",
    "PHONE_NUMBER": "PHONE",
    "DATE_TIME": "DATE",
    "EMAIL_ADDRESS": "EMAIL",
    "URL": "URL",
    "IP_ADDRESS": "IP",
    "LOCATION": "ADDRESS",
    "ORGANIZATION": "ORGANIZATION",
    "US_SSN": "ID",
    "US_ITIN": "ID",
    "US_PASSPORT": "ID",
    "US_DRIVER_LICENSE": "ID",
    "US_BANK_NUMBER": "ID",
    "CREDIT_CARD": "ID",
    "MEDICAL_LICENSE": "ID",
    "IBAN_CODE": "ID",
    "UK_NHS": "ID",
    "CRYPTO": "ID",
    "MAC_ADDRESS": "ID",
    "UUID": "ID",
}

# Four decimal places, as this suite has always reported (recall and F2 sit near 0.99).
_metric = partial(metric, digits=4)


def _notes(work: Path) -> list[GoldNote]:
    from medspace.synth import generate

    generate(work, hospitals=2, patients=PATIENTS, seed=SEED, locale="mixed")
    return [n for p in sorted(work.glob("h*/notes_gold.jsonl")) for n in read_gold(p)]


def _presidio() -> tuple[Callable[[str], list[Span]], Callable[[str], str], str] | None:
    try:
        from importlib.metadata import version

        import tldextract
        import tldextract.tldextract as tld_module
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
        from presidio_anonymizer import AnonymizerEngine
    except ImportError:
        return None
    # Presidio's e-mail recogniser asks tldextract for the public-suffix list online; this
    # machine is offline, so use the snapshot bundled with tldextract.
    tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NoOpNlpEngine cannot feed the lemma context enhancer
        analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    anonymizer = AnonymizerEngine()

    def find(text: str) -> list[Span]:
        results = analyzer.analyze(text=text, language="en")
        return [
            Span(r.start, r.end, _PRESIDIO_TYPES.get(r.entity_type, "ID"), r.score, "presidio")
            for r in results
        ]

    def scrub(text: str) -> str:
        results = analyzer.analyze(text=text, language="en")
        return anonymizer.anonymize(text=text, analyzer_results=results).text  # type: ignore[arg-type]

    analyzer_version, anonymizer_version = (
        version("presidio-analyzer"),
        version("presidio-anonymizer"),
    )
    versions = f"presidio-analyzer {analyzer_version}, presidio-anonymizer {anonymizer_version}"
    return find, scrub, versions


def _side_by_side(
    texts: list[str], ours: Callable[[str], object], theirs: Callable[[str], object] | None
) -> dict[str, float]:
    """Wall and CPU seconds for each scrubber over all texts, measured in alternating blocks
    of notes so that both see the same machine load."""
    totals = {"ours_wall": 0.0, "ours_cpu": 0.0, "theirs_wall": 0.0, "theirs_cpu": 0.0}
    for first in range(0, len(texts), 50):
        block = texts[first : first + 50]
        for who, scrub in (("ours", ours), ("theirs", theirs)):
            if scrub is None:
                continue
            cpu, wall = time.process_time(), time.perf_counter()
            for text in block:
                scrub(text)
            totals[f"{who}_wall"] += time.perf_counter() - wall
            totals[f"{who}_cpu"] += time.process_time() - cpu
    return totals


_GOALS = {"ID": 0.99, "PHONE": 0.99, "DATE": 0.99, "PERSON": 0.95, "ADDRESS": 0.95}


def _targets(metrics: list[dict[str, Any]], who: str, report: EvalReport) -> None:
    """The issue's targets: recall per type and F2 overall."""
    for entity, goal in _GOALS.items():
        score = report.by_type[entity]
        metrics.append(
            _metric(
                f"{who} recall {entity}",
                score.recall,
                "ratio",
                target=f">= {goal}",
                met=score.recall >= goal,
            )
        )
    f2 = report.overall.f2
    metrics.append(_metric(f"{who} F2 overall", f2, "ratio", target=">= 0.90", met=f2 >= 0.90))


def _quality(metrics: list[dict[str, Any]], who: str, report: EvalReport) -> None:
    """Precision, recall and F2 per gold type (precision only where something was predicted)."""
    for entity, score in sorted(report.by_type.items()):
        if score.gold == 0:
            continue
        shown = f"P {score.precision:.3f}" if score.predicted else "P n/a (nothing found)"
        metrics.append(_metric(f"{who} {entity}: recall ({shown})", score.recall, "ratio"))
        metrics.append(_metric(f"{who} {entity}: F2", score.f2, "ratio"))
    overall = report.overall
    metrics.append(_metric(f"{who} overall: precision", overall.precision, "ratio"))
    metrics.append(_metric(f"{who} overall: recall", overall.recall, "ratio"))
    metrics.append(_metric(f"{who} overall: F2", overall.f2, "ratio"))


def _table(n: int, seed: int) -> Any:
    from medspace.deid.table import Table

    rng = np.random.default_rng(seed)
    ages = np.clip(rng.normal(52, 20, n).astype(int), 0, 104)
    zips = rng.choice([f"{z:05d}" for z in rng.integers(1000, 99999, 600)], n)
    codes = [
        "I10",
        "E11.9",
        "J45.909",
        "I21.4",
        "C50.9",
        "F32.9",
        "K21.9",
        "N18.3",
        "M54.5",
        "Z00.00",
    ]
    return Table(
        ["age", "sex", "zip", "diagnosis"],
        {
            "age": [str(a) for a in ages],
            "sex": list(rng.choice(["male", "female"], n)),
            "zip": list(zips),
            "diagnosis": list(rng.choice(codes, n)),
        },
    )


def run() -> dict[str, Any]:
    """Measure and return the benchmark result (see the module docstring)."""
    from medspace.deid.table import anonymise

    metrics: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="medspace-bench-deid-") as tmp:
        notes = _notes(Path(tmp))
    english = [n for n in notes if n.language == "en"]
    texts = [n.text for n in notes]
    corpus_mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6

    ours = Scrubber("hipaa-safe-harbor")
    ours.scrub("warm up 2024-03-05")
    presidio = _presidio()
    presidio_version = "not installed (pip install presidio-analyzer presidio-anonymizer)"
    theirs = None
    if presidio is not None:
        _, theirs, presidio_version = presidio
        theirs("warm up 2024-03-05")
    timing = _side_by_side(texts, ours.scrub, theirs)
    metrics.append(
        _metric("ours: scrub throughput (zh+en notes)", corpus_mb / timing["ours_wall"], "MB/s")
    )
    metrics.append(_metric("ours: notes per second", len(texts) / timing["ours_wall"], "notes/s"))
    if theirs is not None:
        metrics.append(
            _metric(
                "Presidio (patterns only): throughput", corpus_mb / timing["theirs_wall"], "MB/s"
            )
        )
        metrics.append(
            _metric(
                "Presidio (patterns only): notes per second",
                len(texts) / timing["theirs_wall"],
                "notes/s",
            )
        )
        ratio = timing["theirs_wall"] / timing["ours_wall"]
        metrics.append(
            _metric(
                "ratio: our throughput / Presidio's", ratio, "x", target=">= 10x", met=ratio >= 10
            )
        )
        cpu_ratio = timing["theirs_cpu"] / timing["ours_cpu"]
        metrics.append(
            _metric(
                "ratio: Presidio CPU time / ours",
                cpu_ratio,
                "x",
                target=">= 10x",
                met=cpu_ratio >= 10,
            )
        )

    _targets(metrics, "ours (zh+en)", evaluate(notes))
    _quality(metrics, "ours (en)", evaluate(english))
    if presidio is not None:
        presidio_find = presidio[0]
        _quality(
            metrics, "Presidio (en)", evaluate(english, lambda text, _lang: presidio_find(text))
        )
    chinese = [n for n in notes if n.language == "zh"]
    metrics.append(_metric("ours (zh) overall: F2", evaluate(chinese).overall.f2, "ratio"))

    repeats = int(BIG_TEXT_MB * 1e6 // max(1, sum(len(t.encode()) for t in texts))) + 1
    big = "\n".join(texts * repeats)
    started = time.perf_counter()
    ours.scrub(big)
    big_mbs = len(big.encode("utf-8")) / 1e6 / (time.perf_counter() - started)
    metrics.append(_metric(f"ours: one {len(big.encode()) / 1e6:.0f} MB text", big_mbs, "MB/s"))

    for rows, target in ((30_000, 1.0), (100_000, None)):
        table = _table(rows, SEED)
        anonymise(_table(1000, 1), ["age", "sex", "zip"], k=5, pack="hipaa-safe-harbor")  # warm
        best = float("inf")
        result = None
        for _ in range(3):
            started = time.perf_counter()
            result = anonymise(table, ["age", "sex", "zip"], k=5, pack="hipaa-safe-harbor")
            best = min(best, time.perf_counter() - started)
        assert result is not None
        metrics.append(
            _metric(
                f"5-anonymise {rows:,} rows (age, sex, ZIP)",
                best,
                "s",
                target=f"<= {target} s" if target else None,
                met=best <= target if target else None,
            )
        )
        metrics.append(_metric(f"  {rows:,} rows: information loss", result.loss, "ratio"))
        metrics.append(
            _metric(f"  {rows:,} rows: suppressed records", float(result.suppressed), "records")
        )

    return {
        "name": "deid",
        "environment": {
            "notes": len(notes),
            "english_notes": len(english),
            "corpus_mb": round(corpus_mb, 3),
            "gold_spans": sum(len(n.spans) for n in notes),
            "synth": f"2 hospitals x {PATIENTS} patients, seed {SEED}, locale mixed",
            "presidio": presidio_version,
            "presidio_setup": "AnalyzerEngine(NoOpNlpEngine, predefined en pattern recognisers) "
            "+ AnonymizerEngine default replace",
        },
        "metrics": metrics,
    }
