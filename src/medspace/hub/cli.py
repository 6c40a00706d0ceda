"""`medspace hub init|serve|add-node|add-user`: run on the hub machine by its operator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medspace.errors import MedSpaceError

hub_app = typer.Typer(help="Set up and run the hub.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

HubDir = Annotated[Path, typer.Option("--hub", help="The hub directory (from `hub init`).")]


def fail(error: MedSpaceError) -> None:
    """Print a MedSpace error on one line and exit with its code."""
    err_console.print(f"[bold red]error:[/] {error}", highlight=False)
    raise typer.Exit(error.exit_code)


def read_password(password_stdin: bool) -> str:
    """The password from stdin (--password-stdin), $MEDSPACE_PASSWORD or a prompt."""
    if password_stdin:
        return typer.get_text_stream("stdin").readline().rstrip("\n")
    env = os.environ.get("MEDSPACE_PASSWORD")
    if env:
        return env
    return str(typer.prompt("password", hide_input=True))


@hub_app.command("init")
def hub_init(
    directory: Annotated[Path, typer.Argument(help="Directory for the new hub.")],
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (default: SQLite in DIR).")
    ] = None,
    quorum: Annotated[
        int | None, typer.Option(min=1, help="Cosignatures that make a checkpoint final.")
    ] = None,
    task_timeout: Annotated[int, typer.Option(min=1, help="Seconds to wait for a node.")] = 30,
) -> None:
    """Create a hub: config, token/entry key, log key; print the log key for auditors."""
    from medspace.hub.config import init_hub
    from medspace.hub.core import HubCore

    try:
        config = init_hub(directory, db_url=db, quorum=quorum, task_timeout=task_timeout)
        core = HubCore(config.directory)
        vkey = core.log_signer.verifier.vkey
        core.close()
    except MedSpaceError as error:
        fail(error)
    console.print(f"hub created in [bold]{config.directory}[/] (origin {config.origin})")
    console.print(f"log key (give it to auditors): {vkey}", highlight=False, soft_wrap=True)


@hub_app.command("serve")
def hub_serve(
    hub: HubDir,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8443,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Server cert.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Server key.")] = None,
) -> None:
    """Serve the hub API (OpenAPI at /docs) and the node channel (/channel)."""
    from medspace.blas import single_threaded_blas

    single_threaded_blas()  # before the hub imports numpy
    import uvicorn

    from medspace.hub.app import create_app

    if (tls_cert is None) != (tls_key is None):
        fail(MedSpaceError("give both --tls-cert and --tls-key, or neither"))
    try:
        app = create_app(hub)
    except MedSpaceError as error:
        fail(error)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="warning",
        ws="websockets-sansio",
        # Channel frames are JSON around ciphertext and base64: compressing them costs
        # both ends CPU on every lookup and saves little.
        ws_per_message_deflate=False,
    )


@hub_app.command("add-node")
def hub_add_node(
    hub: HubDir,
    name: Annotated[str, typer.Argument(help="The node's name, e.g. h1.")],
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="The node's Ed25519 key, base64.")
    ] = None,
    node_dir: Annotated[
        Path | None, typer.Option("--node-dir", help="Read the key from a node directory.")
    ] = None,
) -> None:
    """Register a node's public key so it may connect (and witness the ledger)."""
    from medspace.hub.core import HubCore
    from medspace.identity import public_key_text

    try:
        if (public_key is None) == (node_dir is None):
            raise MedSpaceError("give exactly one of --public-key and --node-dir")
        if node_dir is not None:
            from medspace.node import open_node

            with open_node(node_dir) as node:
                public_key = public_key_text(node.identity_public_key)
        assert public_key is not None
        core = HubCore(hub)
        try:
            registered = core.register_node(name, public_key)
        finally:
            core.close()
    except MedSpaceError as error:
        fail(error)
    console.print(f"node [bold]{registered.name}[/] registered (key {registered.fingerprint})")


@hub_app.command("add-user")
def hub_add_user(
    hub: HubDir,
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Option(help="researcher, steward, clinician, auditor or admin.")],
    node: Annotated[str | None, typer.Option(help="The node of a steward or clinician.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a user (password hashed with scrypt)."""
    from medspace.hub.core import HubCore
    from medspace.identity import Role, User

    try:
        user = User(name, Role.parse(role), node)
        password = read_password(password_stdin)
        core = HubCore(hub)
        try:
            core.add_user(user, password)
        finally:
            core.close()
    except MedSpaceError as error:
        fail(error)
    console.print(f"user [bold]{name}[/] added as {role}" + (f" of {node}" if node else ""))


@hub_app.command("reset-user-key")
def hub_reset_user_key(
    hub: HubDir,
    name: Annotated[str, typer.Argument(help="The user whose signing key to retire.")],
) -> None:
    """Retire a user's signing key (lost or compromised); they register a new one at their
    next `medspace login`. The reset is ledgered; the old key is never accepted again."""
    from medspace.hub.core import HubCore

    try:
        core = HubCore(hub)
        try:
            retired = core.reset_user_key(name)
        finally:
            core.close()
    except MedSpaceError as error:
        fail(error)
    if retired is None:
        console.print(f"user [bold]{name}[/] had no signing key; nothing to reset")
    else:
        console.print(
            f"signing key {retired[:16]}… of [bold]{name}[/] retired; they register a new "
            "one at their next `medspace login`"
        )
