"""D2 and the Secrets the chart generates; HTTPS egress for the token issuer, the OAuth provider
and Azure Monitor.

The dashboard's feedback reaches a predictor that requires auth in every profile: both pods'
environments are expanded the way the kubelet does (Secret values, then $(VAR) references),
and the predictor's own Authenticator checks the header the dashboard's settings produce.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any

import pytest
from starlette.requests import Request

from .conftest import CHART, RENDER_CASES, Renderer, Tools, by_kind, env_of, parse_docs, pod_spec

VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
SOURCES = [
    *[(f"chart:{label}", values, extra) for label, values, extra in RENDER_CASES],
    ("kustomize:base", "base", ()),
    ("kustomize:dev", "overlays/dev", ()),
    ("kustomize:aks", "overlays/aks", ()),
]


def _secret_values(docs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Generated Secrets from the render; any other referenced Secret gets a stand-in value."""
    return {
        (d["metadata"]["name"], key): base64.b64decode(value).decode()
        for d in docs
        if d["kind"] == "Secret"
        for key, value in d.get("data", {}).items()
    }


def _expand(container: dict[str, Any], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it."""
    out: dict[str, str] = {}
    for env in container.get("env", []):
        if "valueFrom" in env:
            ref = env["valueFrom"]["secretKeyRef"]
            value = secrets.setdefault((ref["name"], ref["key"]), f"stand-in:{ref['name']}")
        else:
            value = VAR_REF.sub(lambda m: out.get(m.group(1), m.group(0)), env["value"])
        out[env["name"]] = value
    return out


@pytest.mark.parametrize(("source", "ref", "extra"), SOURCES, ids=[s[0] for s in SOURCES])
def test_the_dashboard_is_authorised_to_post_feedback(
    renderer: Renderer,
    kustomize: Any,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    ref: str | None,
    extra: tuple[str, ...],
) -> None:
    from dashboard.settings import DashboardSettings
    from model_server.security import Authenticator
    from model_server.settings import ServerSettings

    docs = kustomize(ref) if source.startswith("kustomize:") else renderer.docs(ref, extra=extra)
    if not any(d["kind"] == "Deployment" and "dashboard" in d["metadata"]["name"] for d in docs):
        docs = renderer.docs(ref, extra=(*extra, "--set", "dashboard.enabled=true"))
    secrets = _secret_values(docs)
    dashboard = next(
        d
        for d in by_kind(docs, "Deployment").values()
        if d["metadata"]["name"].endswith("-dashboard")
    )
    (isvc,) = by_kind(docs, "InferenceService").values()
    dashboard_env = _expand(pod_spec(dashboard)["containers"][0], secrets)
    predictor_env = _expand(pod_spec(isvc)["containers"][0], secrets)
    assert predictor_env["AIRPARADIS_SERVER_AUTH_REQUIRED"] == "true"

    for name in [n for n in list(os.environ) if n.startswith("AIRPARADIS_")]:
        monkeypatch.delenv(name)
    for name, value in {**dashboard_env, **predictor_env}.items():
        if name.startswith(("AIRPARADIS_DASHBOARD_", "AIRPARADIS_SERVER_")):
            monkeypatch.setenv(name, value)
    header = DashboardSettings().auth_header
    assert header is not None, "the dashboard sends no credential: its feedback gets 401"
    authenticator = Authenticator(ServerSettings())
    request = Request(
        {
            "type": "http",
            "headers": [(b"authorization", header.get_secret_value().encode())],
            "client": ("10.0.0.7", 40000),
        }
    )
    assert authenticator.client_id(request).startswith("key:")


def test_generated_secrets_are_random_and_absent_when_named(tools: Tools) -> None:
    """No password comes from values; a named Secret replaces the generated one."""

    def render(*extra: str) -> list[dict[str, Any]]:
        out = tools.run("helm", "template", "airparadis", str(CHART), *extra).stdout
        return [d for d in parse_docs(out) if d["kind"] == "Secret"]

    first, second = render(), render()
    names = {d["metadata"]["name"] for d in first}
    assert names == {
        "airparadis-postgresql",  # so that `helm install --wait` does not wait forever for it
        "airparadis-feedback-db",
        "airparadis-dashboard-api-key",
    }
    for a, b in zip(first, second, strict=True):
        assert a["data"] != b["data"]
        (value,) = a["data"].values()
        assert len(base64.b64decode(value)) == 40
    named = render(
        "--set", "postgresql.auth.existingSecret=pg",
        "--set", "feedbackDb.passwordSecret=fb",
        "--set", "dashboard.apiKey.existingSecret=dk",
    )  # fmt: skip
    assert named == []


def _https_egress(policy: dict[str, Any]) -> bool:
    return any(
        {p["port"] for p in rule.get("ports", [])} == {443}
        and any("ipBlock" in peer for peer in rule.get("to", []))
        for rule in policy["spec"].get("egress", [])
    )


def test_https_egress_only_where_a_pod_calls_out(renderer: Renderer) -> None:
    default = by_kind(renderer.docs(), "NetworkPolicy")
    assert not _https_egress(default["airparadis-predictor"])
    assert not _https_egress(default["airparadis-dashboard"])
    jwks = by_kind(
        renderer.docs(extra=("--set", "modelServer.auth.jwksUrl=https://login.example/keys")),
        "NetworkPolicy",
    )
    assert _https_egress(jwks["airparadis-predictor"]), "bearer tokens need the issuer's JWKS"
    full = by_kind(renderer.docs("full-values.yaml"), "NetworkPolicy")
    assert _https_egress(full["airparadis-ap-dashboard"]), "OAuth sign-in and Azure Monitor"
    monitor = by_kind(
        renderer.docs(extra=("--set", "dashboard.azureMonitor.workspaceId=w")), "NetworkPolicy"
    )
    assert _https_egress(monitor["airparadis-dashboard"])


def test_oauth_settings_reach_the_dashboard_from_a_secret(renderer: Renderer) -> None:
    """Panel owns the login: the chart sets Panel's own variables."""
    docs = renderer.docs("full-values.yaml")
    env = env_of(pod_spec(by_kind(docs, "Deployment")["airparadis-ap-dashboard"])["containers"][0])
    assert env["PANEL_OAUTH_PROVIDER"]["value"] == "azurev2"
    for name, key in (
        ("PANEL_OAUTH_KEY", "client-id"),
        ("PANEL_OAUTH_SECRET", "client-secret"),
        ("PANEL_COOKIE_SECRET", "cookie-secret"),
        ("PANEL_OAUTH_ENCRYPTION", "encryption-key"),
    ):
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "airparadis-dashboard-oauth",
            "key": key,
        }
    message = renderer.fails("--set", "dashboard.oauth.provider=github")
    assert "existingSecret" in message


@pytest.mark.parametrize(("source", "ref", "extra"), SOURCES, ids=[s[0] for s in SOURCES])
def test_prometheus_scrapes_metrics_without_a_credential(
    renderer: Renderer,
    kustomize: Any,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    ref: str | None,
    extra: tuple[str, ...],
) -> None:
    """Auth is on in every profile, and Prometheus sends no key: the predictor's own settings,
    built from the rendered environment, must leave the path it scrapes open (the
    NetworkPolicy is what limits who reaches that port), and keep feedback protected."""
    from model_server.security import protected_routes, route_name
    from model_server.settings import ServerSettings

    docs = kustomize(ref) if source.startswith("kustomize:") else renderer.docs(ref, extra=extra)
    (isvc,) = by_kind(docs, "InferenceService").values()
    pod = isvc["spec"]["predictor"]
    env = _expand(pod_spec(isvc)["containers"][0], _secret_values(docs))
    for name in [n for n in list(os.environ) if n.startswith("AIRPARADIS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("AIRPARADIS_SERVER_"):
            monkeypatch.setenv(name, value)
    settings = ServerSettings()
    assert settings.auth_required
    protected = protected_routes(settings)
    assert "feedback" in protected
    scraped = pod.get("annotations", {}).get("prometheus.io/path", "/metrics")
    assert route_name(scraped) not in protected, f"{scraped} needs a key Prometheus does not have"


def test_trusted_proxies_reach_the_predictor(renderer: Renderer) -> None:
    (isvc,) = by_kind(
        renderer.docs(
            extra=("--set-json", 'modelServer.auth.trustedProxies=["10.240.0.0/16","10.0.0.5"]')
        ),
        "InferenceService",
    ).values()
    env = env_of(pod_spec(isvc)["containers"][0])
    assert env["AIRPARADIS_SERVER_TRUSTED_PROXIES"]["value"] == "10.240.0.0/16,10.0.0.5"
    (default,) = by_kind(renderer.docs(), "InferenceService").values()
    assert "AIRPARADIS_SERVER_TRUSTED_PROXIES" not in env_of(pod_spec(default)["containers"][0])
    renderer.fails("--set-json", 'modelServer.auth.trustedProxies=["ingress; rm -rf /"]')
