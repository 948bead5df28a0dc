"""What a client gets from the LIVE /openapi.json, with tools nobody on the project wrote.

One service runs the shipped policies. Its document is fetched over HTTP, then:

- redocly lints it with the recommended rules: no error, no warning;
- openapi-python-client generates a Python client, which posts the shipped example of every
  decision policy and an event of every flow, and reads typed fields
  (`decision.outcome.held`, `reason.code` as the policy's enum);
- openapi-typescript generates TypeScript types; a program written against them posts the
  same decisions and reads the same fields, and must pass `tsc --strict`, then run under
  node; a program with a wrong field access or a wrong type must fail `tsc`.

Every raw answer is also checked against the schema its operation declares.
The generators are pinned: openapi-python-client in the dev extras, the npm tools in
tools/contracts/package-lock.json (installed by `make test` with `npm ci`). None of them
reaches the network here: they read files written by this test.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.core.jsonvalue import loads_exact
from engine.service.shapes import camel
from tests import ROOT
from tests.service.server_process import DECIDE_TOKEN, Server, running
from tests.service.test_openapi import checker

TOOLS = ROOT / "tools" / "contracts"
NODE_BIN = TOOLS / "node_modules" / ".bin"
AT = "2024-05-01T10:00:00+09:00"
PACKAGE = "kimari_client"
QUIET_NODE = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}


def _tool(name: str) -> Path:
    path = NODE_BIN / name
    # not a skip: `make test` installs the tools (npm ci in tools/contracts) before pytest
    assert path.exists(), f"{path} is missing: run `make test` (or `make contracts`)"
    return path


def _run(args: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **QUIET_NODE, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("clients")
    with running(tmp, policies=ROOT / "policies") as srv:
        yield srv


@pytest.fixture(scope="module")
def live(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The live document, as a file and as JSON."""
    answer = httpx.get(f"{server.url}/openapi.json", headers=_auth(), timeout=30)
    assert answer.status_code == 200
    path = tmp_path_factory.mktemp("document") / "openapi.json"
    path.write_bytes(answer.content)
    return path, answer.json()


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {DECIDE_TOKEN}"}


def _policies(document: dict[str, Any], kind: str) -> list[str]:
    """The ids of the policies of a kind the document has paths for."""
    prefix = "/v1/decisions/" if kind == "decision" else "/v1/flows/"
    found = {
        path[len(prefix) :].split("/")[0]
        for path in document["paths"]
        if path.startswith(prefix) and "{" not in path.split("/")[3]
    }
    return sorted(p for p in found if not p.endswith(":batch"))


def _example(name: str) -> Any:
    path = ROOT / "examples" / name
    assert path.exists(), f"every shipped policy needs an example: {path} is missing"
    return loads_exact(path.read_bytes())


def _answer_schema(document: dict[str, Any], path: str, method: str) -> str:
    responses = document["paths"][path][method]["responses"]
    success = next(s for s in responses if s.startswith("2"))
    schema = responses[success]["content"]["application/json"]["schema"]
    return str(schema["$ref"]).rsplit("/", 1)[1]


# -- redocly ------------------------------------------------------------------------------
def test_redocly_finds_nothing_to_say_under_its_recommended_rules(
    live: tuple[Path, dict[str, Any]],
) -> None:
    path, _ = live
    result = _run(
        [_tool("redocly"), "lint", "--config", TOOLS / "redocly.yaml", "--format", "json", path],
        TOOLS,
    )
    report = json.loads(result.stdout)
    problems = [f"{p['ruleId']}: {p['message']}" for p in report["problems"]]
    assert problems == [] and result.returncode == 0, problems or result.stderr


# -- Python -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client_module(
    live: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    path, _ = live
    out = tmp_path_factory.mktemp("python")
    config = out / "config.json"
    config.write_text(
        json.dumps({"package_name_override": PACKAGE, "post_hooks": []}), encoding="utf-8"
    )
    generator = Path(sys.executable).parent / "openapi-python-client"
    where = ["--path", path, "--output-path", out / PACKAGE, "--meta", "none"]
    result = _run([generator, "generate", *where, "--config", config], out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # every schema became a class
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _operation(package: Any, tag: str, operation_id: str) -> Any:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation_id)
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{snake}")


def test_the_python_client_decides_with_every_decision_policy_and_reads_typed_fields(
    server: Server, live: tuple[Path, dict[str, Any]], client_module: Any
) -> None:
    _, document = live
    models = importlib.import_module(f"{PACKAGE}.models")
    with client_module.AuthenticatedClient(base_url=server.url, token=DECIDE_TOKEN) as client:
        decided = _decide_each(document, client_module, client)
    held = decided["order-holds"]
    assert held.outcome.held is True  # a bool, not a dict entry
    assert held.reasons[0].code is models.OrderHoldsReasonCode.BLACKLISTED_CUSTOMER
    assert held.reasons[0].instead.ja  # a declared detail, typed as a text
    with client_module.AuthenticatedClient(base_url=server.url, token=DECIDE_TOKEN) as client:
        logged = _operation(client_module, "decisions", "getDecision").sync(
            client=client, decision_id=held.decision_id
        )
    assert isinstance(logged, models.LoggedDecision) and logged.explanation.rules


def _decide_each(document: dict[str, Any], client_module: Any, client: Any) -> dict[str, Any]:
    check = checker(document)
    models = importlib.import_module(f"{PACKAGE}.models")
    decided = {}
    for policy_id in _policies(document, "decision"):
        name = camel(policy_id)
        request = getattr(models, f"{name}Request").from_dict(
            {"facts": _example(f"{policy_id}.json"), "at": AT}
        )
        decide = _operation(client_module, "decisions", f"decide{name}")
        answer = decide.sync_detailed(client=client, body=request)
        assert answer.status_code == 200, answer.content
        assert check(f"{name}Decision", json.loads(answer.content)) == []
        decision = answer.parsed
        assert type(decision).__name__ == f"{name}Decision"
        declared = document["components"]["schemas"][f"{name}Outcome"]["properties"]
        for field, schema in declared.items():  # each declared field is a typed attribute
            value = getattr(decision.outcome, field)
            assert schema.get("type") != "boolean" or isinstance(value, bool), field
        assert decision.outcome.to_dict() == json.loads(answer.content)["outcome"]
        codes = getattr(models, f"{name}ReasonCode")
        for reason in decision.reasons:
            assert isinstance(reason.code, codes)  # an enum of the policy's codes
            assert reason.message.ja
        decided[policy_id] = decision
    assert set(decided) == {"cancellation-fees", "exemption-claims", "order-holds"}
    return decided


def test_the_python_client_moves_an_entity_of_every_flow_and_reads_its_state(
    server: Server, live: tuple[Path, dict[str, Any]], client_module: Any
) -> None:
    _, document = live
    check = checker(document)
    models = importlib.import_module(f"{PACKAGE}.models")
    flows = _policies(document, "flow")
    assert flows == [
        "blacklist-membership",
        "case-cancellation",
        "claim-status",
        "lead-follow-up",
        "order-hold-status",
        "subscription-hold-status",
    ]
    with client_module.AuthenticatedClient(base_url=server.url, token=DECIDE_TOKEN) as client:
        for policy_id in flows:
            _move_one(policy_id, document, check, models, client_module, client)


def _move_one(
    policy_id: str,
    document: dict[str, Any],
    check: Any,
    models: Any,
    client_module: Any,
    client: Any,
) -> None:
    """Apply the document's example events, in the order shown, to a new entity (the
    shipped one last: claim-status' exclusion comes first, EX-2); read it back, typed."""
    name = camel(policy_id)
    event = _example(f"{policy_id}.event.json")
    operation = document["paths"][f"/v1/flows/{policy_id}/{{entity_id}}/events"]["post"]
    *first, shipped = operation["requestBody"]["content"]["application/json"]["examples"].items()
    assert shipped[0] == "shipped"
    actor = shipped[1]["value"]["actor"]  # one who may send it (the flow's `by:`)
    assert shipped[1]["value"]["event"] == event
    apply = _operation(client_module, "flows", f"apply{name}Event")
    before: list[str] = []
    for _, example in first:
        body = {**example["value"], "at": AT}
        request = getattr(models, f"{name}EventRequest").from_dict(body)
        answer = apply.sync_detailed(client=client, entity_id="CL-1", body=request)
        assert answer.status_code == 200, answer.content
        before.append(answer.parsed.transition.id.value)
    assert len(first) == (policy_id == "claim-status")
    body = {"event": event, "actor": actor, "at": AT}
    request = getattr(models, f"{name}EventRequest").from_dict(body)
    assert type(request.event).__name__ == f"{name}{camel(event['type'])}Event"
    answer = apply.sync_detailed(client=client, entity_id="CL-1", body=request)
    assert answer.status_code == 200, answer.content
    assert check(f"{name}Move", json.loads(answer.content)) == []
    move = answer.parsed
    assert isinstance(move.state.after.id, getattr(models, f"{name}State"))
    entity = _operation(client_module, "flows", f"get{name}Entity").sync_detailed(
        client=client, entity_id="CL-1"
    )
    assert check(f"{name}Entity", json.loads(entity.content)) == []
    assert entity.parsed.state.id == move.state.after.id
    # the stored facts are typed by the flow's facts schema, not an open object
    assert type(entity.parsed.facts).__name__ == f"{name}Facts"
    assert type(move.facts).__name__ == f"{name}Facts"
    if policy_id == "claim-status":  # the claim recorded who claimed and how often
        assert entity.parsed.facts.claimed_by == actor["id"]
        assert entity.parsed.facts.claims == 1
    history = _operation(client_module, "flows", f"get{name}History").sync_detailed(
        client=client, entity_id="CL-1", refusals=True
    )
    assert check(f"{name}History", json.loads(history.content)) == []
    assert [m.transition for m in history.parsed.moves] == [*before, move.transition.id.value]


def test_every_other_read_answers_what_its_schema_declares(
    server: Server, live: tuple[Path, dict[str, Any]], client_module: Any
) -> None:
    _, document = live
    check = checker(document)
    paths = ["/healthz", "/readyz", "/v1/policies", "/v1/policies/order-holds"]
    paths += [p for p in document["paths"] if p.startswith("/v1/data/")]
    with server.client() as http:
        for path in paths:
            template = path if path in document["paths"] else "/v1/policies/{policy_id}"
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert check(_answer_schema(document, template, "get"), answer.json()) == [], path
        problem = http.get("/v1/policies/no-such-policy")
        assert check("Problem", problem.json()) == []
    with client_module.Client(base_url=server.url) as anonymous:
        health = _operation(client_module, "service", "healthz").sync(client=anonymous)
    assert health.status.value == "ok"


# -- TypeScript ---------------------------------------------------------------------------
TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "target": "es2022",
        "module": "commonjs",
        "lib": ["es2022", "dom"],
        "outDir": "out",
        "noEmitOnError": True,
        "types": [],
    },
    "files": ["check.ts"],
}
TS_HEAD = """import type { components } from "./kimari";
type Schemas = components["schemas"];
declare const process: {
  env: Record<string, string | undefined>;
  stdout: { write(text: string): void };
  exitCode?: number;
};

async function post<T>(path: string, body: unknown): Promise<T> {
  const answer = await fetch(`${process.env.KIMARI_URL}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${process.env.KIMARI_TOKEN}`,
    },
    body: JSON.stringify(body),
  });
  if (answer.status !== 200) throw new Error(`${path}: ${answer.status} ${await answer.text()}`);
  return (await answer.json()) as T;
}
"""


def _ts_type(schema: dict[str, Any]) -> str:
    """The TypeScript type a field of this schema must be assignable to."""
    if "anyOf" in schema:
        return " | ".join(_ts_type(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return f'Schemas["{schema["$ref"].rsplit("/", 1)[1]}"]'
    kinds = schema.get("type", [])
    names = {"boolean": "boolean", "integer": "number", "number": "number", "string": "string"}
    names |= {"null": "null", "array": "unknown[]", "object": "object"}
    return " | ".join(names[k] for k in ([kinds] if isinstance(kinds, str) else kinds))


def _ts_program(document: dict[str, Any]) -> str:
    """check.ts: for each decision policy, post its example as the typed request, assign
    every outcome field to the type its schema declares, collect the reason codes."""
    blocks = []
    for policy_id in _policies(document, "decision"):
        name = camel(policy_id)
        facts = json.dumps(_example(f"{policy_id}.json"), ensure_ascii=False)
        fields = document["components"]["schemas"][f"{name}Outcome"]["properties"]
        reads = "\n".join(
            f"    const f{i}: {_ts_type(schema)} = decision.outcome.{field};\n"
            f'    outcome["{field}"] = f{i};'
            for i, (field, schema) in enumerate(fields.items())
        )
        blocks.append(
            f"""  {{
    const request: Schemas["{name}Request"] = {{ facts: {facts}, at: "{AT}" }};
    const decision = await post<Schemas["{name}Decision"]>("/v1/decisions/{policy_id}", request);
    const outcome: Record<string, unknown> = {{}};
{reads}
    const codes: Schemas["{name}Reason"]["code"][] = decision.reasons.map((r) => r.code);
    seen["{policy_id}"] = {{ outcome, codes }};
  }}"""
        )
    body = "\n".join(blocks)
    return f"""{TS_HEAD}
async function main(): Promise<void> {{
  const seen: Record<string, unknown> = {{}};
{body}
  process.stdout.write(JSON.stringify(seen));
}}

main().catch((error: unknown) => {{
  console.error(error);
  process.exitCode = 1;
}});
"""


WRONG = """import type { components } from "./kimari";
declare const decision: components["schemas"]["OrderHoldsDecision"];
export const held: number = decision.outcome.held;
export const typo = decision.outcome.hled;
export const code = decision.reasons[0].cod;
export const unknownCode: components["schemas"]["OrderHoldsReason"]["code"] = "NO_SUCH_CODE";
"""


@pytest.fixture(scope="module")
def typescript(live: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = live
    out = tmp_path_factory.mktemp("typescript")
    result = _run([_tool("openapi-typescript"), path, "--output", out / "kimari.d.ts"], out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_typescript_typed_from_the_document_decides_with_every_decision_policy(
    server: Server, live: tuple[Path, dict[str, Any]], typescript: Path
) -> None:
    _, document = live
    (typescript / "check.ts").write_text(_ts_program(document), encoding="utf-8")
    (typescript / "tsconfig.json").write_text(json.dumps(TSCONFIG), encoding="utf-8")
    compiled = _run([_tool("tsc"), "--project", typescript / "tsconfig.json"], typescript)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    ran = _run(
        ["node", typescript / "out" / "check.js"],
        typescript,
        KIMARI_URL=server.url,
        KIMARI_TOKEN=DECIDE_TOKEN,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert set(seen) == set(_policies(document, "decision"))
    assert seen["order-holds"]["outcome"]["held"] is True
    assert seen["order-holds"]["codes"] == ["BLACKLISTED_CUSTOMER"]


def test_a_wrong_field_or_type_fails_tsc(typescript: Path) -> None:
    (typescript / "wrong.ts").write_text(WRONG, encoding="utf-8")
    options = ["--strict", "--noEmit", "--target", "es2022"]
    result = _run([_tool("tsc"), *options, typescript / "wrong.ts"], typescript)
    assert result.returncode != 0
    found = re.findall(r"wrong\.ts\((\d+),\d+\): error (TS\d+)", result.stdout)
    no_such_property = {"TS2339", "TS2551"}  # the second adds "did you mean"
    errors = {(line, "no such property" if c in no_such_property else c) for line, c in found}
    # line 3: boolean is not a number; 4, 5: no such field; 6: not one of the codes
    assert errors == {
        ("3", "TS2322"),
        ("4", "no such property"),
        ("5", "no such property"),
        ("6", "TS2322"),
    }, result.stdout
