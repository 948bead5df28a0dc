"""Decision ids stay unique across processes, forked ones included."""

from __future__ import annotations

import subprocess
import sys

from engine.runtime.decision import new_decision_id
from tests.strategies import ROOT

# Run in a fresh interpreter: forking pytest itself (threads of other tests alive) is
# unsafe, and the point is what a plain process that imported the engine does.
FORK_AND_PRINT = """
import os, sys
from engine.runtime.decision import new_decision_id
new_decision_id()  # the parent has used its counter before the fork
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    os.write(write, " ".join(new_decision_id() for _ in range(3)).encode())
    os._exit(0)
os.close(write)
os.waitpid(pid, 0)
child = os.read(read, 4096).decode().split()
print(" ".join(new_decision_id() for _ in range(3)))
print(" ".join(child))
"""


def test_a_forked_child_and_its_parent_never_hand_out_the_same_decision_id() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_AND_PRINT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    parent_line, child_line = done.stdout.strip().splitlines()
    parent, child = parent_line.split(), child_line.split()
    assert len(parent) == len(child) == 3
    assert not set(parent) & set(child)
    assert parent[0][:22] != child[0][:22]  # the child has a prefix of its own


def test_decision_ids_of_one_process_are_unique_and_sort_in_order() -> None:
    ids = [new_decision_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
