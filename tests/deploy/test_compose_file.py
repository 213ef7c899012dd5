"""deploy/docker-compose.yml agrees with the code it runs: settings it sets exist, files it names are there.

No Docker here: the file is parsed as YAML, ``${VAR}`` placeholders are filled from deploy/.env.example (every one
must be documented there), and each service's AUTOINSPECT_* environment is loaded into ``Settings``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from settings_env import assert_setting_exists

import autoinspect
from autoinspect.config import Settings
from autoinspect.ui import APP_PATH

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SITE_PACKAGES = "/usr/local/lib/python3.11/site-packages"
"""Where ``pip install .`` puts the package in the python:3.11-slim image."""
PLACEHOLDER = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _substitute(text: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in values and (values[name] or op not in (":-", ":?")):
            return values[name]
        return arg if op in ("-", ":-") else ""

    return PLACEHOLDER.sub(fill, text).replace("$$", "$")


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return _dotenv(DEPLOY / ".env.example")


@pytest.fixture(scope="module")
def compose(env_example: dict[str, str]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_substitute(COMPOSE.read_text(), env_example))
    return loaded


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


def test_every_placeholder_is_documented_in_env_example(env_example: dict[str, str]) -> None:
    used = {match["name"] for match in PLACEHOLDER.finditer(COMPOSE.read_text())}
    assert used, "no ${...} found: the pattern is wrong"
    assert sorted(used - set(env_example)) == []
    assert sorted(set(env_example) - used) == [], "documented but never used"


def test_autoinspect_settings_of_every_service_load(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    checked = 0
    for name, service in _services(compose).items():
        settings_env = {k: v for k, v in _environment(service).items() if k.startswith("AUTOINSPECT_")}
        if not settings_env:
            continue
        for key, value in settings_env.items():
            monkeypatch.setenv(key, value)
        try:
            # extra="forbid": a misspelt or removed setting is an error, not a silently ignored variable
            Settings()
            for key in settings_env:
                assert_setting_exists(key, name)
        finally:
            for key in settings_env:
                monkeypatch.delenv(key)
        checked += 1
    assert checked >= 4  # api, ui, mlflow clients in airflow...


def test_the_api_runs_replicas_with_a_readiness_check_and_production_stores(compose: dict[str, Any]) -> None:
    api = _services(compose)["api"]
    assert int(api["deploy"]["replicas"]) >= 2
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    env = _environment(api)
    assert env["AUTOINSPECT_TRACKING__URI"] == "http://mlflow:5000"
    assert env["AUTOINSPECT_STORE__URL"].startswith("postgresql+psycopg2://")
    assert env["AUTOINSPECT_SERVING__HOST"] == "0.0.0.0"
    # one home (spill file, model downloads) per replica: an anonymous volume at the home, never a shared one
    home = env["AUTOINSPECT_HOME"]
    assert home in api["volumes"], api["volumes"]
    assert not any(str(volume).split(":")[1:2] == [home] for volume in api["volumes"])
    ui = _environment(_services(compose)["ui"])
    assert ui["AUTOINSPECT_UI__API_URL"] == "http://lb:8000"
    assert not any("KEY" in name for name in ui if not name.startswith("AWS_"))  # people sign in with their own


def test_photos_and_dataset_versions_go_to_a_bucket_minio_init_creates(compose: dict[str, Any]) -> None:
    services = _services(compose)
    init = " ".join(services["minio-init"]["command"])
    bucket = _environment(services["minio-init"])["DATA_BUCKET"]
    assert "local/$DATA_BUCKET" in init and bucket
    for name in ("api", "ui", "airflow-scheduler"):
        env = _environment(services[name])
        assert env["AUTOINSPECT_STORAGE__IMAGES_URL"] == f"s3://{bucket}/images", name
        assert env["AUTOINSPECT_STORAGE__DATASETS_URL"] == f"s3://{bucket}/datasets", name
        assert env["AUTOINSPECT_STORAGE__RESULTS_URL"] == f"s3://{bucket}/batch", name
        assert env["AUTOINSPECT_STORAGE__REPORTS_URL"] == f"s3://{bucket}/reports", name
        assert env["AUTOINSPECT_STORAGE__S3_ENDPOINT_URL"] == "http://minio:9000"
        assert env["AWS_ACCESS_KEY_ID"] == _environment(services["minio"])["MINIO_ROOT_USER"]
        assert not any("images" in str(volume) for volume in services[name].get("volumes", []))


def test_the_load_balancer_is_the_apis_one_way_in_and_gets_every_setting_its_file_reads(
    compose: dict[str, Any],
) -> None:
    """tests/serving/test_load_balancer.py runs deploy/haproxy/haproxy.cfg; this checks compose runs it the same way."""
    services = _services(compose)
    lb, api = services["lb"], services["api"]
    mounted = {str(volume).split(":")[1]: str(volume).split(":")[0] for volume in lb["volumes"]}
    config = DEPLOY / mounted["/usr/local/etc/haproxy/haproxy.cfg"]
    read = set(re.findall(r'"\$\{(\w+)\}"', config.read_text()))
    env = _environment(lb)
    assert read and read == set(env), read ^ set(env)
    assert env["LB_API_SERVICE"] == f"api:{_environment(api)['AUTOINSPECT_SERVING__PORT']}"
    assert "ports" not in api and any(str(port).endswith(":8000") for port in lb["ports"])
    assert int(env["LB_MAX_REPLICAS"]) >= int(api["deploy"]["replicas"])


def test_the_celery_profile_runs_workers_on_homes_of_their_own(compose: dict[str, Any]) -> None:
    services = _services(compose)
    worker, scheduler = services["airflow-worker"], services["airflow-scheduler"]
    assert worker["profiles"] == ["celery"] == services["redis"]["profiles"]
    assert worker["command"] == ["airflow", "celery", "worker"] and int(worker["deploy"]["replicas"]) >= 2
    env = _environment(worker)
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://airflow:")
    assert env == _environment(scheduler)  # one configuration: the executor is chosen by AIRFLOW_EXECUTOR
    home = env["AUTOINSPECT_HOME"]
    assert home in worker["volumes"]  # an anonymous volume: each worker's own
    assert not any(str(volume).startswith(("home:", "images:")) for volume in worker["volumes"])
    assert "apache-airflow-providers-celery" in (DEPLOY / "Dockerfile").read_text()


def test_mlflow_stores_on_postgresql_and_s3(compose: dict[str, Any]) -> None:
    mlflow = _services(compose)["mlflow"]
    command = " ".join(mlflow["command"])
    assert "--backend-store-uri=postgresql+psycopg2://" in command
    assert "--artifacts-destination=s3://" in command and "--serve-artifacts" in command
    assert _environment(mlflow)["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_build_contexts_dockerfiles_targets_and_mounted_files_exist(compose: dict[str, Any]) -> None:
    dockerfile_targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE))
    built = 0
    for name, service in _services(compose).items():
        build = service.get("build")
        if build is not None:
            context = (DEPLOY / build["context"]).resolve()
            assert context.is_dir(), f"{name}: build context {context}"
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']}"
            assert build["target"] in dockerfile_targets, f"{name}: target {build['target']}"
            built += 1
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")) and ":" in str(volume):
                assert (DEPLOY / source).exists(), f"{name}: mounts {source}, which is missing"
    assert built >= 6
    assert {"serve", "mlflow", "ui", "airflow"} <= dockerfile_targets
    assert any(path.suffix == ".sh" for path in (DEPLOY / "postgres-init").iterdir())


def test_the_dockerfile_installs_only_extras_that_exist() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    extras = set(tomllib.loads(pyproject)["project"]["optional-dependencies"])
    used = {
        extra
        for group in re.findall(r'"\.\[([a-z,]+)\]"', (DEPLOY / "Dockerfile").read_text())
        for extra in group.split(",")
    }
    assert used and used <= extras, used - extras


def test_paths_inside_the_image_are_the_installed_package(compose: dict[str, Any]) -> None:
    package = Path(autoinspect.__file__).parent
    dags = _environment(_services(compose)["airflow-scheduler"])["AIRFLOW__CORE__DAGS_FOLDER"]
    assert dags == f"{SITE_PACKAGES}/autoinspect/orchestration/dags"
    assert (package / "orchestration" / "dags").is_dir()
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor"):
        assert _environment(_services(compose)[name])["AIRFLOW__CORE__DAGS_FOLDER"] == dags
        assert _environment(_services(compose)[name])["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    ui_app = f"{SITE_PACKAGES}/autoinspect/{APP_PATH.relative_to(package).as_posix()}"
    assert ui_app in (DEPLOY / "Dockerfile").read_text()
