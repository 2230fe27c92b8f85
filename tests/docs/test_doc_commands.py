"""Every shell command in the README and docs runs, as written, on tiny data: a documented command
that fails, names a wrong flag or a stale path fails this test.

Each page's shell blocks (bash, sh, shell, console) run in order in a sandbox of their own: a
folder of links to the checkout (`deploy/` copied, as its script writes beside itself), `.venv`
linked to the interpreter's environment, `../shared` holding a tiny Sentiment140-format CSV and a
tiny evaluation file, HOME in the sandbox (curl reads `fail-with-body` from its `.curlrc` there, so
a documented request that gets an HTTP error fails), no kubeconfig. Exports and `cd` carry from
one command to the next, as in the terminal the page speaks to. Servers (`make up`, `airparadis
serve`/`dashboard`/`up`, `mlflow ui`) start in the background, must answer on their documented
loopback port, and are stopped when the page is done or a later server needs their port.

A command that cannot run here is marked in the page itself, right above its block, with a
reason a reviewer can judge:

    <!-- doc-test: skip: needs an AKS cluster -->                 (the whole block)
    <!-- doc-test: skip `make images`: builds Docker images -->   (commands containing the text)

An unmarked command runs; one that reaches a cluster, a registry or the network fails before it
runs, asking for a mark. Placeholders (`<...>`, paths outside the sandbox) are replaced through
SUBSTITUTIONS below, the only changes made to a documented command.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from tests.conftest import REPO_ROOT
from tests.k8s.conftest import Tools
from tests.training.tiny_data import NEGATIVE, POSITIVE, tweets, write_sentiment140

PAGES = [
    REPO_ROOT / "README.md",
    REPO_ROOT / "charts" / "airparadis" / "README.md",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
MARK = re.compile(
    r"^\s*<!--\s*doc-test:\s*skip(?:\s+`(?P<selector>[^`]+)`)?\s*:\s*(?P<reason>.*?)-->\s*$"
)

# Placeholders and paths outside the sandbox, in the order applied ({sandbox}, {venv} filled in).
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    # (pattern, replacement, why)
    (r"\bmake up\b", "make -o .venv/.installed up",
     "the sandbox's .venv is installed already: `make install` is not redone"),
    (r"/tmp/model-env/bin/python", ".venv/bin/python",
     "the model's own environment is built from PyPI (marked); the test's environment stands in"),
    (r"/tmp/model\b", "{sandbox}/model", "the downloaded model, inside the sandbox"),
    (r"/srv/airparadis", "{sandbox}/srv/airparadis", "the moved home, inside the sandbox"),
    (r"<application \(client\) id>", "00000000-0000-0000-0000-000000000001", "an Entra app id"),
    (r"<client secret>", "not-a-secret", "the app's client secret"),
    (r"<tenant id>", "00000000-0000-0000-0000-000000000002", "the Entra tenant"),
    (r"<object id of the ops group>", "00000000-0000-0000-0000-000000000003", "a group id"),
]  # fmt: skip

# Programs that reach a cluster, a cloud, a registry or the network: unmarked, they fail unrun.
NEEDS_A_MARK = re.compile(
    r"(?:^|[;&|(]|\bdo\b|\bthen\b)\s*(?:\w+=\S*\s+)*"
    r"(?:az|docker|psql|apt-get|ssh|scp|git push|pip install|kubectl(?!\s+kustomize)"
    r"|helm(?!\s+(?:lint|template|show)))\b",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Server:
    """A command that runs until stopped: started in the background, ready when all URLs answer."""

    pattern: re.Pattern[str]
    ready: tuple[str, ...]
    ports: tuple[int, ...]


SERVERS = [
    Server(re.compile(r"\bmake\b.*\bup\b|\bairparadis up\b"),
           ("http://127.0.0.1:8080/v2/health/ready", "http://127.0.0.1:5006/"), (8080, 8081, 5006)),
    Server(re.compile(r"\bairparadis serve\b"), ("http://127.0.0.1:8080/v2/health/ready",),
           (8080, 8081)),
    Server(re.compile(r"\bairparadis dashboard\b"), ("http://127.0.0.1:5006/",), (5006,)),
    Server(re.compile(r"\bmlflow ui\b"), ("http://127.0.0.1:5000/",), (5000,)),
]  # fmt: skip

# Pages whose first command needs a trained champion in the sandbox's home (.airparadis): the
# page says so in its text ("serves the champion", "move the home"), the test provides it.
NEEDS_A_CHAMPION = {"README.md", "docs/dashboard.md", "docs/operations.md"}

COMMAND_TIMEOUT_S = 300
READY_TIMEOUT_S = 180


@dataclass
class Block:
    page: Path
    line: int
    commands: list[str]
    skipped: dict[str, str]  # command -> reason
    marks: list[tuple[str | None, str]]
    shown: dict[str, str]  # command -> the output shown under it, as comment lines


def _shown_outputs(lines: list[str], commands: list[str]) -> dict[str, str]:
    """The `# ...` lines right under each command: the output the page shows for it."""
    shown: dict[str, str] = {}
    text = "\n".join(lines)
    for command in commands:
        start = text.find(command)
        if start < 0:
            continue
        after = text[start + len(command) :].lstrip("\n").splitlines()
        comments = [line.strip()[1:] for line in itertools.takewhile(_is_comment, after)]
        if comments:
            shown[command] = "\n".join(comments)
    return shown


def _is_comment(line: str) -> bool:
    return line.strip().startswith("#")


def _logical_commands(lines: list[str]) -> list[str]:
    """The block's commands: comment lines dropped, continuation lines, open quotes and here
    documents joined to the line that starts them."""
    commands: list[str] = []
    current: list[str] = []
    heredoc: str | None = None
    depth = 0  # inside for/while/if ... done/fi
    for raw in lines:
        if heredoc is not None:
            current.append(raw)
            if raw.strip() == heredoc:
                heredoc = None
                commands.append("\n".join(current))
                current = []
            continue
        if not current and (not raw.strip() or raw.strip().startswith("#")):
            continue
        current.append(raw)
        text = "\n".join(current)
        if text.endswith("\\"):
            continue
        try:
            shlex.split(text, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        match = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", raw)
        if match:
            heredoc = match.group(1)
            continue
        depth += len(re.findall(r"(?:^|[;&|])\s*(?:for|while|until|if)\b", raw))
        depth -= len(re.findall(r"(?:^|[;&|])\s*(?:done|fi)\b", raw))
        if depth > 0:
            continue
        commands.append(text)
        current = []
    assert not current, f"unterminated command: {current}"
    return [textwrap.dedent(c) for c in commands]


def shell_blocks(page: Path) -> list[Block]:
    """The page's shell blocks, as markdown-it finds its fences, with the marks right above."""
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    blocks: list[Block] = []
    for token in MarkdownIt().parse(text):
        if token.type != "fence" or token.info.strip() not in SHELL_LANGUAGES or not token.map:
            continue
        fence = token.map[0]
        marks = []
        above = fence - 1
        while above >= 0 and (mark := MARK.match(lines[above])):
            marks.append((mark.group("selector"), mark.group("reason").strip()))
            above -= 1
        content = token.content.splitlines()
        commands = _logical_commands(content)
        skipped = _skipped(commands, marks)
        shown = _shown_outputs(textwrap.dedent(token.content).splitlines(), commands)
        blocks.append(Block(page, fence + 1, commands, skipped, marks, shown))
    return blocks


def _skipped(commands: list[str], marks: list[tuple[str | None, str]]) -> dict[str, str]:
    skipped: dict[str, str] = {}
    for selector, reason in marks:
        for command in commands:
            if selector is None or selector in command:
                skipped.setdefault(command, reason)
    return skipped


def substitute(command: str, sandbox: Path) -> str:
    for pattern, replacement, _ in SUBSTITUTIONS:
        command = re.sub(pattern, replacement.format(sandbox=sandbox), command)
    return command


# -- the sandbox ------------------------------------------------------------------------------


def _write_tiny_data(shared: Path) -> None:
    (shared / "data" / "sentiment140").mkdir(parents=True)
    write_sentiment140(shared / "data" / "sentiment140" / "tiny.csv")
    (shared / "data" / "eval").mkdir(parents=True)
    negative, positive = tweets(NEGATIVE, 40, 11), tweets(POSITIVE, 40, 12)
    pd.DataFrame(
        {"label": ["negative"] * 40 + ["positive"] * 40, "text": negative + positive}
    ).to_parquet(shared / "data" / "eval" / "tweet_sentiment_extraction.parquet")


def make_sandbox(root: Path) -> Path:
    """`root/checkout` looks like the checkout beside `root/shared`, writes stay in `root`.
    Tools that walk the tree (ruff, mypy) do not follow its links: their commands are marked."""
    checkout = root / "checkout"
    checkout.mkdir(parents=True)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in sorted({path.split("/", 1)[0] for path in tracked}):
        if name == "deploy":  # render_alert.py writes its templates beside itself
            shutil.copytree(REPO_ROOT / name, checkout / name)
        else:
            (checkout / name).symlink_to(REPO_ROOT / name)
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    _write_tiny_data(root / "shared")
    (root / "user").mkdir()
    (root / "user" / ".curlrc").write_text("fail-with-body\n")
    return checkout


def sandbox_env(root: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRPARADIS_", "MLFLOW_", "KUBE", "DOCKER_"))
    }
    env.update(
        HOME=str(root / "user"),
        KUBECONFIG=str(root / "no-kubeconfig"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a TF-IDF + LR champion trained on the tiny data, by the CLI."""
    root = tmp_path_factory.mktemp("champion")
    checkout = make_sandbox(root)
    env = sandbox_env(root) | {"AIRPARADIS_TRAIN_DATA": str(root / "shared/data/sentiment140")}
    subprocess.run(
        [sys.executable, "-m", "airparadis", "train"], cwd=checkout, env=env, check=True,
        capture_output=True, timeout=COMMAND_TIMEOUT_S,
    )  # fmt: skip
    return checkout / ".airparadis"


# -- running a page ---------------------------------------------------------------------------


@dataclass
class Shell:
    """The terminal a page speaks to: its variables and folder carry from command to command."""

    root: Path
    cwd: Path
    env: dict[str, str]
    servers: list[tuple[Server, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    count: int = 0

    def run(self, command: str) -> tuple[int, str]:
        self.count += 1
        state = self.root / f"state-{self.count}"
        script = (
            f"set -o pipefail\n{command}\n__status=$?\n"
            f"env -0 > {shlex.quote(str(state))}.env; pwd > {shlex.quote(str(state))}.cwd\n"
            "exit $__status\n"
        )
        result = subprocess.run(
            ["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True,
            text=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if Path(f"{state}.env").exists():
            pairs = Path(f"{state}.env").read_text().split("\0")
            self.env = dict(p.split("=", 1) for p in pairs if "=" in p)
            for name in ("_", "SHLVL", "OLDPWD"):
                self.env.pop(name, None)
            self.cwd = Path(Path(f"{state}.cwd").read_text().strip())
        return result.returncode, (result.stdout + result.stderr)[-4000:]

    def start(self, server: Server, command: str) -> str | None:
        """Start a server in the background; None once it answers, else why not."""
        for running in [s for s in self.servers if set(s[0].ports) & set(server.ports)]:
            self._stop(running)
        busy = [port for port in server.ports if _port_in_use(port)]
        if busy:
            return f"documented port(s) {busy} already in use on this machine"
        self.count += 1
        log = self.root / f"server-{self.count}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command.rstrip().rstrip('&')}"], cwd=self.cwd,
                env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.servers.append((server, process, log))
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = list(server.ready)
        while pending and time.monotonic() < deadline:
            if process.poll() is not None:
                return f"exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(pending[0], timeout=5).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return f"not ready in {READY_TIMEOUT_S}s:\n{log.read_text()[-3000:]}" if pending else None

    def _stop(self, running: tuple[Server, subprocess.Popen[bytes], Path]) -> None:
        _, process, _ = running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.servers.remove(running)

    def stop_all(self) -> None:
        for running in list(self.servers):
            self._stop(running)


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    shell = Shell(tmp_path, make_sandbox(tmp_path), sandbox_env(tmp_path))
    yield shell
    shell.stop_all()


def _name(page: Path) -> str:
    return page.relative_to(REPO_ROOT).as_posix()


def _json_keys(shown: str) -> list[str]:
    """The keys of the JSON a page shows as a command's output (its values are examples)."""
    return list(dict.fromkeys(re.findall(r'"(\w+)"\s*:', shown)))


def test_every_mark_has_a_reason_and_selects_a_command() -> None:
    problems = []
    for page in PAGES:
        for block in shell_blocks(page):
            for selector, reason in block.marks:
                where = f"{_name(page)}:{block.line}"
                if not reason:
                    problems.append(f"{where}: a skip mark without a reason")
                if selector is not None and not any(selector in c for c in block.commands):
                    problems.append(f"{where}: `{selector}` selects no command of the block")
    assert problems == []


def run_page(page: Path, shell: Shell) -> list[str]:
    """Run the page's unmarked commands in order; what went wrong, one entry per command."""
    failures = []
    for block in shell_blocks(page):
        for command in block.commands:
            if command in block.skipped:
                continue
            where = f"{page.name}:{block.line}: {command.splitlines()[0]}"
            if NEEDS_A_MARK.search(command):
                failures.append(f"{where}\n  needs a cluster or the network: mark it with a reason")
                continue
            actual = substitute(command, shell.root)
            server = next((s for s in SERVERS if s.pattern.search(actual)), None)
            if server is not None:
                problem = shell.start(server, actual)
                if problem:
                    failures.append(f"{where}\n  {problem}")
                continue
            status, output = shell.run(actual)
            if status != 0:
                failures.append(f"{where}\n  exit {status}:\n{output}")
                continue
            missing = [
                k for k in _json_keys(block.shown.get(command, "")) if f'"{k}":' not in output
            ]
            if missing:
                failures.append(
                    f"{where}\n  the page shows {missing}, the answer lacks them:\n{output}"
                )
    return failures


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_documented_commands_run(page: Path, shell: Shell, request: pytest.FixtureRequest) -> None:
    if not any(c not in b.skipped for b in shell_blocks(page) for c in b.commands):
        return
    if _name(page) in NEEDS_A_CHAMPION:
        from airparadis.home import relocate

        shutil.copytree(request.getfixturevalue("champion_home"), shell.cwd / ".airparadis")
        relocate(shell.cwd / ".airparadis")
    failures = run_page(page, shell)
    assert failures == [], "\n\n".join(failures)


def test_a_failing_or_unmarked_command_fails_its_page(tmp_path: Path, shell: Shell) -> None:
    """The harness itself: a command that fails, one that needs a cluster and is not marked,
    fail; a marked one and the state carried between commands do not."""
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\nexport GREETING=hello\ncd deploy\n```\n\n"
        '```bash\ntest "$GREETING" = hello && test -d azure\nfalse  # fails\n'
        "kubectl -n x apply -f y.yaml\n```\n\n"
        "<!-- doc-test: skip: needs a cluster -->\n```bash\nkubectl apply -f z.yaml\n```\n"
    )
    failures = run_page(page, shell)
    assert [f.splitlines()[0] for f in failures] == [
        "page.md:6: false  # fails",
        "page.md:6: kubectl -n x apply -f y.yaml",
    ]
    assert "needs a cluster or the network" in failures[1]


# -- marked chart installs: what they would apply must render ---------------------------------

# The deployment guide's variables, as its first block sets them (and a tag for the images).
DEPLOY_VARIABLES = {
    "NS": "airparadis",
    "ACR": "airparadisacr",
    "TAG": "0123456789abcdef",
    "NEW_TAG": "fedcba9876543210",
    "MLFLOW_CLIENT_ID": "00000000-0000-0000-0000-000000000004",
}
# Flags about the cluster side of an install (waiting, rollback, namespace, kept values).
CLUSTER_FLAGS = {"--install", "--atomic", "--wait", "--reuse-values", "--create-namespace"}


def _chart_installs() -> list[tuple[str, str]]:
    return [
        (f"{_name(block.page)}:{block.line}", command)
        for page in PAGES
        for block in shell_blocks(page)
        for command in block.commands
        if re.match(r"helm upgrade\b", command) and "charts/airparadis" in command
    ]


def _as_template(command: str) -> list[str]:
    """`helm upgrade --install R charts/airparadis FLAGS` as `helm template R ... FLAGS`."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in DEPLOY_VARIABLES, f"${name}: add it to DEPLOY_VARIABLES"
        return DEPLOY_VARIABLES[name]

    expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, command.replace("\\\n", " "))
    words = shlex.split(expanded, comments=True)[2:]  # without `helm upgrade`
    args: list[str] = []
    skip_value = False
    for word in words:
        if skip_value:
            skip_value = False
        elif word == "--timeout":
            skip_value = True
        elif word not in CLUSTER_FLAGS:
            args.append(word)
    return ["template", *args]


def test_documented_chart_installs_render(tools: Tools) -> None:
    """The marked `helm upgrade` commands cannot reach a cluster here, but their values files and
    `--set` keys meet the chart's schema now: a renamed value fails here, not at install."""
    installs = _chart_installs()
    assert installs, "no documented `helm upgrade ... charts/airparadis` found"
    failures = []
    for where, command in installs:
        result = tools.run("helm", *_as_template(command), check=False)
        if result.returncode != 0:
            failures.append(f"{where}: {command.splitlines()[0]}\n{result.stderr[-2000:]}")
    assert failures == [], "\n\n".join(failures)


def test_documented_make_targets_exist() -> None:
    """Marked or not, every `make ...` a page shows names targets the Makefile has (`make -n`
    prints what they would run, running nothing)."""
    failures = []
    for page in PAGES:
        for block in shell_blocks(page):
            for command in block.commands:
                if not command.startswith("make "):
                    continue
                words = shlex.split(command, comments=True)[1:]
                result = subprocess.run(
                    ["make", "-n", *words], cwd=REPO_ROOT, capture_output=True, text=True,
                    env={**os.environ, "VENV": sys.prefix},
                )  # fmt: skip
                if result.returncode != 0:
                    failures.append(f"{_name(page)}:{block.line}: {command}\n{result.stderr}")
    assert failures == [], "\n\n".join(failures)
