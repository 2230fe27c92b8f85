"""Security and operability policies over every rendered workload (chart and kustomize).

Each check looks at the effective setting: the container's securityContext, falling back to the
pod's where Kubernetes does (runAsNonRoot, seccompProfile).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import (
    LONG_RUNNING_KINDS,
    RENDER_CASES,
    WORKLOAD_KINDS,
    Renderer,
    pod_spec,
)

SECRET_NAME = re.compile(r"(?i)(PASSWORD|SECRET|TOKEN|KEY|CONNECTION_STRING)")
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

SOURCES = [
    *[(f"chart:{label}", values, extra) for label, values, extra in RENDER_CASES],
    ("kustomize:base", "base", ()),
    ("kustomize:dev", "overlays/dev", ()),
    ("kustomize:aks", "overlays/aks", ()),
]


def _docs(
    source: str, ref: str | None, extra: tuple[str, ...], renderer: Renderer, kustomize: Any
) -> list[dict[str, Any]]:
    if source.startswith("kustomize:"):
        return list(kustomize(ref))
    return renderer.docs(ref, extra=extra)


@pytest.fixture(scope="module", params=SOURCES, ids=[s[0] for s in SOURCES])
def rendered(
    request: pytest.FixtureRequest, renderer: Renderer, kustomize: Any
) -> list[dict[str, Any]]:
    source, ref, extra = request.param
    return _docs(source, ref, extra, renderer, kustomize)


def _containers(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    spec = pod_spec(doc)
    out = [(c["name"], c, False) for c in spec.get("initContainers", [])]
    out += [(c["name"], c, True) for c in spec["containers"]]
    return out


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    assert workloads, "nothing to check"
    return workloads


def test_resources_requests_and_limits(rendered: list[dict[str, Any]]) -> None:
    for doc in _workloads(rendered):
        for name, container, _ in _containers(doc):
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), (
                    f"{doc['kind']}/{doc['metadata']['name']}:{name} lacks {part}"
                )


def test_probes_on_long_running_servers(rendered: list[dict[str, Any]]) -> None:
    for doc in _workloads(rendered):
        if doc["kind"] not in LONG_RUNNING_KINDS:
            continue
        for name, container, main in _containers(doc):
            if main:
                for probe in ("readinessProbe", "livenessProbe"):
                    assert probe in container, f"{doc['metadata']['name']}:{name} lacks {probe}"


def test_non_root_read_only_no_escalation_no_capabilities_seccomp(
    rendered: list[dict[str, Any]],
) -> None:
    for doc in _workloads(rendered):
        pod = pod_spec(doc).get("securityContext", {})
        for name, container, _ in _containers(doc):
            where = f"{doc['kind']}/{doc['metadata']['name']}:{name}"
            ctx = container.get("securityContext", {})
            assert ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert ctx.get("runAsUser", pod.get("runAsUser", 1)) != 0, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not ctx.get("capabilities", {}).get("add"), where
            assert not ctx.get("privileged"), where
            seccomp = ctx.get("seccompProfile", pod.get("seccompProfile", {}))
            assert seccomp.get("type") in {"RuntimeDefault", "Localhost"}, where


def test_writable_paths_are_volumes(rendered: list[dict[str, Any]]) -> None:
    """With a read-only root filesystem, /tmp must be a mounted volume."""
    for doc in _workloads(rendered):
        spec = pod_spec(doc)
        volumes = {v["name"] for v in spec.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
        for name, container, _ in _containers(doc):
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{doc['metadata']['name']}:{name} has no writable /tmp"
            assert set(mounts.values()) <= volumes, f"{doc['metadata']['name']}:{name}"


def _only_secret_references(value: str, from_secrets: set[str]) -> bool:
    """A value made of $(VAR) references to Secret-sourced variables and separators only."""
    refs = VAR_REF.findall(value)
    return bool(refs) and set(refs) <= from_secrets and not VAR_REF.sub("", value).strip(", ")


def test_no_plain_secret_values_in_env(rendered: list[dict[str, Any]]) -> None:
    for doc in _workloads(rendered):
        for name, container, _ in _containers(doc):
            from_secrets: set[str] = set()
            for env in container.get("env", []):
                if "secretKeyRef" in env.get("valueFrom", {}):
                    from_secrets.add(env["name"])
                if SECRET_NAME.search(env["name"]) and "value" in env:
                    # e.g. the predictor's API keys, joined from two Secrets: "$(A),$(B)".
                    assert _only_secret_references(env["value"], from_secrets), (
                        f"{doc['metadata']['name']}:{name} sets {env['name']} in clear; use valueFrom"
                    )


def test_env_references_are_defined_earlier(rendered: list[dict[str, Any]]) -> None:
    """$(VAR) in env values and args only expands when VAR comes before it."""
    for doc in _workloads(rendered):
        for name, container, _ in _containers(doc):
            seen: set[str] = set()
            for env in container.get("env", []):
                for ref in VAR_REF.findall(str(env.get("value", ""))):
                    assert ref in seen, (
                        f"{doc['metadata']['name']}:{name} {env['name']} uses $({ref})"
                    )
                seen.add(env["name"])
            for arg in container.get("args", []) + container.get("command", []):
                for ref in VAR_REF.findall(arg):
                    assert ref in seen, (
                        f"{doc['metadata']['name']}:{name} arg uses undefined $({ref})"
                    )


def test_no_secret_objects_with_data(rendered: list[dict[str, Any]]) -> None:
    """Secret data only in the Secrets the chart generates (random, kept on uninstall); never
    a value from values. tests/k8s/test_secrets.py checks they are random and read back."""
    secrets = [
        d for d in rendered if d["kind"] == "Secret" and (d.get("data") or d.get("stringData"))
    ]
    for secret in secrets:
        meta = secret["metadata"]
        assert meta["labels"].get("airparadis.io/generated") == "true", meta["name"]
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep", meta["name"]
        assert "stringData" not in secret and len(secret["data"]) == 1, meta["name"]


def test_images_are_pinned(rendered: list[dict[str, Any]]) -> None:
    for doc in _workloads(rendered):
        for name, container, _ in _containers(doc):
            image = container["image"]
            tag = image.rsplit("/", 1)[-1]
            assert "@sha256:" in image or (":" in tag and not tag.endswith(":latest")), (
                f"{doc['metadata']['name']}:{name} image {image} is not pinned"
            )


def test_service_account_tokens_not_mounted(rendered: list[dict[str, Any]]) -> None:
    for doc in _workloads(rendered):
        assert pod_spec(doc).get("automountServiceAccountToken") is False, doc["metadata"]["name"]


def test_every_object_has_standard_labels(rendered: list[dict[str, Any]]) -> None:
    for doc in rendered:
        labels = doc["metadata"].get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/part-of",
        ):
            assert key in labels, f"{doc['kind']}/{doc['metadata']['name']} lacks {key}"


@pytest.mark.parametrize(
    ("override", "check"),
    [
        (
            "containerSecurityContext.readOnlyRootFilesystem=false",
            test_non_root_read_only_no_escalation_no_capabilities_seccomp,
        ),
        (
            "containerSecurityContext.allowPrivilegeEscalation=true",
            test_non_root_read_only_no_escalation_no_capabilities_seccomp,
        ),
        ("modelServer.extraEnv[0].name=API_TOKEN", test_no_plain_secret_values_in_env),
        ("modelServer.extraEnv[0].name=API_KEYS", test_no_plain_secret_values_in_env),
        ("mlflow.image.tag=latest", test_images_are_pinned),
    ],
)
def test_the_policies_catch_violations(renderer: Renderer, override: str, check: Any) -> None:
    """The checks above are able to fail: each insecure override is caught."""
    extra: tuple[str, ...] = ("--set", override)
    if override.startswith("modelServer.extraEnv"):
        # Bypass the values schema (which already rejects this) to test the render check itself.
        # API_KEYS: a Secret reference with a key in clear next to it is caught too.
        value = "$(DASHBOARD_API_KEY)\\,hunter2" if override.endswith("KEYS") else "abc"
        extra = ("--set", override, "--skip-schema-validation")
        extra += ("--set", f"modelServer.extraEnv[0].value={value}")
    with pytest.raises(AssertionError):
        check(renderer.docs(extra=extra))
