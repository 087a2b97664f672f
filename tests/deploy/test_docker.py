"""docker/ cannot run here (no Docker engine): parse it and check every reference instead."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def _compose() -> dict[str, object]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_dockerfile_copies_only_files_that_exist() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.M)
    assert stages == ["build", "runtime"]
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert "torch==2.13.0" in text  # never the CUDA build by accident
    assert re.search(r"^USER driftline$", text, flags=re.M)


def test_compose_services_are_complete_and_consistent() -> None:
    compose = _compose()
    services = compose["services"]
    assert isinstance(services, dict)
    assert {"postgres", "redis", "migrate", "web", "worker", "worker-embed", "beat"} <= set(
        services
    )
    roles = set(re.findall(r"^\s+(\w+)\)", (DOCKER / "entrypoint.sh").read_text(), flags=re.M))
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        if "build" in service:
            build = service["build"]
            assert (DOCKER / build["context"] / build["dockerfile"]).resolve().exists()
            role = service["command"][0]
            assert role in roles, f"{name} runs unknown role {role}"
            env = service["environment"]
            assert {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY"} <= set(env), name
    assert "pgvector" in services["postgres"]["image"]
    assert "noeviction" in services["redis"]["command"]
    assert set(compose["volumes"]) == {"pgdata", "redisdata"}


def test_worker_queues_cover_every_queue() -> None:
    from apps.queues import ALL_QUEUES

    services = _compose()["services"]
    assert isinstance(services, dict)
    served = set()
    for service in services.values():
        if service.get("command", [None])[0] == "worker":
            served |= set(service["command"][1].split(","))
    assert served == set(ALL_QUEUES)
