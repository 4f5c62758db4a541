"""Lints and renders the Helm chart offline with Helm's own Go library (helm-python-sdk), for
the default values and a few value sets; writes each rendering for kubernetes-validate; and
validates the example custom resources in docs/examples against the CRD schemas of the chart.

Usage: chart-check.py OUT_DIR   (prints the files to validate, one per line)
"""

import json
import pathlib
import sys

import helm_python
import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "elastic-yarn"

VALUE_SETS = {
    "default": {},
    "minimal": {
        "staticip": {"enabled": False},
        "koordletMetrics": {"enabled": False},
        "grafanaDashboard": {"enabled": False},
        "operator": {"replicas": 1},
    },
    "monitored": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "networkPolicy": {
            "enabled": True,
            "scraperNamespaceSelector": {"matchLabels": {"name": "monitoring"}},
        },
        "operator": {"guarderImage": "ghcr.io/elastic-yarn/guarder:0.1.0"},
        "koordletMetrics": {"nodeSelector": {"node-role.example.com/online": "true"}},
    },
}

# Kinds of CRDs kubernetes-validate does not know: checked here for their essentials.
FOREIGN = {"monitoring.coreos.com/v1": {"ServiceMonitor", "PodMonitor"}}


def fail(message):
    print(f"chart check: {message}", file=sys.stderr)
    sys.exit(1)


def lint():
    report = helm_python.lint(str(CHART), strict=True, kube_version="v1.33.0")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    if report.get("errors") or problems:
        fail(f"helm lint: {report.get('errors')} {problems}")


def render(out_dir):
    chart = helm_python.Chart.load(str(CHART))
    written = []
    for name, values in VALUE_SETS.items():
        rendered = chart.render(values=values, name="elastic-yarn", namespace="elastic-yarn")
        documents = []
        monitors = set()
        for path, text in sorted(rendered.items()):
            if path.endswith("NOTES.txt"):
                if "kubectl get enp" not in text:
                    fail(f"{name}: NOTES.txt lacks the next steps")
                continue
            for document in yaml.safe_load_all(text):
                if not document:
                    continue
                kinds = FOREIGN.get(document.get("apiVersion"), set())
                if document.get("kind") in kinds:
                    spec = document.get("spec", {})
                    if not (spec.get("endpoints") or spec.get("podMetricsEndpoints")):
                        fail(f"{name}: {path}: a {document['kind']} without endpoints")
                    monitors.add(document["kind"])
                    continue
                documents.append(document)
        if not documents:
            fail(f"{name}: nothing rendered")
        wanted_monitors = {"ServiceMonitor", "PodMonitor"} if name == "monitored" else set()
        if monitors != wanted_monitors:
            fail(f"{name}: monitors {monitors}, wanted {wanted_monitors}")
        target = out_dir / f"chart-{name}.yaml"
        target.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        written.append(target)
        check_shape(name, documents, values)
    return written


def check_shape(name, documents, values):
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    deployments = {d["metadata"]["name"] for d in by_kind.get("Deployment", [])}
    want = {"elastic-yarn-operator"}
    if values.get("staticip", {}).get("enabled", True):
        want.add("elastic-yarn-staticip")
    if deployments != want:
        fail(f"{name}: Deployments {deployments}, wanted {want}")
    for workload in by_kind.get("Deployment", []) + by_kind.get("DaemonSet", []):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            security = container.get("securityContext", {})
            hardened = (
                security.get("readOnlyRootFilesystem") is True
                and security.get("runAsNonRoot") is True
                and security.get("allowPrivilegeEscalation") is False
                and security.get("capabilities", {}).get("drop") == ["ALL"]
            )
            if not hardened or "resources" not in container:
                fail(f"{name}: {workload['metadata']['name']}/{container['name']} is not hardened")
    if values.get("grafanaDashboard", {}).get("enabled", True):
        maps = [m for m in by_kind.get("ConfigMap", []) if "elastic-yarn.json" in m.get("data", {})]
        if len(maps) != 1:
            fail(f"{name}: no dashboard ConfigMap")
        json.loads(maps[0]["data"]["elastic-yarn.json"])


def crd_schemas():
    schemas = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            key = (f"{group}/{version['name']}", kind)
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def examples():
    schemas = crd_schemas()
    checked = 0
    for path in sorted((ROOT / "docs" / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            key = (document.get("apiVersion"), document.get("kind"))
            if key not in schemas:
                fail(f"{path.name}: no CRD in the chart for {key}")
            try:
                jsonschema.validate(document, schemas[key])
            except jsonschema.ValidationError as error:
                fail(f"{path.name}: {error.message} at {list(error.absolute_path)}")
            checked += 1
    if checked == 0:
        fail("no example custom resources")


def main():
    out_dir = pathlib.Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    lint()
    for path in render(out_dir):
        print(path)
    examples()


if __name__ == "__main__":
    main()
