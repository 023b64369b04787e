"""``[[schedules]]`` in a coordinator's config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import ConfigError

DECLARED = """
[zookeeper]
root = "/zkq"

[[schedules]]
name = "nightly-report"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
misfire = "skip"
[schedules.template]
type = "report"
payload = {kind = "daily"}

[[schedules]]
name = "beat"
every = 30
[schedules.template]
type = "ping"
"""


def test_declared_schedules_are_owned_by_the_operators(tmp_path: Path) -> None:
    file = tmp_path / "zkq.toml"
    file.write_text(DECLARED)
    config = ClusterConfig.load({}, config_file=str(file))
    nightly, beat = config.schedules
    assert (nightly.name, nightly.owner, nightly.source) == ("nightly-report", "_", "config")
    assert nightly.timezone == "Europe/Berlin" and nightly.misfire == "skip"
    assert nightly.template["payload"] == {"kind": "daily"}
    assert beat.every == 30 and beat.template["type"] == "ping"


def test_a_bad_declared_schedule_is_refused_at_load(tmp_path: Path) -> None:
    file = tmp_path / "zkq.toml"
    file.write_text(DECLARED.replace("30 2 * * *", "30 25 * * *"))
    with pytest.raises(ConfigError, match=r"nightly-report.*cron expression"):
        ClusterConfig.load({}, config_file=str(file))
