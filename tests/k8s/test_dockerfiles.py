"""The three Dockerfiles, checked offline: stages, pins, users, extras and layer order."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import tomllib

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import REPO_ROOT

DOCKERFILES = {
    "model_server/Dockerfile": "serving",
    "training_jobs/Dockerfile": "training",
    "dashboard/Dockerfile": "dashboard",
}
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FORBIDDEN_IN_SERVER = {"torch", "tensorflow", "tensorflow-cpu", "keras", "jax"}


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _resolve(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)


@pytest.fixture(params=sorted(DOCKERFILES), ids=lambda p: p.split("/")[0])
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, str, list[tuple[str, str]]]:
    path = request.param
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    return path, DOCKERFILES[path], _instructions(text)


def test_multi_stage_with_pinned_bases(dockerfile: tuple[str, str, list[tuple[str, str]]]) -> None:
    path, _, instructions = dockerfile
    global_args = {}
    for word, rest in instructions:
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            global_args[key] = value
    froms = [
        _resolve(rest.split()[0], global_args) for word, rest in instructions if word == "FROM"
    ]
    assert len(froms) >= 2, f"{path} is not multi-stage"
    # A stage built on an earlier stage names no base image; neither does the empty stage of
    # optional wheels, bind-mounted in the build.
    stages = {rest.split()[-1] for word, rest in instructions if word == "FROM" and " AS " in rest}
    for image in [image for image in froms if image != "scratch" and image not in stages]:
        pinned = "@sha256:" in image or re.search(r":\d+\.\d+\.\d+[\w.-]*$", image)
        assert pinned, f"{path}: base image {image} is not pinned to a full version or digest"
        assert image.startswith("python:3.11"), f"{path}: {image} is not Python 3.11"


def test_final_stage_runs_as_numeric_non_root(
    dockerfile: tuple[str, str, list[tuple[str, str]]],
) -> None:
    path, _, instructions = dockerfile
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    users = [rest for word, rest in instructions[last_from:] if word == "USER"]
    assert users, f"{path}: no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, (
        f"{path}: USER {users[-1]} is not a numeric non-root id"
    )


def test_installs_only_its_extra_with_dependencies_before_source(
    dockerfile: tuple[str, str, list[tuple[str, str]]],
) -> None:
    path, extra, instructions = dockerfile
    text = " ".join(f"{w} {r}" for w, r in instructions)
    others = {"serving", "training", "dashboard", "dev"} - {extra}
    assert f"['optional-dependencies']['{extra}']" in text or f".[{extra}]" in text, path
    for other in others:
        assert f".[{other}]" not in text and f"['{other}']" not in text, f"{path} installs {other}"
    copies = [(i, rest) for i, (word, rest) in enumerate(instructions) if word == "COPY"]
    first_source = min(i for i, rest in copies if re.search(r"\b(airparadis|model_server)\b", rest))
    deps = [i for i, rest in copies if "pyproject.toml" in rest]
    installs = [
        i for i, (word, rest) in enumerate(instructions) if word == "RUN" and "pip install" in rest
    ]
    assert deps and deps[0] < installs[0] < first_source, (
        f"{path}: copy pyproject.toml and install dependencies before copying the source"
    )


def test_build_stage_can_compile_the_extension_and_the_context_skips_local_builds(
    dockerfile: tuple[str, str, list[tuple[str, str]]],
) -> None:
    path, _, instructions = dockerfile
    runs = [args for word, args in instructions if word == "RUN"]
    compiler = next(i for i, args in enumerate(runs) if "install" in args and "gcc" in args)
    project = next(i for i, args in enumerate(runs) if "--no-deps" in args)
    assert compiler < project, f"{path}: gcc must be installed before the project is built"
    assert "**/*.so" in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()


def test_server_image_has_no_deep_learning_framework() -> None:
    text = (REPO_ROOT / "model_server/Dockerfile").read_text(encoding="utf-8")
    assert "torch" in text  # only in the guard that fails the build when torch is present
    assert "download.pytorch.org" not in text
    assert not [r for r in _serving_closure() if r in FORBIDDEN_IN_SERVER]


def _serving_closure() -> set[str]:
    """Names reachable from the base dependencies + the serving extra (installed metadata)."""
    project = PYPROJECT["project"]
    todo = [
        (Requirement(r), "")
        for r in project["dependencies"] + project["optional-dependencies"]["serving"]
    ]
    seen: set[str] = set()
    while todo:
        req, extra = todo.pop()
        env = {**default_environment(), "extra": extra}
        if req.marker and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for child in requires:
            child_req = Requirement(child)
            for wanted in ["", *sorted(req.extras)]:
                todo.append((child_req, wanted))
    return {k.split("[")[0] for k in seen}


def test_serving_closure_is_computed() -> None:
    """Guard for the test above: the walk really follows the dependency graph."""
    closure = _serving_closure()
    assert {"kserve", "mlflow-skinny", "fastapi", "numpy"} <= closure


def test_serving_takes_mlflow_client_not_server() -> None:
    """The predictor reads the registry; the full MLflow (server, UI, SQL store) is training's."""
    assert "mlflow" not in _serving_closure()
    training = PYPROJECT["project"]["optional-dependencies"]["training"]
    assert any(Requirement(r).name == "mlflow" for r in training)


SOURCE_PACKAGES = {"airparadis", "airparadis_cli", "model_server", "training_jobs", "dashboard"}
# Each image: the core, the command line (which registers only the installed components'
# commands) and its own component, nothing of the others.
IMAGE_PACKAGES = {
    "model_server/Dockerfile": {"airparadis", "airparadis_cli", "model_server"},
    "training_jobs/Dockerfile": {"airparadis", "airparadis_cli", "training_jobs"},
    "dashboard/Dockerfile": {"airparadis", "airparadis_cli", "dashboard"},
}


def test_each_image_copies_only_the_code_it_imports(
    dockerfile: tuple[str, str, list[tuple[str, str]]],
) -> None:
    path, _, instructions = dockerfile
    copied = {
        rest.split()[0].rstrip("/")
        for word, rest in instructions
        if word == "COPY" and not rest.startswith("--from")
    }
    assert copied & SOURCE_PACKAGES == IMAGE_PACKAGES[path], f"{path} copies {copied}"
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    # The import checks run outside /src, where the installed package (with its compiled
    # extension) is what imports, not the copied source.
    assert 'python -P -c "import ' in runs, path


def test_build_inputs_of_the_machine_are_never_baked_in(
    dockerfile: tuple[str, str, list[tuple[str, str]]],
) -> None:
    """No `# syntax=` (BuildKit would fetch a frontend from a registry); pip's CA bundle and
    extra constraints come as build secrets, wheels as a bind mount: none of them is COPYed."""
    path, _, instructions = dockerfile
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE), path
    copies = " ".join(rest for word, rest in instructions if word in {"COPY", "ADD"})
    assert not re.search(r"\.crt|\.pem|\.whl|constraints\.txt /|/etc/ssl|/opt/wheels", copies)
    pip_runs = [rest for word, rest in instructions if word == "RUN" and "pip install" in rest]
    for run in pip_runs:
        assert "--mount=type=secret,id=cacert" in run, f"{path}: pip without the CA secret"
        assert "PIP_CERT=/run/secrets/cacert" in run and "[ -s /run/secrets/cacert ]" in run
    env = " ".join(rest for word, rest in instructions if word in {"ENV", "ARG"})
    assert "PIP_CERT" not in env and "/run/secrets" not in env, path


def test_training_wheels_are_mounted_not_copied() -> None:
    _, _, instructions = next(
        (p, e, _instructions((REPO_ROOT / p).read_text(encoding="utf-8")))
        for p, e in DOCKERFILES.items()
        if e == "training"
    )
    install = next(r for w, r in instructions if w == "RUN" and "-r requirements.txt" in r)
    assert "--mount=type=bind,from=wheels,target=/wheels" in install
    assert "--find-links /wheels" in install
    assert "id=pipconstraints" in install


def test_training_image_takes_torch_from_the_cpu_index() -> None:
    text = (REPO_ROOT / "training_jobs/Dockerfile").read_text(encoding="utf-8")
    assert "https://download.pytorch.org/whl/cpu" in text
    assert "torch.version.cuda" in text  # the build fails on a CUDA wheel


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert lines[[line.strip() for line in lines].index("*")] == "*", "allow-list expected"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "constraints.txt", "airparadis", "airparadis_cli"} <= allowed
    assert not {".venv", ".git", "tests", "charts", ".tools"} & allowed


@pytest.mark.parametrize("path", sorted(DOCKERFILES))
def test_hadolint(path: str) -> None:
    binary = shutil.which("hadolint") or str(REPO_ROOT / ".venv/bin/hadolint")
    result = subprocess.run(
        [binary, "--failure-threshold", "style", "--no-color", path],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _stages(instructions: list[tuple[str, str]]) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Stage name -> (what it is FROM, its instructions)."""
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] = []
    for word, rest in instructions:
        if word == "FROM":
            parts = rest.split()
            current = []
            stages[parts[-1] if len(parts) >= 3 else str(len(stages))] = (parts[0], current)
        elif stages:
            current.append((word, rest))
    return stages


def _copies_source(stages: dict[str, tuple[str, list[tuple[str, str]]]], name: str) -> bool:
    """Whether the stage or any stage it is built on copies project source."""
    while name in stages:
        base, body = stages[name]
        if any(w == "COPY" and re.search(r"\b(airparadis|model_server)\b", r) for w, r in body):
            return True
        name = base
    return False


def test_a_source_change_rebuilds_only_a_small_late_layer(
    dockerfile: tuple[str, str, list[tuple[str, str]]],
) -> None:
    """The runtime takes the dependencies' venv from a stage that never sees the source, then
    the project's installed files: touching a .py file leaves the large venv layer cached."""
    path, _, instructions = dockerfile
    stages = _stages(instructions)
    _, final = list(stages.values())[-1]
    copies = [r.split() for w, r in final if w == "COPY" and r.startswith("--from=")]
    venv = [c for c in copies if c[1] == "/opt/venv"]
    assert venv, f"{path}: the runtime does not copy a venv"
    venv_stage = venv[0][0].removeprefix("--from=")
    assert not _copies_source(stages, venv_stage), f"{path}: the venv layer holds the source"
    project = [c for c in copies if _copies_source(stages, c[0].removeprefix("--from="))]
    assert project and copies.index(project[0]) > copies.index(venv[0]), (
        f"{path}: the project's files must come after the dependencies' venv"
    )
