"""The `kimari` command: a thin shell over the engine's Python API.

Exit codes: 0 ok; 1 failures found (tests failed, facts invalid); 2 usage or
policy errors. Every error is printed as `file:line:col: code: message` (or
a JSON pointer for facts) and the exit happens in one place, `main`.

Messages are English unless `KIMARI_LANG=ja` (docs/messages.md): then every message and
report line is Japanese, in text and in JSON, while codes, pointers, file:line:col and
the JSON keys stay the same. The host's LANG is not followed: output that changes with the
machine's locale would make CI logs and scripts differ from one machine to the next.
click's own errors about the command line itself (an unknown option) stay English.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from engine.cli import lifecycle as lifecycle_commands
from engine.cli.checks_cache import remembered_checks
from engine.cli.inputs import (
    TEXT,
    UTF8_BOM,
    check_not_input,
    check_store,
    loads_checked,
    named_options,
)
from engine.core.errors import (
    Diagnostic,
    InputError,
    KimariError,
    PolicyError,
    UsageError,
    error_count,
)
from engine.core.i18n import Msg, message_of, os_reason, plural, translate, using_language
from engine.core.jsonvalue import TooDeep, check_depth, dumps, json_reason

if TYPE_CHECKING:
    from engine.store.backend import Backend, Location

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines",
)
POLICIES = click.option(
    "--policies",
    "policies_dir",
    type=click.Path(file_okay=False),
    default="policies",
    show_default=True,
    help="folder of policies (with rulebook.tsv and data/)",
)

# decisions `kimari log` lists at most (a jsonl export for `kimari impact --from` included)
LOG_LIMIT = 1_000_000


class Exit(Exception):
    """The command has reported what it found; exit with this code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kimari")
def cli() -> None:
    """kimari: business rulebooks as YAML policies, decided by durable_rules."""


for _command in lifecycle_commands.COMMANDS:  # the policy lifecycle: engine/cli/lifecycle.py
    cli.add_command(_command)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@FORMAT
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check policies, their test files, data sets and the rulebook index.

    PATHS are policy folders or files (default: policies). Prints every problem as
    file:line:col: code: message; exits 2 if there is any.
    """
    from engine import api
    from engine.cli.render import diagnostics_json, diagnostics_text, echo

    problems, warnings, summary = api.validate_paths(_readable(paths or ("policies",)))
    if fmt == "json":
        echo(diagnostics_json([*problems, *warnings]))
    else:
        if warnings:
            click.echo(diagnostics_text(warnings), err=True)
        if problems:
            click.echo(diagnostics_text(problems), err=True)
        errors, cautions = len(problems), len(warnings)
        # each count its own Msg, outside the line's (the catalogue's extractor reads only
        # the outer call of nested ones)
        counted_errors = error_count(errors)
        counted_warnings = plural(
            cautions,
            Msg("{count} warning", count=cautions),
            Msg("{count} warnings", count=cautions),
        )
        line = Msg(
            "{summary}: {errors}, {warnings}",
            summary=summary,
            errors=counted_errors,
            warnings=counted_warnings,
        )
        click.echo(translate(line), err=bool(problems))
    if problems:
        raise Exit(PolicyError.exit_code)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--backend", type=click.Choice(["durable", "python"]), default="durable", show_default=True
)
@FORMAT
def test(paths: tuple[str, ...], backend: str, fmt: str) -> None:
    """Run the YAML test cases of policies (*.tests.yaml).

    Reports each failed case with a diff, the rules no case applied, and the rulebook
    IDs that no rule and no passing case covers. Exits 1 if a case fails.
    """
    from engine import api
    from engine.cli.render import echo, report_json, report_text

    report = api.run_tests(_readable(paths or ("policies",)), backend=backend)
    echo(report_json(report) if fmt == "json" else report_text(report))
    if report.problems:
        raise Exit(PolicyError.exit_code)
    if report.failed:
        raise Exit(1)


@cli.command()
@click.argument("policy", type=TEXT)
@click.argument("facts_file", metavar="FACTS.json", type=click.Path(allow_dash=True))
@click.option(
    "--at", type=TEXT, help="decision time, e.g. 2024-09-21T23:59:59+09:00 (default: now)"
)
@click.option(
    "--settings", "settings_json", type=TEXT, help="JSON object, e.g. '{\"np_ng_action\": 3}'"
)
@click.option("--explain", is_flag=True, help="show every rule's verdict and failed condition")
@click.option(
    "--backend", type=click.Choice(["durable", "python"]), default="durable", show_default=True
)
@POLICIES
@FORMAT
def decide(
    policy: str,
    facts_file: str,
    at: str | None,
    settings_json: str | None,
    explain: bool,
    backend: str,
    policies_dir: str,
    fmt: str,
) -> None:
    """Decide one case.

    POLICY is a policy id (or its .yaml file); FACTS.json holds its facts ('-' for stdin).
    Exits 1 if the facts are invalid (each error with its JSON pointer).
    """
    from engine import api
    from engine.cli.render import decision_text, echo, to_json

    facts = _read_json(facts_file, "/facts")
    settings = _parse_json_option(settings_json, "--settings") if settings_json else None
    with named_options({"/at": "--at", "/settings": "--settings"}):
        decision = api.decide_cli(
            policy,
            facts,
            policies_dir=Path(policies_dir),
            at=at,
            settings=settings,
            explain=explain,
            backend=backend,
        )
    echo(to_json(decision.to_dict()) if fmt == "json" else decision_text(decision))


@cli.command()
@click.argument("policy", type=TEXT)
@click.argument("requests", metavar="REQUESTS.jsonl", type=click.Path(allow_dash=True))
@click.option(
    "--output",
    "-o",
    type=click.Path(allow_dash=True),
    default="-",
    show_default=True,
    help="where the decisions go, one JSON line each, in input order",
)
@click.option("--workers", type=click.IntRange(1, 256), help="processes (default: CPU count)")
@click.option("--at", type=TEXT, help="decision time for lines that give none (default: now)")
@click.option(
    "--backend", type=click.Choice(["durable", "python"]), default="durable", show_default=True
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="progress bar on stderr (default: when stderr is a terminal)",
)
@POLICIES
def batch(
    policy: str,
    requests: str,
    output: str,
    workers: int | None,
    at: str | None,
    backend: str,
    progress: bool | None,
    policies_dir: str,
) -> None:
    """Decide many cases: one request per line ({"facts": ..., "at": ..., "settings": ...}).

    Writes one decision per line, or {"line": N, "errors": [...]} for a line that cannot be
    decided; exits 1 if any line failed. Scales with processes.
    """
    from engine.cli.batch import run_batch

    _check_at(at, "--at")  # once, before any file is opened: not on every line
    show = sys.stderr.isatty() if progress is None else progress
    source = sys.stdin.buffer if requests == "-" else _open(requests, "rb")
    try:  # before the output is opened for writing, which would empty the input
        check_not_input(source, requests, output, sys.stdout)
    except UsageError:
        if source is not sys.stdin.buffer:
            source.close()
        raise
    # a file is written under a .partial name and renamed when every line is decided: a run
    # stopped half-way (Ctrl-C, a kill) never leaves a file that looks complete
    target = Path(output) if output != "-" and _plain_file(output) else None
    partial = Path(f"{output}.partial") if target is not None else None
    if output == "-":
        sink: BinaryIO = sys.stdout.buffer
    else:
        sink = _open(str(partial) if partial is not None else output, "wb")
    finished = False
    try:
        summary = run_batch(
            Path(policies_dir),
            policy,
            source,
            sink,
            workers=workers,
            backend=backend,
            at=at,
            progress=show,
        )
        finished = True
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        written = False
        try:  # the last of the output reaches the file here: a full disk fails here too
            if sink is not sys.stdout.buffer:
                sink.close()
            else:
                sink.flush()
            written = True
        finally:
            if partial is not None and target is not None:
                _settle_partial(partial, output, finished and written)
    line = Msg(
        "{decided:,} decided, {failed:,} failed in {seconds:.1f} s ({rate:,.0f}/s)",
        decided=summary.decided,
        failed=summary.failed,
        seconds=summary.seconds,
        rate=summary.rate,
    )
    click.echo(translate(line), err=True)
    if summary.failed:
        raise Exit(1)


def _settle_partial(partial: Path, output: str, whole: bool) -> None:
    """A whole run's file takes its name; any other leaves NAME.partial, and says so."""
    if whole:
        partial.replace(output)
        return
    stopped = Msg(
        "stopped before the end: the decisions made are in {partial}; {output} was not written",
        partial=str(partial),
        output=output,
    )
    click.echo(translate(stopped), err=True)


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML config file")
@click.option("--host", type=TEXT, help="address to bind (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 8080; 0 picks a free one)")
@click.option(
    "--policies", "policies_dir", type=click.Path(file_okay=False), help="policies folder"
)
@click.option(
    "--store",
    type=TEXT,
    help="SQLite file, sqlite:///path or postgresql://user@host/db (default var/kimari.sqlite3)",
)
@click.option("--workers", type=int, help="engine worker processes (default 2)")
@click.option(
    "--watch",
    is_flag=True,
    default=None,
    help="serve the policy files as saved, unreviewed (a one-person sandbox)",
)
def serve(
    config_file: str | None,
    host: str | None,
    port: int | None,
    policies_dir: str | None,
    store: str | None,
    workers: int | None,
    watch: bool | None,
) -> None:
    """Serve decisions over HTTP (see README: configuration, endpoints, tokens).

    Serves the published revisions of the store (on the first start with an empty store,
    it publishes the policies folder); with --watch, the policy files as they are saved.
    Settings come from the defaults, then the config file (--config or KIMARI_CONFIG),
    then KIMARI_* environment variables, then these options.
    """
    from engine.service.config import load_config
    from engine.service.supervisor import bind
    from engine.service.supervisor import serve as run_server

    config = load_config(
        config_file,
        overrides={
            "host": host,
            "port": port,
            "policies": policies_dir,
            "store": store,
            "workers": workers,
            "watch": watch,
        },
    )
    # the port first: one in use is refused before the store is created or bootstrapped
    sock = bind(config)
    try:
        check_store(config.store, must_exist=False)  # created (with its folder) if not there
        code = run_server(config, sock)
    finally:
        sock.close()
    if code:
        raise Exit(code)


@cli.command("log")
@click.option(
    "--store", type=TEXT, help="SQLite file or postgresql://user@host/db (default: from config)"
)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML config file")
@click.option("--id", "decision_id", type=TEXT, help="one decision, by id")
@click.option("--policy", type=TEXT, help="only this policy")
@click.option("--revision", type=TEXT, help="only this policy revision")
@click.option("--rule", type=TEXT, help="only decisions in which this rule fired")
@click.option(
    "--since",
    type=TEXT,
    help="logged at or after (a date, an RFC 3339 time, or e.g. 15m, 2h, 7d ago)",
)
@click.option("--until", type=TEXT, help="logged before (same forms as --since)")
@click.option("--limit", type=click.IntRange(1, LOG_LIMIT), default=20, show_default=True)
@click.option("--oldest-first", is_flag=True, help="oldest first (default: newest first)")
@click.option(
    "--explain",
    is_flag=True,
    help="with --id: decide it again on its logged revision and data, from the store alone",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl"]),
    default="text",
    show_default=True,
    help="text for people; json; jsonl: one decision a line (kimari impact --from reads it)",
)
def log_command(
    store: str | None,
    config_file: str | None,
    decision_id: str | None,
    policy: str | None,
    revision: str | None,
    rule: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    oldest_first: bool,
    explain: bool,
    fmt: str,
) -> None:
    """Query the decision log. Exits 1 if --id names no logged decision."""
    from engine.service.config import load_config
    from engine.store.backend import SQLITE, open_backend, parse_location
    from engine.store.decisions import DecisionLog

    path = store or load_config(config_file).store
    location = parse_location(path)
    if location.kind == SQLITE and not Path(location.target).is_file():
        raise UsageError(
            [Diagnostic("store_missing", Msg("no decision log at {path}", path=str(location)))]
        )
    check_store(location, must_exist=True)
    if explain and decision_id is None:
        raise UsageError(
            [Diagnostic("usage", Msg("--explain needs --id: it explains one decision"))]
        )
    backend = open_backend(location, readonly=True)  # a query: no migration, no lock file
    try:
        decision_log = DecisionLog(backend)
        if decision_id is not None:
            found = decision_log.get(decision_id)
            rows = [found] if found else []
        else:
            rows = decision_log.query(
                policy=policy,
                revision=revision,
                rule=rule,
                since_ms=_when(since, "--since"),
                until_ms=_when(until, "--until"),
                limit=limit,
                oldest_first=oldest_first,
            )
        if explain and rows:
            rows[0].update(_explain_logged(backend, rows[0]))
        elsewhere = None
        if decision_id is not None and not rows:
            elsewhere = _flow_decision(backend, location, decision_id)
    finally:
        backend.close()
    if fmt == "json":
        from engine.cli.render import echo

        echo(dumps(rows, indent=True).decode())
    elif fmt == "jsonl":
        for row in rows:
            click.echo(dumps(row).decode())
    else:
        for row in rows:
            click.echo(_log_line(row))
            for line in _explanation_lines(row):
                click.echo(line)
        if not rows:
            click.echo(translate(Msg("no decisions")), err=True)
    if elsewhere is not None:
        click.echo(translate(elsewhere), err=True)
    if decision_id is not None and not rows:
        raise Exit(1)


def _flow_decision(backend: Backend, location: Location, decision_id: str) -> Msg | None:
    """Where a flow's decision with that id is (an event's answer gives one, and the
    decision it consulted another), or None."""
    from engine.store.flows import FlowStore

    try:
        found = FlowStore(backend).find_decision(decision_id)
    except UsageError:  # no flows' tables as this kimari reads them: no flow decided it
        return None
    if found is None:
        return None
    command = _history_command(location, found.policy_id, found.entity_id, found.move is None)
    if found.consulted:
        consulted = found.consulted_decision or {}
        return Msg(
            "{id} is the decision of '{consulted}' that an event of entity '{entity}' of flow "
            "'{policy}' consulted, kept with that event, not in the decision log: {command}",
            id=decision_id,
            consulted=(consulted.get("policy") or {}).get("id", "-"),
            entity=found.entity_id,
            policy=found.policy_id,
            command=command,
        )
    if found.move is not None:
        return Msg(
            "{id} is a move of entity '{entity}' of flow '{policy}' (version {version}), in "
            "its history, not in the decision log: {command}",
            id=decision_id,
            entity=found.entity_id,
            policy=found.policy_id,
            version=found.move["version"],
            command=command,
        )
    return Msg(
        "{id} is a refused event of entity '{entity}' of flow '{policy}', kept with its "
        "refusals, not in the decision log: {command}",
        id=decision_id,
        entity=found.entity_id,
        policy=found.policy_id,
        command=command,
    )


def _history_command(location: Location, policy: str, entity: str, refusals: bool) -> str:
    """The `kimari history` command that shows the entity, on the store read here (a
    PostgreSQL password left out), pasteable in a shell whatever the entity id."""
    import shlex

    from engine.store.sqlite import DEFAULT_PATH

    words = ["kimari", "history"] + (["--refusals"] if refusals else [])
    if str(location) != str(DEFAULT_PATH):  # history's default store
        words += ["--store", shlex.quote(str(location))]
    words.append(policy)
    if entity.startswith("-"):  # else read as an option
        words.append("--")
    return " ".join([*words, shlex.quote(entity)])


def _explain_logged(path: Location | Backend, row: dict[str, Any]) -> dict[str, Any]:
    from engine.project.revisions import RevisionCache, explain_logged
    from engine.store.versions import Store

    store = Store(path)
    try:
        return explain_logged(row, RevisionCache(store))
    finally:
        store.close()


def _explanation_lines(row: dict[str, Any]) -> list[str]:
    from engine.cli.render import explanation_text

    if row.get("explanation"):
        return explanation_text(row["explanation"])
    if "explanation_unavailable" in row:
        reason = row["explanation_unavailable"]
        return [translate(Msg("no explanation: {reason}", reason=reason))]
    return []


def _check_at(text: str | None, option: str) -> None:
    """A decision time given on the command line: UsageError naming the option if it is no
    RFC 3339 date-time with an offset."""
    from engine.lang.calendar import parse_datetime

    if text is None:
        return
    try:
        parse_datetime(text)
    except ValueError as exc:
        reason = Msg("{option}: {reason}", option=option, reason=message_of(exc))
        raise UsageError([Diagnostic("usage", reason)]) from None


def _when(text: str | None, option: str) -> int | None:
    """Milliseconds since the epoch from an RFC 3339 time or a duration ago (15m, 2h, 7d)."""
    import time

    from engine.lang.calendar import instant_ms

    if text is None:
        return None
    try:
        return instant_ms(text, time.time())
    except ValueError as exc:
        reason = Msg("{option}: {reason}", option=option, reason=message_of(exc))
        hint = Msg("a duration ago (45s, 15m, 2h, 7d), a date (2024-10-01) or an RFC 3339 time")
        raise UsageError([Diagnostic("usage", reason, hint=hint)]) from None


def _log_line(row: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    from engine.core.jsonvalue import JST

    logged = datetime.fromtimestamp(row["logged_at"] / 1000, UTC).astimezone(JST)
    outcome = dumps(row["outcome"]).decode()
    fired = ",".join(row["fired"]) or "-"
    served = row["response"].get("policy", {}) if isinstance(row["response"], dict) else {}
    publication = served.get("publication")
    shown = f" publication={publication}" if publication is not None else ""
    return (
        f"{logged.isoformat(timespec='milliseconds')} {row['decision_id']} "
        f"{row['policy_id']}@{row['revision']}{shown} at={row['at']} fired={fired} "
        f"outcome={outcome} {row['latency_us']}us"
    )


STORE = click.option(
    "--store",
    "store_path",
    type=TEXT,
    default=None,
    help="SQLite file or postgresql://… of flow state [default: var/kimari.sqlite3]",
)


@cli.command()
@click.argument("policy", type=TEXT)
@click.argument("entity_id")
@click.argument("event_file", metavar="EVENT.json", type=click.Path(allow_dash=True))
@click.option(
    "--at", type=TEXT, help="time of the event, e.g. 2024-09-21T23:59:59+09:00 (default: now)"
)
@click.option("--settings", "settings_json", type=TEXT, help="JSON object of setting overrides")
@click.option(
    "--event-id", type=TEXT, help="idempotency key: a retried event returns its first move"
)
@click.option("--actor", "actor_id", type=TEXT, required=True, help="who sends the event (an id)")
@click.option(
    "--role",
    "roles",
    type=TEXT,
    multiple=True,
    required=True,
    help="a role the actor acts in (repeat for several), e.g. --role 販売店",
)
@click.option("--actor-name", type=TEXT, help="the actor's display name")
@STORE
@POLICIES
@FORMAT
def flow(
    policy: str,
    entity_id: str,
    event_file: str,
    at: str | None,
    settings_json: str | None,
    event_id: str | None,
    actor_id: str,
    roles: tuple[str, ...],
    actor_name: str | None,
    store_path: str | None,
    policies_dir: str,
    fmt: str,
) -> None:
    """Apply one event, sent by an actor, to an entity of a flow policy and store the move.

    POLICY is a flow policy id (or its .yaml file); EVENT.json is the event, e.g.
    {"type": "claim", "detail": "..."} ('-' for stdin); --actor and --role say who sends
    it (a transition's `by:` names the roles that may). Prints the new state and the
    actions the move requires, or the refusal naming the current state and the unmet
    condition (or the roles that may send it). Exits 1 if the event is refused or invalid
    (JSON pointer), 2 on usage or policy errors.
    """
    from engine.api import open_flow_engine
    from engine.cli.render import echo, to_json
    from engine.flow.render import flow_result_text
    from engine.store.sqlite import DEFAULT_PATH

    event = _read_json(event_file, "/event")
    settings = _parse_json_option(settings_json, "--settings") if settings_json else None
    # a store named by --store must have its folder: a typo would start a new, empty store
    # (the default, var/kimari.sqlite3, is created with its folder, as `kimari serve` does)
    named = store_path is not None
    check_store(store_path or DEFAULT_PATH, must_exist=False, folder_must_exist=named)
    engine, policy_id = open_flow_engine(policy, Path(policies_dir), store_path)
    try:
        actor: dict[str, Any] = {"id": actor_id, "roles": list(roles)}
        if actor_name is not None:
            actor["name"] = actor_name
        with named_options(FLOW_OPTIONS):
            result = engine.apply(
                policy_id,
                entity_id,
                event,
                actor=actor,
                at=at,
                settings=settings,
                event_id=event_id,
            )
    finally:
        engine.store.close()
    body = result.to_dict()
    echo(to_json(body) if fmt == "json" else flow_result_text(body))
    if not result.allowed:
        raise Exit(1)


# where the values `kimari flow` takes from its options land in the request
FLOW_OPTIONS = {
    "/at": "--at",
    "/settings": "--settings",
    "/event_id": "--event-id",
    "/entity_id": "ENTITY_ID",
    "/actor": "--actor",
    "/actor/id": "--actor",
    "/actor/roles": "--role",
    "/actor/name": "--actor-name",
}


@cli.command()
@click.argument("policy", type=TEXT)
@click.argument("entity_id")
@click.option("--refusals", is_flag=True, help="also list the refused events (kept apart)")
@STORE
@POLICIES
@FORMAT
def history(
    policy: str,
    entity_id: str,
    refusals: bool,
    store_path: str | None,
    policies_dir: str,
    fmt: str,
) -> None:
    """Show an entity of a flow policy: its state and every move, in order."""
    from engine.api import open_flow_engine
    from engine.cli.render import echo, to_json
    from engine.flow.render import history_text
    from engine.store.backend import open_backend
    from engine.store.sqlite import DEFAULT_PATH

    check_store(store_path or DEFAULT_PATH, must_exist=True)  # a read: never a new store
    # read-only: no migration, no lock file
    backend = open_backend(store_path or DEFAULT_PATH, readonly=True)
    try:
        engine, policy_id = open_flow_engine(policy, Path(policies_dir), backend, reading=True)
        entity = engine.entity(policy_id, entity_id)
        rows = engine.history(policy_id, entity_id)
        refused = engine.refusals(policy_id, entity_id) if refusals else []
    finally:
        backend.close()
    if fmt == "json":
        body = {**entity, "history": [r.to_dict() for r in rows]}
        if refusals:
            body["refusals"] = refused
        echo(to_json(body))
    else:
        click.echo(history_text(entity, rows, refused))


def _readable(paths: tuple[str, ...]) -> list[Path]:
    """The paths, each of which exists; UsageError file_unreadable (exit 2) for one that does
    not, as for every other file a command cannot read."""
    for name in paths:
        if not Path(name).exists():
            raise UsageError(
                [
                    Diagnostic(
                        "file_unreadable",
                        Msg("cannot read {name}: No such file or directory", name=name),
                    )
                ]
            )
    return [Path(p) for p in paths]


def _plain_file(name: str) -> bool:
    """A path a regular file is (or will be) written at: not a pipe or a device."""
    path = Path(name)
    return not path.exists() or path.is_file()


def _open(name: str, mode: str) -> BinaryIO:
    """A file opened for a command; UsageError file_unreadable (or file_unwritable), exit 2."""
    try:
        return Path(name).open(mode)  # type: ignore[return-value]
    except OSError as exc:
        if "w" in mode:
            reason = Msg("cannot write {name}: {reason}", name=name, reason=os_reason(exc))
            problem = Diagnostic("file_unwritable", reason)
        else:
            reason = Msg("cannot read {name}: {reason}", name=name, reason=os_reason(exc))
            problem = Diagnostic("file_unreadable", reason)
        raise UsageError([problem]) from None


def _read_json(name: str, pointer: str) -> Any:
    """The JSON document of a file (or stdin: "-"), refused as the service refuses a body:
    not UTF-8, not JSON, or nested past MAX_DEPTH, each named by file:line:col or pointer."""
    shown = "<stdin>" if name == "-" else name
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        raw = raw.removeprefix(UTF8_BOM)  # Windows editors save one: JSON may ignore it
    except OSError as exc:
        raise UsageError(
            [
                Diagnostic(
                    "file_unreadable",
                    Msg("cannot read {name}: {reason}", name=name, reason=os_reason(exc)),
                )
            ]
        ) from None
    try:
        # as the service reads a body: no key twice, no integer too long to read (InputError)
        value = loads_checked(raw.decode("utf-8"), raw, pointer, InputError)
    except UnicodeDecodeError as exc:  # file:line:col of the byte, as for a policy file
        from engine.source.yaml import not_utf8

        raise InputError([not_utf8(raw, exc, shown)]) from None
    except json.JSONDecodeError as exc:
        where = f"{shown}:{exc.lineno}:{exc.colno}"
        reason = Msg("{where}: invalid JSON: {reason}", where=where, reason=json_reason(exc.msg))
        raise InputError([Diagnostic("json_invalid", reason, pointer=pointer)]) from None
    except RecursionError:  # far past MAX_DEPTH: the parser gave up before a pointer
        raise InputError([TooDeep(None, shown).diagnostic(pointer)]) from None
    try:
        check_depth(raw, value, below=pointer.count("/"))  # as it would sit in a request
    except TooDeep as exc:
        raise InputError([exc.diagnostic(pointer)]) from None
    return value


def _parse_json_option(text: str, option: str) -> Any:
    """An option's JSON object (--settings), read as a request's `settings` would be."""
    base = "/" + option.removeprefix("--")  # its pointer in a request: /settings/...
    try:
        value = loads_checked(text, text.encode(), base, UsageError)
        check_depth(text.encode(), value, below=1)
    except json.JSONDecodeError as exc:
        reason = Msg(
            "{option} is not valid JSON: {reason}", option=option, reason=json_reason(exc.msg)
        )
        raise UsageError([Diagnostic("usage", reason)]) from None
    except RecursionError:  # far past MAX_DEPTH: the parser gave up before a pointer
        raise UsageError([TooDeep(None, option).diagnostic()]) from None
    except TooDeep as exc:
        raise UsageError([TooDeep(None, option).diagnostic(base + exc.pointer)]) from None
    if not isinstance(value, dict):
        raise UsageError(
            [Diagnostic("usage", Msg("{option} must be a JSON object", option=option))]
        )
    return value


def _print_error(exc: KimariError) -> None:
    from engine.cli.render import diagnostics_text

    click.echo(diagnostics_text(exc.diagnostics), err=True)


def language_from(value: str | None) -> str:
    """The language KIMARI_LANG asks for: 'ja' for ja, ja_JP, ja-JP.UTF-8 and the like;
    anything else (or nothing) is English."""
    primary = (value or "").strip().lower().replace("-", "_").split(".")[0].split("_")[0]
    return "ja" if primary == "ja" else "en"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: run, then exit in exactly one place."""
    with using_language(language_from(os.environ.get("KIMARI_LANG"))), remembered_checks():
        code = _run(argv)
        try:
            sys.stdout.flush()  # what is still buffered fails here, not at the exit
        except OSError as exc:
            return _output_failed(exc)
        return code


def _output_failed(exc: OSError) -> int:
    """A write to the output failed: a reader that left (`| head`) ends the command quietly
    with 1, as click ends it when the pipe breaks inside a command; a full disk or the like
    is a usage error naming the reason (exit 2), never an internal error."""
    with contextlib.suppress(OSError, ValueError):  # nothing more may reach the dead pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if exc.errno == errno.EPIPE:
        return 1
    reason = Msg("cannot write the output: {reason}", reason=os_reason(exc))
    error = UsageError([Diagnostic("file_unwritable", reason)])
    _print_error(error)
    return error.exit_code


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="kimari", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(translate(Msg("aborted")), err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return 2
    except Exit as done:
        return done.code
    except KimariError as exc:
        _print_error(exc)
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in _WRITE_FAILURES:
            return _internal_error(exc)
        return _output_failed(exc)
    except Exception as exc:  # an engine bug: one line for the user, the trace on request
        return _internal_error(exc)
    return 0


# what a write to the output (stdout, -o FILE) fails with; a file that cannot be opened is
# named where it is opened
_WRITE_FAILURES = frozenset({errno.EPIPE, errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO})


def _internal_error(exc: Exception) -> int:
    """An engine bug: one line for the user, the trace on request."""
    if os.environ.get("KIMARI_DEBUG"):
        raise exc
    line = Msg(
        "internal error: {kind}: {error} (set KIMARI_DEBUG=1 for the trace)",
        kind=type(exc).__name__,
        error=str(exc),
    )
    click.echo(translate(line), err=True)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
