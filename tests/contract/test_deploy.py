"""docker-compose.yml and deploy/ cannot run here (no Docker engine), so they are checked
against the code: settings names, required variables, images, ports, health checks."""

from __future__ import annotations

import importlib
import re
import secrets
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from cryptography.fernet import Fernet

from shared.topics import OWN_ENV as TOPICS_JOB_ENV
from shared.settings import BaseServiceSettings
from stack.stack import APPS, CONSOLE, SERVICES, Stack, StackConfig, module_of

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
K8S = {
    p.stem: list(yaml.safe_load_all(p.read_text()))
    for p in (ROOT / "deploy" / "k8s").glob("*.yaml")
}


# Every image can come from a mirror (Docker Hub does not pull in mainland China).
REGISTRY = re.escape("${WHISTLE_REGISTRY:-docker.io}/")
APP_IMAGE = "${WHISTLE_IMAGE:-whistle}:${WHISTLE_TAG:-0.1.0}"


def seconds(duration: str) -> float:
    """A compose duration ("40s", "1m30s") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * unit[u] for n, u in parts)


def documented_secrets() -> dict[str, dict[str, str]]:
    """The Secrets the manifests read, as config.yaml documents them: its comments hold the
    ``kubectl create secret generic NAME --from-literal=KEY=VALUE ...`` commands (the base
    ships no Secret, so applying it never overwrites a real one)."""
    text = (ROOT / "deploy" / "k8s" / "config.yaml").read_text()
    commands = re.sub(r"\\\n#\s*", " ", text)  # join continued comment lines
    found: dict[str, dict[str, str]] = {}
    for name, args in re.findall(r"create secret generic (\S+)([^\n]*)", commands):
        found[name] = dict(re.findall(r"--from-literal=([\w-]+)=(\S+)", args))
    return found


def settings_class(service: str) -> type[BaseServiceSettings]:
    return importlib.import_module(f"{module_of(service)}.config").Settings


def env_names(service: str) -> set[str]:
    return {name.upper() for name in settings_class(service).model_fields}


def required_names(service: str) -> set[str]:
    return {n.upper() for n, f in settings_class(service).model_fields.items() if f.is_required()}


@pytest.mark.parametrize("service", APPS)
def test_compose_service_matches_its_settings(service):
    spec = COMPOSE[service]
    env = spec["environment"]
    assert required_names(service) <= set(env), "a required setting is not set"
    unknown = set(env) - env_names(service)
    assert not unknown, f"variables no setting reads (typos?): {unknown}"
    # The signing key comes from the operator's environment, never from the file.
    assert re.fullmatch(r"\$\{WHISTLE_AUTH_SECRET:\?[^}]+\}", env["AUTH_SECRET"])
    # Compose fills ${NAME:-default} from the operator's environment, else the default.
    resolved = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
    resolved["AUTH_SECRET"] = secrets.token_urlsafe(36)
    if "CHANNEL_SECRETS_KEYS" in env:  # notify's sealing keys: from the environment too
        assert re.fullmatch(
            r"\$\{WHISTLE_CHANNEL_SECRETS_KEYS:\?[^}]+\}", env["CHANNEL_SECRETS_KEYS"]
        )
        resolved["CHANNEL_SECRETS_KEYS"] = Fernet.generate_key().decode()
    settings = settings_class(service).model_validate({k.lower(): v for k, v in resolved.items()})
    assert settings.service_name == service
    assert settings.environment == "production" and settings.kafka_idempotent_producer
    port = settings.http_port
    assert port == settings_class(service).model_fields["http_port"].default
    assert port == StackConfig().ports[service], "embedded and compose ports differ"
    assert spec["ports"] == [f"{port}:{port}"]
    assert spec["command"] == ["python", "-m", module_of(service), "serve"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(spec["healthcheck"]["test"])


@pytest.mark.parametrize("service", APPS)
def test_compose_migrates_before_each_service_against_its_own_database(service):
    spec, migrate = COMPOSE[service], COMPOSE[f"{service}-migrate"]
    assert migrate["command"] == ["python", "-m", module_of(service), "migrate"]
    assert migrate["environment"] == spec["environment"]
    assert spec["depends_on"][f"{service}-migrate"]["condition"] == "service_completed_successfully"
    if service == CONSOLE:  # the gateway uses no broker; it opens once the services are up
        assert {s: {"condition": "service_healthy"} for s in SERVICES}.items() <= spec[
            "depends_on"
        ].items()
    else:
        assert spec["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    dsn = urlparse(spec["environment"]["DATABASE_URL"])
    pg = COMPOSE[dsn.hostname]
    assert re.fullmatch(REGISTRY + r"library/postgres:\d+", pg["image"]) and "healthcheck" in pg
    assert pg["environment"]["POSTGRES_DB"] == dsn.path.lstrip("/") == f"whistle_{service}"
    assert pg["environment"]["POSTGRES_USER"] == dsn.username
    assert pg["environment"]["POSTGRES_PASSWORD"] == dsn.password
    assert migrate["depends_on"][dsn.hostname]["condition"] == "service_healthy"


def test_compose_has_one_database_per_service_and_kafka_in_kraft_mode():
    hosts = {urlparse(COMPOSE[s]["environment"]["DATABASE_URL"]).hostname for s in APPS}
    assert len(hosts) == len(APPS)
    kafka = COMPOSE["kafka"]
    assert re.fullmatch(REGISTRY + r"apache/kafka:[\d.]+", kafka["image"])
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "healthcheck" in kafka
    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split("//")[1]
    for s in SERVICES:
        assert COMPOSE[s]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == advertised
    assert COMPOSE["kafka-topics"]["command"][:3] == ["python", "-m", "shared.topics"]


def test_one_image_built_from_the_dockerfile():
    images = {COMPOSE[s]["image"] for s in APPS} | {COMPOSE[f"{s}-migrate"]["image"] for s in APPS}
    assert images == {APP_IMAGE}
    for s in APPS:
        assert COMPOSE[s]["build"]["dockerfile"] == "deploy/Dockerfile"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "uv sync --locked --no-dev" in dockerfile
    for folder in ("shared", "services", "web"):
        assert re.search(rf"^COPY {folder} ", dockerfile, re.M)


@pytest.mark.parametrize("service", APPS)
def test_every_variable_the_embedded_stack_sets_is_a_setting(service):
    env = Stack(StackConfig()).service_env(service)
    ours = {k for k in env if k.isupper() and k not in __import__("os").environ}
    ours.discard("PYTHONPATH")
    known = set().union(*(env_names(s) for s in APPS))
    assert ours <= known, ours - known


def test_links_in_messages_point_at_the_console():
    """notify's PUBLIC_BASE_URL is the console's address in every shape of the system."""
    stack = Stack(StackConfig())
    assert stack.service_env("notify")["PUBLIC_BASE_URL"] == stack.console_url
    assert (
        COMPOSE["notify"]["environment"]["PUBLIC_BASE_URL"]
        == COMPOSE["web"]["environment"]["PUBLIC_BASE_URL"]
    )
    assert "PUBLIC_BASE_URL" in next(d for d in K8S["config"] if d["kind"] == "ConfigMap")["data"]


@pytest.mark.parametrize("service", APPS)
def test_kubernetes_deployment_matches_its_settings(service):
    deployment, svc, *rest = K8S[service]
    config = next(d for d in K8S["config"] if d["kind"] == "ConfigMap")["data"]
    secrets_ = documented_secrets()
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (migrate,) = pod["initContainers"]
    assert migrate["command"] == ["python", "-m", module_of(service), "migrate"]
    assert container["command"] == ["python", "-m", module_of(service), "serve"]
    names = {e["name"] for e in container["env"]} | set(config)
    assert required_names(service) <= names
    # (the ConfigMap also feeds the topics Job: names only shared/topics.py reads)
    assert names <= set().union(*(env_names(s) for s in APPS), TOPICS_JOB_ENV)
    assert migrate["env"] == container["env"]
    auth = next(e for e in container["env"] if e["name"] == "AUTH_SECRET")
    assert auth["valueFrom"]["secretKeyRef"]["name"] == "whistle-auth"
    for env in container["env"]:  # every Secret key read is documented (kubectl create ...)
        if ref := env.get("valueFrom", {}).get("secretKeyRef"):
            assert ref["key"] in secrets_.get(ref["name"], {}), f"undocumented secret {ref}"
    db = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
    ref = db["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "whistle-databases"
    assert secrets_[ref["name"]][ref["key"]].endswith(f"/whistle_{service}")
    port = settings_class(service).model_fields["http_port"].default
    assert container["ports"][0]["containerPort"] == port
    assert {"name": "HTTP_PORT", "value": str(port)} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert svc["spec"]["ports"][0]["port"] == port
    kustomization = K8S["kustomization"][0]["resources"]
    assert f"{service}.yaml" in kustomization
    if service == CONSOLE:  # the console is what users reach: through the Ingress
        (ingress,) = rest
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend["name"] == svc["metadata"]["name"]
        assert (
            ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"]
            == "off"
        )
    else:
        assert rest == []


def test_the_kubernetes_base_ships_no_secret():
    """An example Secret in the base would overwrite the real one on every apply."""
    kinds = {d["kind"] for docs in K8S.values() for d in docs if d}
    assert "Secret" not in kinds
    assert set(documented_secrets()) == {
        "whistle-databases",
        "whistle-auth",
        "whistle-notify-secrets",
    }


def test_production_settings_refuse_a_missing_or_default_signing_key():
    from pydantic import ValidationError

    from shared.settings import DEV_AUTH_SECRET

    env = {k.lower(): v for k, v in COMPOSE["intake"]["environment"].items()}
    for secret in (
        None,
        DEV_AUTH_SECRET,
        "too-short",
        "replace-me-with-a-random-secret-of-at-least-32-characters",
    ):
        values = {**env, "auth_secret": secret}
        if secret is None:
            values.pop("auth_secret")
        with pytest.raises(ValidationError, match="AUTH_SECRET"):
            settings_class("intake").model_validate(values)


def one_shot(name: str) -> bool:
    return COMPOSE[name].get("restart") == "no"


def test_kafka_keeps_its_log_on_the_volume():
    """The apache/kafka image logs to /tmp/kraft-combined-logs unless told otherwise: data
    lost whenever the container is recreated."""
    kafka = COMPOSE["kafka"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"]}
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    assert log_dirs and all(d in mounts for d in log_dirs), (log_dirs, mounts)
    named = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"]
    assert all(mounts[d] in named for d in log_dirs), "the log is on a named volume"


def test_a_stop_waits_for_the_graceful_shutdown():
    """Compose kills a container 10 s after SIGTERM unless told otherwise; the services need
    uvicorn's graceful window, then the broker's for in-flight handlers and the flush."""
    uvicorn = re.search(r"timeout_graceful_shutdown=(\d+)", (ROOT / "shared/cli.py").read_text())
    broker = re.search(r"graceful_timeout=([\d.]+)", (ROOT / "shared/broker.py").read_text())
    assert uvicorn and broker
    needed = float(uvicorn.group(1)) + float(broker.group(1)) + 5  # + the outbox flush
    for name in APPS:
        assert seconds(COMPOSE[name].get("stop_grace_period", "10s")) >= needed, name
    assert seconds("1m30s") == 90 and seconds("40s") == 40
    with pytest.raises(AssertionError):
        seconds("40 s")


def test_every_long_running_service_has_a_healthcheck():
    running = [name for name in COMPOSE if not one_shot(name)]
    assert set(APPS) | {"kafka"} <= set(running)
    for name in running:
        check = COMPOSE[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    assert {f"{s}-migrate" for s in APPS} | {"kafka-topics"} <= {
        name for name in COMPOSE if one_shot(name)
    }


def test_every_image_is_pinned_and_its_registry_overridable():
    for name, spec in COMPOSE.items():
        image = spec["image"]
        assert image == APP_IMAGE or re.match(REGISTRY, image), f"{name}: fixed registry"
        resolved = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", image)
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", resolved), f"{name}: no tag in {resolved}"
        assert not resolved.endswith(":latest"), f"{name}: {resolved}"
