"""The bench's arithmetic and verdicts, on made-up rows: no cluster."""

from __future__ import annotations

import json

import pytest

from benchmarks import report
from benchmarks.counters import Counters, Window, split_zxid
from benchmarks.lockingqueue import consumer_layout
from benchmarks.results import BenchResults, Idle, LqRow, Memory, RawRow, ZkqRow

QUIET = Idle(seconds=1.0, transactions_per_s=0.0, notifications_per_s=0.0)


def zkq_row(
    workers: int,
    slots_per_worker: int,
    jobs_per_s: float,
    txns_per_job: float = 2.0,
    notifications_per_job: float = 1.5,
    jobs: int = 1000,
    idle: Idle = QUIET,
) -> ZkqRow:
    seconds = jobs / jobs_per_s
    return ZkqRow(
        workers=workers,
        slots_per_worker=slots_per_worker,
        jobs=jobs,
        succeeded=jobs,
        seconds=seconds,
        complete=True,
        transactions=round(txns_per_job * jobs),
        notifications=round(notifications_per_job * jobs),
        requests=6 * jobs,
        idle=idle,
        memory=Memory(30 << 20, 31 << 20, 32 << 20, 33 << 20, 34 << 20),
        cpu={"zookeeper": 3.0, "leader": 0.5, "workers": 1.0, "bench": 0.1},
    )


def lq_row(consumers: int, jobs_per_s: float, notifications_per_job: float = 2.0) -> LqRow:
    processes, threads = consumer_layout(consumers)
    completed = 1000
    return LqRow(
        processes=processes,
        threads_per_process=threads,
        jobs=1000,
        completed=completed,
        seconds=completed / jobs_per_s,
        capped=False,
        transactions=3 * completed,
        notifications=round(notifications_per_job * completed),
        requests=10 * completed,
        idle=QUIET,
        cpu={"zookeeper": 5.0, "consumers": 2.0, "bench": 0.1},
    )


def results(zkq: list[ZkqRow], lq: list[LqRow]) -> BenchResults:
    raw = [
        RawRow("pipelined", 5000, 2.5, 200, 5000, 4.0),
        RawRow("sequential", 1000, 2.0, 1, 1000, 2.0),
    ]
    return BenchResults(
        meta={"cpus": 2, "coordinators": 2, "quick": False}, raw=raw, zkq=zkq, lq=lq
    )


def good() -> BenchResults:
    return results(
        [
            zkq_row(1, 1, 50, txns_per_job=3.0, notifications_per_job=4.0),
            zkq_row(1, 4, 100, notifications_per_job=2.0),
            zkq_row(4, 4, 700, notifications_per_job=1.3),
            zkq_row(16, 4, 800, notifications_per_job=1.0),
        ],
        [lq_row(1, 110), lq_row(4, 150), lq_row(16, 130, 8.0), lq_row(64, 50, 30.0)],
    )


# -- arithmetic -------------------------------------------------------------------------
def test_zxid_counts_transactions_within_an_epoch() -> None:
    assert split_zxid(0x3_0000_0010) == (3, 16)
    before = Counters(at=0.0, zxid=0x1_0000_0005, notifications=10, leader="zk1", requests=7)
    after = Counters(at=2.0, zxid=0x1_0000_0105, notifications=40, leader="zk1", requests=99)
    window = Window.between(before, after)
    assert (window.seconds, window.transactions, window.notifications, window.requests) == (
        2.0,
        256,
        30,
        92,
    )


def test_a_new_leader_epoch_makes_the_transaction_count_unknown() -> None:
    before = Counters(at=0.0, zxid=0x1_0000_0500, notifications=0, leader="zk1")
    after = Counters(at=1.0, zxid=0x2_0000_0003, notifications=0, leader="zk2")
    assert after.transactions_since(before) is None


def test_idle_background_is_subtracted_and_never_below_zero() -> None:
    idle = Idle(seconds=1.0, transactions_per_s=10.0, notifications_per_s=100.0)
    row = zkq_row(1, 4, jobs_per_s=100, txns_per_job=2.0, notifications_per_job=0.5, idle=idle)
    # 10 s run: 2000 txns - 10/s * 10 s = 1900 over 1000 jobs
    assert row.transactions_per_job == pytest.approx(1.9)
    # 500 notifications - 100/s * 10 s would be negative: clamp at zero
    assert row.notifications_per_job == 0.0


def test_rates_and_shapes() -> None:
    row = zkq_row(16, 4, jobs_per_s=250)
    assert (row.slots, row.shape) == (64, "16x4")
    assert row.jobs_per_s == pytest.approx(250)
    lq = lq_row(64, 40)
    assert (lq.consumers, lq.processes, lq.threads_per_process) == (64, 8, 8)
    assert RawRow("sequential", 100, 0.5, 1, 100, 0.2).zookeeper_cpu_ms_per_op == pytest.approx(2)


@pytest.mark.parametrize(
    ("consumers", "layout"), [(1, (1, 1)), (4, (4, 1)), (8, (8, 1)), (16, (8, 2)), (64, (8, 8))]
)
def test_consumer_layout(consumers: int, layout: tuple[int, int]) -> None:
    assert consumer_layout(consumers) == layout


def test_consumer_layout_refuses_uneven_splits() -> None:
    with pytest.raises(ValueError):
        consumer_layout(20)


def test_ratio_pairs_zkq_slots_with_as_many_consumers() -> None:
    pairs = report.ratios(good().zkq, good().lq)
    assert [p.consumers for p in pairs] == [1, 4, 16, 64]
    at16 = next(p for p in pairs if p.consumers == 16)
    assert at16.ratio == pytest.approx(700 / 130)
    assert report.ratio(5.0, 0.0) is None


def test_notification_rows_keep_slots_per_worker_fixed() -> None:
    rows = report.notification_rows(good().zkq)
    assert [r.shape for r in rows] == ["1x4", "4x4", "16x4"]


# -- verdicts -----------------------------------------------------------------------------
def test_every_target_passes_on_good_figures() -> None:
    verdicts = report.verdicts(good())
    assert [v.verdict for v in verdicts] == [report.PASS] * 5
    assert report.passed(good())


def test_notifications_growing_with_workers_is_a_miss() -> None:
    rows = [zkq_row(1, 4, 100, notifications_per_job=1.0), zkq_row(16, 4, 300, 2.0, 4.0)]
    assert report.flat_notifications(rows).verdict == report.MISS


def test_throughput_falling_as_slots_are_added_is_a_miss() -> None:
    rows = [zkq_row(1, 4, 300), zkq_row(4, 4, 200)]
    assert report.throughput_holds(rows).verdict == report.MISS
    # within the tolerance of noise it holds
    rows = [zkq_row(1, 4, 300), zkq_row(4, 4, 280)]
    assert report.throughput_holds(rows).verdict == report.PASS


def test_lockingqueue_ratio_under_five_is_a_miss() -> None:
    zkq = [zkq_row(4, 4, 400)]
    verdict = report.beats_lockingqueue(zkq, [lq_row(16, 100)])
    assert verdict.verdict == report.MISS
    assert "4.0x" in verdict.measured
    assert report.beats_lockingqueue(zkq, [lq_row(16, 80)]).verdict == report.PASS


def test_ratio_falls_back_to_the_largest_common_count_below_sixteen() -> None:
    verdict = report.beats_lockingqueue(
        [zkq_row(1, 2, 100), zkq_row(2, 2, 200)], [lq_row(2, 60), lq_row(4, 30)]
    )
    assert "at 4 consumers" in verdict.target and "16 not measured" in verdict.target
    assert verdict.verdict == report.PASS


def test_too_many_transactions_is_a_miss() -> None:
    assert report.few_transactions([zkq_row(1, 1, 50, txns_per_job=4.5)]).verdict == report.MISS


def test_unmeasured_targets_are_not_applicable() -> None:
    empty = results([], [])
    assert {v.verdict for v in report.verdicts(empty)} == {report.NA}
    assert report.passed(empty)


def test_an_incomplete_row_fails_the_sanity_check() -> None:
    row = zkq_row(1, 1, 50)
    row.succeeded, row.complete = 990, False
    assert report.all_succeeded([row]).verdict == report.MISS


# -- output -------------------------------------------------------------------------------
def test_text_report_has_every_section_and_the_summary() -> None:
    text = report.render(good())
    for heading in (
        "1. Raw ZooKeeper",
        "2. zkq end to end",
        "3. Baseline: kazoo LockingQueue",
        "4. ZooKeeper transactions",
        "5. Watch notifications",
        "6. Memory",
        "7. CPU per job",
        "Summary",
    ):
        assert heading in text
    assert "5.4x" in text  # zkq/LQ at 16: 700 / 130
    assert "PASS" in text


def test_json_report_is_serialisable_and_complete() -> None:
    data = json.loads(json.dumps(report.to_json(good())))
    assert set(data) >= {
        "zk_raw",
        "zkq_throughput",
        "lockingqueue",
        "ratios",
        "transactions",
        "notifications",
        "memory",
        "cpu",
        "summary",
    }
    assert data["zkq_throughput"][3]["jobs_per_s"] == 800
    assert data["memory"][0]["leader_idle_mib"] == 30.0
    assert [n["workers"] for n in data["notifications"]["zkq"]] == [1, 4, 16]
    assert data["cpu"][0]["ms_per_job"]["zookeeper"] == 3.0


def test_table_right_aligns_numbers() -> None:
    text = report.table(["name", "n"], [["a", 5], ["bbb", 123]])
    lines = text.splitlines()
    assert lines[2].endswith("  5") and lines[3].endswith("123")
    assert lines[2].lstrip().startswith("a ")
