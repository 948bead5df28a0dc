"""Documents parsed once per process by name and content (engine/source/yaml.py): a caller
never sees another's changes, an edit is parsed again, a broken file is reported every
time, and the memory kept is bounded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.core.errors import PolicyError
from engine.source import yaml as yaml_module
from engine.source.yaml import forget_parsed, parse_yaml

TEXT = "id: routing\nrules:\n  - id: cod\n    when: order.total > 10\n    refs: [TS-1]\n"


@pytest.fixture(autouse=True)
def nothing_parsed() -> Iterator[None]:
    forget_parsed()
    yield
    forget_parsed()


def test_the_same_bytes_parse_once_and_each_caller_gets_its_own_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    original = yaml_module._parse
    monkeypatch.setattr(yaml_module, "_parse", lambda b, f: calls.append(f) or original(b, f))
    first = parse_yaml(TEXT, "policies/routing.yaml")
    first.data["rules"][0]["when"] = "changed by a caller"
    first.data["extra"] = [1]
    second = parse_yaml(TEXT, "policies/routing.yaml")
    assert calls == ["policies/routing.yaml"]
    assert second.data == {
        "id": "routing",
        "rules": [{"id": "cod", "when": "order.total > 10", "refs": ["TS-1"]}],
    }
    assert second.data is not first.data
    assert second.revision == first.revision
    assert second.positions.value("/rules/0/when").line == 4


def test_an_edit_or_another_name_is_parsed_again() -> None:
    before = parse_yaml(TEXT, "policies/routing.yaml")
    edited = parse_yaml(TEXT.replace("> 10", "> 20"), "policies/routing.yaml")
    assert edited.data["rules"][0]["when"] == "order.total > 20"
    assert edited.revision != before.revision
    elsewhere = parse_yaml(TEXT, "drafts/routing.yaml")
    assert elsewhere.positions.value("/id").file == "drafts/routing.yaml"


def test_a_broken_file_is_reported_each_time_it_is_read() -> None:
    for _ in range(2):
        with pytest.raises(PolicyError) as caught:
            parse_yaml("id: [unclosed\n", "policies/broken.yaml")
        assert caught.value.diagnostics[0].code == "yaml_syntax"


def test_the_source_kept_is_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_module, "_PARSED_BYTES", 3 * len(TEXT.encode()))
    for i in range(5):
        parse_yaml(TEXT + f"# {i}\n", f"policies/p{i}.yaml")
    kept = sorted(file for file, _digest in yaml_module._PARSED)
    assert kept == ["policies/p3.yaml", "policies/p4.yaml"]
    assert yaml_module._parsed_size <= 3 * len(TEXT.encode())


def test_the_documents_kept_are_counted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_module, "_PARSED_COUNT", 2)
    for i in range(4):
        parse_yaml(f"n: {i}\n", f"policies/n{i}.yaml")
    kept = sorted(file for file, _digest in yaml_module._PARSED)
    assert kept == ["policies/n2.yaml", "policies/n3.yaml"]
