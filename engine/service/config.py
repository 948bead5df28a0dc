"""Configuration of the decision service: defaults < config file < environment < command line.

The file is TOML (`--config kimari.toml` or `KIMARI_CONFIG`), with the keys of `Config`
at the top level and tokens as a table array:

    host = "127.0.0.1"
    port = 8080
    policies = "policies"
    store = "var/kimari.sqlite3"      # or sqlite:///var/kimari.sqlite3, postgresql://…
    workers = 2

    [[tokens]]
    name = "order-service"              # the principal: the audit trail records it
    token_env = "ORDER_SERVICE_TOKEN"   # or: token = "..." (keep the file private then)
    scopes = ["decide"]
    roles = ["販売店"]                  # the roles its flow events' actors may claim

`store` is a SQLite file (a path or `sqlite:///path`, the embedded default) or a PostgreSQL
database (`postgresql://user@host:port/db`, for several replicas; engine/store/backend.py).

Each key has an environment variable `KIMARI_<KEY>` (upper case), e.g. `KIMARI_PORT=9000`;
tokens come from `KIMARI_TOKENS="secret1:alice:decide+publish,secret2:ops:decide+admin"`
(`secret:scopes` works too: its principal is then `token-` and the first 8 hex digits of the
secret's SHA-256), a last part of roles joined by '|' optional:
`secret3:dealer-7:decide:販売店|オートックワン`. Paths in the file are relative to the working
directory, like those given on the command line.

Scopes: `decide` (decisions, flows, reads), `admin` (data sets, reloads, flow imports),
`publish` (the policy lifecycle: drafts, diffs, impact, approval, rollback).

A token's `roles` are the only roles the actor of a flow event sent with it may claim
(403 `actor_role_forbidden` otherwise; engine/service/flows.py); `*` lets it claim any
role (a trusted back office), and a token without roles cannot send flow events. With no
tokens at all (a sandbox on loopback), an actor may claim any role; `by:` still applies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.errors import Diagnostic, KimariError, UsageError
from engine.core.i18n import Msg, os_reason
from engine.core.jsonvalue import quoted
from engine.service.ipc import MAX_FRAME
from engine.store.backend import DEFAULT_LOCATION, parse_location

# a quarter of a frame: the rest is room for the request's own fields and headers
MAX_BODY_BYTES = MAX_FRAME // 4

SCOPES = ("decide", "admin", "publish")
ROLE_SEPARATORS = "|:,+"
ENV_PREFIX = "KIMARI_"
PRINCIPAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class Token:
    """A bearer token; only its SHA-256 is kept, so the plain text never sits in memory dumps."""

    name: str
    digest: bytes
    scopes: frozenset[str]
    roles: frozenset[str] = frozenset()  # what its flow events' actors may claim ('*': any)

    @property
    def principal(self) -> str:
        """Who holds the token, as the audit trail records it."""
        return self.name

    @classmethod
    def of(cls, name: str, secret: str, scopes: Any, roles: Any = ()) -> Token:
        if not isinstance(secret, str) or len(secret) < 8:
            # the secret is too short, never shown: its token is named by its principal
            raise _bad(
                Msg(
                    "the secret of token '{name}' must be a text of at least 8 characters",
                    name=name,
                )
            )
        if not PRINCIPAL.fullmatch(name):
            raise _bad(
                Msg("token name {name}: letters, digits and . _ @ - (at most 64)", name=repr(name))
            )
        if isinstance(scopes, str):
            scopes = [scopes]
        unknown = sorted(set(scopes or ()) - set(SCOPES))
        if not scopes or unknown:
            raise _bad(
                Msg(
                    "token '{name}' needs scopes from {scopes} (got {given})",
                    name=name,
                    scopes=str(list(SCOPES)),
                    given=quoted(scopes),
                )
            )
        return cls(name, digest(secret), frozenset(scopes), _roles(name, roles))


def _roles(name: str, roles: Any) -> frozenset[str]:
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list | tuple) or not all(
        isinstance(r, str) and r.strip() == r and r and not set(r) & set(ROLE_SEPARATORS)
        for r in roles
    ):
        raise _bad(
            Msg(
                "token '{name}': roles are names without spaces nor {separators}",
                name=name,
                separators=ROLE_SEPARATORS,
            )
        )
    return frozenset(roles)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    policies: Path = Path("policies")
    store: str = DEFAULT_LOCATION  # a SQLite path, sqlite:///path or postgresql://…
    workers: int = 2
    tokens: tuple[Token, ...] = ()
    allow_anonymous: bool = False  # no tokens on a non-loopback address: refuse unless set
    max_body_bytes: int = 1_048_576
    max_batch: int = 100
    log_retention_days: float = 90.0  # 0 keeps every decision
    reload_interval: float = 0.5  # seconds between checks of the store (or, --watch, the files)
    watch: bool = False  # serve the policy files as saved (a sandbox), not the published ones
    approvals_required: int = -1  # approvals before publication; -1: 1 with tokens, else 0
    impact_days: float = 7.0  # the window of the log a submission replays
    impact_sample: int = 20_000  # ... at most about this many decisions of it
    request_timeout: float = 10.0  # a worker slower than this is killed; the client gets 503
    # the same for a data set's replacement or reset, which a worker checks and indexes
    # beside its decisions: a big one takes a while, the worker deciding meanwhile
    data_timeout: float = 300.0
    # seconds the front waits for the next part of a body (one shorter than its
    # Content-Length would otherwise hold the connection forever): then 408
    body_timeout: float = 2.0
    # seconds a connection may stay idle after an answer before the front closes it; keep it
    # longer than a load balancer's own idle timeout, or the balancer may send a request
    # down a connection the front is closing (docs/service.md)
    keep_alive_timeout: float = 5.0
    commit_max_rows: int = 512  # at most this many decisions share one log commit
    commit_wait_ms: float = 0.0  # extra wait for a commit group (0: the fsync itself groups)
    # a worker commits on its deciding thread while commits take less than this, else on its
    # committer thread (0: always the committer thread); docs/service.md "Group commit"
    commit_inline_below_ms: float = 2.0
    access_log: bool = False
    # SIGTERM: /readyz answers 503 this long, while requests are still served, so that a
    # load balancer stops sending; then no new connection is accepted (docs/service.md)
    shutdown_drain: float = 0.0
    # then: how long requests in flight may take to finish, and workers to commit and close
    shutdown_timeout: float = 10.0
    test_faults: bool = field(default=False, repr=False)  # KIMARI_TEST_FAULTS=1 only

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def approvals(self) -> int:
        """Approvals a revision needs: as configured, else 1 whenever tokens are set."""
        if self.approvals_required >= 0:
            return self.approvals_required
        return 0 if self.anonymous else 1

    @property
    def anonymous(self) -> bool:
        """Requests without a token get every scope: only with no tokens configured."""
        return not self.tokens

    def check(self) -> None:
        problems = []
        if self.anonymous and not self.loopback and not self.allow_anonymous:
            problems.append(
                Msg(
                    "no tokens are configured and host {host} is not loopback: set KIMARI_TOKENS "
                    "(or tokens in the config file), or allow_anonymous = true",
                    host=self.host,
                )
            )
        for key in ("workers", "max_body_bytes", "max_batch", "commit_max_rows"):
            if getattr(self, key) < 1:
                problems.append(Msg("{key} must be at least 1", key=key))
        if self.max_body_bytes > MAX_BODY_BYTES:
            # a body goes to a worker in one frame: past its limit the front took the worker
            # for dead (503 worker_crashed, retriable, on every retry)
            problems.append(
                Msg(
                    "max_body_bytes must be at most {limit:,} (a body goes to a worker in one "
                    "frame of at most {frame:,} bytes)",
                    limit=MAX_BODY_BYTES,
                    frame=MAX_FRAME,
                )
            )
        try:
            parse_location(self.store)
        except KimariError as exc:
            problems.extend(d.message for d in exc.diagnostics)
        if not 0 <= self.port <= 65535:
            problems.append(Msg("port must be 0..65535"))
        if (
            self.reload_interval <= 0
            or self.request_timeout <= 0
            or self.data_timeout <= 0
            or self.shutdown_timeout <= 0
            or self.body_timeout <= 0
            or self.keep_alive_timeout <= 0
        ):
            problems.append(
                Msg(
                    "reload_interval, request_timeout, data_timeout, shutdown_timeout, "
                    "body_timeout and keep_alive_timeout must be positive"
                )
            )
        if self.shutdown_drain < 0:
            problems.append(Msg("shutdown_drain must be 0 or more"))
        for key in ("commit_wait_ms", "commit_inline_below_ms"):
            if getattr(self, key) < 0:
                problems.append(Msg("{key} must be 0 or more", key=key))
        if self.approvals_required not in (-1, 0, 1):
            problems.append(Msg("approvals_required must be 0 or 1 (-1: 1 when tokens are set)"))
        if self.impact_days <= 0 or self.impact_sample < 1:
            problems.append(Msg("impact_days and impact_sample must be positive"))
        if problems:
            raise UsageError([Diagnostic("config_invalid", p) for p in problems])

    def to_json(self) -> str:
        """Everything, tokens as digests: how the supervisor hands the config to the front."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["policies"] = str(self.policies)
        data["tokens"] = [
            {
                "name": t.name,
                "digest": t.digest.hex(),
                "scopes": sorted(t.scopes),
                "roles": sorted(t.roles),
            }
            for t in self.tokens
        ]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Config:
        data = json.loads(text)
        data["policies"] = Path(data["policies"])
        data["tokens"] = tuple(
            Token(
                t["name"],
                bytes.fromhex(t["digest"]),
                frozenset(t["scopes"]),
                frozenset(t.get("roles", ())),
            )
            for t in data["tokens"]
        )
        return cls(**data)

    def to_worker(self) -> dict[str, Any]:
        """What a worker process needs (no tokens: workers never see them)."""
        return {
            "policies": str(self.policies),
            "store": self.store,
            "max_batch": self.max_batch,
            "reload_interval": self.reload_interval,
            "watch": self.watch,
            "approvals_required": self.approvals,
            "impact_days": self.impact_days,
            "impact_sample": self.impact_sample,
            "commit_max_rows": self.commit_max_rows,
            "commit_wait_ms": self.commit_wait_ms,
            "commit_inline_below_ms": self.commit_inline_below_ms,
            "shutdown_timeout": self.shutdown_timeout,
            "request_timeout": self.request_timeout,
            "test_faults": self.test_faults,
        }


def _bad(message: Msg) -> UsageError:
    return UsageError([Diagnostic("config_invalid", message)])


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_SETTABLE = set(_FIELDS) - {"tokens", "test_faults"}


def _coerce(key: str, value: Any) -> Any:
    kind = type(getattr(Config(), key))
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes")
            return bool(value)
        if kind is int and isinstance(value, float | bool):
            raise ValueError(value)
        if issubclass(kind, Path):
            return Path(value)
        return kind(value)
    except (TypeError, ValueError):
        raise _bad(
            Msg(
                "{key}: {value} is not a valid {kind}",
                key=key,
                value=quoted(value),
                kind=_KIND_NAMES.get(kind, kind.__name__),
            )
        ) from None


# what the settings' kinds are called for the people who write them, not in Python
_KIND_NAMES = {
    bool: Msg("true or false"),
    int: Msg("whole number"),
    float: Msg("number"),
    str: Msg("text"),
}


def _tokens_from_table(items: Any, env: Mapping[str, str]) -> list[Token]:
    if not isinstance(items, list):
        raise _bad(Msg("tokens must be an array of tables ([[tokens]])"))
    tokens = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(Msg("each [[tokens]] entry must be a table"))
        name = str(item.get("name", f"token-{i + 1}"))
        secret = item.get("token")
        if secret is None and "token_env" in item:
            secret = env.get(str(item["token_env"]))
            if not secret:
                raise _bad(
                    Msg(
                        "token '{name}': environment variable {variable} is empty",
                        name=name,
                        variable=item["token_env"],
                    )
                )
        tokens.append(Token.of(name, secret, item.get("scopes"), item.get("roles", ())))
    return tokens


def _is_scopes(text: str) -> bool:
    return bool(text) and all(s in SCOPES for s in text.split("+"))


def split_token_entry(part: str) -> tuple[str, str | None, list[str], str | None]:
    """`secret:principal:scopes`, or `secret:scopes` (the older form), each maybe followed
    by one more part (roles, for flows): (secret, principal or None, scopes, rest or None).
    The scopes are the last part made only of known scopes joined by '+', looked for from
    the end; before it comes the principal when two or more parts do."""
    parts = part.split(":")
    for index in (len(parts) - 1, len(parts) - 2):
        if index >= 1 and _is_scopes(parts[index]):
            rest = parts[index + 1] if index + 1 < len(parts) else None
            if index >= 2:
                return ":".join(parts[: index - 1]), parts[index - 1], parts[index].split("+"), rest
            return parts[0], None, parts[index].split("+"), rest
    raise _bad(
        Msg(
            "KIMARI_TOKENS entries look like 'secret:alice:decide+publish', 'secret:decide' or "
            "'secret:dealer-7:decide:販売店|オートックワン' (scopes: {scopes})",
            scopes=", ".join(SCOPES),
        )
    )


def tokens_from_env(text: str) -> list[Token]:
    """`secret:principal:scope[+scope][:role[|role]],...` (or `secret:scope[+scope]...`: the
    principal is then named after the secret's digest, stable however the list is
    reordered). The scopes are the last part that names only scopes, the roles what
    follows it."""
    tokens = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        secret, principal, scopes, rest = split_token_entry(part)
        name = principal or f"token-{digest(secret).hex()[:8]}"
        roles = rest.split("|") if rest else []
        tokens.append(Token.of(name, secret, scopes, roles))
    return tokens


def load_config(
    file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Merge the layers; UsageError (exit 2) names the key that is wrong."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    tokens: list[Token] = []
    file = file or env.get(ENV_PREFIX + "CONFIG")
    if file:
        try:
            data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise _bad(
                Msg("cannot read config file {file}: {reason}", file=file, reason=os_reason(exc))
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise _bad(Msg("config file {file}: {reason}", file=file, reason=str(exc))) from None
        for key, value in data.items():
            if key == "tokens":
                tokens = _tokens_from_table(value, env)
            elif key in _SETTABLE:
                values[key] = _coerce(key, value)
            else:
                raise _bad(Msg("config file {file}: unknown key '{key}'", file=file, key=key))
    for key in _SETTABLE:
        raw = env.get(ENV_PREFIX + key.upper())
        if raw not in (None, ""):
            values[key] = _coerce(key, raw)
    if env.get(ENV_PREFIX + "TOKENS"):
        tokens = tokens_from_env(env[ENV_PREFIX + "TOKENS"])
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value)
    faults = env.get(ENV_PREFIX + "TEST_FAULTS", "") == "1"
    config = Config(**values, tokens=tuple(tokens), test_faults=faults)
    config.check()
    return config
