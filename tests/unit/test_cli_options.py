"""The ``zkq`` command line without a cluster: where settings come from, in which order,
and how a command answers when they are wrong or the cluster is away."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from zkq.cli import main
from zkq.dev.ports import free_port
from zkq.options import MYSQL, ZOOKEEPER, CliContext, connection_options, json_option, pass_cli
from zkq.output import EXIT_UNAVAILABLE, EXIT_USAGE

#: every variable that could leak a setting in from the machine running the tests
CLEAN_ENV: dict[str, str | None] = {
    var: None
    for var in (
        "ZKQ_ZK_HOSTS",
        "ZKQ_ROOT",
        "ZKQ_SESSION_TIMEOUT",
        "ZKQ_MYSQL_URL",
        "ZKQ_CONFIG",
        "ZKQ_HAPROXY_STATS",
        "ZKQ_RETENTION",
    )
}
# nor a dev cluster left running in the checkout by `make run` (zkq.dev.discovery)
CLEAN_ENV["ZKQ_DEV_DIR"] = "/nonexistent/.zkq-dev"


# A group and a command declared the way zkq's are, answering with what they resolved.
@click.group()
@connection_options(ZOOKEEPER, MYSQL)
def cli_group() -> None:
    pass


@cli_group.command()
@connection_options(ZOOKEEPER, MYSQL)
@json_option
@pass_cli
def probe(cli: CliContext) -> None:
    config = cli.config
    answer = {
        "hosts": config.zk.hosts,
        "root": config.zk.root,
        "session_timeout": config.zk.session_timeout,
        "mysql": config.mysql.url if config.mysql else None,
        "json": cli.as_json,
    }
    click.echo(json.dumps(answer))


def run_probe(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = CliRunner(env={**CLEAN_ENV, **(env or {})}).invoke(cli_group, list(args))
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


@pytest.fixture
def config_file(tmp_path: Path) -> Iterator[Path]:
    file = tmp_path / "zkq.toml"
    file.write_text('[zookeeper]\nhosts = "file:1"\nroot = "/file"\n')
    yield file


def test_the_options_work_after_the_command_as_the_launcher_writes_them() -> None:
    answer = run_probe("probe", "--zk", "h:1", "--root", "/r", "--session-timeout", "4", "--json")
    assert answer == {
        "hosts": "h:1",
        "root": "/r",
        "session_timeout": 4.0,
        "mysql": None,
        "json": True,
    }


def test_the_options_work_before_the_command_and_lose_to_those_after_it() -> None:
    assert run_probe("--zk", "h:1", "--root", "/r", "probe")["root"] == "/r"
    answer = run_probe("--zk", "before:1", "--root", "/r", "probe", "--zk", "after:2")
    assert answer["hosts"] == "after:2" and answer["root"] == "/r"


def test_flags_then_environment_then_file(config_file: Path) -> None:
    file_only = run_probe("probe", "--config", str(config_file))
    assert (file_only["hosts"], file_only["root"]) == ("file:1", "/file")
    env = {"ZKQ_CONFIG": str(config_file), "ZKQ_ROOT": "/env"}
    from_env = run_probe("probe", env=env)
    assert (from_env["hosts"], from_env["root"]) == ("file:1", "/env")
    assert run_probe("probe", "--root", "/flag", env=env)["root"] == "/flag"
    # a flag given before the command is not undone by the command reading the environment
    assert run_probe("--root", "/flag", "probe", env=env)["root"] == "/flag"


def test_mysql_url_from_flag_or_environment() -> None:
    url = "mysql://u:p@db:3306/zkq"
    assert run_probe("probe", "--mysql", url)["mysql"] == url
    assert run_probe("--mysql", url, "probe")["mysql"] == url
    assert run_probe("probe", env={"ZKQ_MYSQL_URL": url})["mysql"] == url


def zkq(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env={**CLEAN_ENV, **(env or {})}).invoke(main, list(args), prog_name="zkq")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *_commands(main)], ids=lambda p: " ".join(p) or "zkq")
def test_every_help_answers(path: tuple[str, ...]) -> None:
    result = zkq(*path, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: zkq")


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--root", "relative"),
        ("--root", "relative", "status"),
        ("status", "--config", "/no/such/zkq.toml"),
        ("db", "migrate"),  # no database named anywhere
    ],
)
def test_a_bad_or_missing_setting_is_a_usage_error(args: tuple[str, ...]) -> None:
    result = zkq(*args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.stderr.startswith("zkq: ") and len(result.stderr.splitlines()) == 1


def test_an_unreachable_ensemble_is_one_line_and_exit_3() -> None:
    result = zkq("--zk", f"127.0.0.1:{free_port()}", "status", "--json")
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("zkq: could not reach ZooKeeper")
    assert result.stderr.count("\n") == 1


def test_an_unreachable_database_is_one_line_and_exit_3() -> None:
    url = f"mysql://zkq:secret@127.0.0.1:{free_port()}/zkq"
    result = zkq("keys", "list", "--mysql", url)
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert result.stderr.startswith("zkq: ") and result.stderr.count("\n") == 1
