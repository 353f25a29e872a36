"""Scraping: the functions' ``/metrics``, read with prometheus_client's own parser.

What ``make demo`` sums up at its end and what the tests assert on: samples by name and labels,
and totals over the functions of a running stack (docs/metrics.md lists the metrics).
"""

from __future__ import annotations

from collections.abc import Mapping

import requests
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]
# (what the summary calls it, sample name, labels it must carry)
SUMMARY: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("alerts created", "amtd_ingest_alerts_total", {"result": "created"}),
    ("duplicate", "amtd_ingest_alerts_total", {"result": "duplicate"}),
    ("refused", "amtd_ingest_refused_total", {}),
    ("decisions", "amtd_matcher_decisions_total", {"outcome": "Matched"}),
    ("steps succeeded", "amtd_executor_executions_total", {"result": "Succeeded"}),
    ("failed", "amtd_executor_executions_total", {"result": "Failed"}),
    ("dead letters", "amtd_dead_letters_total", {}),
)


def read_samples(text: str) -> Samples:
    """Every sample of a text exposition, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str, timeout_s: float = 10.0) -> Samples:
    """``GET <url>/metrics``, parsed."""
    response = requests.get(f"{url.rstrip('/')}/metrics", timeout=timeout_s)
    response.raise_for_status()
    return read_samples(response.text)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` that carry every one of ``labels``."""
    wanted = set(labels.items())
    return sum(value for (key, have), value in samples.items() if key == name and wanted <= have)


def scrape_all(urls: Mapping[str, str]) -> Samples:
    """Every function's samples together (each process counts its own: names never clash)."""
    merged: Samples = {}
    for url in urls.values():
        for key, value in scrape(url).items():
            merged[key] = merged.get(key, 0.0) + value
    return merged


def summarize(samples: Samples) -> str:
    """``alerts created 3, duplicate 0, ...``: the figures a demo run ends with."""
    return ", ".join(
        f"{label} {total(samples, name, **labels):g}" for label, name, labels in SUMMARY
    )
