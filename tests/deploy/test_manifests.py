"""The Kubernetes manifests in deploy/, checked offline: they parse, every kind is one we know,
selectors match their pods, every queue has exactly one autoscaled worker, beat is a singleton,
and everything uses one image and the same configuration. No cluster needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from apps.queues import ALL_QUEUES

BASE = Path(__file__).resolve().parents[2] / "deploy" / "base"
KNOWN = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}
ROLES = {"web", "worker", "beat", "migrate"}  # docker/entrypoint.sh


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    docs = load(BASE / "kustomization.yaml")
    assert len(docs) == 1
    return docs[0]


@pytest.fixture(scope="module")
def docs(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for name in kustomization["resources"] for d in load(BASE / name)]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_kustomization_lists_every_manifest(kustomization: dict[str, Any]) -> None:
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    examples = {n for n in on_disk if n.endswith(".example.yaml")}
    assert sorted(kustomization["resources"]) == sorted(on_disk - examples)
    assert examples == {"secret.example.yaml"}  # never applied: a real secret is made apart
    assert kustomization["namespace"] == "driftline"


def test_every_document_is_a_known_kind_with_a_name(docs: list[dict[str, Any]]) -> None:
    names: set[tuple[str, str]] = set()
    for doc in docs + load(BASE / "secret.example.yaml"):
        assert (doc["apiVersion"], doc["kind"]) in KNOWN, doc.get("kind")
        name = doc["metadata"]["name"]
        assert name.startswith("driftline")
        assert (doc["kind"], name) not in names, f"duplicate {doc['kind']} {name}"
        names.add((doc["kind"], name))


def test_selectors_match_their_pods(docs: list[dict[str, Any]]) -> None:
    workloads = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    pods = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in workloads.items()}
    for name, deployment in workloads.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pods[name].items(), name
        # No other deployment's pods may match this selector (a shared selector fights).
        others = [
            n for n, labels in pods.items() if n != name and selector.items() <= labels.items()
        ]
        assert not others, (name, others)
    for kind in ("Service", "PodDisruptionBudget"):
        for doc in of_kind(docs, kind):
            spec = doc["spec"]
            selector = spec["selector"] if kind == "Service" else spec["selector"]["matchLabels"]
            matched = [n for n, labels in pods.items() if selector.items() <= labels.items()]
            assert len(matched) == 1, (kind, doc["metadata"]["name"], matched)
    for doc in of_kind(docs, "HorizontalPodAutoscaler") + of_kind(docs, "ScaledObject"):
        target = doc["spec"]["scaleTargetRef"]
        assert target["name"] in workloads, target
        assert target.get("kind", "Deployment") == "Deployment"


def test_each_queue_has_exactly_one_autoscaled_worker(docs: list[dict[str, Any]]) -> None:
    served: dict[str, list[str]] = {q: [] for q in ALL_QUEUES}
    for deployment in of_kind(docs, "Deployment"):
        container = pod_spec(deployment)["containers"][0]
        if container["args"][0] != "worker":
            continue
        assert len(container["args"]) == 2, "a worker must name its queues"
        for queue in container["args"][1].split(","):
            assert queue in served, f"unknown queue {queue}"
            served[queue].append(deployment["metadata"]["name"])
    assert all(len(v) == 1 for v in served.values()), served

    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in of_kind(docs, "ScaledObject")}
    for queue, (target,) in served.items():
        trigger = scaled[target]["spec"]["triggers"][0]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == queue
        assert int(trigger["metadata"]["listLength"]) > 0
        spec = scaled[target]["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]


def test_beat_is_a_singleton_and_the_web_autoscales(docs: list[dict[str, Any]]) -> None:
    by_role = {
        pod_spec(d)["containers"][0]["args"][0]: d
        for d in of_kind(docs, "Deployment")
        if pod_spec(d)["containers"][0]["args"][0] != "worker"
    }
    beat = by_role["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    scaled_targets = {
        d["spec"]["scaleTargetRef"]["name"]
        for d in of_kind(docs, "HorizontalPodAutoscaler") + of_kind(docs, "ScaledObject")
    }
    assert beat["metadata"]["name"] not in scaled_targets

    web = by_role["web"]
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == web["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    container = pod_spec(web)["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health"
    port = container["ports"][0]
    (service,) = of_kind(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])

    (job,) = of_kind(docs, "Job")
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_one_image_one_configuration_and_resources_everywhere(
    docs: list[dict[str, Any]], kustomization: dict[str, Any]
) -> None:
    (image,) = kustomization["images"]
    (config,) = of_kind(docs, "ConfigMap")
    secret_keys = set(load(BASE / "secret.example.yaml")[0]["stringData"])
    # What settings.py cannot run without in production, plus what the KEDA scalers read.
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= secret_keys
    for workload in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        name = workload["metadata"]["name"]
        for container in pod_spec(workload)["containers"]:
            assert container["image"].split(":")[0] == image["name"], name
            assert container["args"][0] in ROLES, name
            sources = {
                next(iter(k for k in ref if k.endswith("Ref"))): next(
                    v["name"] for k, v in ref.items() if k.endswith("Ref")
                )
                for ref in container["envFrom"]
            }
            assert sources == {
                "configMapRef": config["metadata"]["name"],
                "secretRef": "driftline-secrets",
            }, name
            resources = container["resources"]
            assert resources["requests"]["cpu"], name
            assert resources["requests"]["memory"], name
            assert "memory" in resources["limits"], name
    for scaled in of_kind(docs, "ScaledObject"):
        meta = scaled["spec"]["triggers"][0]["metadata"]
        assert meta["addressFromEnv"] in secret_keys
        assert meta["passwordFromEnv"] in secret_keys
