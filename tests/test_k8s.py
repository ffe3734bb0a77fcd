"""The Kubernetes manifests: rendered by `kubectl kustomize`, every object valid against the
Kubernetes schemas (`kubernetes-validate`, strict: no unknown fields), and wired to what the
service and its image actually do (ports, probes, settings, user, shutdown grace)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = ["base", "overlays/example"]
# The oldest release the manifests promise to work on, and the newest the package knows.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
SETTINGS = {name.upper() for name in Settings.model_fields}


def render(path: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (it renders the kustomizations)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    if component is not None:
        found = [
            o
            for o in found
            if o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
            == component
        ]
    assert len(found) == 1, f"{kind}: {len(found)} objects"
    return found[0]


def env_of(container: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(objects, version):
    kinds = set()
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
        kinds.add(obj["kind"])
    assert {
        "Deployment",
        "Job",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "NetworkPolicy",
        "ServiceAccount",
    } <= kinds


def test_a_broken_object_is_refused():
    """The validation is not vacuous: a misspelt field and a wrong type both fail."""
    deployment = one(render("base"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)
    deployment = one(render("base"), "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def test_probes_and_ports_match_the_service(objects):
    config = one(objects, "ConfigMap")["data"]
    port = int(config.get("PORT", Settings.model_fields["port"].default))
    assert config["HOST"] == "0.0.0.0"
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    (http,) = api["ports"]
    assert http["containerPort"] == port and http["name"] == "http"
    assert api["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert api["startupProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    service = one(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"].items() <= pod_labels(objects).items()
    policy = one(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels(objects).items()
    assert {"port": "http", "protocol": "TCP"} in policy["ingress"][0]["ports"]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert {53, 5432} <= egress_ports


def pod_labels(objects) -> dict[str, str]:
    return one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]


def test_settings_come_from_the_config_map_and_secrets_from_the_secret(objects):
    config = one(objects, "ConfigMap")
    unknown = [k for k in config["data"] if k not in SETTINGS and not k.startswith("OTEL_")]
    assert not unknown, f"not settings: {unknown}"
    Settings(  # the ConfigMap with a Secret's values is a valid configuration
        **{k.lower(): v for k, v in config["data"].items() if not k.startswith("OTEL_")},
        database_url="postgresql://u:p@pooler/db",
        database_direct_url="postgresql://u:p@db/db",
        api_keys="k",
        _env_file=None,
    )
    assert config["data"]["MIGRATE_ON_START"] == "false"
    (api,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert api["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    env = env_of(api)
    for name in ("DATABASE_URL", "DATABASE_DIRECT_URL", "API_KEYS"):
        assert env[name]["secretKeyRef"]["key"] == name
    assert not any(re.search(r"postgres(ql)?://", str(v)) for v in config["data"].values())


def test_the_migration_job_goes_straight_to_postgresql(objects):
    job = one(objects, "Job")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["python", "-m", "service", "migrate"]
    (api,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert migrate["image"] == api["image"]
    # Through a transaction pooler yoyo's session would be split across server connections.
    assert env_of(migrate)["DATABASE_URL"]["secretKeyRef"]["key"] == "DATABASE_DIRECT_URL"


def test_non_root_read_only_resources_and_graceful_termination(objects):
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.findall(r"^USER\s+(\d+)", dockerfile, re.MULTILINE)[-1])
    config = one(objects, "ConfigMap")["data"]
    default_grace = Settings.model_fields["shutdown_grace_seconds"].default
    grace = float(config.get("SHUTDOWN_GRACE_SECONDS", default_grace))
    for workload in (one(objects, "Deployment"), one(objects, "Job")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]["cpu"]
            assert container["resources"]["limits"]["memory"]
            assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    pause = float(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + grace


def test_disruption_budget_and_autoscaler_target_the_deployment(objects):
    deployment = one(objects, "Deployment")
    pdb = one(objects, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels(objects).items()
    assert pdb["minAvailable"] == 1
    hpa = one(objects, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["minReplicas"] > pdb["minAvailable"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
