"""The service's parts on their own: configuration, frames, the decision log, `kimari log`."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from engine.cli.main import main
from engine.core.errors import UsageError
from engine.service.config import Config, digest, load_config
from engine.service.ipc import FrameReader, encode
from engine.store.decisions import DecisionLog, Entry
from tests.service.server_process import ADMIN_TOKEN, copy_project, running

# -- configuration -------------------------------------------------------------------


def test_config_layers_defaults_then_file_then_environment_then_options(tmp_path: Path) -> None:
    file = tmp_path / "kimari.toml"
    file.write_text("port = 9000\nworkers = 3\nmax_batch = 10\n", encoding="utf-8")
    config = load_config(
        file, env={"KIMARI_WORKERS": "4"}, overrides={"max_batch": 7, "host": None}
    )
    assert (config.host, config.port, config.workers, config.max_batch) == ("127.0.0.1", 9000, 4, 7)
    assert config.anonymous and not config.test_faults


def test_tokens_come_from_the_environment_or_the_file_and_keep_only_a_digest(
    tmp_path: Path,
) -> None:
    config = load_config(
        env={"KIMARI_TOKENS": "abcdefgh:decide,ijklmnop:alice:decide+admin+publish"}
    )
    assert [sorted(t.scopes) for t in config.tokens] == [
        ["decide"],
        ["admin", "decide", "publish"],
    ]
    assert config.tokens[1].digest == digest("ijklmnop")
    file = tmp_path / "kimari.toml"
    file.write_text(
        '[[tokens]]\nname = "svc"\ntoken_env = "SVC_TOKEN"\nscopes = ["decide"]\n', encoding="utf-8"
    )
    config = load_config(file, env={"SVC_TOKEN": "s3cret-token"})
    assert config.tokens[0].name == "svc" and config.tokens[0].digest == digest("s3cret-token")


def test_a_token_is_configured_with_the_roles_its_flow_events_may_claim(tmp_path: Path) -> None:
    tokens = "portal-secret:decide:販売店|オートックワン,office-secret:decide:*,x1234567:y:decide"
    env = {"KIMARI_TOKENS": tokens}
    config = load_config(env=env)
    assert [sorted(t.roles) for t in config.tokens] == [["オートックワン", "販売店"], ["*"], []]
    assert config.tokens[0].digest == digest("portal-secret")
    # secret:principal:scopes (the part before the scopes names the token's holder)
    assert config.tokens[2].digest == digest("x1234567") and config.tokens[2].principal == "y"
    # the roles survive the hand-over from the supervisor to the front
    assert Config.from_json(config.to_json()).tokens == config.tokens
    file = tmp_path / "kimari.toml"
    file.write_text(
        '[[tokens]]\nname = "portal"\ntoken = "portal-secret"\nscopes = ["decide"]\n'
        'roles = ["販売店"]\n',
        encoding="utf-8",
    )
    assert load_config(file, env={}).tokens[0].roles == frozenset({"販売店"})
    file.write_text(
        '[[tokens]]\nname = "bad"\ntoken = "portal-secret"\nscopes = ["decide"]\nroles = ["a|b"]\n',
        encoding="utf-8",
    )
    with pytest.raises(UsageError, match="roles"):
        load_config(file, env={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KIMARI_HOST": "0.0.0.0"}, "not loopback"),
        ({"KIMARI_TOKENS": "short:decide"}, "at least 8"),
        ({"KIMARI_TOKENS": "abcdefghij:root"}, "scopes"),
        ({"KIMARI_PORT": "eighty"}, "port"),
        ({"KIMARI_WORKERS": "0"}, "workers"),
        ({"KIMARI_SHUTDOWN_DRAIN": "-1"}, "shutdown_drain"),
        ({"KIMARI_COMMIT_WAIT_MS": "-1"}, "commit_wait_ms must be 0 or more"),
        ({"KIMARI_COMMIT_INLINE_BELOW_MS": "-0.5"}, "commit_inline_below_ms must be 0 or more"),
        ({"KIMARI_SHUTDOWN_TIMEOUT": "0"}, "shutdown_timeout"),
        ({"KIMARI_DATA_TIMEOUT": "0"}, "data_timeout"),
        ({"KIMARI_KEEP_ALIVE_TIMEOUT": "0"}, "keep_alive_timeout must be positive"),
        ({"KIMARI_KEEP_ALIVE_TIMEOUT": "-5"}, "keep_alive_timeout must be positive"),
        ({"KIMARI_STORE": "mysql://u@h/db"}, "unknown scheme 'mysql'"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_config(env=env)


@pytest.mark.parametrize(
    ("secret", "refused"), [("dsecret", True), ("", True), ("dsecret1", False)]
)
def test_a_short_secret_is_named_as_the_secret_of_its_token_and_never_shown(
    secret: str, refused: bool
) -> None:
    env = {"KIMARI_TOKENS": f"{secret}:svc:decide"}
    if not refused:
        assert load_config(env=env).tokens[0].principal == "svc"
        return
    with pytest.raises(UsageError) as caught:
        load_config(env=env)
    message = str(caught.value)
    assert "the secret of token 'svc' must be a text of at least 8 characters" in message
    assert not secret or secret not in message


def test_a_token_names_its_principal_and_the_older_form_gets_a_stable_one() -> None:
    entries = "abcdefgh:decide,ijklmnop:alice:decide+publish,qrstuvwx:bob:publish:reviewer"
    tokens = load_config(env={"KIMARI_TOKENS": entries}).tokens
    derived = f"token-{digest('abcdefgh').hex()[:8]}"
    assert [t.principal for t in tokens] == [derived, "alice", "bob"]
    assert tokens[2].scopes == frozenset({"publish"})  # a part after the scopes: roles (flows)
    reordered = load_config(env={"KIMARI_TOKENS": ",".join(reversed(entries.split(",")))})
    assert derived in [t.principal for t in reordered.tokens]  # not from its position
    with pytest.raises(UsageError, match="letters, digits"):
        load_config(env={"KIMARI_TOKENS": "abcdefgh:al ice:decide"})


def test_approvals_are_required_whenever_tokens_are_configured() -> None:
    assert load_config(env={}).approvals == 0
    assert load_config(env={"KIMARI_TOKENS": "abcdefgh:decide"}).approvals == 1
    assert (
        load_config(
            env={"KIMARI_APPROVALS_REQUIRED": "0", "KIMARI_TOKENS": "abcdefgh:decide"}
        ).approvals
        == 0
    )


def test_the_store_is_a_sqlite_path_or_url_or_a_postgresql_url_kept_as_written(
    tmp_path: Path,
) -> None:
    url = "postgresql://kimari@db.example:5432/kimari?sslmode=require"
    assert load_config(env={"KIMARI_STORE": url}).store == url  # not a Path: '//' kept
    assert load_config(env={}).store == "var/kimari.sqlite3"
    file = tmp_path / "kimari.toml"
    file.write_text('store = "sqlite:///var/other.sqlite3"\n', encoding="utf-8")
    config = load_config(file, env={})
    assert config.store == "sqlite:///var/other.sqlite3"
    assert Config.from_json(config.to_json()).store == config.store
    assert config.to_worker()["store"] == config.store


def test_the_stop_is_configured_by_file_or_environment(tmp_path: Path) -> None:
    file = tmp_path / "kimari.toml"
    file.write_text("shutdown_drain = 5\nshutdown_timeout = 20\n", encoding="utf-8")
    config = load_config(file, env={"KIMARI_SHUTDOWN_DRAIN": "0"})
    assert (config.shutdown_drain, config.shutdown_timeout) == (0.0, 20.0)
    assert load_config(env={}).shutdown_drain == 0.0  # `make run` stops at once on Ctrl-C
    assert load_config(env={}).to_worker()["shutdown_timeout"] == 10.0


def test_the_keep_alive_timeout_is_configured_and_reaches_the_front() -> None:
    assert load_config(env={}).keep_alive_timeout == 5.0  # uvicorn's own default
    config = load_config(env={"KIMARI_KEEP_ALIVE_TIMEOUT": "75"})
    assert Config.from_json(config.to_json()).keep_alive_timeout == 75.0  # as the front reads it


def test_a_public_address_is_allowed_with_tokens() -> None:
    config = load_config(env={"KIMARI_HOST": "0.0.0.0", "KIMARI_TOKENS": "abcdefghij:decide"})
    assert not config.loopback and not config.anonymous


# -- frames --------------------------------------------------------------------------


def test_frames_survive_being_split_and_joined_at_any_byte() -> None:
    frames = [
        encode(1, 7, {"policy": "x"}, b'{"facts": {}}'),
        encode(2, 200, None, b""),
        encode(0, 2, {"a": 1}),
    ]
    stream = b"".join(frames)
    for cut in range(len(stream)):
        reader = FrameReader()
        got = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert got == [
            (1, 7, {"policy": "x"}, b'{"facts": {}}'),
            (2, 200, None, b""),
            (0, 2, {"a": 1}, b""),
        ]


# -- the decision log ----------------------------------------------------------------


def _entry(
    decision_id: str, *, keyed: bool = False, request_hash: str | None = None, logged_at: int = 0
) -> Entry:
    return Entry(
        decision_id=decision_id,
        policy_id="np-check",
        revision="r1",
        at="2024-09-21T23:59:59+09:00",
        logged_at=logged_at or int(time.time() * 1000),
        latency_us=42,
        request_hash=request_hash,
        request='{"facts": {}}',
        outcome='{"held": true}',
        fired='["np-ng-hold-all"]',
        response=orjson.dumps({"decision_id": decision_id}),
        keyed=keyed,
    )


def test_a_group_commit_writes_all_and_tells_a_retry_from_a_reused_key(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "log.sqlite3")
    try:
        results = log.commit(
            [_entry("a"), _entry("k1", keyed=True, request_hash="h1"), _entry("b")]
        )
        assert [r.written for r in results] == [True, True, True]
        again = log.commit([_entry("k1", keyed=True, request_hash="h2"), _entry("c")])
        assert [r.written for r in again] == [False, True]
        assert again[0].existing_hash == "h1"
        assert orjson.loads(again[0].existing_response or b"") == {"decision_id": "k1"}
        assert log.count() == 4
        assert [r["decision_id"] for r in log.query(rule="np-ng-hold-all", limit=2)] == ["c", "b"]
        assert (log.commits, log.rows) == (2, 5)
    finally:
        log.close()


def test_retention_prunes_only_decisions_older_than_the_limit(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "log.sqlite3")
    try:
        log.commit([_entry(f"old{i}", logged_at=1000 + i) for i in range(7)] + [_entry("new")])
        assert log.prune(before_ms=5000, chunk=3) == 7
        assert [r["decision_id"] for r in log.query()] == ["new"]
    finally:
        log.close()


def test_kimari_log_prints_decisions_and_exits_1_for_an_unknown_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "log.sqlite3"
    log = DecisionLog(store)
    log.commit([_entry("d1"), _entry("d2")])
    log.close()
    assert main(["log", "--store", str(store), "--policy", "np-check", "--since", "1h"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and " d2 np-check@r1 " in out[0] and "fired=np-ng-hold-all" in out[0]
    assert main(["log", "--store", str(store), "--id", "d1", "--format", "json"]) == 0
    assert orjson.loads(capsys.readouterr().out)[0]["outcome"] == {"held": True}
    assert main(["log", "--store", str(store), "--id", "nope"]) == 1
    assert main(["log", "--store", str(tmp_path / "none.sqlite3")]) == 2


# -- data across restarts ------------------------------------------------------------


def test_data_replaced_through_the_api_is_served_after_a_restart(tmp_path: Path) -> None:
    policies = copy_project(tmp_path)
    entries = [{"id": "BL-7", "name": "鈴木 一郎", "phone": "03-0000-0000"}]
    with running(tmp_path, policies=policies) as server, server.client(ADMIN_TOKEN) as admin:
        version = admin.put("/v1/data/blacklist", json={"entries": entries}).json()["version"]
    with running(tmp_path, policies=policies) as server, server.client(ADMIN_TOKEN) as admin:
        body = admin.get("/v1/data/blacklist").json()
        assert (body["version"], body["source"], body["entries"]) == (version, "api", entries)
        reset = admin.delete("/v1/data/blacklist").json()  # back to the file default
        assert (reset["source"], reset["entries"][0]["id"]) == ("file", "BL-1")


def test_max_body_bytes_is_bounded_by_what_one_frame_to_a_worker_can_carry() -> None:
    """A body past the frame's limit made the front take the worker for dead: 503
    worker_crashed, retriable, the worker restarted at every retry."""
    from engine.service.config import MAX_BODY_BYTES
    from engine.service.ipc import MAX_FRAME

    assert load_config(overrides={"max_body_bytes": MAX_BODY_BYTES}, env={}).max_body_bytes
    with pytest.raises(UsageError) as caught:
        load_config(overrides={"max_body_bytes": MAX_BODY_BYTES + 1}, env={})
    [problem] = caught.value.diagnostics
    assert problem.code == "config_invalid"
    assert f"at most {MAX_BODY_BYTES:,}" in str(problem.message)
    assert f"{MAX_FRAME:,} bytes" in str(problem.message)
