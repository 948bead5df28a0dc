"""`kimari diff | impact | draft | publish | approve | reject | rollback | revisions | audit`.

The editor's loop, over the store the service serves from (`--store`, or the config's):

    kimari diff cancellation-fees                      # published -> policies/<id>.yaml
    kimari impact cancellation-fees --since 30d        # replay the log against the file
    kimari publish cancellation-fees -m "why"          # tests + impact -> pending
    kimari approve cancellation-fees@2 --as bob        # another principal publishes it
    kimari rollback cancellation-fees --to 1           # the earlier one, published again

A principal is `--as NAME`, else $KIMARI_PRINCIPAL, else the login name. The approvals a
revision needs are the service's (recorded in the store), else the configuration's.
Exit codes: 0 ok; 1 refused (tests fail, self-approval, stale, --max-changed exceeded);
2 usage or policy errors.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from engine.core.errors import Diagnostic, UsageError
from engine.core.jsonvalue import dumps

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines",
)


def _store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--config", "config_file", type=click.Path(dir_okay=False), help="TOML config file"
    )(func)
    return click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False),
        help="the service's SQLite store [default: from the config, var/kimari.sqlite3]",
    )(func)


POLICIES = click.option(
    "--policies",
    "policies_dir",
    type=click.Path(file_okay=False),
    default="policies",
    show_default=True,
    help="folder of the policy files being edited",
)
AS = click.option("--as", "principal", help="who you are [default: $KIMARI_PRINCIPAL or login]")
MESSAGE = click.option("--message", "-m", default="", help="why")


def _principal(given: str | None) -> str:
    if given:
        return given
    return os.environ.get("KIMARI_PRINCIPAL") or getpass.getuser()


def _open(store_path: str | None, config_file: str | None, *, workers: int | None = None) -> Any:
    from engine.api import open_lifecycle
    from engine.service.config import load_config

    config = load_config(config_file)
    store = store_path or config.store
    return open_lifecycle(
        store,
        approvals_required=config.approvals,
        impact_days=config.impact_days,
        workers=workers,
    )


def _echo_json(value: Any) -> None:
    click.echo(dumps(value, indent=True).decode())


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else dumps(value).decode()
    return text if len(text) <= 100 else text[:97] + "..."


# -- diff -------------------------------------------------------------------------------------
@click.command()
@click.argument("policy")
@click.option("--from", "old", default="published", show_default=True, help="a revision")
@click.option("--to", "new", help="a file or a revision [default: policies/POLICY.yaml]")
@POLICIES
@_store_options
@FORMAT
def diff(
    policy: str,
    old: str,
    new: str | None,
    policies_dir: str,
    store_path: str | None,
    config_file: str | None,
    fmt: str,
) -> None:
    """What changed between two revisions of POLICY, rule by rule, and the text diff.

    A revision is `published`, a number (3 or POLICY@3), a content hash, or a file.
    """
    from engine.api import policy_file

    policy_id = Path(policy).stem if policy.endswith((".yaml", ".yml")) else policy
    target = new or str(policy_file(policy, Path(policies_dir)))
    with _open(store_path, config_file) as lifecycle:
        result = lifecycle.diff(policy_id, old, target)
    if fmt == "json":
        _echo_json(result)
    else:
        click.echo(diff_text(result))


def _side(side: Mapping[str, Any] | None) -> str:
    if side is None:
        return "nothing"
    return f"{side['label']} [{side['revision']}]"


def _value_lines(change: Mapping[str, Any], indent: str) -> list[str]:
    old, new = change.get("from"), change.get("to")
    name = change["field"]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            f"{indent}{name}[{i + 1}]: {_short(a)}\n{indent}{' ' * len(name)}  -> {_short(b)}"
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            if a != b
        ]
    return [f"{indent}{name}: {_short(old)}\n{indent}{' ' * len(name)}  -> {_short(new)}"]


def diff_text(result: Mapping[str, Any]) -> str:
    out = [f"{result['policy']}: {_side(result['from'])} -> {_side(result['to'])}"]
    if result["identical"]:
        out.append("no change")
        return "\n".join(out)
    changes = result["changes"]
    for change in changes.get("policy", []):
        out.extend(_value_lines(change, "  "))
    for section in ("rules", "settings", "derived", "outcome", "data"):
        found = changes.get(section)
        if found:
            out.append(f"{section}:")
            out.extend(_keyed_lines(found))
    facts = changes.get("facts")
    if facts:
        out.append("facts schema:")
        for item in facts["added"]:
            out.append(f"  + {item['field']} ({_schema_brief(item)})")
        for item in facts["removed"]:
            out.append(f"  - {item['field']} ({_schema_brief(item)})")
        for item in facts["changed"]:
            out.append(f"  ~ {item['field']}")
            for change in item["changes"]:
                out.extend(_value_lines(change, "      "))
    flow = changes.get("flow")
    if flow:
        out.append("flow:")
        if "initial" in flow:
            out.append(f"  initial: {flow['initial']['from']} -> {flow['initial']['to']}")
        for section in ("states", "events", "transitions"):
            if section in flow:
                out.append(f"  {section}:")
                out.extend(_keyed_lines(flow[section], "    "))
    versions = changes.get("data_versions")
    if versions:
        out.append("default data versions:")
        for name in sorted(set(versions["from"]) | set(versions["to"])):
            a, b = versions["from"].get(name), versions["to"].get(name)
            if a != b:
                out.append(f"  {name}: {a} -> {b}")
    if result["text"]:
        out.append("")
        out.append(result["text"].rstrip("\n"))
    return "\n".join(out)


def _schema_brief(item: Mapping[str, Any]) -> str:
    kind = item.get("type", "any")
    return f"{kind}, {'required' if item.get('required') else 'optional'}"


def _keyed_lines(found: Mapping[str, Any], indent: str = "  ") -> list[str]:
    out = []
    for item in found["added"]:
        out.append(f"{indent}+ {item['id']}")
    for item in found["removed"]:
        out.append(f"{indent}- {item['id']}")
    for item in found["changed"]:
        out.append(f"{indent}~ {item['id']}")
        for change in item["fields"]:
            out.extend(_value_lines(change, indent + "    "))
    order = found.get("order")
    if order:
        out.append(f"{indent}order: {', '.join(order['from'])}")
        out.append(f"{indent}    -> {', '.join(order['to'])}")
    return out


# -- impact -----------------------------------------------------------------------------------
def _data_option(values: Iterable[str]) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, file = value.partition("=")
        if not sep or not name or not file:
            raise UsageError([Diagnostic("usage", f"--data wants NAME=FILE, not {value!r}")])
        out[name] = Path(file)
    return out


@click.command()
@click.argument("policy")
@click.option("--draft", help="a file or a revision [default: policies/POLICY.yaml]")
@click.option("--against", default="published", show_default=True, help="the revision compared")
@click.option("--since", help="replay decisions logged since (30d, 12h, or an RFC 3339 time)")
@click.option("--until", help="... and before")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), help="a JSON Lines file")
@click.option("--data", "data", multiple=True, help="NAME=FILE: a new data set for the draft")
@click.option("--sample", type=click.IntRange(1), help="replay about N decisions of the window")
@click.option("--max-changed", type=click.IntRange(0), help="exit 1 if more decisions change")
@click.option("--list", "list_limit", type=click.IntRange(0), default=20, show_default=True)
@click.option("--explain", "explain", type=click.IntRange(0), default=1, show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), help="processes (default: every core)")
@click.option("--backend", type=click.Choice(["durable", "python"]), default="durable")
@click.option("--progress/--no-progress", default=None, help="default: when stderr is a tty")
@POLICIES
@_store_options
@FORMAT
def impact(
    policy: str,
    draft: str | None,
    against: str,
    since: str | None,
    until: str | None,
    from_file: str | None,
    data: tuple[str, ...],
    sample: int | None,
    max_changed: int | None,
    list_limit: int,
    explain: int,
    workers: int | None,
    backend: str,
    progress: bool | None,
    policies_dir: str,
    store_path: str | None,
    config_file: str | None,
    fmt: str,
) -> None:
    """Which logged decisions a draft would change: each is decided again with its facts,
    settings, `at` and the data-set versions it used, by the draft and by the published
    revision (--against), so that only the draft's changes show. --data NAME=FILE gives the
    draft a new data set (YAML, JSON, JSON Lines or CSV). Exits 1 over --max-changed."""
    from engine.api import policy_file
    from engine.cli.batch import Progress
    from engine.service.lifecycle import since_ms

    policy_id = Path(policy).stem if policy.endswith((".yaml", ".yml")) else policy
    overrides = _data_option(data)
    if draft is None and not overrides:
        draft = str(policy_file(policy, Path(policies_dir)))
    show = sys.stderr.isatty() if progress is None else progress
    bar = Progress(None, show, noun="replayed")

    def on_progress(done: int, total: int | None) -> bool:
        bar.total = total
        bar.update(done)
        return False

    with _open(store_path, config_file, workers=workers) as lifecycle:
        result = lifecycle.impact(
            policy_id,
            draft=draft,
            against=against,
            since_ms=since_ms(since, "--since"),
            until_ms=since_ms(until, "--until"),
            file=from_file,
            data=overrides,
            sample=sample,
            max_changed=max_changed,
            list_limit=list_limit,
            explain=explain,
            backend=backend,
            on_progress=on_progress,
        )
    bar.update(result["scanned"], final=True)
    if fmt == "json":
        _echo_json(result)
    else:
        click.echo(impact_text(result))
    if result["over_limit"]:
        from engine.cli.main import Exit

        raise Exit(1)


def impact_text(result: Mapping[str, Any]) -> str:
    before, after = result["before"], result["after"]
    source = result["source"]
    where = source.get("file") or f"the decision log of {source['log']}"
    out = [
        f"{result['policy']}: {before['label']} -> {after['label']}",
        f"replayed {result['replayed']:,} decisions of {where} in {result['seconds']:.1f} s "
        f"({result['rate']:,}/s)" + (" -- CANCELLED" if result["cancelled"] else ""),
    ]
    for key, note in (
        ("changed", "the outcome differs"),
        ("rules_only", "the same outcome, by other rules"),
        ("unchanged", ""),
        ("invalid", "facts the draft's schema refuses"),
        ("failed", "could not be decided"),
    ):
        label = key.replace("_", " ")
        out.append(f"  {label:<10} {result[key]:>9,}" + (f"  ({note})" if note else ""))
    if result["not_reproduced"]:
        out.append(
            f"  NOT REPRODUCED {result['not_reproduced']:,}: the published revision decided "
            f"differently than logged (e.g. {', '.join(result['not_reproduced_ids'][:3])})"
        )
    if result["transitions"]:
        out.append("transitions:")
        for name, pairs in result["transitions"].items():
            for pair in pairs[:10]:
                out.append(f"  {name}: {pair['from']} -> {pair['to']}: {pair['count']:,}")
    rules = result["rules"]
    for key, label in (("newly_fire", "rules that newly fire"), ("stop_firing", "stop firing")):
        if rules[key]:
            listed = ", ".join(f"{rule} {n:,}" for rule, n in rules[key].items())
            out.append(f"{label}: {listed}")
    for item in result["invalid_facts"]:
        out.append(
            f"invalid: {item['pointer'] or '/'}: {item['code']}: {item['message']}: "
            f"{item['count']:,} (e.g. {', '.join(item['decisions'][:3])})"
        )
    for item in result["failures"]:
        out.append(
            f"failed ({item['side']}): {item['code']}: {item['message']}: {item['count']:,} "
            f"(e.g. {', '.join(item['decisions'][:3])})"
        )
    if result["changes"]:
        out.append(f"changed decisions (the first {len(result['changes'])}):")
        for change in result["changes"]:
            fields = ", ".join(
                f"{name} {_short(change['before'][name])} -> {_short(change['after'][name])}"
                for name in change["before"]
            )
            out.append(f"  {change['decision_id']} at {change['at']}: {fields}")
    for sample in result["samples"]:
        out.extend(_sample_lines(sample))
    if result["max_changed"] is not None:
        verdict = "OVER" if result["over_limit"] else "within"
        out.append(f"{verdict} --max-changed {result['max_changed']:,}")
    return "\n".join(out)


def _sample_lines(sample: Mapping[str, Any]) -> list[str]:
    """The rules whose verdict differs between the two sides, with why."""
    out = [f"decision {sample['decision_id']}, both explanations (rules that differ):"]
    before, after = sample.get("before", {}), sample.get("after", {})
    if "error" in before or "error" in after:
        out.append(f"  before: {before.get('error') or before.get('fired')}")
        out.append(f"  after:  {after.get('error') or after.get('fired')}")
        return out
    old = {r["rule"]: r for r in (before.get("explanation") or {}).get("rules", [])}
    new = {r["rule"]: r for r in (after.get("explanation") or {}).get("rules", [])}
    for rule in [*old, *(r for r in new if r not in old)]:
        a, b = old.get(rule), new.get(rule)
        if a is not None and b is not None and a.get("verdict") == b.get("verdict"):
            continue
        out.append(f"  {rule}: {_verdict(a)} -> {_verdict(b)}")
        for side in (a, b):
            failed = (side or {}).get("failed")
            if failed:
                loc = failed["location"]
                values = ", ".join(f"{k} = {_short(v)}" for k, v in failed["values"].items())
                out.append(
                    f"      false: {failed['condition']}  ({loc['file']}:{loc['line']})"
                    + (f" with {values}" if values else "")
                )
    return out


def _verdict(rule: Mapping[str, Any] | None) -> str:
    return "absent" if rule is None else str(rule.get("verdict"))


# -- draft, publish, approve, reject, rollback -------------------------------------------------
def _record_line(record: Any) -> str:
    return f"{record.ref} [{record.revision}] {record.state}"


@click.command()
@click.argument("policy")
@click.option("--file", "file", help="the policy file [default: policies/POLICY.yaml]")
@MESSAGE
@AS
@POLICIES
@_store_options
def draft(
    policy: str,
    file: str | None,
    message: str,
    principal: str | None,
    policies_dir: str,
    store_path: str | None,
    config_file: str | None,
) -> None:
    """Store the policy file as a draft revision (to share it: diff and impact by number)."""
    from engine.api import policy_file
    from engine.lifecycle.candidates import from_path

    path = Path(file) if file else policy_file(policy, Path(policies_dir))
    policy_id = Path(policy).stem if policy.endswith((".yaml", ".yml")) else policy
    with _open(store_path, config_file) as lifecycle:
        record = lifecycle.draft(from_path(path, policy_id), _principal(principal), message)
    click.echo(f"draft {_record_line(record)} by {record.author}")


@click.command()
@click.argument("policy")
@click.option("--draft", "draft_ref", help="submit this draft revision instead of the file")
@MESSAGE
@AS
@POLICIES
@click.option("--workers", type=click.IntRange(1, 256), help="processes for the impact replay")
@_store_options
@FORMAT
def publish(
    policy: str,
    draft_ref: str | None,
    message: str,
    principal: str | None,
    policies_dir: str,
    workers: int | None,
    store_path: str | None,
    config_file: str | None,
    fmt: str,
) -> None:
    """Submit the policy file (or --draft N) for publication: it is validated, its YAML
    tests run, the window of the log is replayed against it, and it becomes pending (or,
    when no approval is required, published at once)."""
    from engine.api import policy_file
    from engine.lifecycle.candidates import from_path

    policy_id = Path(policy).stem if policy.endswith((".yaml", ".yml")) else policy
    with _open(store_path, config_file, workers=workers) as lifecycle:
        if draft_ref is not None:
            candidate = lifecycle.resolve(policy_id, draft_ref)
        else:
            candidate = from_path(policy_file(policy, Path(policies_dir)), policy_id)
        record, publication = lifecycle.submit(candidate, _principal(principal), message)
        required = lifecycle.rules.approvals_required
    if fmt == "json":
        _echo_json(
            {
                "revision": record.to_dict(),
                "publication": publication.to_dict() if publication else None,
            }
        )
        return
    tests, effect = record.tests or {}, record.impact or {}
    click.echo(f"{_record_line(record)} by {record.author}")
    click.echo(
        f"  tests: {tests.get('passed', 0)} of {tests.get('cases', 0)} cases pass"
        + (f" ({tests['note']})" if tests.get("note") else "")
    )
    if "replayed" in effect:
        click.echo(
            f"  impact over {effect.get('window_days')} days: {effect['replayed']:,} "
            f"replayed, {effect['changed']:,} changed, {effect['invalid']:,} invalid, "
            f"{effect['failed']:,} failed"
        )
        for name, pairs in effect.get("transitions", {}).items():
            for pair in pairs:
                click.echo(f"    {name}: {pair['from']} -> {pair['to']}: {pair['count']:,}")
    else:
        click.echo(f"  impact: {effect.get('note', 'none')}")
    if publication is not None:
        click.echo(f"published as publication {publication.id} (no approval required)")
    else:
        click.echo(
            f"waiting for {required} approval: kimari approve {record.ref} (by someone else)"
        )


def _ref(ref: str) -> tuple[str, int]:
    policy, sep, number = ref.rpartition("@")
    if not sep or not number.isdigit() or not policy:
        raise UsageError(
            [Diagnostic("usage", f"a revision looks like cancellation-fees@3, not {ref!r}")]
        )
    return policy, int(number)


@click.command()
@click.argument("revision", metavar="POLICY@N")
@MESSAGE
@AS
@_store_options
def approve(
    revision: str,
    message: str,
    principal: str | None,
    store_path: str | None,
    config_file: str | None,
) -> None:
    """Approve a pending revision: it is published (by someone other than its author)."""
    policy_id, number = _ref(revision)
    with _open(store_path, config_file) as lifecycle:
        publication = lifecycle.approve(policy_id, number, _principal(principal), message)
    click.echo(
        f"published {policy_id}@{number} [{publication.revision}] as publication "
        f"{publication.id}, approved by {publication.principal}"
    )


@click.command()
@click.argument("revision", metavar="POLICY@N")
@MESSAGE
@AS
@_store_options
def reject(
    revision: str,
    message: str,
    principal: str | None,
    store_path: str | None,
    config_file: str | None,
) -> None:
    """Reject a draft or pending revision."""
    policy_id, number = _ref(revision)
    with _open(store_path, config_file) as lifecycle:
        record = lifecycle.reject(policy_id, number, _principal(principal), message)
    click.echo(f"rejected {_record_line(record)}")


@click.command()
@click.argument("policy")
@click.option("--to", "target", required=True, help="the earlier revision (number or hash)")
@MESSAGE
@AS
@_store_options
def rollback(
    policy: str,
    target: str,
    message: str,
    principal: str | None,
    store_path: str | None,
    config_file: str | None,
) -> None:
    """Publish an earlier published revision again: a new publication, history kept."""
    with _open(store_path, config_file) as lifecycle:
        publication = lifecycle.rollback(policy, target, _principal(principal), message)
    click.echo(
        f"published {policy}@{publication.number} [{publication.revision}] again as "
        f"publication {publication.id} (rollback by {publication.principal})"
    )


@click.command()
@click.argument("policy")
@_store_options
@FORMAT
def revisions(policy: str, store_path: str | None, config_file: str | None, fmt: str) -> None:
    """A policy's revisions: state, author, approver, time, message, tests and impact."""
    with _open(store_path, config_file) as lifecycle:
        listing = lifecycle.listing(policy)
    if fmt == "json":
        _echo_json(listing)
        return
    click.echo(revisions_text(listing))


def _time(ms: int | None) -> str:
    from datetime import UTC, datetime

    from engine.core.jsonvalue import JST

    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


def revisions_text(listing: Mapping[str, Any]) -> str:
    out = []
    for item in listing["revisions"]:
        tests = item.get("tests") or {}
        effect = item.get("impact") or {}
        flags = " (stale: based on an older publication)" if item["stale"] else ""
        line = (
            f"{item['ref']:<24} {item['state']:<9} {item['revision']}  {_time(item['created_at'])}"
            f"  by {item['author']}"
        )
        if item["approver"]:
            line += f", approved by {item['approver']}"
        out.append(line + flags)
        details = []
        if item["message"]:
            details.append(item["message"])
        if tests:
            details.append(f"tests {tests.get('passed', 0)}/{tests.get('cases', 0)}")
        if "replayed" in effect:
            details.append(f"impact {effect['changed']:,} of {effect['replayed']:,} changed")
        if item["publications"]:
            details.append("publications " + ", ".join(map(str, item["publications"])))
        if details:
            out.append("    " + "; ".join(details))
    if not out:
        out.append("no revisions")
    return "\n".join(out)


@click.command()
@click.argument("policy", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=30, show_default=True)
@_store_options
@FORMAT
def audit(
    policy: str | None, limit: int, store_path: str | None, config_file: str | None, fmt: str
) -> None:
    """The audit trail: who drafted, submitted, approved, rejected, rolled back what."""
    with _open(store_path, config_file) as lifecycle:
        entries = [e.to_dict() for e in lifecycle.revisions.audit(policy, limit)]
    if fmt == "json":
        _echo_json(entries)
        return
    for entry in entries:
        number = f"@{entry['number']}" if entry["number"] is not None else ""
        detail = entry["detail"]
        extra = ", ".join(f"{k}={v}" for k, v in detail.items() if v not in (None, ""))
        click.echo(
            f"{_time(entry['at'])} {entry['principal']:<12} {entry['action']:<9} "
            f"{entry['policy']}{number}  {extra}"
        )


COMMANDS = (diff, impact, draft, publish, approve, reject, rollback, revisions, audit)
