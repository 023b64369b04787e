"""``zkq bench http`` without a cluster: its arithmetic and verdicts on made-up rows, its
load loops against a fake submitter, and the ``ZKQ_AUTH=off`` switch it relies on."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from benchmarks import http_report as report
from benchmarks.http_load import Tally, closed_loop, open_loop
from benchmarks.http_results import (
    AFTER_LOAD,
    IDLE,
    FrontendMemory,
    HttpBenchResults,
    Latencies,
    LatencyRow,
    ProcessMemory,
    RetentionRun,
    SizeSample,
    ThroughputRow,
    percentile,
)
from benchmarks.report import MISS, NA, PASS
from tests.support import offline_app
from zkq.coordinator.errors import ConfigError
from zkq.dev.waiting import wait_until
from zkq.frontend.app import create_app

MIB = 1 << 20


# -- made-up measurements ---------------------------------------------------------------------
def series(
    sizes: list[int],
    retention: float = 5.0,
    every: float = 3.0,
    rate: int = 100,
    archive_from: float = 10.0,
) -> RetentionRun:
    """A long run sampled every ``every`` seconds, ZooKeeper holding ``sizes[i]`` KiB and
    ten znodes per KiB; jobs processed at ``rate`` and archived once ``archive_from`` s in."""
    run = RetentionRun(
        retention=retention,
        prune_interval=1.0,
        rate=rate,
        seconds=every * (len(sizes) - 1),
        connections=8,
        ok=rate * int(every * (len(sizes) - 1)),
        errors={},
        archived_before=0,
    )
    for i, kib in enumerate(sizes):
        t = i * every
        run.samples.append(
            SizeSample(
                t=t,
                data_bytes=kib * 1024,
                znodes=kib * 10,
                submitted=int(rate * t) + 5,
                backlog=5,
                archived=max(0, int(rate * (t - archive_from))),
            )
        )
    run.archived_after = run.samples[-1].archived
    return run


def throughput(name: str, per_s: float, errors: dict[str, int] | None = None) -> ThroughputRow:
    return ThroughputRow(
        name=name,
        path="HAProxy -> frontends",
        connections=16,
        seconds=10.0,
        ok=int(per_s * 10),
        errors=errors or {},
        latency=Latencies(20.0, 35.0, 80.0, 120.0),
        backlog_end=12,
        drain_seconds=0.4,
    )


def results(run: RetentionRun | None = None) -> HttpBenchResults:
    out = HttpBenchResults(
        meta={
            "when": "now",
            "quick": False,
            "zk_nodes": 3,
            "coordinators": 2,
            "workers": 2,
            "slots": 16,
            "frontends": 2,
            "retention": 5.0,
            "cpus": 2,
            "load_before": "1.00",
            "load_after": "2.00",
            "notes": ["a note"],
        },
        throughput=[
            throughput(report.AUTH_ON, 400.0),
            throughput(report.AUTH_OFF, 800.0),
            throughput(report.DIRECT, 1600.0),
        ],
        latency=LatencyRow(
            peak=400.0,
            target_rate=200.0,
            seconds=10.0,
            connections=32,
            ok=1990,
            errors={},
            latency=Latencies(8.0, 12.0, 30.0, 60.0),
        ),
        memory=[
            FrontendMemory(
                "frontend-1",
                [
                    ProcessMemory("master", 100, {IDLE: 30 * MIB, AFTER_LOAD: 30 * MIB}),
                    ProcessMemory("worker", 101, {IDLE: 50 * MIB, AFTER_LOAD: 61 * MIB}),
                ],
            )
        ],
        retention=run if run is not None else series([50, 60, 55, 58, 61, 57, 60, 59, 62, 58]),
    )
    return out


# -- arithmetic -------------------------------------------------------------------------------
def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert Latencies.of([3.0, 1.0, 2.0]) == Latencies(2.0, 3.0, 3.0, 3.0)
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_processed_is_submitted_less_what_is_still_queued() -> None:
    assert SizeSample(1.0, 10, 1, submitted=100, backlog=30, archived=0).processed == 70
    assert SizeSample(1.0, 10, 1, submitted=100, backlog=None, archived=0).processed is None


# -- the long run ---------------------------------------------------------------------------
def test_a_flat_series_passes_every_retention_verdict() -> None:
    run = series([50, 60, 55, 58, 61, 57, 60, 59, 62, 58])
    assert run.warmup == 11.0  # twice the retention, plus a pruning round
    assert [v.verdict for v in report.retention_verdicts(run)] == [PASS] * 4


def test_what_fills_during_the_warm_up_does_not_count() -> None:
    # a big start (the first window filling, or an earlier section's backlog) is ignored
    run = series([500, 400, 300, 60, 61, 57, 60, 59, 62, 58])
    assert report.data_size_flat(run).verdict == PASS


def test_growth_after_the_warm_up_misses() -> None:
    run = series([50, 60, 55, 58, 60, 80, 100, 120, 140, 160])
    size, znodes = report.data_size_flat(run), report.znodes_flat(run)
    assert size.verdict == MISS and znodes.verdict == MISS
    assert "80 KiB -> 160 KiB (2.00x)" in size.measured


def test_the_band_is_a_parameter() -> None:
    run = series([50, 60, 55, 58, 60, 80, 100, 120, 140, 160])
    assert report.data_size_flat(run, band=2.5).verdict == PASS


def test_too_few_samples_is_no_verdict() -> None:
    run = series([50, 60, 55, 58, 59])  # only one sample from 11 s on
    assert {v.verdict for v in report.retention_verdicts(run)} == {NA}


def test_flat_but_nothing_processed_misses() -> None:
    run = series([50, 60, 55, 58, 61, 57, 60, 59, 62, 58], rate=0)
    assert report.processed_rises(run).verdict == MISS
    assert report.archive_rises(run).verdict == MISS


def test_an_archive_that_stops_growing_misses() -> None:
    run = series([50, 60, 55, 58, 61, 57, 60, 59, 62, 58])
    run.archived_after = run.samples[4].archived  # nothing archived after the warm-up
    assert report.archive_rises(run).verdict == MISS
    run.archived_before = None
    assert report.archive_rises(run).verdict == NA


# -- the HTTP sections ----------------------------------------------------------------------
def test_a_throttled_or_failed_submission_misses() -> None:
    out = results()
    assert report.no_errors(out).verdict == PASS
    out.throughput[0].errors = {"429": 3}
    verdict = report.no_errors(out)
    assert verdict.verdict == MISS and "HTTP, auth on: 429 x3" in verdict.measured
    assert not report.passed(out)


def test_a_paced_loop_that_fell_behind_misses() -> None:
    out = results()
    assert report.kept_pace(out).verdict == PASS
    assert out.latency is not None
    out.latency.ok = 1500  # 150/s of 200/s
    assert report.kept_pace(out).verdict == MISS
    out.latency = None
    assert report.kept_pace(out).verdict == NA


def test_ratios_between_the_paths() -> None:
    out = results()
    on, off, direct = (out.row(n) for n in (report.AUTH_ON, report.AUTH_OFF, report.DIRECT))
    assert report.ratio(on, off) == 0.5
    assert report.ratio(on, direct) == 0.25
    assert report.ratio(on, None) is None


def test_render_prints_every_section() -> None:
    text = report.render(results())
    for heading in (
        "1. Submissions per second",
        "2. Latency at half the auth-on peak",
        "3. gunicorn memory",
        "4. ZooKeeper's data over a long run",
        "Summary",
        "Notes",
    ):
        assert heading in text
    assert "auth on / auth off 0.50x" in text
    assert "(warm-up)" in text
    assert "after load" in text  # the moment's name, readable
    assert text.count(PASS) == 6


def test_json_has_every_section_and_round_trips() -> None:
    data = json.loads(json.dumps(report.to_json(results())))
    assert [r["name"] for r in data["throughput"]] == [
        report.AUTH_ON,
        report.AUTH_OFF,
        report.DIRECT,
    ]
    assert data["throughput"][0]["per_s"] == 400.0
    assert data["ratios"] == {
        "auth_on_vs_off": 0.5,
        "auth_on_vs_direct": 0.25,
        "auth_off_vs_direct": 0.5,
    }
    assert data["latency"]["achieved_rate"] == 199.0
    assert data["memory"][0]["processes"][1]["after_load_mib"] == 61.0
    assert data["retention"]["warmup"] == 11.0
    assert data["retention"]["samples"][-1]["processed"] > 0
    assert len(data["summary"]) == 6


# -- the load loops -------------------------------------------------------------------------
class FakeSubmitter:
    """Answers after ``delay`` seconds; every third call fails when ``flaky``."""

    def __init__(self, delay: float = 0.002, flaky: bool = False) -> None:
        self.delay = delay
        self.flaky = flaky
        self.calls = 0
        self.closed = False

    def send(self) -> str | None:
        self.calls += 1
        time.sleep(self.delay)
        return "503" if self.flaky and self.calls % 3 == 0 else None

    def close(self) -> None:
        self.closed = True


def test_closed_loop_counts_only_its_window_and_closes_its_connections() -> None:
    made: list[FakeSubmitter] = []

    def factory() -> FakeSubmitter:
        made.append(FakeSubmitter(flaky=True))
        return made[-1]

    tally = closed_loop(factory, connections=4, seconds=0.3, warmup=0.1)
    assert len(made) == 4 and all(s.closed for s in made)
    counted = tally.ok + sum(tally.errors.values())
    assert 0 < counted < sum(s.calls for s in made)  # the warm-up's calls are not counted
    assert tally.errors["503"] > 0 and len(tally.latencies_ms) == tally.ok
    # the threads it started (by the names it gives them), not the process's count, which
    # other tests' and libraries' threads share
    assert loop_threads() == []


def loop_threads() -> list[threading.Thread]:
    """Threads of the load loops still alive: ``closed-N``, ``paced-N`` and ``load``."""
    return [
        t
        for t in threading.enumerate()
        if t.name == "load" or t.name.startswith(("closed-", "paced-"))
    ]


def test_open_loop_sends_no_more_than_is_due() -> None:
    """How close the loop keeps to its pace is a figure of ``zkq bench http`` (its achieved
    rate and latency); on a loaded machine a late slot is dropped, so only the bound holds:
    never more than ``rate * seconds``, each timed from its due moment."""
    tally = open_loop(lambda: FakeSubmitter(), rate=200.0, seconds=0.5, connections=4)
    assert 0 < tally.ok <= 100 and tally.target_rate == 200.0
    assert len(tally.latencies_ms) == tally.ok and min(tally.latencies_ms) >= 0
    assert loop_threads() == []


class GatedSubmitter:
    """The first send answers at once; every later one waits for ``gate``: the loop is
    held mid-run, whatever the machine's speed."""

    def __init__(self, gate: threading.Event, sent: list[int]) -> None:
        self.gate = gate
        self.sent = sent

    def send(self) -> str | None:
        self.sent.append(1)
        if len(self.sent) > 1:
            self.gate.wait(30)
        return None

    def close(self) -> None:
        pass


def test_open_loop_reports_progress_through_its_tally() -> None:
    tally = Tally(2)
    gate, sent = threading.Event(), list[int]()
    runner = threading.Thread(
        target=open_loop, args=(lambda: GatedSubmitter(gate, sent), 100.0, 0.5, 2, tally)
    )
    runner.start()
    try:
        # the first submission shows while the others are held: progress, mid-run
        wait_until(lambda: tally.submitted >= 1, 10, what="the first submission to count")
        assert runner.is_alive() and tally.submitted < 50
    finally:
        gate.set()
        runner.join(30)
    assert not runner.is_alive()
    assert tally.submitted == tally.ok >= 1


# -- ZKQ_AUTH, the switch the bench turns ---------------------------------------------------
@pytest.fixture
def no_auth_app(caplog: pytest.LogCaptureFixture) -> Iterator[Flask]:
    caplog.set_level(logging.WARNING, logger="zkq.frontend.app")
    with offline_app(AUTH="off") as app:
        yield app


def test_auth_off_warns_and_skips_the_key(
    no_auth_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    started = caplog.get_records("setup")  # create_app ran in the fixture
    assert any("NO AUTHENTICATION" in r.getMessage() for r in started)
    # no key and no MySQL, yet it gets past authentication: to ZooKeeper, which is down
    response = no_auth_app.test_client().get("/v1/workers")
    assert response.status_code == 503
    assert "X-RateLimit-Limit" not in response.headers


@pytest.mark.parametrize("value", ["of", "", "false", True, 0, None])
def test_auth_must_be_exactly_on_or_off(value: object) -> None:
    with pytest.raises(ConfigError, match="ZKQ_AUTH must be 'on' or 'off'"):
        create_app({"AUTH": value})


def test_auth_is_on_by_default(app: Flask) -> None:
    assert app.config["AUTH"] == "on"
    assert app.test_client().get("/v1/workers").status_code == 401


def test_an_open_loop_that_falls_behind_stops_on_time() -> None:
    rate, seconds, connections, delay = 1000.0, 0.3, 2, 0.05
    #: what sending every due submission would take: a loop that did not stop would need it
    all_due = rate * seconds * delay / connections
    started = time.monotonic()
    slow = open_loop(lambda: FakeSubmitter(delay), rate, seconds, connections)
    # a generous bound (half of all_due; the loop's own time is 0.3 s), not a figure
    assert time.monotonic() - started < all_due / 2
    assert 0 < slow.ok < rate * seconds  # far fewer than were due
