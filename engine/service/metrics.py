"""Prometheus metrics of the front process, rendered as text format 0.0.4.

Counted where every request passes (the front), so a worker crash loses nothing:

    kimari_decisions_total{policy, outcome}         decisions made and logged (outcome: the policy's
                                                    first boolean/enum outcome field = value)
    kimari_decision_seconds{policy}                 latency histogram, request to response
    kimari_http_errors_total{status, code}          every 4xx/5xx answered, by problem code
    kimari_policy_reloads_total{policy, result}     loaded / refused / removed revisions
    kimari_policy_info{policy,revision,status,worker} 1 per policy and worker
    kimari_worker_restarts_total                    workers replaced after dying
    kimari_worker_info{worker, pid}                 1 per live worker: its process id
    kimari_workers_ready                            workers ready now
    kimari_log_commit_rows                          group-commit sizes (from the workers)
    kimari_log_commit_cpu_seconds_total             CPU the workers spent committing the log
                                                    and sending the answers after each commit
    kimari_log_inline_commits_total                 commits made on the deciding thread
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[Any]) -> str:
    if not names:
        return ""
    return (
        "{" + ",".join(f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)) + "}"
    )


class Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def lines(self, name: str, labels: str) -> Iterable[str]:
        inner = labels[1:-1] + "," if labels else ""
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            cumulative += count
            yield f'{name}_bucket{{{inner}le="{bound}"}} {cumulative}'
        cumulative += self.counts[-1]
        yield f'{name}_bucket{{{inner}le="+Inf"}} {cumulative}'
        yield f"{name}_sum{labels} {self.total:.6f}"
        yield f"{name}_count{labels} {cumulative}"


class Metrics:
    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.errors: dict[tuple[int, str], int] = defaultdict(int)
        self.reloads: dict[tuple[str, str], int] = defaultdict(int)
        self.restarts = 0

    def decided(self, policy: str, outcome: str, seconds: float) -> None:
        self.decisions[(policy, outcome)] += 1
        histogram = self.latency.get(policy)
        if histogram is None:
            histogram = self.latency[policy] = Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def error(self, status: int, code: str) -> None:
        self.errors[(status, code)] += 1

    def reloaded(self, policy: str, result: str) -> None:
        self.reloads[(policy, result)] += 1

    def render(self, workers: Sequence[dict[str, Any]], ready: int) -> bytes:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family(
            "kimari_decisions_total",
            "counter",
            "Decisions made and logged (replays not counted), by policy and outcome.",
        )
        for (policy, outcome), n in sorted(self.decisions.items()):
            out.append(
                f"kimari_decisions_total{_labels(('policy', 'outcome'), (policy, outcome))} {n}"
            )
        family("kimari_decision_seconds", "histogram", "Decision latency from request to response.")
        for policy, histogram in sorted(self.latency.items()):
            out.extend(histogram.lines("kimari_decision_seconds", _labels(("policy",), (policy,))))
        family(
            "kimari_http_errors_total", "counter", "Error responses, by status and problem code."
        )
        for (status, code), n in sorted(self.errors.items()):
            out.append(f"kimari_http_errors_total{_labels(('status', 'code'), (status, code))} {n}")
        family(
            "kimari_policy_reloads_total", "counter", "Policy revisions loaded, refused or removed."
        )
        for (policy, result), n in sorted(self.reloads.items()):
            out.append(
                f"kimari_policy_reloads_total{_labels(('policy', 'result'), (policy, result))} {n}"
            )
        family("kimari_policy_info", "gauge", "Revision and status per policy and worker.")
        names = ("policy", "revision", "status", "worker")
        for worker in sorted(workers, key=lambda w: w["slot"]):
            for policy, info in sorted(worker.get("policies", {}).items()):
                values = (policy, info["revision"] or "", info["state"], worker["slot"])
                out.append(f"kimari_policy_info{_labels(names, values)} 1")
        family("kimari_worker_info", "gauge", "The process id of each live engine worker.")
        for worker in sorted(workers, key=lambda w: w["slot"]):
            out.append(
                f"kimari_worker_info{_labels(('worker', 'pid'), (worker['slot'], worker['pid']))} 1"
            )
        family("kimari_worker_restarts_total", "counter", "Engine workers replaced after dying.")
        out.append(f"kimari_worker_restarts_total {self.restarts}")
        family("kimari_workers_ready", "gauge", "Engine workers ready to decide.")
        out.append(f"kimari_workers_ready {ready}")
        family(
            "kimari_log_commit_rows",
            "histogram",
            "Decisions per decision-log commit (live workers).",
        )
        if workers:
            buckets = workers[0]["batch_buckets"]
            counts = [sum(w["batch_counts"][i] for w in workers) for i in range(len(buckets) + 1)]
            cumulative = 0
            for bound, count in zip(buckets, counts, strict=False):
                cumulative += count
                out.append(f'kimari_log_commit_rows_bucket{{le="{bound}"}} {cumulative}')
            cumulative += counts[-1]
            out.append(f'kimari_log_commit_rows_bucket{{le="+Inf"}} {cumulative}')
            out.append(f"kimari_log_commit_rows_sum {sum(w['rows'] for w in workers)}")
            out.append(f"kimari_log_commit_rows_count {cumulative}")
        family(
            "kimari_log_commit_failures_total", "counter", "Log commits that failed (live workers)."
        )
        out.append(f"kimari_log_commit_failures_total {sum(w['commit_failures'] for w in workers)}")
        family(
            "kimari_log_commit_cpu_seconds_total",
            "counter",
            "CPU seconds of the log's group commits and of the answers sent after them "
            "(live workers).",
        )
        cpu = sum(w["commit_cpu_s"] for w in workers)
        out.append(f"kimari_log_commit_cpu_seconds_total {cpu:.6f}")
        family(
            "kimari_log_inline_commits_total",
            "counter",
            "Log commits made on a worker's deciding thread, commits being quick (live workers).",
        )
        out.append(f"kimari_log_inline_commits_total {sum(w['commits_inline'] for w in workers)}")
        return ("\n".join(out) + "\n").encode()
