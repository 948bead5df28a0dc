"""The OpenAPI document as a contract: typed from what each policy declares, named from ids.

The document is written in-process from the shipped project (as a worker writes it), and
checked against what the engine really answers: every decision of every YAML case of the
shipped decision policies must fit its policy's `<Name>Decision` schema, so a type, enum
or nullability the document claims is one the engine keeps. The live service and the
generated clients are tests/service/test_clients.py.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.core.errors import KimariError
from engine.core.jsonvalue import dumps, loads_exact
from engine.project.project import Project
from engine.project.registry import Snapshot, apply_data, compile_set
from engine.service.openapi import openapi_document
from engine.service.shapes import camel
from engine.store.versions import Store
from engine.testing.cases import decide_case, load_cases
from tests import ROOT

Check = Callable[[str, Any], list[str]]


def _snapshot(policies: Path) -> Snapshot:
    policy_set = compile_set(policies, None)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "kimari.sqlite3")
        try:
            return apply_data(
                policy_set, store.current_data(), lambda *_: None, None, 1, store.data_generation()
            )
        finally:
            store.close()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(_snapshot(ROOT / "policies"), max_batch=5, examples=ROOT / "examples")


def checker(document: dict[str, Any]) -> Check:
    """check(component, value): the errors of `value` against the named component."""
    registry = Registry().with_resource(
        "urn:kimari", Resource.from_contents(document, default_specification=DRAFT202012)
    )

    def check(component: str, value: Any) -> list[str]:
        schema = {"$ref": f"urn:kimari#/components/schemas/{component}"}
        validator = Draft202012Validator(schema, registry=registry)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(value)
        ]

    return check


@pytest.fixture(scope="module")
def check(document: dict[str, Any]) -> Check:
    return checker(document)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_answer_of_every_operation_has_a_schema(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for status, answer in operation["responses"].items():
            content = answer.get("content")
            assert content, f"{method} {path} {status} declares no content"
            for media, body in content.items():
                assert body.get("schema"), f"{method} {path} {status} {media}"
                if status.startswith(("4", "5")):
                    assert (media, body["schema"]) == (
                        "application/problem+json",
                        {"$ref": "#/components/schemas/Problem"},
                    )


def test_a_problems_errors_carry_their_json_pointers(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/Diagnostic"}
    diagnostic = document["components"]["schemas"]["Diagnostic"]
    assert diagnostic["properties"]["pointer"]["type"] == "string"


def test_every_operation_declares_its_security_and_readable_id(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    assert {"decideOrderHolds", "decideOrderHoldsBatch", "applyClaimStatusEvent"} <= set(ids)
    for path, _, operation in _operations(document):
        assert re.fullmatch(r"[a-z][A-Za-z0-9]*", operation["operationId"])
        if path in ("/healthz", "/readyz"):
            assert operation["security"] == []
        else:
            assert operation["security"] == [{"bearer": []}]


def test_the_document_names_its_servers_license_and_tags(document: dict[str, Any]) -> None:
    assert document["servers"] == [
        {"url": "/", "description": "the service that served this document"}
    ]
    assert document["info"]["license"]["name"]
    declared = {tag["name"] for tag in document["tags"]}
    used = {tag for _, _, operation in _operations(document) for tag in operation["tags"]}
    assert used == declared


def test_the_outcome_is_typed_field_by_field_from_the_policy(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    outcome = schemas["OrderHoldsOutcome"]
    assert outcome["additionalProperties"] is False
    assert outcome["properties"]["held"]["type"] == "boolean"  # no default: computed
    held = outcome["properties"]["held"]
    assert held["x-label"] == {"ja": "要対応受注", "en": "The order is held"}
    assert outcome["properties"]["np_setting_applied"]["type"] == ["integer", "null"]
    assert outcome["properties"]["effects"]["items"]["type"][0] == "string"  # the computed type
    verdict = schemas["CancellationFeesOutcome"]["properties"]["verdict"]
    assert verdict["enum"] == ["needs_review", "proposed"]  # a default: never null
    credit = schemas["CancellationFeesOutcome"]["properties"]["credit_applies"]
    assert credit["type"] == ["boolean", "null"]  # no default, and no rule may apply


def test_reasons_list_the_policys_rules_codes_and_declared_details(
    document: dict[str, Any],
) -> None:
    reason = document["components"]["schemas"]["OrderHoldsReason"]
    properties = reason["properties"]
    assert "BLACKLISTED_CUSTOMER" in properties["code"]["enum"]
    assert "blacklisted-customer" in properties["rule"]["enum"]
    assert properties["message"] == {"$ref": "#/components/schemas/Text"}
    assert properties["mail"] == {"type": "boolean"}
    assert properties["instead"] == {"$ref": "#/components/schemas/Text"}
    assert reason["required"] == ["rule", "refs", "code", "message"]


def test_a_flow_has_its_states_and_one_schema_per_event_type(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ClaimStatusState"]["enum"][0] == "not_claimed"
    event = schemas["ClaimStatusEvent"]
    assert event["discriminator"]["mapping"]["claim"] == (
        "#/components/schemas/ClaimStatusClaimEvent"
    )
    claim = schemas["ClaimStatusClaimEvent"]
    assert claim["properties"]["type"] == {"type": "string", "const": "claim"}
    assert claim["properties"]["detail"]["description"] == "詳細理由"  # a title, moved
    body = document["paths"]["/v1/flows/claim-status/{entity_id}/events"]["post"]
    assert body["requestBody"]["content"]["application/json"]["examples"]


def test_component_names_come_from_ids_and_survive_a_title_edit(
    document: dict[str, Any], tmp_path: Path
) -> None:
    names = set(document["components"]["schemas"])
    assert {"OrderHoldsDecision", "OrderHoldsFacts", "ClaimStatusMove", "BlacklistEntry"} <= names
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) for name in names), names
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    for path in (tmp_path / "schemas").glob("*.facts.schema.json"):
        retitled = re.sub(r'"title": "', '"title": "（改題）', path.read_text(encoding="utf-8"))
        path.write_text(retitled, encoding="utf-8")
    policy = tmp_path / "policies" / "order-holds.yaml"
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("en: Order holds}", "en: Held orders}", 1), encoding="utf-8")
    edited = openapi_document(_snapshot(tmp_path / "policies"), max_batch=5)
    assert set(edited["components"]["schemas"]) == names
    assert "Held orders" in json.dumps(edited)  # the edit is there: only names did not move


def test_every_shipped_example_fits_its_request_schema(
    document: dict[str, Any], check: Check
) -> None:
    seen = 0
    for path in sorted((ROOT / "examples").glob("*.json")):
        policy_id, _, rest = path.name.partition(".")
        value = loads_exact(path.read_bytes())
        events = document["paths"].get(f"/v1/flows/{policy_id}/{{entity_id}}/events")
        if events is not None:  # a flow: its event example, and any other event sent first
            content = events["post"]["requestBody"]["content"]["application/json"]
            # e.g. claim-status.exclude.json, the move before a claim (EX-2), shown first
            key = "shipped" if rest == "event.json" else rest.removesuffix(".json")
            example = content["examples"][key]["value"]
            assert example["actor"]["roles"], path.name
            assert example["event"] == value, path.name
            errors = check(f"{camel(policy_id)}EventRequest", example)
        else:
            errors = check(f"{camel(policy_id)}Request", {"facts": value})
        assert errors == [], path.name
        seen += 1
    assert seen >= 4


def test_every_decision_of_the_yaml_cases_fits_its_policys_decision_schema(
    project: Project, check: Check
) -> None:
    decided = 0
    for path in sorted((ROOT / "policies").glob("*.tests.yaml")):
        cases = load_cases(path, project)
        if not cases or cases[0].policy.kind != "decision":
            continue
        component = f"{camel(cases[0].policy.id)}Decision"
        for case in cases:
            try:
                decision = decide_case(case, project, explain=True)
            except KimariError:  # a case that expects an error
                continue
            value = loads_exact(dumps(decision.to_dict()))
            assert check(component, value) == [], f"{path.name}: {case.name}"
            decided += 1
    assert decided > 100


def test_a_schema_that_says_too_little_or_too_much_is_caught(check: Check) -> None:
    """Both sides of the check above: an undeclared outcome field and a wrong type fail."""
    good = {"held": True}
    assert any("held" in e for e in check("OrderHoldsOutcome", {**good, "held": "yes"}))
    assert any("extra" in e for e in check("OrderHoldsOutcome", {"extra": 1}))
