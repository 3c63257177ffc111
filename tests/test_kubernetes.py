"""The Kubernetes manifests (kubernetes=true): valid against the Kubernetes
API schemas, offline and strictly, and shaped for safe rollouts: a migration
Job, readiness from `flask db-status`, liveness without the database, no
secret values, unprivileged pods with a read-only root filesystem."""

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_copie.plugin import Copie

from .helpers import copy
from .test_workflows import BIN

DATABASES = ["postgresql", "mysql", "sqlite"]


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "kubernetes-validate", "--strict", *paths],
        capture_output=True,
        text=True,
        check=False,
    )


def manifests(project: Path) -> dict[str, dict[str, Any]]:
    folder = project / "deploy" / "kubernetes"
    return {path.name: yaml.safe_load(path.read_text()) for path in folder.iterdir()}


@pytest.fixture(scope="module", params=DATABASES)
def project(
    request: pytest.FixtureRequest,
    copie_session: Copie,
    render: Callable[[str], Path],
) -> Path:
    if request.param == "postgresql":  # the session's own (MATRIX "kubernetes")
        return render("kubernetes")
    return copy(copie_session, {"kubernetes": True, "database": request.param})


def test_manifests_pass_strict_offline_validation(project: Path) -> None:
    folder = project / "deploy" / "kubernetes"
    resources = sorted(
        p for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    result = validate(*resources)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(resources)


def test_strict_validation_refuses_an_unknown_field(
    project: Path, tmp_path: Path
) -> None:
    """The validator is not a rubber stamp: a misspelt field fails."""
    text = (project / "deploy" / "kubernetes" / "deployment.yaml").read_text()
    broken = tmp_path / "deployment.yaml"
    broken.write_text(text.replace("readinessProbe:", "readinesProbe:"))
    assert validate(broken).returncode != 0


def test_kustomization_lists_every_manifest(project: Path) -> None:
    found = manifests(project)
    kustomization = found.pop("kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(found)
    assert kustomization["kind"] == "Kustomization"


def test_pods_are_unprivileged_with_a_read_only_root(project: Path) -> None:
    found = manifests(project)
    pods = [found["deployment.yaml"]["spec"]["template"]["spec"]]
    if "job-migrate.yaml" in found:
        pods.append(found["job-migrate.yaml"]["spec"]["template"]["spec"])
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            # gunicorn writes its worker heartbeat files in /tmp.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]


def test_settings_come_from_a_configmap_and_a_secret_reference(
    project: Path,
) -> None:
    found = manifests(project)
    kinds = {manifest["kind"] for manifest in found.values()}
    assert "Secret" not in kinds  # no secret value in the repository
    assert "SECRET_KEY" not in found["configmap.yaml"]["data"]
    container = found["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    sources = {next(iter(source)) for source in container["envFrom"]}
    assert sources == {"configMapRef", "secretRef"}


def test_probes_use_db_status_for_readiness_and_not_the_database_for_liveness(
    project: Path,
) -> None:
    deployment = manifests(project)["deployment.yaml"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"] == ["flask", "db-status"]
    liveness = container["livenessProbe"]
    assert set(liveness) & {"exec", "httpGet"} == set()  # /health reads the database
    assert liveness["tcpSocket"]["port"] == "http"


def test_migrations_run_once_per_release_before_new_pods_are_ready(
    project: Path,
) -> None:
    found = manifests(project)
    deployment = found["deployment.yaml"]["spec"]
    if "job-migrate.yaml" not in found:  # SQLite: one pod owns the file
        assert deployment["replicas"] == 1
        assert deployment["strategy"]["type"] == "Recreate"
        container = deployment["template"]["spec"]["containers"][0]
        assert container["command"] == ["/app/scripts/start.sh"]
        return
    job = found["job-migrate.yaml"]["spec"]["template"]["spec"]
    assert job["restartPolicy"] == "Never"
    assert job["containers"][0]["command"] == ["/app/scripts/start.sh", "migrate"]
    assert deployment["replicas"] >= 2
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = found["pdb.yaml"]["spec"]
    assert budget["maxUnavailable"] == 1


def test_every_production_command_goes_through_the_start_script(
    project: Path,
) -> None:
    """scripts/start.sh refuses debug and testing mode; a pod without its own
    command runs the image's, `start.sh serve` (the Dockerfile's CMD)."""
    found = manifests(project)
    (image,) = (entry["name"] for entry in found["kustomization.yaml"]["images"])
    for name, manifest in found.items():
        if manifest["kind"] not in {"Deployment", "Job"}:
            continue
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            if container["image"] != image:  # PgBouncer's
                continue
            command = container.get("command", ["/app/scripts/start.sh", "serve"])
            assert command[0] == "/app/scripts/start.sh", (name, command)
    dockerfile = (project / "Dockerfile").read_text()
    assert 'CMD ["/app/scripts/start.sh", "serve"]' in dockerfile


def test_postgresql_pods_and_the_migration_job_go_through_pgbouncer(
    project: Path,
) -> None:
    """PostgreSQL: PgBouncer in transaction mode between the app and the
    database, its Service the host of the app's DATABASE_URL, which the
    migration Job shares; its pods as locked down as the app's. The other
    engines have none (MySQL's migration lock needs a session of its own)."""
    found = manifests(project)
    configmap = (project / "deploy" / "kubernetes" / "configmap.yaml").read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    if answers["database"] != "postgresql":
        assert not any("pgbouncer" in name for name in found)
        assert "pgbouncer" not in configmap
        return
    app = found["deployment.yaml"]["metadata"]["name"]
    service = found["pgbouncer-service.yaml"]
    assert service["metadata"]["name"] == f"{app}-pgbouncer"
    assert service["spec"]["ports"][0]["port"] == 5432
    deployment = found["pgbouncer.yaml"]["spec"]
    pods = deployment["template"]
    assert service["spec"]["selector"].items() <= pods["metadata"]["labels"].items()
    assert deployment["selector"]["matchLabels"] == pods["metadata"]["labels"]
    web = found["deployment.yaml"]["spec"]["selector"]["matchLabels"]
    assert web.items() != deployment["selector"]["matchLabels"].items()
    (container,) = pods["spec"]["containers"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["POOL_MODE"]["value"] == "transaction"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == (
        f"{app}-pgbouncer"
    )
    assert container["image"].startswith("edoburu/pgbouncer:")
    assert container["image"].split(":")[1][0].isdigit()  # pinned, not latest
    # The app's Secret names the pooler; the Job reads the same Secret.
    assert f"DATABASE_URL='postgresql://user:password@{app}-pgbouncer:5432/" in (
        configmap
    )
    job = found["job-migrate.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": app}} in job["envFrom"]
    # Unprivileged, read-only root; the image writes its config to an emptyDir.
    pod = pods["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/etc/pgbouncer"
    assert pod["volumes"] == [{"name": mount["name"], "emptyDir": {}}]


def test_without_the_answer_there_are_no_manifests(
    render: Callable[[str], Path],
) -> None:
    assert not (render("defaults") / "deploy").exists()
