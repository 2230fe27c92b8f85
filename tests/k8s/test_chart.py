"""The Helm chart: lint, render, validate, and what each component is wired to."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from .conftest import (
    CHART,
    CI_VALUES,
    KSERVE_API,
    RENDER_CASES,
    Renderer,
    Tools,
    by_kind,
    env_of,
    pod_labels,
    pod_spec,
    validate_all,
)

VALUES = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
SCHEMA = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


# --- lint and render -----------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, *CI_VALUES])
def test_helm_lint_strict(tools: Tools, values: str | None) -> None:
    args = ["lint", "--strict", str(CHART)]
    if values:
        args += ["-f", str(CHART / "ci" / values)]
    out = tools.run("helm", *args).stdout
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize(
    ("label", "values", "extra"), RENDER_CASES, ids=[c[0] for c in RENDER_CASES]
)
def test_renders_and_validates(
    renderer: Renderer, isvc_validator: Any, label: str, values: str | None, extra: tuple[str, ...]
) -> None:
    docs = renderer.docs(values, extra=extra)
    assert validate_all(docs, isvc_validator) == len(docs) > 5
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "NetworkPolicy", "InferenceService"} <= kinds, label


@pytest.mark.parametrize("values", [None, *CI_VALUES])
def test_the_inferenceservice_comes_from_the_value_not_api_discovery(
    renderer: Renderer, isvc_validator: Any, values: str | None
) -> None:
    """An offline render (no KServe API announced) is the same as one with it: a discovery
    hiccup during `helm upgrade` must not drop the InferenceService, and so delete it."""

    def isvcs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in docs if d["apiVersion"] == KSERVE_API]

    offline = renderer.docs(values, kserve=False)
    assert len(isvcs(offline)) == 1
    assert isvcs(offline) == isvcs(renderer.docs(values, kserve=True))
    off = renderer.docs(values, kserve=True, extra=("--set", "modelServer.enabled=false"))
    assert not isvcs(off)
    assert not [d for d in off if d["metadata"]["name"].endswith("-predictor")]
    validate_all(off, isvc_validator)


def test_isvc_schema_rejects_a_typo(renderer: Renderer, isvc_validator: Any) -> None:
    """The closed CRD schema is strict enough to catch a misspelt field."""
    (isvc,) = by_kind(renderer.docs(), "InferenceService").values()
    isvc["spec"]["predictor"]["scaleMetrik"] = "rps"
    assert any("scaleMetrik" in e.message for e in isvc_validator.iter_errors(isvc))


def test_full_values_turn_every_option_on(renderer: Renderer) -> None:
    docs = renderer.docs("full-values.yaml")
    kinds = {d["kind"] for d in docs}
    assert {"Ingress", "CronJob", "Job", "StatefulSet", "PodDisruptionBudget", "Role"} <= kinds
    assert "PrometheusRule" in kinds
    jobs = {
        d["metadata"]["labels"]["app.kubernetes.io/component"] for d in docs if d["kind"] == "Job"
    }
    assert jobs == {"train", "tune-study", "tune", "score"}


# --- values.yaml and values.schema.json -----------------------------------------------------


def _schema_node(path: list[str]) -> dict[str, Any] | None:
    node: dict[str, Any] = SCHEMA
    for key in path:
        if "$ref" in node:
            node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
        props = node.get("properties")
        if not props or key not in props:
            return None
        node = props[key]
    if "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_every_structural_key_in_values_yaml_has_a_comment() -> None:
    """Keys the schema declares must be documented; inside free-form maps (resources) not."""
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    stack: list[tuple[int, str]] = []
    missing = []
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = [k for _, k in stack]
        stack.append((indent, key))
        parent_node = _schema_node(parent) if parent else SCHEMA
        if parent_node is None or "properties" not in parent_node:
            continue  # inside a free-form map, documented by its parent's comment
        previous = lines[number - 1].strip() if number else ""
        if not previous.startswith("#") and "#" not in line:
            missing.append(".".join([*parent, key]))
    assert not missing, f"values.yaml keys without a comment: {missing}"


def test_values_schema_is_strict() -> None:
    import jsonschema

    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.validate(VALUES, SCHEMA)
    assert SCHEMA["additionalProperties"] is False
    for section in ("mlflow", "postgresql", "modelServer", "dashboard", "jobs", "networkPolicy"):
        assert SCHEMA["properties"][section]["additionalProperties"] is False, section


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "mlflow.replicaz=2"], "replicaz"),
        (["--set", "modelServer.scaleMetric=latency"], "scaleMetric"),
        (["--set", "modelServer.canaryTrafficPercent=150"], "canaryTrafficPercent"),
        (
            [
                "--set",
                "dashboard.extraEnv[0].name=DB_PASSWORD",
                "--set",
                "dashboard.extraEnv[0].value=x",
            ],
            "extraEnv",
        ),
        (
            ["--set", "modelServer.deploymentMode=Standard"],
            "needs deploymentMode=Knative",
        ),
        (
            ["--set", "modelServer.deploymentMode=RawDeployment"],
            "needs deploymentMode=Knative",
        ),
        (["--set", "modelServer.scaleMetric=cpu"], "needs deploymentMode=Standard"),
        (["--set", "postgresql.enabled=false"], "mlflow.backendStore.existingSecret"),
        (["--set", "mlflow.artifacts.type=azureBlob"], "storageAccount"),
        (["--set", "batchScoring.enabled=true"], "batchScoring.existingClaim"),
        (["--set", "dashboard.ingress.enabled=true"], "dashboard.ingress.host"),
        (
            ["--set", "modelServer.maxReplicas=7", "--set", "feedbackDb.poolSize=10"],
            "70 connections",
        ),
        (["--set", "feedbackDb.poolSize=0"], "poolSize"),
    ],
)
def test_inconsistent_values_are_rejected(
    renderer: Renderer, args: list[str], message: str
) -> None:
    assert message in renderer.fails(*args)


def test_no_secret_values_in_values_files() -> None:
    """Only references to existing Secrets: no password, key or connection string values."""
    secretish = re.compile(r"(?i)(password|secret|token|connection.?string|apikey|access.?key)")
    for path in [CHART / "values.yaml", *sorted((CHART / "ci").glob("*.yaml"))]:
        flat: dict[str, Any] = {}

        def walk(node: Any, prefix: str, out: dict[str, Any] = flat) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value, f"{prefix}.{key}" if prefix else str(key), out)
            else:
                out[prefix] = node

        walk(yaml.safe_load(path.read_text(encoding="utf-8")), "")
        reference = re.compile(r"(?i)(existingSecret|secretName|pullSecrets|Key)$")
        for key, value in flat.items():
            leaf = key.rsplit(".", 1)[-1]
            if secretish.search(leaf) and not reference.search(leaf) and value not in ("", None):
                pytest.fail(f"{path.name}: {key}={value!r} looks like a secret value")


# --- components ----------------------------------------------------------------------------


def test_predictor_serves_the_champion_with_model_readiness(renderer: Renderer) -> None:
    (isvc,) = by_kind(renderer.docs(), "InferenceService").values()
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["command"] == ["airparadis", "serve"]
    env = env_of(container)
    assert env["AIRPARADIS_SERVER_MODEL_URI"]["value"] == "models:/air-paradis-sentiment@champion"
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://airparadis-mlflow:5000"
    assert env["AIRPARADIS_SERVER_ALERT_THRESHOLD"]["value"] == "3"
    assert env["AIRPARADIS_SERVER_ALERT_WINDOW_SECONDS"]["value"] == "300"
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 10)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert "canaryTrafficPercent" not in predictor


def test_predictor_options(renderer: Renderer) -> None:
    (isvc,) = by_kind(renderer.docs("full-values.yaml"), "InferenceService").values()
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["scaleMetric"] == "rps"
    env = env_of(predictor["containers"][0])
    assert env["AIRPARADIS_SERVER_ALERT_THRESHOLD"]["value"] == "5"
    assert env["AIRPARADIS_SERVER_ALERT_WINDOW_SECONDS"]["value"] == "600"
    assert env["AIRPARADIS_SERVER_ALERT_MIN_DISTINCT_CLIENTS"]["value"] == "3"
    assert env["AIRPARADIS_SERVER_FEEDBACK_DB_POOL_SIZE"]["value"] == "20"
    assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"]["valueFrom"]["secretKeyRef"] == {
        "name": "airparadis-appinsights",
        "key": "connectionString",
    }
    assert predictor["containers"][0]["image"] == (
        "airparadisacr.azurecr.io/airparadis-model-server:1.2.4"
    )


def test_chart_alert_defaults_equal_the_server_settings() -> None:
    from model_server.settings import ServerSettings

    defaults = ServerSettings.model_construct()
    alert, misprediction = defaults.alert, defaults.misprediction
    assert VALUES["alerting"]["threshold"] == alert.threshold
    assert VALUES["alerting"]["windowSeconds"] == alert.window_seconds
    assert VALUES["alerting"]["minDistinctClients"] == alert.min_distinct_clients
    assert VALUES["alerting"]["mispredictionThreshold"] == misprediction.threshold
    assert VALUES["alerting"]["mispredictionWindowSeconds"] == misprediction.window_seconds
    assert VALUES["alerting"]["driftPsiThreshold"] == defaults.drift.psi_threshold
    assert VALUES["feedbackDb"]["poolSize"] == defaults.feedback_db_pool_size


def test_prometheus_rules_use_the_numbers_the_predictor_gets(renderer: Renderer) -> None:
    """Alertmanager and the predictor's own rules fire on the same thresholds and windows."""
    docs = renderer.docs("full-values.yaml")
    (rule,) = by_kind(docs, "PrometheusRule").values()
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    (isvc,) = by_kind(docs, "InferenceService").values()
    env = env_of(isvc["spec"]["predictor"]["containers"][0])
    value = {name: env[f"AIRPARADIS_SERVER_{name}"]["value"] for name in (
        "ALERT_THRESHOLD", "ALERT_WINDOW_SECONDS", "MISPREDICTION_THRESHOLD",
        "DRIFT_PSI_THRESHOLD")}  # fmt: skip
    assert rules["AirParadisNegativeFeedback"]["expr"].endswith(
        f"[{value['ALERT_WINDOW_SECONDS']}s])) >= {value['ALERT_THRESHOLD']}"
    )
    assert rules["AirParadisMispredictionRate"]["expr"].endswith(
        f">= {value['MISPREDICTION_THRESHOLD']}"
    )
    assert rules["AirParadisInputDrift"]["expr"].endswith(f"> {value['DRIFT_PSI_THRESHOLD']}")
    assert rules["AirParadisInputDrift"]["for"] == "30m"
    assert {r["labels"]["severity"] for r in rules.values()} == {"critical"}
    assert not by_kind(renderer.docs(), "PrometheusRule")  # off by default: CRDs may be absent


def test_env_names_exist_in_the_settings_classes(renderer: Renderer) -> None:
    """Every AIRPARADIS_SERVER_* / AIRPARADIS_DASHBOARD_* the chart sets is a real setting
    (of the component, or a platform setting read under that name, like the feedback store)."""
    from airparadis.settings import PlatformSettings, settings_fields
    from dashboard.settings import DashboardSettings
    from model_server.settings import ServerSettings

    known = {
        variable
        for cls in (PlatformSettings, ServerSettings, DashboardSettings)
        for variables, _ in settings_fields(cls)
        for variable in variables
    }
    for doc in renderer.docs("full-values.yaml"):
        if doc["kind"] not in {"Deployment", "InferenceService"}:
            continue
        for container in pod_spec(doc)["containers"]:
            for name in env_of(container):
                if name.startswith(("AIRPARADIS_SERVER_", "AIRPARADIS_DASHBOARD_")):
                    assert name in known, name


def test_dashboard_points_at_the_predictor(renderer: Renderer) -> None:
    deployment = by_kind(renderer.docs(), "Deployment")["airparadis-dashboard"]
    (container,) = pod_spec(deployment)["containers"]
    assert container["command"] == ["airparadis", "dashboard"]
    assert container["ports"][0]["containerPort"] == 5006
    env = env_of(container)
    assert env["AIRPARADIS_DASHBOARD_SERVER_URL"]["value"] == (
        "http://airparadis-predictor.airparadis.svc.cluster.local"
    )
    # The model's name and the tweet limit come from the predictor's /v1/info, not from here.
    assert "AIRPARADIS_DASHBOARD_MODEL_NAME" not in env


def test_mlflow_backend_and_artifacts(renderer: Renderer) -> None:
    default = by_kind(renderer.docs(), "Deployment")["airparadis-mlflow"]
    (container,) = pod_spec(default)["containers"]
    assert "--artifacts-destination=/mlartifacts" in container["args"]
    env = env_of(container)
    assert env["MLFLOW_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "airparadis-postgresql"
    assert (
        "$(MLFLOW_DB_PASSWORD)@airparadis-postgresql:5432/mlflow"
        in env["MLFLOW_BACKEND_STORE_URI"]["value"]
    )

    aks = renderer.docs("aks-values.yaml")
    mlflow = by_kind(aks, "Deployment")["airparadis-mlflow"]
    (container,) = pod_spec(mlflow)["containers"]
    assert (
        "--artifacts-destination=wasbs://mlflow@airparadismlflow.blob.core.windows.net/artifacts"
        in container["args"]
    )
    assert env_of(container)["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "airparadis-mlflow-db",
        "key": "uri",
    }
    assert pod_labels(mlflow)["azure.workload.identity/use"] == "true"
    assert pod_spec(mlflow)["serviceAccountName"] == "airparadis-mlflow"
    account = by_kind(aks, "ServiceAccount")["airparadis-mlflow"]
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]
    assert not by_kind(aks, "StatefulSet"), "external PostgreSQL: no in-chart database"


def test_tuning_is_a_study_creator_then_indexed_workers(renderer: Renderer) -> None:
    jobs = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in renderer.docs("full-values.yaml")
        if d["kind"] == "Job"
    }
    creator = pod_spec(jobs["tune-study"])["containers"][0]["args"]
    assert creator[:3] == ["tune", "--family", "tfidf_lr"]
    assert {"--create-study-only", "--skip-if-exists"} <= set(creator)
    # The storage URL (with its password) is read from OPTUNA_STORAGE by the CLI: never an
    # argument, which `ps` on the node and the pod spec would show.
    assert "--storage" not in creator
    assert "OPTUNA_STORAGE" in env_of(pod_spec(jobs["tune-study"])["containers"][0])

    workers = jobs["tune"]["spec"]
    assert workers["completionMode"] == "Indexed"
    assert (workers["completions"], workers["parallelism"]) == (8, 4)
    spec = workers["template"]["spec"]
    args = spec["containers"][0]["args"]
    assert args[args.index("--trials") + 1] == "5"
    assert args[args.index("--workers") + 1] == "1"
    assert "--storage" not in args and not any("$(" in arg for arg in args)
    storage = env_of(spec["containers"][0])["OPTUNA_STORAGE"]
    assert storage["valueFrom"]["secretKeyRef"] == {"name": "airparadis-optuna", "key": "url"}
    # The workers never start before the study exists.
    assert spec["initContainers"][0]["args"] == creator

    train = pod_spec(jobs["train"])["containers"][0]
    assert train["args"][:3] == ["train", "--family", "tfidf_lr"]
    score = pod_spec(jobs["score"])["containers"][0]["args"]
    assert score[:5] == [
        "score",
        "--input",
        "/scoring/tweets.parquet",
        "--output",
        "/scoring/scores.parquet",
    ]


def test_in_chart_optuna_storage_uses_the_postgres_secret(renderer: Renderer) -> None:
    docs = renderer.docs(
        extra=("--set", "tuning.enabled=true", "--set", "jobs.data.existingClaim=data")
    )
    job = next(d for d in docs if d["kind"] == "Job" and d["spec"].get("completionMode"))
    container = pod_spec(job)["containers"][0]
    assert not any("OPTUNA" in arg or "postgresql" in arg for arg in container["args"])
    env = env_of(container)
    assert env["OPTUNA_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "airparadis-postgresql"
    assert env["OPTUNA_STORAGE"]["value"] == (
        "postgresql+psycopg://airparadis:$(OPTUNA_DB_PASSWORD)@airparadis-postgresql:5432/optuna"
    )


def test_retraining_cronjob(renderer: Renderer) -> None:
    (cron,) = by_kind(renderer.docs("full-values.yaml"), "CronJob").values()
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Europe/Paris"
    assert pod_spec(cron)["containers"][0]["args"] == ["retrain"]


def test_launcher_rbac_is_limited_to_batch_jobs(renderer: Renderer) -> None:
    docs = renderer.docs()
    (role,) = by_kind(docs, "Role").values()
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        }
    ]
    (binding,) = by_kind(docs, "RoleBinding").values()
    assert binding["subjects"][0]["name"] == "airparadis-launcher"
    for name, account in by_kind(docs, "ServiceAccount").items():
        expected = name == "airparadis-launcher"
        assert account["automountServiceAccountToken"] is expected, name


def _peers(rule: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    return list(rule.get("from" if direction == "ingress" else "to", []))


def _allows(policy: dict[str, Any], direction: str, component: str, port: int) -> bool:
    for rule in policy["spec"].get(direction, []):
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        for peer in _peers(rule, direction):
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if labels.get("app.kubernetes.io/component") == component or (
                component == "job" and labels.get("airparadis.io/workload") == "job"
            ):
                return True
    return False


def test_network_policies_open_only_the_needed_paths(renderer: Renderer) -> None:
    policies = by_kind(renderer.docs("full-values.yaml"), "NetworkPolicy")
    deny = policies["airparadis-ap-default-deny"]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    dns = policies["airparadis-ap-allow-dns"]["spec"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}

    predictor = policies["airparadis-ap-predictor"]
    mlflow = policies["airparadis-ap-mlflow"]
    postgres = policies["airparadis-ap-postgresql"]
    dashboard = policies["airparadis-ap-dashboard"]
    jobs = policies["airparadis-ap-jobs"]
    assert _allows(dashboard, "egress", "predictor", 8080)
    assert _allows(predictor, "ingress", "dashboard", 8080)
    assert _allows(predictor, "egress", "mlflow", 5000)
    assert _allows(mlflow, "ingress", "predictor", 5000)
    assert _allows(mlflow, "ingress", "job", 5000)
    assert _allows(jobs, "egress", "mlflow", 5000)
    assert _allows(mlflow, "egress", "postgresql", 5432)
    assert _allows(postgres, "ingress", "mlflow", 5432)
    assert _allows(postgres, "ingress", "job", 5432)
    assert _allows(jobs, "egress", "postgresql", 5432)
    assert not _allows(postgres, "ingress", "predictor", 5432)
    assert not _allows(predictor, "ingress", "job", 8080)
    assert jobs["spec"]["ingress"] == []
    ingress_from = dashboard["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
    assert ingress_from["matchExpressions"][0]["values"] == ["app-routing-system"]


def test_pod_disruption_budgets_select_their_pods(renderer: Renderer) -> None:
    docs = renderer.docs("full-values.yaml")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    workloads = [d for d in docs if d["kind"] in {"Deployment", "InferenceService"}]
    assert len(pdbs) == len(workloads) == 3
    for pdb in pdbs.values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        matching = [w for w in workloads if selector.items() <= pod_labels(w).items()]
        assert len(matching) == 1, pdb["metadata"]["name"]
