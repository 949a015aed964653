"""What the Kubernetes manifests must promise, beyond the schema kubernetes-validate checks.

Usage: check-deploy.py DIR. DIR holds what every deployment applies (Deployment, Service,
HorizontalPodAutoscaler, PodDisruptionBudget, Ingress, and networkpolicy.yaml.example), and one
directory per credential mode (static/, per-user/) with that mode's ConfigMap and Secret example.
Exits 1 naming every broken promise:
- two or more replicas that a disruption or the autoscaler never takes below one and two;
- probes on the service's own /readyz and /healthz on the port the image exposes;
- a non-root, read-only, capability-free container with requests and limits, and time to drain;
- secrets only by reference to a Secret; each mode's ConfigMap free of secrets, its Secret
  example holding what that mode needs and nothing the other mode needs; every variable one
  .env.example documents;
- /metrics on a port of its own (METRICS_BIND_ADDR) that the Service names and the Ingress never
  routes to, so it is not public;
- an Ingress with TLS for every host it serves, and TRUST_PROXY_HEADERS on behind it;
- a NetworkPolicy that lets in only the API and metrics ports and lets out only DNS and HTTPS;
- the image tagged with the crate's version;
- per-user/cronjob-prune.yaml: `prune --apply` from the Deployment's image with the per_user
  ConfigMap and Secret, on a five-field schedule, never two runs at once, a pod that does not
  restart in place and that neither the Service nor the PDB selects, and the same container
  promises.
"""

import pathlib
import re
import sys

import yaml

# REDIS_URL carries the Redis password (AUTH), so it is a secret too.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|API_KEY|ANON_KEY|_TOKEN|^REDIS_URL)$", re.IGNORECASE)
MODES = {"static": "static", "per-user": "per_user"}
# What each mode's Secret must hold, and must not.
SECRET_NEEDS = {
    "static": ({"TELNYX_WEBRTC_USERNAME", "TELNYX_WEBRTC_PASSWORD"}, {"TELNYX_API_KEY"}),
    "per_user": ({"TELNYX_API_KEY"}, {"TELNYX_WEBRTC_PASSWORD", "TELNYX_WEBRTC_USERNAME"}),
}


def load(paths):
    manifests = {}
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            manifests[document["kind"]] = document
    return manifests


def port_of(address):
    """The port of host:port, or None."""
    match = re.fullmatch(r".+:(\d+)", str(address or ""))
    return int(match.group(1)) if match else None


def main(directory: pathlib.Path) -> list[str]:
    manifests = load(sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yaml.example")))
    problems = []

    def require(condition, problem):
        if not condition:
            problems.append(problem)

    kinds = ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "NetworkPolicy"]
    for kind in kinds:
        require(kind in manifests, f"no {kind} in {directory}")
    require((directory / "per-user" / "cronjob-prune.yaml").is_file(), f"no per-user/cronjob-prune.yaml in {directory}")
    for mode_dir in MODES:
        for name in ["configmap.yaml", "secret.yaml.example"]:
            require((directory / mode_dir / name).is_file(), f"no {mode_dir}/{name} in {directory}")
    if problems:
        return problems
    deployment = manifests["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [container] = pod["containers"]
    dockerfile = pathlib.Path("Dockerfile").read_text()
    exposed = int(re.search(r"^EXPOSE (\d+)", dockerfile, re.MULTILINE).group(1))
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", pathlib.Path(".env.example").read_text(), re.MULTILINE))

    # The pods, and how they stop.
    require(deployment["spec"]["replicas"] >= 2, "the Deployment runs fewer than 2 replicas")
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        get = container.get(probe, {}).get("httpGet", {})
        require(get.get("path") == path, f"{probe} does not GET {path}")
        require(ports.get(get.get("port")) == exposed, f"{probe} is not on the port the Dockerfile exposes")
    check_container(pod, container, "the Deployment", require)
    secret_refs = [source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source]
    config_refs = [source["configMapRef"]["name"] for source in container.get("envFrom", []) if "configMapRef" in source]
    require(config_refs, "no ConfigMap is referenced (envFrom configMapRef)")
    pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    version = re.search(r'^version = "([^"]+)"', pathlib.Path("Cargo.toml").read_text(), re.MULTILINE).group(1)
    require(container["image"].endswith(f":{version}"), f"the image is not tagged {version}, the crate's version")

    # Each mode's settings and secrets.
    for mode_dir, mode in MODES.items():
        where = f"{mode_dir}/"
        config = yaml.safe_load((directory / mode_dir / "configmap.yaml").read_text())
        secret = yaml.safe_load((directory / mode_dir / "secret.yaml.example").read_text())
        data = config.get("data", {})
        secret_data = secret.get("stringData", {})
        require(config["kind"] == "ConfigMap" and config["metadata"]["name"] in config_refs, f"{where}configmap.yaml is not the ConfigMap the Deployment reads")
        require(secret["kind"] == "Secret" and secret["metadata"]["name"] in secret_refs, f"{where}secret.yaml.example is not the Secret the Deployment reads")
        require(data.get("CREDENTIAL_MODE") == mode, f"{where}configmap.yaml does not set CREDENTIAL_MODE={mode}")
        for key in data:
            require(not SECRET_NAME.search(key), f"{where}: {key} is in the ConfigMap; it belongs in the Secret")
        for key in list(data) + list(secret_data):
            require(key in documented, f"{where}: {key} is not a variable .env.example documents")
        needs, forbidden = SECRET_NEEDS[mode]
        for key in needs:
            require(key in secret_data, f"{where}secret.yaml.example lacks {key}, which {mode} mode needs")
        for key in forbidden:
            require(key not in secret_data, f"{where}secret.yaml.example holds {key}, which {mode} mode does not use")
        if mode == "per_user":
            require("TELNYX_WEBRTC_CONNECTION_ID" in data, f"{where}configmap.yaml lacks TELNYX_WEBRTC_CONNECTION_ID")
        require(port_of(data.get("BIND_ADDR")) == ports.get("http"), f"{where}: BIND_ADDR is not the container's http port")
        require(port_of(data.get("METRICS_BIND_ADDR")) == ports.get("metrics"), f"{where}: METRICS_BIND_ADDR is not the container's metrics port, so /metrics would be served beside the API")
        require(data.get("TRUST_PROXY_HEADERS") == "true", f"{where}: TRUST_PROXY_HEADERS is not true behind the Ingress")
        require(str(data.get("SUPABASE_URL", "")).startswith("https://"), f"{where}: SUPABASE_URL is not https://")
        timeout = int(data.get("REQUEST_TIMEOUT_SECS", "30"))
        require(pod.get("terminationGracePeriodSeconds", 30) > timeout + pause, f"{where}: terminationGracePeriodSeconds leaves no time for a request of REQUEST_TIMEOUT_SECS after the preStop pause")

    # The Service, the Ingress in front of it, and who reaches the pods.
    service = manifests["Service"]
    service_ports = {port["name"]: port for port in service["spec"]["ports"]}
    selects = lambda selector: all(labels.get(k) == v for k, v in selector.items())
    require(selects(service["spec"]["selector"]), "the Service selects no pod of the Deployment")
    for name in ["http", "metrics"]:
        require(service_ports.get(name, {}).get("targetPort") == name, f"the Service has no {name} port on the container's {name} port")
    ingress = manifests["Ingress"]["spec"]
    tls_hosts = {host for entry in ingress.get("tls", []) for host in entry.get("hosts", [])}
    require(all(entry.get("secretName") for entry in ingress.get("tls", [])) and tls_hosts, "the Ingress has no TLS certificate")
    for rule in ingress.get("rules", []):
        require(rule.get("host") in tls_hosts, f"the Ingress serves {rule.get('host')} without TLS")
        for path in rule.get("http", {}).get("paths", []):
            backend = path["backend"]["service"]
            port = backend["port"].get("name") or next((n for n, p in service_ports.items() if p["port"] == backend["port"].get("number")), None)
            require(backend["name"] == service["metadata"]["name"], f"the Ingress path {path['path']} goes to another Service")
            require(port == "http", f"the Ingress path {path['path']} goes to the Service's {port} port: only the API may be public")
    policy = manifests["NetworkPolicy"]["spec"]
    require(selects(policy["podSelector"]["matchLabels"]), "the NetworkPolicy selects no pod")
    require({"Ingress", "Egress"} <= set(policy.get("policyTypes", [])), "the NetworkPolicy does not restrict both ways")
    allowed_in = [port["port"] for rule in policy.get("ingress", []) for port in rule.get("ports", [])]
    require(all(rule.get("from") and rule.get("ports") for rule in policy.get("ingress", [])), "a NetworkPolicy ingress rule lets anyone in, or on any port")
    require(sorted(allowed_in) == ["http", "metrics"], f"the NetworkPolicy lets in {allowed_in}, not the API and metrics ports alone")
    allowed_out = sorted({port["port"] for rule in policy.get("egress", []) for port in rule.get("ports", [])})
    require(all(rule.get("ports") for rule in policy.get("egress", [])), "a NetworkPolicy egress rule allows every port")
    require(allowed_out == [53, 443], f"the NetworkPolicy lets out ports {allowed_out}, not DNS (53) and HTTPS (443) alone")

    # The per_user clean-up: prune once a day, with the per_user settings and the same promises.
    cronjob = yaml.safe_load((directory / "per-user" / "cronjob-prune.yaml").read_text())["spec"]
    job_pod = cronjob["jobTemplate"]["spec"]["template"]["spec"]
    [prune] = job_pod["containers"]
    require(prune.get("args") == ["prune", "--apply"], "the CronJob does not run prune --apply")
    require(prune.get("image") == container.get("image"), "the CronJob runs another image than the Deployment")
    require(len(cronjob.get("schedule", "").split()) == 5, "the CronJob's schedule is not five cron fields")
    require(cronjob.get("concurrencyPolicy") == "Forbid", "two prune runs may overlap")
    require(job_pod.get("restartPolicy") == "Never", "a failed prune restarts in place instead of failing its Job")
    check_container(job_pod, prune, "the CronJob", require)
    sources = prune.get("envFrom", [])
    prune_config_maps = {source["configMapRef"]["name"] for source in sources if "configMapRef" in source}
    prune_secrets = {source["secretRef"]["name"] for source in sources if "secretRef" in source}
    require(set(config_refs) <= prune_config_maps, "the CronJob lacks the service's ConfigMap")
    require(set(secret_refs) <= prune_secrets, "the CronJob lacks the service's Secret")
    prune_labels = cronjob["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    selects_prune = lambda selector: all(prune_labels.get(k) == v for k, v in selector.items())
    require(not selects_prune(service["spec"]["selector"]), "the Service would route traffic to a prune pod")
    require(not selects_prune(manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]), "the PDB counts prune pods")

    # Disruptions and scaling.
    require(selects(manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]), "the PDB selects no pod")
    require(manifests["PodDisruptionBudget"]["spec"].get("minAvailable", 0) >= 1, "the PDB lets every pod go")
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    require(hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"], "the HPA scales another Deployment")
    require(hpa["minReplicas"] >= 2, "the HPA may scale below 2 replicas")
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
