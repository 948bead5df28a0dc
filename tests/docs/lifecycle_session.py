"""Run the console sessions of docs/lifecycle.md for real, and write their output into it.

    .venv/bin/python -m tests.docs.lifecycle_session --write

Each block marked `<!-- session -->` holds commands (`$ ...`) and their output. The
commands of every block run in order in ONE bash process (shell state carries over), in a
copy of policies/ and schemas/, against a `kimari serve` started there with the
principals the document names; `localhost:8080` becomes the port it got. `--write`
replaces each block's output with what the commands printed (and `[exit N]` after a
command that failed); tests/docs/test_lifecycle_doc.py runs the same and checks that each
command still exits as the document says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests import ROOT
from tests.service.server_process import Server

DOC = ROOT / "docs" / "lifecycle.md"
BLOCK = re.compile(r"(<!-- session -->\n```console\n)(.*?)(```)", re.S)
EXIT = re.compile(r"^\[exit (\d+)\]$")
PRINCIPALS = {"SVC": "svc-secret-0001", "ALICE": "alice-secret-01", "BOB": "bob-secret-0001"}
TOKENS = "{SVC}:svc:decide,{ALICE}:alice:decide+publish,{BOB}:bob:decide+publish".format(
    **PRINCIPALS
)


@dataclass
class Step:
    command: str
    output: str = ""
    code: int = 0


def read_blocks(text: str) -> list[list[Step]]:
    """The steps of each session block, with the output and exit code the text records."""
    blocks = []
    for match in BLOCK.finditer(text):
        steps: list[Step] = []
        for line in match.group(2).splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            elif steps and (found := EXIT.match(line)):
                steps[-1].code = int(found.group(1))
            elif steps:
                steps[-1].output += line + "\n"
        blocks.append(steps)
    return blocks


def run(blocks: list[list[Step]], workdir: Path) -> list[list[Step]]:
    """Run every command in order; the steps with what they printed and their exit codes."""
    shutil.copytree(ROOT / "policies", workdir / "policies")
    shutil.copytree(ROOT / "schemas", workdir / "schemas")
    server = Server(
        workdir / "policies",
        workdir / "var" / "kimari.sqlite3",
        workers=2,
        env={"KIMARI_TOKENS": TOKENS},
    )
    server.start()
    port = server.url.rsplit(":", 1)[1]
    try:
        flat = [step for block in blocks for step in block]
        script = []
        for index, step in enumerate(flat):
            command = step.command.replace("localhost:8080", f"localhost:{port}")
            script.append(f"echo '@@@ {index}'\n{command} 2>&1\necho \"@@@ rc $?\"")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIMARI_")}
        env.update(PRINCIPALS)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    outputs = re.split(r"^@@@ (\d+)\n", done.stdout, flags=re.M)[1:]
    results = [[Step(step.command) for step in block] for block in blocks]
    found = [step for block in results for step in block]
    for index_text, body in zip(outputs[::2], outputs[1::2], strict=True):
        step = found[int(index_text)]
        text, _, code = body.rpartition("@@@ rc ")
        step.code = int(code.strip())
        step.output = text.replace(f"localhost:{port}", "localhost:8080").replace(f"{workdir}/", "")
    return results


def render(text: str, results: list[list[Step]]) -> str:
    blocks = iter(results)

    def fill(match: re.Match[str]) -> str:
        lines = []
        for step in next(blocks):
            lines.append(f"$ {step.command}\n")
            lines.append(step.output)
            if step.code:
                lines.append(f"[exit {step.code}]\n")
        return match.group(1) + "".join(lines) + match.group(3)

    return BLOCK.sub(fill, text)


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="kimari-doc-") as tmp:
        results = run(read_blocks(text), Path(tmp))
    if "--write" in argv:
        DOC.write_text(render(text, results), encoding="utf-8")
    else:
        sys.stdout.write(render(text, results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
