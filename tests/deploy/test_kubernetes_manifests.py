"""deploy/k8s/ agrees with the Kubernetes API and with the code it runs.

No cluster here: every manifest kustomization.yaml lists is validated against the Kubernetes API's OpenAPI schema
(kubernetes-validate's bundled schemas, strict: an unknown or misplaced field fails), and the pieces are checked
against each other and against the application: settings exist, probes hit the service's routes, Services select
the pods and name their ports, the autoscaler's latency metric is one the Prometheus Adapter rule makes from a
series the service exports.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from settings_env import assert_setting_exists

from autoinspect.config import Settings
from autoinspect.serving.metrics import ServiceMetrics
from autoinspect.serving.routes_health import router as health_router

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
"""The oldest minor still supported upstream when this was written; a field newer than it fails validation."""
NOT_APPLIED = {"kustomization.yaml", "prometheus-adapter-values.yaml", "airflow-pod-template.yaml"}


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def manifests(kustomization: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource of the kustomization by (kind, name)."""
    found = {}
    for file in kustomization["resources"]:
        for document in yaml.safe_load_all((K8S / file).read_text()):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def _pod(manifests: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    pod: dict[str, Any] = manifests[("Deployment", name)]["spec"]["template"]
    return pod


def _container(manifests: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    containers = _pod(manifests, name)["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_the_kustomization_lists_every_manifest_and_each_is_valid_for_the_api(
    kustomization: dict[str, Any], manifests: dict[tuple[str, str], dict[str, Any]]
) -> None:
    on_disk = {path.name for path in K8S.glob("*.yaml")} - NOT_APPLIED
    assert sorted(kustomization["resources"]) == sorted(on_disk)
    for document in manifests.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    kinds = {kind for kind, _ in manifests}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"} <= kinds


def test_the_airflow_task_pod_template_is_a_valid_pod_with_no_shared_volume() -> None:
    """KubernetesExecutor runs each task in this pod: the container Airflow expects, an empty home of its own."""
    pod = yaml.safe_load((K8S / "airflow-pod-template.yaml").read_text())
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "base" and pod["spec"]["restartPolicy"] == "Never"
    assert [volume for volume in pod["spec"]["volumes"] if "emptyDir" not in volume] == []
    names = {variable["name"] for variable in container["env"]}
    assert {f"AUTOINSPECT_STORAGE__{kind}_URL" for kind in ("IMAGES", "DATASETS", "RESULTS")} <= names


def test_a_misplaced_field_fails_validation(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The check above can fail: strict validation refuses a field where the API has none."""
    broken = yaml.safe_load(yaml.safe_dump(manifests[("Deployment", "autoinspect-api")]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_setting_the_containers_set_exists_and_loads(
    manifests: dict[tuple[str, str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_placeholders = {
        "store-url": "postgresql+psycopg2://u:p@db/autoinspect",
        "tracking-uri": "http://mlflow",
        "images-url": "s3://autoinspect/images",
        "datasets-url": "s3://autoinspect/datasets",
        "results-url": "s3://autoinspect/batch",
        "reports-url": "s3://autoinspect/reports",
    }
    task_pod = yaml.safe_load((K8S / "airflow-pod-template.yaml").read_text())
    containers = {name: _container(manifests, name) for name in ("autoinspect-api", "autoinspect-ui")}
    for name, container in {**containers, "airflow task pod": task_pod["spec"]["containers"][0]}.items():
        for variable in container["env"]:
            if not variable["name"].startswith("AUTOINSPECT_"):
                continue
            assert_setting_exists(variable["name"], name)
            secret = variable.get("valueFrom", {}).get("secretKeyRef")
            value = secret_placeholders[secret["key"]] if secret else variable["value"]
            assert not secret or secret["name"] == "autoinspect"
            monkeypatch.setenv(variable["name"], value)
        Settings()  # extra="forbid" and typed fields: a bad value fails here
        for variable in container["env"]:
            monkeypatch.delenv(variable["name"], raising=False)


def test_probes_hit_the_services_routes_and_threads_match_the_cpus(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    api = _container(manifests, "autoinspect-api")
    routes = {getattr(route, "path", "") for route in health_router.routes}
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz" and "/readyz" in routes
    assert {api["livenessProbe"]["httpGet"]["path"], api["startupProbe"]["httpGet"]["path"]} <= routes
    env = {variable["name"]: variable.get("value") for variable in api["env"]}
    assert env["AUTOINSPECT_SERVING__INFERENCE_THREADS"] == api["resources"]["limits"]["cpu"]
    assert api["resources"]["requests"] == api["resources"]["limits"]  # Guaranteed QoS: no neighbour takes its cores
    assert int(env["AUTOINSPECT_SERVING__PORT"]) == api["ports"][0]["containerPort"]
    assert _pod(manifests, "autoinspect-api")["spec"]["terminationGracePeriodSeconds"] >= 30


def test_services_select_the_pods_and_everything_names_ports_that_exist(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    port_names = {}
    for (kind, name), document in manifests.items():
        if kind == "Deployment":
            labels = document["spec"]["template"]["metadata"]["labels"]
            assert document["spec"]["selector"]["matchLabels"].items() <= labels.items()
            port_names[name] = {port["name"] for port in _container(manifests, name)["ports"]}
    services = {name: doc for (kind, name), doc in manifests.items() if kind == "Service"}
    for name, service in services.items():
        selected = [
            deployment
            for deployment in port_names
            if service["spec"]["selector"].items() <= _pod(manifests, deployment)["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, name
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names[selected[0]]
    for rule in manifests[("Ingress", "autoinspect")]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
    ui_env = {variable["name"]: variable.get("value") for variable in _container(manifests, "autoinspect-ui")["env"]}
    assert ui_env["AUTOINSPECT_UI__API_URL"] == "http://autoinspect-api:8000"
    assert not any("KEY" in name for name in ui_env if not name.startswith("AWS_"))  # people sign in with their own


def test_the_autoscaler_scales_the_api_on_a_latency_metric_made_from_what_the_service_exports(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    autoscaler = manifests[("HorizontalPodAutoscaler", "autoinspect-api")]["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == "autoinspect-api" and autoscaler["minReplicas"] >= 2
    pods_metric = next(metric["pods"] for metric in autoscaler["metrics"] if metric["type"] == "Pods")
    adapter = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())["rules"]["custom"]
    rule = next(rule for rule in adapter if rule["name"]["as"] == pods_metric["metric"]["name"])
    series = re.match(r"(\w+)_bucket\{", rule["seriesQuery"])
    assert series is not None
    exported = {metric.name for metric in ServiceMetrics().registry.collect()}
    assert series[1] in exported, (series[1], sorted(exported))
    assert 'endpoint="/v1/inspect"' in rule["metricsQuery"]
    assert manifests[("Deployment", "autoinspect-api")]["spec"]["template"]["metadata"]["annotations"][
        "prometheus.io/path"
    ] in {getattr(route, "path", "") for route in health_router.routes}
