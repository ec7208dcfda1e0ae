"""Measuring: interleaved rounds, median/min/max, ratios to a baseline of the same
run, targets, the printed table and the JSON record."""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Timed = Callable[[], Awaitable[float]]
"""One run of a contender: does its untimed set-up, then returns the seconds its
timed section took."""


@dataclass
class Figure:
    """One contender on one case: per-operation seconds of each run."""

    case: str
    contender: str
    ops: int
    samples: list[float]
    baseline: str | None = None
    ratio: float | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["median"] = self.median if self.samples else None
        data["min"] = min(self.samples) if self.samples else None
        data["max"] = max(self.samples) if self.samples else None
        return data


@dataclass
class Target:
    """A goal of the issue, checked against this run's figures."""

    name: str
    value: float | None
    limit: float
    unit: str
    met: bool | None
    detail: str = ""


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list[Figure])
    targets: list[Target] = field(default_factory=list[Target])
    notes: list[str] = field(default_factory=list[str])

    def find(self, case: str, contender: str) -> Figure | None:
        for f in self.figures:
            if f.case == case and f.contender == contender:
                return f
        return None

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", file=sys.stderr)


async def measure(
    results: Results,
    case: str,
    contenders: dict[str, Timed],
    *,
    ops: int,
    reps: int,
    baseline: str | Sequence[str] | None = None,
    warmup: int = 1,
    notes: dict[str, str] | None = None,
) -> list[Figure]:
    """Run every contender ``reps`` times, one run each per round, the order
    rotating from round to round so that drift and noise hit all of them alike.

    Figures are per operation (a run's seconds / ``ops``). With ``baseline``,
    each contender's ratio is the median of its per-round ratios to the baseline
    (the same round, so the same machine weather), with their min and max. Given
    several baselines (the raw ways of doing the same work), the one with the lowest
    median is the baseline, and the table says so.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {n: [] for n in names}
    failed: dict[str, str] = {}
    print(f"- {case}", file=sys.stderr, flush=True)
    # Once per case, not per run: a full collection right before each timed run made
    # a batch save on a 1,000,000-message memory store 5x slower (measured), a cost
    # no real caller pays.
    gc.collect()
    for rnd in range(warmup + reps):
        shift = rnd % len(names)
        for name in names[shift:] + names[:shift]:
            if name in failed:
                continue
            try:
                seconds = await contenders[name]()
            except Exception as err:
                failed[name] = f"{type(err).__name__}: {err}"[:300]
                print(f"    {name} failed: {failed[name]}", file=sys.stderr)
                continue
            if rnd >= warmup:
                samples[name].append(seconds / ops)
    figures: list[Figure] = []
    several = baseline is not None and not isinstance(baseline, str) and len(baseline) > 1
    baseline = _fastest(baseline, samples, failed)
    base = samples.get(baseline) if baseline else None
    notes = dict(notes or {})
    if several and baseline is not None and baseline not in notes:
        notes[baseline] = "the fastest raw way of this case"
    for name in names:
        note = notes.get(name, "")
        if name in failed:
            note = f"failed: {failed[name]}"
            samples[name] = []
        fig = Figure(case, name, ops, samples[name], note=note)
        if base and name != baseline and fig.samples and len(base) == len(fig.samples):
            ratios = [s / b for s, b in zip(fig.samples, base, strict=True)]
            fig.baseline = baseline
            fig.ratio = statistics.median(ratios)
            fig.ratio_min, fig.ratio_max = min(ratios), max(ratios)
        figures.append(fig)
        if fig.samples:
            ratio = f"  {fig.ratio:.2f}x" if fig.ratio is not None else ""
            print(f"    {name}: {_fmt(fig.median)}{ratio}", file=sys.stderr, flush=True)
    results.figures.extend(figures)
    return figures


def _fastest(
    baseline: str | Sequence[str] | None, samples: dict[str, list[float]], failed: dict[str, str]
) -> str | None:
    """The baseline: the given one, or the fastest (lowest median) of those given."""
    if baseline is None or isinstance(baseline, str):
        return baseline
    measured = [n for n in baseline if samples.get(n) and n not in failed]
    if not measured:
        return None
    return min(measured, key=lambda n: statistics.median(samples[n]))


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def render_table(results: Results) -> str:
    """The figures and targets as a Markdown table (also readable on a terminal)."""
    lines = [
        "| case | contender | median | min | max | ratio to baseline (min-max) | how |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in results.figures:
        if f.samples:
            cells = [_fmt(f.median), _fmt(min(f.samples)), _fmt(max(f.samples))]
        else:
            cells = ["-", "-", "-"]
        if f.ratio is not None:
            ratio = f"**{f.ratio:.2f}x** ({f.ratio_min:.2f}-{f.ratio_max:.2f})"
        elif f.baseline is None and any(
            g.baseline == f.contender and g.case == f.case for g in results.figures
        ):
            ratio = "1 (baseline)"
        else:
            ratio = ""
        lines.append(f"| {f.case} | {f.contender} | {' | '.join(cells)} | {ratio} | {f.note} |")
    if results.targets:
        lines += ["", "| target | measured | goal | met |", "|---|---:|---:|---|"]
        for t in results.targets:
            value = "-" if t.value is None else _target_value(t.value, t.unit)
            met = {True: "yes", False: "**no**", None: "n/a"}[t.met]
            detail = f" ({t.detail})" if t.detail else ""
            lines.append(
                f"| {t.name} | {value} | {_target_value(t.limit, t.unit)} | {met}{detail} |"
            )
    return "\n".join(lines)


def _target_value(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:.3f} ms"
    return f"{value} {unit}"


def to_json(results: Results, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "figures": [f.to_json() for f in results.figures],
        "targets": [asdict(t) for t in results.targets],
        "notes": results.notes,
    }
