"""Shared helpers for the benchmarks: interleaved rounds, medians, paired ratios, and the
machine facts every result is recorded with.

Our machines are small and shared, so an absolute time means little. Every benchmark runs
all of its cases in the same process, one after the other inside each round, in a new order
every round, and compares them with ratios taken round by round (paired), so a slow minute
slows every case of that round alike.

Use from a benchmark script (``benchmarks/`` is on ``sys.path`` when a script in it runs)::

    from _harness import interleave, machine_report, markdown_table

    results = interleave({"raw": run_raw, "entitydb": run_entitydb}, rounds=15)
    results.ratio("entitydb", "raw")
"""

from __future__ import annotations

import datetime
import gc
import os
import platform
import random
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata

Case = Callable[[], "float | Mapping[str, float]"]
"""A benchmark case: runs once and returns its measurement (seconds per operation, say), or
several named measurements (``{"wall": ..., "cpu": ...}``), kept as ``"name@metric"``."""


@dataclass
class Results:
    """Per-round measurements of every case, in the order the rounds ran."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def median(self, case: str) -> float:
        """Median measurement of ``case`` over the rounds."""
        return statistics.median(self.samples[case])

    def paired(self, case: str, baseline: str) -> list[float]:
        """``case / baseline`` for each round."""
        return [c / b for c, b in zip(self.samples[case], self.samples[baseline], strict=True)]

    def ratio(self, case: str, baseline: str) -> float:
        """Median over the rounds of ``case / baseline`` measured in the same round."""
        return statistics.median(self.paired(case, baseline))

    def ratio_iqr(self, case: str, baseline: str) -> tuple[float, float]:
        """Lower and upper quartile of the paired ratios: how much the rounds disagree."""
        values = self.paired(case, baseline)
        if len(values) < 4:
            return min(values), max(values)
        q1, _, q3 = statistics.quantiles(values, n=4)
        return q1, q3

    def spread(self, case: str) -> float:
        """Interquartile range of ``case`` relative to its median (0.05 = 5 %)."""
        values = self.samples[case]
        if len(values) < 4:
            return (max(values) - min(values)) / statistics.median(values)
        q1, _, q3 = statistics.quantiles(values, n=4)
        return (q3 - q1) / statistics.median(values)


def interleave(
    cases: Mapping[str, Case],
    rounds: int,
    *,
    warmup: int = 1,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    collect_garbage: bool = True,
) -> Results:
    """Run every case once per round, in a different (shuffled) order each round.

    :param warmup: rounds run first and thrown away (imports, caches, pool filling).
    :param progress: called with a short line after each round.
    :param collect_garbage: run ``gc.collect()`` before each case (turn it off for cases
        of a few microseconds, run thousands of times: one request each, say).
    """
    rng = random.Random(seed)
    names = list(cases)
    results = Results()
    for number in range(-warmup, rounds):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            if collect_garbage:
                gc.collect()
            value = cases[name]()
            if number < 0:
                continue
            if isinstance(value, Mapping):
                for metric, measured in value.items():
                    results.samples.setdefault(f"{name}@{metric}", []).append(measured)
            else:
                results.samples.setdefault(name, []).append(value)
        if progress is not None and number >= 0:
            progress(f"round {number + 1}/{rounds} done")
    return results


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as ``/proc/loadavg`` shows them."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(distributions: Iterable[str]) -> str:
    """``name version`` of each installed distribution, comma separated."""
    found = []
    for name in distributions:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


DEFAULT_DISTRIBUTIONS = (
    "flask-entitydb",
    "flask",
    "werkzeug",
    "sqlalchemy",
    "flask-sqlalchemy",
    "flask-sqlalchemy-lite",
    "alembic",
    "flask-migrate",
    "flask-alembic",
    "mysqlclient",
    "gunicorn",
)


def machine_report(distributions: Iterable[str] = DEFAULT_DISTRIBUTIONS) -> list[str]:
    """Lines describing when and where this run happened."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- date: {now}",
        f"- machine: {os.cpu_count()} CPUs (nproc), {_cpu_model()}, {platform.system()}"
        f" {platform.release()}",
        f"- python: {sys.version.split()[0]}; {versions(distributions)}",
        f"- load average at start: {loadavg()}",
    ]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def fmt_us(seconds: float) -> str:
    """``seconds`` in microseconds, for a table cell."""
    return f"{seconds * 1e6:.0f} µs"


def fmt_ratio(value: float, quartiles: tuple[float, float] | None = None) -> str:
    """A ratio with two decimals, and its quartiles when given: ``1.02x (0.99-1.04)``."""
    text = f"{value:.3f}x"
    if quartiles is not None:
        text += f" ({quartiles[0]:.2f}-{quartiles[1]:.2f})"
    return text


def say(text: str) -> None:
    """Progress output: to stderr, so stdout stays the markdown report."""
    print(text, file=sys.stderr, flush=True)
