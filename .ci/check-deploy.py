"""What the Kubernetes manifests must promise, beyond the schema kubernetes-validate checks.

Usage: check-deploy.py DIR. Exits 1 naming every broken promise: two or more replicas that a
disruption or the autoscaler never takes below one and two; probes on the service's own
/readyz and /healthz on the port the image exposes; a non-root, read-only, capability-free
container with requests and limits; secrets only by reference to a Secret. And for the prune
CronJob: `prune --apply` from the Deployment's image with its ConfigMap and Secret, on a
five-field schedule, never two runs at once, a pod that does not restart in place, and the same
container promises.
"""

import pathlib
import re
import sys

import yaml

SECRET_NAME = re.compile(r"SECRET|PASSWORD|API_KEY|TOKEN", re.IGNORECASE)


def main(directory: pathlib.Path) -> list[str]:
    manifests = {}
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            manifests[document["kind"]] = document
    problems = []

    def require(condition, problem):
        if not condition:
            problems.append(problem)

    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "CronJob"]:
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
    check_container(pod, container, "the Deployment", require)
    secret_refs = [source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source]
    for key in manifests["ConfigMap"].get("data", {}):
        require(not SECRET_NAME.search(key), f"{key} is in the ConfigMap; it belongs in the Secret")

    selects = lambda selector: all(labels.get(k) == v for k, v in selector.items())
    require(selects(manifests["Service"]["spec"]["selector"]), "the Service selects no pod of the Deployment")
    require(selects(manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]), "the PDB selects no pod")
    require(manifests["PodDisruptionBudget"]["spec"].get("minAvailable", 0) >= 1, "the PDB lets every pod go")
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    require(hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"], "the HPA scales another Deployment")
    require(hpa["minReplicas"] >= 2, "the HPA may scale below 2 replicas")

    cronjob = manifests["CronJob"]["spec"]
    job_pod = cronjob["jobTemplate"]["spec"]["template"]["spec"]
    [prune] = job_pod["containers"]
    require(prune.get("args") == ["prune", "--apply"], "the CronJob does not run prune --apply")
    require(prune.get("image") == container.get("image"), "the CronJob runs another image than the Deployment")
    require(len(cronjob.get("schedule", "").split()) == 5, "the CronJob's schedule is not five cron fields")
    require(cronjob.get("concurrencyPolicy") == "Forbid", "two prune runs may overlap")
    require(job_pod.get("restartPolicy") == "Never", "a failed prune restarts in place instead of failing its Job")
    check_container(job_pod, prune, "the CronJob", require)
    sources = prune.get("envFrom", [])
    config_maps = {source["configMapRef"]["name"] for source in sources if "configMapRef" in source}
    secrets = {source["secretRef"]["name"] for source in sources if "secretRef" in source}
    require(manifests["ConfigMap"]["metadata"]["name"] in config_maps, "the CronJob lacks the service's ConfigMap")
    require(set(secret_refs) <= secrets, "the CronJob lacks the service's Secret")
    prune_labels = cronjob["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    selects_prune = lambda selector: all(prune_labels.get(k) == v for k, v in selector.items())
    require(not selects_prune(manifests["Service"]["spec"]["selector"]), "the Service would route traffic to a prune pod")
    require(not selects_prune(manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]), "the PDB counts prune pods")
    return problems


def check_container(pod, container, owner, require):
    """The promises every container here keeps: non-root, read-only, no capabilities, bounded."""
    security = container.get("securityContext", {})
    require(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{owner}'s pod may run as root")
    require(security.get("readOnlyRootFilesystem") is True, f"{owner}'s root file system is writable")
    require(security.get("allowPrivilegeEscalation") is False, f"{owner} allows privilege escalation")
    require(security.get("capabilities", {}).get("drop") == ["ALL"], f"{owner}'s capabilities are not all dropped")
    for kind in ["requests", "limits"]:
        for resource in ["cpu", "memory"]:
            require(resource in container.get("resources", {}).get(kind, {}), f"{owner} has no {resource} {kind}")
    for variable in container.get("env", []):
        require("value" not in variable or not SECRET_NAME.search(variable["name"]), f"{owner}: {variable['name']} is inline")
    secret_refs = [source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source]
    require(secret_refs, f"{owner} references no Secret (envFrom secretRef)")


if __name__ == "__main__":
    found = main(pathlib.Path(sys.argv[1]))
    for problem in found:
        print(f"deploy: {problem}", file=sys.stderr)
    print(f"deploy: {'FAILED' if found else 'ok'}")
    sys.exit(1 if found else 0)
