"""``zkq acl``: the ZooKeeper ACLs of a cluster (:mod:`zkq.coordinator.acl`).

``zkq acl apply`` puts the policy on every node of a cluster made before ACLs
(:mod:`zkq.coordinator.acl_apply`); it needs the coordinator's credential
(``ZKQ_ZK_AUTH_FILE``) and every role's identity (``ZKQ_ZK_ACL``).  ``zkq acl identity``
prints the identity of a credential read from standard input, for ``ZKQ_ZK_ACL``.
"""

from __future__ import annotations

import sys

import click

from zkq.options import ZOOKEEPER, CliContext, connection_options, json_option, pass_cli
from zkq.output import emit, run_guarded


@click.group("acl")
def acl() -> None:
    """ZooKeeper ACLs: who may read and change which znodes."""


@acl.command("apply")
@connection_options(ZOOKEEPER)
@json_option
@pass_cli
def apply_command(cli: CliContext) -> None:
    """Give every node under the root the ACL of zkq's policy.

    For a cluster that ran without ACLs: its nodes stay open to anyone until this runs.
    Run it with the coordinator's credential once every service has its own; running it
    again is harmless.
    """
    from zkq.coordinator.acl_apply import apply_policy

    config = cli.config
    if config.zk.acl is None:
        raise click.UsageError(
            "no ACL policy: set ZKQ_ZK_ACL (or [zookeeper] acl) to every role's identity"
        )
    client = cli.client()

    def progress(done: int) -> None:
        if not cli.as_json:
            click.echo(f"\r{done} node(s) done", nl=False, err=True)

    count = run_guarded(lambda: apply_policy(client.session, config.zk.layout, progress))
    if not cli.as_json:
        click.echo(err=True)
    emit(
        {"root": config.zk.root, "nodes": count},
        cli.as_json,
        lambda: f"{count} node(s) under {config.zk.root} now carry zkq's ACLs",
    )


@acl.command("identity")
def identity_command() -> None:
    """Print the digest identity (user:hash) of the credential (user:password) on stdin.

    Read from standard input, never an argument, so the password stays out of `ps` and
    the shell's history.
    """
    from zkq.coordinator.acl import digest_identity
    from zkq.coordinator.errors import ConfigError

    try:
        click.echo(digest_identity(sys.stdin.readline()))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


COMMANDS = [acl]
