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
2 usage or policy errors. The text reports are in the language in effect (KIMARI_LANG,
engine/cli/main.py); the JSON ones keep their codes and keys in every language.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from engine.cli.inputs import TEXT, check_store, utf8
from engine.cli.render import echo, printable
from engine.core.errors import Diagnostic, UsageError
from engine.core.i18n import Msg, translate
from engine.core.jsonvalue import dumps, quoted, shown
from engine.core.suggest import did_you_mean

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
        callback=utf8,
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
AS = click.option(
    "--as", "principal", type=TEXT, help="who you are [default: $KIMARI_PRINCIPAL or login]"
)
MESSAGE = click.option("--message", "-m", type=TEXT, default="", help="why")
# `kimari revisions`: a page's records, as engine/lifecycle/workflow.py's LISTED, MAX_LISTED
# (not imported: the CLI starts without the engine)
LISTED, MAX_LISTED = 100, 500


def _principal(given: str | None) -> str:
    if given is None:
        return os.environ.get("KIMARI_PRINCIPAL") or getpass.getuser()
    if not given.strip():  # no one: neither the login name nor a blank author
        wrong = Msg("--as wants a name, not {value}", value=shown(given))
        raise UsageError([Diagnostic("usage", wrong)])
    return given.strip()  # ' alice' is alice: she cannot approve her own revision


def _instant(text: str | None, option: str) -> int | None:
    """--since/--until in milliseconds; a usage error naming the option (no pointer: the
    command line is no JSON document)."""
    from engine.service.lifecycle import since_ms

    try:
        return since_ms(text, option)
    except UsageError as exc:
        raise UsageError([replace(d, pointer=None) for d in exc.diagnostics]) from None


def _known(lifecycle: Any, policy: str, policies_dir: str | None = "policies") -> str:
    """The policy id of POLICY; an id with no revision in the store and no file in the
    policies folder is unknown_policy (exit 2), with the nearest known id as a hint."""
    if policies_dir is not None and policy.endswith((".yaml", ".yml")):
        from engine.lifecycle.candidates import is_file

        if not is_file(Path(policy)):  # a file named is the one meant, not the id's revisions
            problem = Msg("no policy file {path}", path=policy)
            raise UsageError([Diagnostic("unknown_policy", problem)])
        return Path(policy).stem
    known = set(lifecycle.revisions.policy_ids())
    if policies_dir is not None and Path(policies_dir).is_dir():
        from engine.project.project import policy_files

        known.update(path.stem for path in policy_files(Path(policies_dir)))
    if policy not in known:
        raise UsageError(
            [
                Diagnostic(
                    "unknown_policy",
                    Msg("no policy '{id}'", id=policy),
                    hint=did_you_mean(policy, known),
                )
            ]
        )
    return policy


def _open(
    store_path: str | None,
    config_file: str | None,
    *,
    workers: int | None = None,
    readonly: bool = False,
) -> Any:
    """The lifecycle over the store; `readonly` for a command that only reads it: the store
    opened read-only (no migration, no lock file; engine/store/backend.py)."""
    from engine.api import open_lifecycle
    from engine.service.config import load_config

    config = load_config(config_file)
    store = store_path or config.store
    check_store(store, must_exist=False)  # not there: open_lifecycle says store_missing
    if readonly:
        from engine.lifecycle.workflow import Lifecycle, Rules
        from engine.store.backend import open_backend

        backend = open_backend(store, readonly=True)  # not there: store_missing
        try:
            rules = Rules(approvals_required=config.approvals, impact_days=config.impact_days)
            return Lifecycle(backend, rules, files=True)  # type: ignore[arg-type]  # it owns it
        except BaseException:
            backend.close()
            raise
    return open_lifecycle(
        store,
        approvals_required=config.approvals,
        impact_days=config.impact_days,
        workers=workers,
    )


def _echo_json(value: Any) -> None:
    echo(dumps(value, indent=True).decode())


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else dumps(value).decode()
    return text if len(text) <= 100 else text[:97] + "..."


# -- diff -------------------------------------------------------------------------------------
@click.command()
@click.argument("policy", type=TEXT)
@click.option("--from", "old", type=TEXT, default="published", show_default=True, help="a revision")
@click.option("--to", "new", type=TEXT, help="a file or a revision [default: policies/POLICY.yaml]")
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
    with _open(store_path, config_file, readonly=True) as lifecycle:
        _known(lifecycle, policy, policies_dir)
        result = lifecycle.diff(policy_id, old, target)
    if fmt == "json":
        _echo_json(result)
    else:
        click.echo(diff_text(result))


def _side(side: Mapping[str, Any] | None) -> str:
    if side is None:
        return translate(Msg("nothing"))
    return f"{translate(side['label'])} [{side['revision']}]"


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
        out.append(translate(Msg("no change")))
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
        out.append(translate(Msg("facts schema:")))
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
        for section in ("roles", "states", "events", "transitions"):
            if section in flow:
                out.append(f"  {section}:")
                out.extend(_keyed_lines(flow[section], "    "))
    versions = changes.get("data_versions")
    if versions:
        out.append(translate(Msg("default data versions:")))
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
    needed = Msg("required") if item.get("required") else Msg("optional")
    return f"{kind}, {translate(needed)}"


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
        out.append(indent + translate(Msg("order: {rules}", rules=", ".join(order["from"]))))
        out.append(f"{indent}    -> {', '.join(order['to'])}")
    return out


# -- impact -----------------------------------------------------------------------------------
def _data_option(values: Iterable[str]) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, file = value.partition("=")
        if not sep or not name or not file:
            wrong = Msg("--data wants NAME=FILE, not {value}", value=quoted(value))
            raise UsageError([Diagnostic("usage", wrong)])
        out[name] = Path(file)
    return out


@click.command()
@click.argument("policy", type=TEXT)
@click.option("--draft", type=TEXT, help="a file or a revision [default: policies/POLICY.yaml]")
@click.option(
    "--against", type=TEXT, default="published", show_default=True, help="the revision compared"
)
@click.option(
    "--since",
    type=TEXT,
    help="replay decisions logged since (30d, 12h, a date or an RFC 3339 time)",
)
@click.option("--until", type=TEXT, help="... and before")
@click.option(
    "--from",
    "from_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="a JSON Lines file (- for standard input)",
)
@click.option(
    "--data", "data", type=TEXT, multiple=True, help="NAME=FILE: a new data set for the draft"
)
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

    policy_id = Path(policy).stem if policy.endswith((".yaml", ".yml")) else policy
    overrides = _data_option(data)
    since_at, until_at = _instant(since, "--since"), _instant(until, "--until")
    if since_at is not None and until_at is not None and since_at > until_at:
        reason = Msg("--until is before --since: the window holds no decision")
        raise UsageError([Diagnostic("usage", reason)])
    if draft is None and not overrides:
        draft = str(policy_file(policy, Path(policies_dir)))
    show = sys.stderr.isatty() if progress is None else progress
    bar = Progress(None, show, noun="replayed")

    def on_progress(done: int, total: int | None) -> bool:
        bar.total = total
        bar.update(done)
        return False

    with _open(store_path, config_file, workers=workers) as lifecycle:
        _known(lifecycle, policy, policies_dir)
        result = lifecycle.impact(
            policy_id,
            draft=draft,
            against=against,
            since_ms=since_at,
            until_ms=until_at,
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


def _default_lines(result: Mapping[str, Any]) -> list[Msg]:
    """The data sets whose default the revision changes: their decisions replayed with it."""
    return [
        Msg(
            "data set {name}: its default {was} -> {now} (decisions that were served {was} "
            "are replayed with {now})",
            name=item["name"],
            was=item["from"],
            now=item["to"],
        )
        for item in result.get("data_defaults") or []
    ]


def impact_text(result: Mapping[str, Any]) -> str:
    before, after = result["before"], result["after"]
    source = result["source"]
    where = source.get("file") or Msg("the decision log of {log}", log=source["log"])
    if where == "-":
        where = Msg("standard input")
    replayed = Msg(
        "replayed {replayed:,} decisions of {where} in {seconds:.1f} s ({rate:,}/s)",
        replayed=result["replayed"],
        where=where,
        seconds=result["seconds"],
        rate=result["rate"],
    )
    if result["cancelled"]:
        replayed = Msg("{line} -- CANCELLED", line=replayed)
    labels = f"{translate(before['label'])} -> {translate(after['label'])}"
    out = [f"{result['policy']}: {labels}", translate(replayed)]
    out += [translate(line) for line in _default_lines(result)]
    # one template a line: the words line up with the counts in each language
    for line in (
        Msg("changed    {count:>9,}  (the outcome differs)", count=result["changed"]),
        Msg(
            "rules only {count:>9,}  (the same outcome, by other rules)", count=result["rules_only"]
        ),
        _reasons_only(result),
        Msg("unchanged  {count:>9,}", count=result["unchanged"]),
        Msg("invalid    {count:>9,}  (facts the draft's schema refuses)", count=result["invalid"]),
        Msg("failed     {count:>9,}  (could not be decided)", count=result["failed"]),
    ):
        out.append("  " + translate(line))
    if result["not_reproduced"]:
        unlike = Msg(
            "NOT REPRODUCED {count:,}: the published revision decided differently than logged "
            "(e.g. {ids})",
            count=result["not_reproduced"],
            ids=", ".join(result["not_reproduced_ids"][:3]),
        )
        out.append("  " + translate(unlike))
    if result["transitions"]:
        out.append(translate(Msg("transitions:")))
        for name, pairs in result["transitions"].items():
            for pair in pairs[:10]:
                out.append(f"  {name}: {pair['from']} -> {pair['to']}: {pair['count']:,}")
    rules = result["rules"]
    if rules["newly_fire"]:
        newly = Msg("rules that newly fire: {rules}", rules=_counted(rules["newly_fire"]))
        out.append(translate(newly))
    if rules["stop_firing"]:
        out.append(translate(Msg("stop firing: {rules}", rules=_counted(rules["stop_firing"]))))
    for item in result["invalid_facts"]:
        invalid = Msg(
            "invalid: {pointer}: {code}: {message}: {count:,} (e.g. {ids})",
            pointer=item["pointer"] or "/",
            code=item["code"],
            message=item["message"],
            count=item["count"],
            ids=", ".join(item["decisions"][:3]),
        )
        out.append(translate(invalid))
    for item in result["failures"]:
        failed = Msg(
            "failed ({side}): {code}: {message}: {count:,} (e.g. {ids})",
            side=item["side"],
            code=item["code"],
            message=item["message"],
            count=item["count"],
            ids=", ".join(item["decisions"][:3]),
        )
        out.append(translate(failed))
    if result.get("reason_rules"):
        by_rule = Msg(
            "reasons that read otherwise, by rule: {rules}",
            rules=_counted(result["reason_rules"]),
        )
        out.append(translate(by_rule))
    if result["changes"]:
        heading = Msg("changed decisions (the first {count}):", count=len(result["changes"]))
        out.append(translate(heading))
        for change in result["changes"]:
            fields = ", ".join(
                f"{name} {_short(change['before'][name])} -> {_short(change['after'][name])}"
                for name in change["before"]
            )
            said = Msg(
                "{id} at {at}: {fields}", id=change["decision_id"], at=change["at"], fields=fields
            )
            out.append("  " + translate(said))
    out.extend(_reason_lines(result.get("reason_changes") or [], ""))
    if "entities" in result:
        note = Msg("a flow logs no decision: what a revision of it changes is its stored entities")
        out.append(translate(note))
        out.extend(_entity_lines(result["policy"], result["entities"], ""))
    for sample in result["samples"]:
        out.extend(_sample_lines(sample))
    if result["max_changed"] is not None:
        limit = result["max_changed"]
        verdict = (
            Msg("OVER --max-changed {limit:,}", limit=limit)
            if result["over_limit"]
            else Msg("within --max-changed {limit:,}", limit=limit)
        )
        out.append(translate(verdict))
    return "\n".join(out)


def _counted(rules: Mapping[str, int]) -> str:
    return ", ".join(f"{rule} {n:,}" for rule, n in rules.items())


def _reasons_only(result: Mapping[str, Any]) -> Msg:
    return Msg(
        "reasons only {count:>7,}  (the same outcome and rules, other reasons)",
        count=result.get("reasons_only", 0),
    )


ABSENT = "(absent)"


def _reason_lines(items: Iterable[Mapping[str, Any]], indent: str) -> list[str]:
    """Decisions whose reasons read otherwise: per decision, each reason's fields that
    differ (a message's languages apart), before -> after, the differing part in its
    context when a text is long."""
    items = list(items)
    if not items:
        return []
    heading = Msg("decisions whose reasons read otherwise (the first {count}):", count=len(items))
    out = [indent + translate(heading)]
    for item in items:
        fields = "; ".join(
            f"{change['rule']} {name}: {a} -> {b}"
            for change in item["reasons"]
            for name, a, b in _reason_fields(change.get("before"), change.get("after"))
        )
        said = Msg("{id} at {at}: {fields}", id=item["decision_id"], at=item["at"], fields=fields)
        out.append(indent + "  " + translate(said))
    return out


def _reason_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[tuple[str, str, str]]:
    """(field, before, after) of each field of a reason that differs; a text in two
    languages ({ja, en}) compared language by language."""
    a, b = before or {}, after or {}
    out = []
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key, ABSENT), b.get(key, ABSENT)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            for sub in [*x, *(k for k in y if k not in x)]:
                u, v = x.get(sub, ABSENT), y.get(sub, ABSENT)
                if dumps(u) != dumps(v):
                    out.append((f"{key}.{sub}", *_apart(u, v)))
        elif dumps(x) != dumps(y):
            out.append((key, *_apart(x, y)))
    return out


def _apart(old: Any, new: Any, context: int = 24) -> tuple[str, str]:
    """Two values as shown side by side: texts longer than a line cut down to where they
    differ, with `context` characters around it (a message changed at its end must not be
    cut off before the change)."""
    a = old if isinstance(old, str) else dumps(old).decode()
    b = new if isinstance(new, str) else dumps(new).decode()
    if len(a) <= 100 and len(b) <= 100:
        return a, b
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1

    def cut(text: str) -> str:
        lo, hi = max(0, start - context), min(len(text), len(text) - end + context)
        return ("..." if lo else "") + text[lo:hi] + ("..." if hi < len(text) else "")

    return cut(a), cut(b)


def _entity_lines(policy: str, entities: Mapping[str, Any], indent: str) -> list[str]:
    """A flow's stored entities that a revision strands or changes."""
    total = Msg("stored entities of {policy}: {count:,}", policy=policy, count=entities["total"])
    out = [indent + translate(total)]
    if entities["stranded"]:
        stranded = Msg(
            "STRANDED {count:,}: in a state the draft no longer has or makes abolished, no "
            "event can move them",
            count=entities["stranded"],
        )
        out.append(indent + "  " + translate(stranded))
        for item in entities["removed_states"]:
            line = Msg(
                "{state} (no longer a state): {count:,}", state=item["state"], count=item["count"]
            )
            out.append(indent + "    " + _with_ids(line, item["entities"]))
        for item in entities["abolished_states"]:
            line = Msg("{state} (abolished): {count:,}", state=item["state"], count=item["count"])
            out.append(indent + "    " + _with_ids(line, item["entities"]))
    if entities["events_changed"]:
        heading = Msg(
            "states whose allowed events change: {count}", count=len(entities["events_changed"])
        )
        out.append(indent + "  " + translate(heading))
        for item in entities["events_changed"]:
            line = Msg(
                "{state} ({count:,} stored): no longer allowed: {removed}; newly allowed: {added}",
                state=item["state"],
                count=item["count"],
                removed=", ".join(item["removed"]) or "-",
                added=", ".join(item["added"]) or "-",
            )
            out.append(indent + "    " + _with_ids(line, item["entities"]))
    facts = entities["facts"]
    if not facts["schema_changed"]:
        line = Msg("stored facts: not checked, the entity schema is unchanged")
        out.append(indent + "  " + translate(line))
    else:
        line = Msg(
            "stored facts the draft's entity schema refuses: {refused:,} of {checked:,} "
            "checked (of {total:,})",
            refused=facts["refused"],
            checked=facts["checked"],
            total=facts["of"],
        )
        out.append(indent + "  " + translate(line))
        for kind in facts["kinds"]:
            invalid = Msg(
                "invalid: {pointer}: {code}: {message}: {count:,} (e.g. {ids})",
                pointer=kind["pointer"] or "/",
                code=kind["code"],
                message=kind["message"],
                count=kind["count"],
                ids=", ".join(kind["entities"][:3]),
            )
            out.append(indent + "    " + translate(invalid))
    return out


def _with_ids(line: Msg, ids: list[str]) -> str:
    if not ids:
        return translate(line)
    return translate(line) + " " + translate(Msg("(e.g. {ids})", ids=", ".join(ids[:3])))


def _sample_lines(sample: Mapping[str, Any]) -> list[str]:
    """The rules whose verdict differs between the two sides, with why."""
    heading = Msg("decision {id}, both explanations (rules that differ):", id=sample["decision_id"])
    out = [translate(heading)]
    before, after = sample.get("before", {}), sample.get("after", {})
    if "error" in before or "error" in after:
        said = before.get("error") or str(before.get("fired"))
        out.append("  " + translate(Msg("before: {said}", said=said)))
        said = after.get("error") or str(after.get("fired"))
        out.append("  " + translate(Msg("after:  {said}", said=said)))
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
                where = f"{loc['file']}:{loc['line']}"
                false = (
                    Msg(
                        "false: {condition}  ({where}) with {values}",
                        condition=failed["condition"],
                        where=where,
                        values=values,
                    )
                    if values
                    else Msg(
                        "false: {condition}  ({where})", condition=failed["condition"], where=where
                    )
                )
                out.append("      " + translate(false))
    return out


def _verdict(rule: Mapping[str, Any] | None) -> str:
    if rule is None:
        return translate(Msg("absent"))
    from engine.cli.render import VERDICTS  # here: the CLI starts without the engine

    verdict = str(rule.get("verdict"))
    return translate(VERDICTS.get(verdict, verdict))


# -- draft, publish, approve, reject, rollback -------------------------------------------------
def _record_line(record: Any) -> str:
    return f"{record.ref} [{record.revision}] {record.state}"


@click.command()
@click.argument("policy", type=TEXT)
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
    author = _principal(principal)
    with _open(store_path, config_file) as lifecycle:
        if file is None:
            _known(lifecycle, policy, policies_dir)
        record = lifecycle.draft(from_path(path, policy_id), author, message)
    click.echo(
        translate(
            Msg("draft {record} by {author}", record=_record_line(record), author=record.author)
        )
    )


@click.command()
@click.argument("policy", type=TEXT)
@click.option(
    "--draft", "draft_ref", type=TEXT, help="submit this draft revision instead of the file"
)
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
    when no approval is required, published at once, unless it strands stored entities:
    then `kimari approve --acknowledge-stranded N` publishes it)."""
    from engine.api import policy_file
    from engine.lifecycle.candidates import from_path
    from engine.lifecycle.workflow import stranding

    policy_id = Path(policy).stem if policy.endswith((".yaml", ".yml")) else policy
    author = _principal(principal)
    with _open(store_path, config_file, workers=workers) as lifecycle:
        _known(lifecycle, policy, policies_dir)
        if draft_ref is not None:
            candidate = lifecycle.resolve(policy_id, draft_ref)
        else:
            candidate = from_path(policy_file(policy, Path(policies_dir)), policy_id)
        record, publication = lifecycle.submit(candidate, author, message)
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
    click.echo(
        translate(Msg("{record} by {author}", record=_record_line(record), author=record.author))
    )
    passing = Msg(
        "tests: {passed} of {cases} cases pass",
        passed=tests.get("passed", 0),
        cases=tests.get("cases", 0),
    )
    if tests.get("note"):
        passing = Msg("{line} ({note})", line=passing, note=tests["note"])
    click.echo("  " + translate(passing))
    for flow in tests.get("consulting_flows") or []:
        consulting = Msg(
            "{ref}, a published flow that consults it: {passed} of {cases} cases pass",
            ref=flow["ref"],
            passed=flow["passed"],
            cases=flow["cases"],
        )
        click.echo("    " + translate(consulting))
    if "replayed" in effect:
        replayed = Msg(
            "impact over {days} days: {replayed:,} replayed, {changed:,} changed, "
            "{invalid:,} invalid, {failed:,} failed",
            days=effect.get("window_days"),
            replayed=effect["replayed"],
            changed=effect["changed"],
            invalid=effect["invalid"],
            failed=effect["failed"],
        )
        click.echo("  " + translate(replayed))
        for line in _default_lines(effect):
            click.echo("    " + translate(line))
        for name, pairs in effect.get("transitions", {}).items():
            for pair in pairs:
                click.echo(f"    {name}: {pair['from']} -> {pair['to']}: {pair['count']:,}")
        if effect.get("reasons_only"):
            click.echo("    " + translate(_reasons_only(effect)))
            for line in _reason_lines(effect.get("reason_changes") or [], "    "):
                click.echo(line)
        if "entities" in effect:
            for line in _entity_lines(record.policy_id, effect["entities"], "  "):
                click.echo(line)
    else:
        note = effect.get("note", Msg("none"))
        click.echo("  " + translate(Msg("impact: {note}", note=note)))
    if publication is not None:
        published = Msg("published as publication {id} (no approval required)", id=publication.id)
        click.echo(translate(published))
    elif required == 0:  # held back for its stranded entities
        held = Msg(
            "not published: it strands {count} stored entities; kimari approve {ref} "
            "--acknowledge-stranded {count} publishes it",
            count=stranding(effect),
            ref=record.ref,
        )
        click.echo(translate(held))
    else:
        waiting = Msg(
            "waiting for {count} approval: kimari approve {ref} (by someone else)",
            count=required,
            ref=record.ref,
        )
        click.echo(translate(waiting))


def _ref(ref: str) -> tuple[str, int]:
    policy, sep, number = ref.rpartition("@")
    if not sep or not re.fullmatch(r"[0-9]{1,9}", number) or not policy:  # not isdigit(): '²'
        raise UsageError(
            [
                Diagnostic(
                    "usage",
                    Msg("a revision looks like cancellation-fees@3, not {ref}", ref=quoted(ref)),
                )
            ]
        )
    return policy, int(number)


ACKNOWLEDGE = click.option(
    "--acknowledge-stranded",
    "acknowledged",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="a flow revision that strands stored entities (their state removed or abolished) "
    "is published only if N is at least how many it strands now",
)


@click.command()
@click.argument("revision", metavar="POLICY@N", type=TEXT)
@MESSAGE
@AS
@ACKNOWLEDGE
@_store_options
def approve(
    revision: str,
    message: str,
    principal: str | None,
    acknowledged: int | None,
    store_path: str | None,
    config_file: str | None,
) -> None:
    """Approve a pending revision: it is published (by someone other than its author)."""
    policy_id, number = _ref(revision)
    approver = _principal(principal)
    with _open(store_path, config_file) as lifecycle:
        _known(lifecycle, policy_id, None)
        publication = lifecycle.approve(policy_id, number, approver, message, acknowledged)
    ref = f"{policy_id}@{number}"
    published = Msg(
        "published {ref} [{revision}] as publication {id}, approved by {principal}",
        ref=ref,
        revision=publication.revision,
        id=publication.id,
        principal=publication.principal,
    )
    click.echo(translate(published))


@click.command()
@click.argument("revision", metavar="POLICY@N", type=TEXT)
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
    rejecter = _principal(principal)
    with _open(store_path, config_file) as lifecycle:
        _known(lifecycle, policy_id, None)
        record = lifecycle.reject(policy_id, number, rejecter, message)
    click.echo(translate(Msg("rejected {record}", record=_record_line(record))))


@click.command()
@click.argument("policy", type=TEXT)
@click.option(
    "--to", "target", type=TEXT, required=True, help="the earlier revision (number or hash)"
)
@MESSAGE
@AS
@ACKNOWLEDGE
@_store_options
def rollback(
    policy: str,
    target: str,
    message: str,
    principal: str | None,
    acknowledged: int | None,
    store_path: str | None,
    config_file: str | None,
) -> None:
    """Publish an earlier published revision again: a new publication, history kept (a
    flow's that lacks states stored entities stand in: with --acknowledge-stranded N)."""
    who = _principal(principal)
    with _open(store_path, config_file) as lifecycle:
        _known(lifecycle, policy, None)
        publication = lifecycle.rollback(policy, target, who, message, acknowledged)
    ref = f"{policy}@{publication.number}"
    published = Msg(
        "published {ref} [{revision}] again as publication {id} (rollback by {principal})",
        ref=ref,
        revision=publication.revision,
        id=publication.id,
        principal=publication.principal,
    )
    click.echo(translate(published))


@click.command()
@click.argument("policy", type=TEXT)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LISTED),
    default=LISTED,
    show_default=True,
    help="revisions shown, newest first",
)
@click.option(
    "--before", type=click.IntRange(1), help="only those numbered below N (the next page)"
)
@_store_options
@FORMAT
def revisions(
    policy: str,
    limit: int,
    before: int | None,
    store_path: str | None,
    config_file: str | None,
    fmt: str,
) -> None:
    """A policy's revisions: state, author, approver, time, message, tests and impact."""
    with _open(store_path, config_file, readonly=True) as lifecycle:
        _known(lifecycle, policy)
        listing = lifecycle.listing(policy, limit, before)
    if fmt == "json":
        _echo_json(listing)
        return
    click.echo(revisions_text(listing, limit))


def _time(ms: int | None) -> str:
    from datetime import UTC, datetime

    from engine.core.jsonvalue import JST

    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


def revisions_text(listing: Mapping[str, Any], limit: int | None = None) -> str:
    """The page of revisions, one record a line (and its details), then what it leaves
    out: the published revision when it is older than the page, and how to see the next."""
    out = []
    for item in listing["revisions"]:
        tests = item.get("tests") or {}
        effect = item.get("impact") or {}
        line = Msg(
            "{ref} {state} {revision}  {time}  by {author}",
            ref=item["ref"].ljust(24),
            state=item["state"].ljust(9),
            revision=item["revision"],
            time=_time(item["created_at"]),
            author=printable(item["author"]),
        )
        if item["approver"]:
            approver = printable(item["approver"])
            line = Msg("{line}, approved by {approver}", line=line, approver=approver)
        if item["stale"]:
            line = Msg("{line} (stale: based on an older publication)", line=line)
        out.append(translate(line))
        details = []
        if item["message"]:
            details.append(printable(item["message"]))
        if tests:
            details.append(
                Msg(
                    "tests {passed}/{cases}",
                    passed=tests.get("passed", 0),
                    cases=tests.get("cases", 0),
                )
            )
        if "replayed" in effect:
            details.append(
                Msg(
                    "impact {changed:,} of {replayed:,} changed",
                    changed=effect["changed"],
                    replayed=effect["replayed"],
                )
            )
            if effect.get("reasons_only"):
                details.append(Msg("{count:,} with other reasons", count=effect["reasons_only"]))
            stored = effect.get("entities")
            if stored:
                details.append(
                    Msg(
                        "entities: {stranded:,} STRANDED, {events:,} in states whose allowed "
                        "events change, {facts:,} with facts refused",
                        stranded=stored["stranded"],
                        events=sum(i["count"] for i in stored["events_changed"]),
                        facts=stored["facts"]["refused"],
                    )
                )
        if item["publications"]:
            listed = ", ".join(map(str, item["publications"]))
            details.append(Msg("publications {numbers}", numbers=listed))
        if details:
            out.append("    " + "; ".join(translate(d) for d in details))
    if not out:
        out.append(translate(Msg("no revisions")))
    published = listing.get("published_revision")
    shown_numbers = {item["number"] for item in listing["revisions"]}
    if published is not None and published["number"] not in shown_numbers:
        line = Msg(
            "published: {ref} [{revision}], older than these",
            ref=published["ref"],
            revision=published["revision"],
        )
        out.append(translate(line))
    following = listing.get("next_before")
    if following is not None:
        more = f"kimari revisions {listing['policy']} --before {following}"
        if limit is not None and limit != LISTED:
            more += f" --limit {limit}"
        out.append(translate(Msg("older revisions: {command}", command=more)))
    return "\n".join(out)


@click.command()
@click.argument("policy", type=TEXT, required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=30, show_default=True)
@_store_options
@FORMAT
def audit(
    policy: str | None, limit: int, store_path: str | None, config_file: str | None, fmt: str
) -> None:
    """The audit trail: who drafted, submitted, approved, rejected, rolled back what."""
    with _open(store_path, config_file, readonly=True) as lifecycle:
        if policy is not None:
            _known(lifecycle, policy, None)
        entries = [e.to_dict() for e in lifecycle.revisions.audit(policy, limit)]
    if fmt == "json":
        _echo_json(entries)
        return
    for entry in entries:
        click.echo(audit_line(entry))


def audit_line(entry: Mapping[str, Any]) -> str:
    """One audit entry on one line: its texts' controls escaped (a message's newline would
    start what reads as another entry)."""
    number = f"@{entry['number']}" if entry["number"] is not None else ""
    extra = ", ".join(
        f"{printable(k)}={printable(v)}" for k, v in entry["detail"].items() if v not in (None, "")
    )
    principal, action = printable(entry["principal"]), printable(entry["action"])
    return (
        f"{_time(entry['at'])} {principal:<12} {action:<9} "
        f"{printable(entry['policy'])}{number}  {extra}"
    )


COMMANDS = (diff, impact, draft, publish, approve, reject, rollback, revisions, audit)
