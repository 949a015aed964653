"""What the Kubernetes manifests must promise, beyond the schema kubernetes-validate checks.

Usage: check-deploy.py DIR. Exits 1 naming every broken promise: two or more replicas that a
disruption or the autoscaler never takes below one and two; probes on the service's own
/readyz and /healthz on the port the image exposes; a non-root, read-only, capability-free
container with requests and limits; secrets only by reference to a Secret.
"""

import pathlib
import re
import sys

import yaml

# REDIS_URL carries the Redis password (AUTH), so it is a secret too.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|API_KEY|TOKEN|REDIS_URL", re.IGNORECASE)


def main(directory: pathlib.Path) -> list[str]:
    manifests = {}
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            manifests[document["kind"]] = document
    problems = []

    def require(condition, problem):
        if not condition:
            problems.append(problem)

    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"]:
        require(kind in manifests, f"no {kind} in {directory}")
    if problems:
        return problems
    deployment = manifests["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [container] = pod["containers"]
    exposed = re.search(r"^EXPOSE (\d+)", pathlib.Path("Dockerfile").read_text(), re.MULTILINE)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    require(deployment["spec"]["replicas"] >= 2, "the Deployment runs fewer than 2 replicas")
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        get = container.get(probe, {}).get("httpGet", {})
        require(get.get("path") == path, f"{probe} does not GET {path}")
        require(ports.get(get.get("port")) == int(exposed.group(1)), f"{probe} is not on the port the Dockerfile exposes")
    security = container.get("securityContext", {})
    require(pod.get("securityContext", {}).get("runAsNonRoot") is True, "the pod may run as root")
    require(security.get("readOnlyRootFilesystem") is True, "the root file system is writable")
    require(security.get("allowPrivilegeEscalation") is False, "privilege escalation is allowed")
    require(security.get("capabilities", {}).get("drop") == ["ALL"], "capabilities are not all dropped")
    for kind in ["requests", "limits"]:
        for resource in ["cpu", "memory"]:
            require(resource in container.get("resources", {}).get(kind, {}), f"no {resource} {kind}")
    for variable in container.get("env", []):
        require("value" not in variable or not SECRET_NAME.search(variable["name"]), f"{variable['name']} is inline")
    secret_refs = [source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source]
    require(secret_refs, "no Secret is referenced (envFrom secretRef)")
    for key in manifests["ConfigMap"].get("data", {}):
        require(not SECRET_NAME.search(key), f"{key} is in the ConfigMap; it belongs in the Secret")

    selects = lambda selector: all(labels.get(k) == v for k, v in selector.items())
    require(selects(manifests["Service"]["spec"]["selector"]), "the Service selects no pod of the Deployment")
    require(selects(manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]), "the PDB selects no pod")
    require(manifests["PodDisruptionBudget"]["spec"].get("minAvailable", 0) >= 1, "the PDB lets every pod go")
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    require(hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"], "the HPA scales another Deployment")
    require(hpa["minReplicas"] >= 2, "the HPA may scale below 2 replicas")
    return problems


if __name__ == "__main__":
    found = main(pathlib.Path(sys.argv[1]))
    for problem in found:
        print(f"deploy: {problem}", file=sys.stderr)
    print(f"deploy: {'FAILED' if found else 'ok'}")
    sys.exit(1 if found else 0)
