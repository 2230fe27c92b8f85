"""Run the pods of a rendered chart as Docker containers, the way a kubelet would run them.

Everything a container gets comes from the `helm template` output: image, command and args,
environment (values, Secret and ConfigMap references, `$(VAR)` expansion), working directory,
user and group, read-only root, dropped capabilities, no privilege escalation, memory limit,
emptyDirs (tmpfs), ConfigMap and Secret volumes (read-only files), claims, the readiness probe's
path and port, and the Service names other pods reach it by (network aliases). The test supplies
only what a cluster would: Secret values, what each claim is bound to, and a network.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DOCKER = "/usr/bin/docker"
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_QUANTITY = {"Ki": "k", "Mi": "m", "Gi": "g", "Ti": "t", "K": "k", "M": "m", "G": "g"}


def docker(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
    return result


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known names replaced, unknown kept, `$$` an escaped `$`."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR.sub(sub, text)


def docker_size(quantity: str) -> str:
    """A Kubernetes memory quantity (512Mi, 2Gi) as a Docker size (512m, 2g)."""
    for suffix, unit in _QUANTITY.items():
        if quantity.endswith(suffix):
            return quantity.removesuffix(suffix) + unit
    return quantity


def pod_of(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(pod spec, pod labels) of a workload: Deployment, StatefulSet, Job, CronJob, ISVC."""
    kind = doc["kind"]
    if kind == "CronJob":
        template = doc["spec"]["jobTemplate"]["spec"]["template"]
    elif kind == "InferenceService":
        predictor = doc["spec"]["predictor"]
        return predictor, dict(predictor.get("labels", {}))
    elif kind == "Pod":
        return doc["spec"], dict(doc["metadata"].get("labels", {}))
    else:
        template = doc["spec"]["template"]
    spec = dict(template["spec"])
    if kind == "StatefulSet":  # each claim template becomes the volume of pod 0's own claim
        spec["volumes"] = [
            *spec.get("volumes", []),
            *[
                {
                    "name": claim["metadata"]["name"],
                    "persistentVolumeClaim": {
                        "claimName": f"{claim['metadata']['name']}-{doc['metadata']['name']}-0"
                    },
                }
                for claim in doc["spec"].get("volumeClaimTemplates", [])
            ],
        ]
    return spec, dict(template.get("metadata", {}).get("labels", {}))


@dataclass
class Container:
    """A started container: its Docker name, published ports and the spec it came from."""

    name: str
    spec: dict[str, Any]
    ports: dict[int, int] = field(default_factory=dict)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        state = docker("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def wait_ready(self, timeout: float = 180) -> None:
        """Poll the container's own readinessProbe (httpGet or exec) until it passes."""
        probe = self.spec.get("readinessProbe")
        if probe is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name} exited before it was ready:\n{self.logs()}")
            if self.probe(probe):
                return
            time.sleep(1)
        raise AssertionError(f"{self.name} not ready within {timeout}s:\n{self.logs()[-6000:]}")

    def probe(self, probe: dict[str, Any]) -> bool:
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = self.port_number(get["port"])
            try:
                response = httpx.get(self.url(port) + get.get("path", "/"), timeout=5)
            except httpx.HTTPError:
                return False
            return 200 <= response.status_code < 400
        if "tcpSocket" in probe:
            port = self.port_number(probe["tcpSocket"]["port"])
            try:
                with socket.create_connection(("127.0.0.1", self.ports[port]), timeout=5):
                    return True
            except OSError:
                return False
        if "exec" in probe:
            return docker("exec", self.name, *probe["exec"]["command"], check=False).returncode == 0
        raise NotImplementedError(f"probe {probe}")

    def port_number(self, port: int | str) -> int:
        if isinstance(port, int):
            return port
        for declared in self.spec.get("ports", []):
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise KeyError(f"no port named {port} in {self.spec['name']}")


@dataclass
class Cluster:
    """The test's stand-in for a node and its kube-apiserver, over one rendered release."""

    docs: list[dict[str, Any]]
    namespace: str
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    # claim name -> ("volume", docker volume) or ("host", absolute path, mounted read-only)
    claims: dict[str, tuple[str, str]] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    network: str = ""
    _files: tempfile.TemporaryDirectory[str] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def __post_init__(self) -> None:
        """The rendered Secrets (the chart generates some) are what the API server would hold;
        the test's own Secrets are added next to them."""
        rendered: dict[str, dict[str, str]] = {}
        for doc in self.docs:
            if doc["kind"] == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
                rendered[doc["metadata"]["name"]] = {**data, **doc.get("stringData", {})}
        self.secrets = {**rendered, **self.secrets}

    def __enter__(self) -> Cluster:
        self.network = f"airparadis-test-{self.run_id}"
        docker("network", "create", "--label", f"airparadis.test={self.run_id}", self.network)
        self._files = tempfile.TemporaryDirectory(prefix=f"airparadis-test-{self.run_id}-")
        Path(self._files.name).chmod(0o755)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in reversed(self.containers):
            docker("rm", "-f", "-v", name, check=False)
        for volume in self.volumes:
            docker("volume", "rm", "-f", volume, check=False)
        if self.network:
            docker("network", "rm", self.network, check=False)
        if self._files is not None:
            self._files.cleanup()

    # ---- the API server's view ---------------------------------------------------------------
    def find(
        self, kind: str, component: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        found = [
            doc
            for doc in self.docs
            if doc["kind"] == kind
            and (name is None or doc["metadata"]["name"] == name)
            and (
                component is None
                or doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
            )
        ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} {kind} objects for component={component} name={name}")
        return found[0]

    def aliases(self, doc: dict[str, Any], labels: dict[str, str]) -> list[str]:
        """DNS names of the pod: every Service selecting it, and KServe's predictor Service."""
        names = [
            svc["metadata"]["name"]
            for svc in self.docs
            if svc["kind"] == "Service"
            and svc["spec"].get("selector")
            and all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
        ]
        if doc["kind"] == "InferenceService":
            names.append(f"{doc['metadata']['name']}-predictor")
        suffixes = (
            "",
            f".{self.namespace}",
            f".{self.namespace}.svc",
            f".{self.namespace}.svc.cluster.local",
        )
        return [name + suffix for name in names for suffix in suffixes]

    def env(self, container: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                env.update(self.secrets[source["secretRef"]["name"]])
            elif "configMapRef" in source:
                env.update(self.find("ConfigMap", name=source["configMapRef"]["name"])["data"])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), env)
            elif "valueFrom" in item:
                value = self._value_from(item["valueFrom"])
                if value is not None:
                    env[item["name"]] = value
            else:
                env[item["name"]] = ""
        env.update(extra or {})
        return env

    def _value_from(self, source: dict[str, Any]) -> str | None:
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = self.secrets.get(ref["name"], {}).get(ref["key"])
            if value is None and not ref.get("optional"):
                raise KeyError(
                    f"Secret {ref['name']} has no key {ref['key']} (the pod would not start)"
                )
            return value
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return str(self.find("ConfigMap", name=ref["name"])["data"][ref["key"]])
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            return {"metadata.namespace": self.namespace}.get(path, f"pod-{self.run_id}")
        raise NotImplementedError(f"valueFrom {source}")

    # ---- the kubelet's view ------------------------------------------------------------------
    def run_args(
        self,
        doc: dict[str, Any],
        container: dict[str, Any],
        *,
        extra_env: dict[str, str] | None = None,
        extra_mounts: list[str] | None = None,
        shared_empty_dirs: dict[str, str] | None = None,
    ) -> list[str]:
        """`docker run` options and arguments reproducing one container of the pod."""
        pod, labels = pod_of(doc)
        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        args = ["--network", self.network, "--label", f"airparadis.test={self.run_id}"]
        for alias in self.aliases(doc, labels):
            args += ["--network-alias", alias]
        if "runAsUser" in security:
            if security.get("runAsNonRoot") and int(security["runAsUser"]) == 0:
                raise ValueError("runAsNonRoot with runAsUser 0: the kubelet refuses this pod")
            args += ["--user", f"{security['runAsUser']}:{security.get('runAsGroup', 0)}"]
        for group in [security.get("fsGroup"), *security.get("supplementalGroups", [])]:
            if group is not None:
                args += ["--group-add", str(group)]
        if security.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if security.get("privileged"):
            args.append("--privileged")
        capabilities = security.get("capabilities", {})
        for cap in capabilities.get("drop", []):
            args += ["--cap-drop", cap]
        for cap in capabilities.get("add", []):
            args += ["--cap-add", cap]
        if security.get("seccompProfile", {}).get("type") == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        limits = container.get("resources", {}).get("limits", {})
        if "memory" in limits:
            args += ["--memory", docker_size(str(limits["memory"]))]
        if "workingDir" in container:
            args += ["--workdir", container["workingDir"]]
        env = self.env(container, extra_env)
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        args += self._mounts(pod, container, shared_empty_dirs or {})
        for mount in extra_mounts or []:
            args += ["--volume", mount]
        for port in container.get("ports", []):
            args += ["--publish", f"127.0.0.1::{port['containerPort']}"]
        command = [expand(part, env) for part in container.get("command", [])]
        cmd_args = [expand(str(part), env) for part in container.get("args", [])]
        if command:
            args += ["--entrypoint", command[0]]
            return [*args, container["image"], *command[1:], *cmd_args]
        return [*args, container["image"], *cmd_args]

    def _mounts(
        self, pod: dict[str, Any], container: dict[str, Any], shared: dict[str, str]
    ) -> list[str]:
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        owner = (
            security.get("runAsUser", 0),
            security.get("fsGroup", security.get("runAsGroup", 0)),
        )
        args: list[str] = []
        for mount in container.get("volumeMounts", []):
            path, read_only = mount["mountPath"], bool(mount.get("readOnly"))
            if mount["name"] not in volumes:
                raise LookupError(f"volumeMount {mount['name']} has no volume")
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                if mount["name"] in shared:
                    args += ["--volume", f"{shared[mount['name']]}:{path}"]
                    continue
                # Docker copies the image directory's mode onto a tmpfs mounted over it: owned
                # by the pod's user and group, it is as writable for them as an emptyDir (0777).
                size = volume["emptyDir"].get("sizeLimit")
                options = f"rw,exec,mode=1777,uid={owner[0]},gid={owner[1]}"
                options += f",size={docker_size(str(size))}" if size else ""
                args += ["--tmpfs", f"{path}:{options}"]
            elif "configMap" in volume or "secret" in volume:
                args += ["--volume", f"{self._materialize(volume)}:{path}:ro"]
            elif "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                args += ["--volume", self._claim(claim, path, read_only)]
            else:
                raise NotImplementedError(f"volume {volume}")
        return args

    def _claim(self, claim: str, path: str, read_only: bool) -> str:
        if claim not in self.claims:
            raise LookupError(f"PersistentVolumeClaim {claim} is not bound in this test")
        kind, source = self.claims[claim]
        if kind == "host":
            return f"{source}:{path}:ro"
        return f"{source}:{path}" + (":ro" if read_only else "")

    def bind_volume(self, claim: str, fs_group: int | None) -> str:
        """Bind a claim to a new Docker volume, group-owned like a kubelet does with fsGroup."""
        volume = f"airparadis-test-{self.run_id}-{claim}"[:120]
        docker("volume", "create", "--label", f"airparadis.test={self.run_id}", volume)
        self.volumes.append(volume)
        self.claims[claim] = ("volume", volume)
        if fs_group is not None:
            image = self._any_project_image()
            docker(
                "run", "--rm", "--user", "0:0", "--entrypoint", "/bin/sh", "-v", f"{volume}:/v",
                image, "-c", f"chgrp {fs_group} /v && chmod 2775 /v",
            )  # fmt: skip
        return volume

    def _any_project_image(self) -> str:
        for doc in self.docs:
            if doc["kind"] in {"Deployment", "Job", "CronJob", "InferenceService", "StatefulSet"}:
                pod, _ = pod_of(doc)
                return str(pod["containers"][0]["image"])
        raise LookupError("no workload rendered")

    def _materialize(self, volume: dict[str, Any]) -> str:
        assert self._files is not None
        if "configMap" in volume:
            source = volume["configMap"]
            data = dict(self.find("ConfigMap", name=source["name"]).get("data", {}))
        else:
            source = volume["secret"]
            data = dict(self.secrets[source["secretName"]])
        if source.get("items"):
            data = {item["path"]: data[item["key"]] for item in source["items"]}
        folder = Path(self._files.name) / volume["name"]
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)
        for key, value in data.items():
            target = folder / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(str(value), encoding="utf-8")
            target.chmod(0o644)
        return str(folder)

    # ---- running pods -------------------------------------------------------------------------
    def start(
        self,
        doc: dict[str, Any],
        container_name: str | None = None,
        *,
        extra_env: dict[str, str] | None = None,
        extra_mounts: list[str] | None = None,
    ) -> Container:
        """Start a long-running container of a workload, detached, ports on 127.0.0.1."""
        pod, _ = pod_of(doc)
        spec = self._container(pod, container_name)
        name = f"airparadis-test-{self.run_id}-{doc['metadata']['name']}-{spec['name']}"
        args = self.run_args(doc, spec, extra_env=extra_env, extra_mounts=extra_mounts)
        self.containers.append(name)
        docker("run", "--detach", "--name", name, *args)
        container = Container(name=name, spec=spec)
        for port in spec.get("ports", []):
            number = int(port["containerPort"])
            out = docker("port", name, f"{number}/tcp").stdout.strip().splitlines()[0]
            container.ports[number] = int(out.rsplit(":", 1)[1])
        return container

    def run_to_completion(
        self, doc: dict[str, Any], timeout: float, *, extra_env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """Run a batch pod: init containers in order, then its container; (exit code, logs)."""
        pod, _ = pod_of(doc)
        shared: dict[str, str] = {}
        if pod.get("initContainers"):
            for volume in pod.get("volumes", []):
                if "emptyDir" in volume:
                    shared[volume["name"]] = self.bind_volume(f"empty-{volume['name']}", None)
                    docker(
                        "run", "--rm", "--user", "0:0", "--entrypoint", "/bin/sh", "-v",
                        f"{shared[volume['name']]}:/v", pod["containers"][0]["image"], "-c",
                        "chmod 1777 /v",
                    )  # fmt: skip
        logs = []
        for spec in [*pod.get("initContainers", []), *pod["containers"]]:
            name = f"airparadis-test-{self.run_id}-{doc['metadata']['name'][:40]}-{spec['name']}"
            args = self.run_args(doc, spec, extra_env=extra_env, shared_empty_dirs=shared)
            self.containers.append(name)
            docker("run", "--detach", "--name", name, *args)
            code = self.wait_exit(name, timeout)
            out = docker("logs", name, check=False)
            logs.append(f"--- {spec['name']} (exit {code})\n{out.stdout}{out.stderr}")
            if code != 0:
                return code, "\n".join(logs)
        return 0, "\n".join(logs)

    @staticmethod
    def wait_exit(name: str, timeout: float) -> int:
        try:
            out = docker("wait", name, timeout=timeout).stdout.strip()
        except subprocess.TimeoutExpired:
            docker("kill", name, check=False)
            return 124
        return int(out)

    def stop(self, container: Container, grace: float | None = None) -> int:
        """Stop like the kubelet: SIGTERM, then SIGKILL after the pod's grace period."""
        seconds = int(grace if grace is not None else 30)
        docker("stop", "--time", str(seconds), container.name, timeout=seconds + 30)
        state = json.loads(docker("inspect", "-f", "{{json .State}}", container.name).stdout)
        return int(state["ExitCode"])

    @staticmethod
    def _container(pod: dict[str, Any], name: str | None) -> dict[str, Any]:
        containers = pod["containers"]
        if name is None:
            return dict(containers[0])
        return dict(next(c for c in containers if c["name"] == name))


@contextlib.contextmanager
def cluster(
    docs: list[dict[str, Any]], namespace: str, secrets: dict[str, dict[str, str]]
) -> Iterator[Cluster]:
    with Cluster(docs=docs, namespace=namespace, secrets=secrets) as running:
        yield running
