"""Reading PromQL for the tests: which series and labels an expression names, and what the worker exports."""

from __future__ import annotations

import re

from prometheus_client.metrics import MetricWrapperBase

from worker.metrics import Metrics

__all__ = ["TARGET_LABELS", "exported_series", "referenced"]

# Labels Prometheus adds to every scraped series (PodMonitor / Kubernetes discovery), not the worker.
TARGET_LABELS = frozenset({"namespace", "pod", "container", "instance", "job", "endpoint", "service"})
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
_PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
    | {"inf", "nan"}
)
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exported_series() -> dict[str, frozenset[str]]:
    """Every series name the worker's registry exports, with the labels it carries."""
    metrics = Metrics()
    # prometheus_client keeps a metric's label names private; a labelled metric with no children yet
    # exports no samples, so the metric objects are the only place to read them from.
    labels_of = {
        metric._name: frozenset(metric._labelnames)
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    series: dict[str, frozenset[str]] = {}
    for family in metrics.registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            series[family.name + suffix] = labels_of[family.name] | ({"le"} if suffix == "_bucket" else set())
    return series


def referenced(expr: str) -> tuple[set[str], set[str]]:
    """(series names, label names) that a PromQL expression refers to."""
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", expr)  # Grafana variables
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # string literals
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    labels: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", "", text)
    for grouping in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        labels |= {label.strip() for label in grouping.split(",") if label.strip()}
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    # label_values(metric, label): the second argument is a label.
    for label in re.findall(r"label_values\([^,]*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", text):
        labels.add(label)
        text = text.replace(label + ")", ")")
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        follows = text[match.end() :].lstrip()[:1]
        if follows != "(" and word.lower() not in _PROMQL_WORDS:
            names.add(word)
    return names, labels
