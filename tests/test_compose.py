"""compose.yaml parses and every service runs a real `ioc` command with real settings."""

from __future__ import annotations

import re

import pytest
import yaml

from ioc.cli import build_parser
from ioc.settings import REPO_ROOT, Settings

COMPOSE = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
APP_IMAGE = "scripts/Containerfile"
APP_SERVICES = [name for name, svc in SERVICES.items() if svc.get("build", {}).get("dockerfile") == APP_IMAGE]


def test_the_deployment_has_every_part() -> None:
    assert {"db", "mqtt", "migrate", "ingest", "api", "simulators"} <= set(SERVICES)
    assert SERVICES["simulators"]["profiles"] == ["simulators"]
    assert SERVICES["ingest"]["deploy"]["replicas"] >= 2
    for name in ("db", "mqtt", "ingest", "api"):
        assert "healthcheck" in SERVICES[name], name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_real_commands(name: str) -> None:
    svc = SERVICES[name]
    assert (REPO_ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).exists()
    build_parser().parse_args(svc["command"])  # exits (SystemExit) if the command or an option does not exist


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_names_real_settings(name: str) -> None:
    fields = {f.upper() for f in Settings.model_fields}
    for key in SERVICES[name]["environment"]:
        assert key.startswith("IOC_") and key[4:] in fields, f"{name}: {key} is not a setting"


def test_dependencies_wait_for_health_and_migration() -> None:
    valid = {"service_healthy", "service_completed_successfully", "service_started"}
    for name, svc in SERVICES.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES and cond["condition"] in valid, (name, dep)
    assert SERVICES["ingest"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_broker_uses_the_repository_config() -> None:
    mounts = SERVICES["mqtt"]["volumes"]
    assert "./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in mounts
    conf = (REPO_ROOT / "mosquitto.conf").read_text()
    assert re.search(r"^persistence_location /mosquitto/data/$", conf, re.M)
    assert re.search(r"^listener 1883$", conf, re.M)


def test_each_service_connects_as_its_own_database_role() -> None:
    """The one-shot jobs migrate and administer as the owner; the services run with their runtime roles."""
    expected = {
        "migrate": "ioc_owner",
        "broker-auth": "ioc_owner",
        "ingest": "ioc_ingest",
        "api": "ioc_serve",
        "simulators": "ioc_read",
    }
    for name, role in expected.items():
        url = SERVICES[name]["environment"]["IOC_DATABASE_URL"]
        assert re.match(rf"postgresql://{role}:\$\{{IOC_DB_\w+_PASSWORD:\?", url), (name, url)


def test_the_database_creates_the_roles_and_asks_passwords_everywhere() -> None:
    db = SERVICES["db"]
    assert "POSTGRES_USER" not in db["environment"], "the application must not be the superuser"
    assert "--auth-local=scram-sha-256" in db["environment"]["POSTGRES_INITDB_ARGS"]
    assert "./migrations/roles.sql:/ioc/roles.sql:ro" in db["volumes"]
    init = next(v for v in db["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = (REPO_ROOT / init.split(":")[0]).read_text()
    assert "-f /ioc/roles.sql" in script
    for purpose in ("OWNER", "INGEST", "SERVE", "READ"):
        assert f"IOC_DB_{purpose}_PASSWORD" in db["environment"]


def test_broker_is_ioc_build_with_the_guard() -> None:
    build = SERVICES["mqtt"]["build"]
    assert (REPO_ROOT / build["context"] / build["dockerfile"]).exists()
    assert "setup-system.sh --broker-only" in (REPO_ROOT / build["dockerfile"]).read_text()
    conf = (REPO_ROOT / "mosquitto.conf").read_text()
    # broker-auth writes conf.d/ioc-guard.conf into the mqtt-auth volume, mounted at /mosquitto/auth.
    assert re.search(r"^include_dir /mosquitto/auth/conf.d$", conf, re.M)
    assert "mqtt-auth:/mosquitto/auth:ro" in SERVICES["mqtt"]["volumes"]
    assert SERVICES["broker-auth"]["command"][:2] == ["devices", "credentials-file"]
