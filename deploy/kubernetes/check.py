#!/usr/bin/env python3
"""Render and check loanflow's Kubernetes manifests (run by .ci/run; no cluster needed).

For each overlay (a directory here with a kustomization.yaml, base/ excepted):
1. `kubectl kustomize` renders it;
2. `kubernetes-validate --strict` (PyPI; it ships the API schemas) validates the result against
   the newest and the oldest Kubernetes version listed in VERSIONS;
3. the cross-checks below: selectors match their pods, Services reach a named container port,
   every ConfigMap, Secret, volume and claim referenced exists (the operator token's Secret is
   the one made outside these files), a Deployment on a ReadWriteOnce volume runs one replica
   with `Recreate`, probes hit /health/live and /health/ready, the pods run as the image's
   non-root user on a read-only root filesystem, resources are set, every LOANFLOW__ variable
   is a setting of config/default.toml, and the termination grace covers the shutdown; in a
   cluster of role groups: every role is known and some Deployment has it, the API Service
   selects only pods with the `api` role, each PodDisruptionBudget selects pods and leaves a
   drain possible, each HorizontalPodAutoscaler targets a Deployment here that leaves it the
   replicas and requests the resource it scales on.
Before that, a self-test breaks each rendered overlay in known ways and requires each break to be
reported, so a check that stopped looking fails here.
"""

import copy
import math
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VERSIONS = ["1.37.0", "1.29.0"]
# Secrets the user creates outside these files (README, kustomization comments): name -> keys.
EXTERNAL_SECRETS = {"loanflow-admin": {"token"}, "loanflow-cluster": {"database-url", "broker-url"}}
# node.roles (config/default.toml, docs/operations.md): unset = every role.
ROLES = {"api", "loans", "credit", "appraisal", "notifier"}
# Drain margin past the preStop pause and the two shutdown bounds.
GRACE_MARGIN_SECONDS = 5


def overlays():
    return sorted(p.parent for p in HERE.glob("*/kustomization.yaml") if p.parent.name != "base")


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def validate(docs, name):
    with tempfile.NamedTemporaryFile("w", suffix=f"-{name}.yaml") as f:
        yaml.safe_dump_all(docs, f)
        f.flush()
        for version in VERSIONS:
            cmd = ["kubernetes-validate", "--strict", "--quiet", "-k", version, f.name]
            print("+", " ".join(cmd[:-1]), f"<{name} rendered>")
            if subprocess.run(cmd).returncode != 0:
                return [f"{name}: kubernetes-validate -k {version} failed"]
    return []


def dockerfile_facts():
    text = (ROOT / "Dockerfile").read_text()
    return {
        "uid": int(re.search(r"--uid (\d+)", text).group(1)),
        "port": int(re.search(r"^EXPOSE (\d+)", text, re.M).group(1)),
        "volume": re.search(r'^VOLUME \["([^"]+)"\]', text, re.M).group(1),
    }


def known_settings():
    """`SECTION__KEY` for every key of config/default.toml, the commented-out ones included."""
    keys, section = set(), None
    for line in (ROOT / "config/default.toml").read_text().splitlines():
        header = re.match(r"^\[([a-z_]+)\]", line)
        if header:
            section = header.group(1)
        key = re.match(r"^#?\s*([a-z_]+)\s*=", line)
        if key and section:
            keys.add(f"{section}__{key.group(1)}".upper())
    return keys


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_problems(name, pod, docs, facts, settings):
    problems = []
    configmaps, secrets, claims = by_kind(docs, "ConfigMap"), by_kind(docs, "Secret"), by_kind(docs, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    ctx = pod.get("securityContext", {})
    if ctx.get("runAsNonRoot") is not True or ctx.get("runAsUser") != facts["uid"]:
        problems.append(f"{name}: the pod must run as non-root user {facts['uid']} (the Dockerfile's)")
    for volume in volumes.values():
        if "persistentVolumeClaim" in volume and volume["persistentVolumeClaim"]["claimName"] not in claims:
            problems.append(f"{name}: volume {volume['name']} claims a missing PersistentVolumeClaim")
        if "configMap" in volume and volume["configMap"]["name"] not in configmaps:
            problems.append(f"{name}: volume {volume['name']} names a missing ConfigMap")
    env = {}
    for c in pod["containers"]:
        cname = f"{name}/{c['name']}"
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for path, volume in mounts.items():
            if volume not in volumes:
                problems.append(f"{cname}: mount {path} names a missing volume {volume}")
        for path in (facts["volume"], "/tmp"):
            if path not in mounts:
                problems.append(f"{cname}: {path} must be a mounted volume (the root filesystem is read-only)")
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cname}: needs readOnlyRootFilesystem: true and allowPrivilegeEscalation: false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{cname}: must drop ALL capabilities")
        res = c.get("resources", {})
        if not {"cpu", "memory"} <= set(res.get("requests", {})) or "memory" not in res.get("limits", {}):
            problems.append(f"{cname}: needs cpu and memory requests and a memory limit")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if facts["port"] not in ports.values():
            problems.append(f"{cname}: no containerPort {facts['port']} (the Dockerfile's EXPOSE)")
        for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or (get.get("port") not in ports and get.get("port") not in ports.values()):
                problems.append(f"{cname}: {probe} must GET {path} on a container port")
        for source in c.get("envFrom", []):
            ref = source.get("configMapRef", {}).get("name")
            if ref is not None and ref not in configmaps:
                problems.append(f"{cname}: envFrom names a missing ConfigMap {ref}")
            elif ref is not None:
                env.update(configmaps[ref].get("data", {}))
        for var in c.get("env", []):
            ref = var.get("valueFrom", {})
            if "secretKeyRef" in ref:
                s = ref["secretKeyRef"]
                keys = set(secrets[s["name"]].get("data", {})) if s["name"] in secrets else EXTERNAL_SECRETS.get(s["name"])
                if keys is None or s["key"] not in keys:
                    problems.append(f"{cname}: {var['name']} reads a Secret key that is neither here nor documented: {s}")
            if "configMapKeyRef" in ref:
                m = ref["configMapKeyRef"]
                if m["key"] not in configmaps.get(m["name"], {}).get("data", {}):
                    problems.append(f"{cname}: {var['name']} reads a missing ConfigMap key {m}")
            env[var["name"]] = var.get("value")
        for var in env:
            if var.startswith("LOANFLOW__") and var.removeprefix("LOANFLOW__") not in settings:
                problems.append(f"{cname}: {var} is no setting of config/default.toml")
        if env.get("LOANFLOW__HTTP__PORT") not in (None, str(facts["port"])):
            problems.append(f"{cname}: LOANFLOW__HTTP__PORT is not the container port {facts['port']}")
        problems += grace_problems(cname, pod, c, env, settings)
    return problems


def grace_problems(cname, pod, container, env, settings):
    """The kubelet's grace must cover the preStop pause, the node's shutdown bound and a margin."""
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(command) != 2 or command[0] != "sleep":
        return [f"{cname}: preStop must be `sleep N` (the endpoints drop the pod meanwhile)"]
    bound, how = shutdown_bound_seconds(env, settings)
    needed = int(command[1]) + bound + GRACE_MARGIN_SECONDS
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace < needed:
        return [f"{cname}: terminationGracePeriodSeconds {grace} < {needed} (preStop + {how} + margin)"]
    return []


def shutdown_bound_seconds(env, settings):
    """Seconds from SIGTERM to exit: one grace bounds the whole shutdown (`shutdown.grace_ms`)."""
    defaults = tomllib.loads((ROOT / "config/default.toml").read_text())
    ms = int(env.get("LOANFLOW__SHUTDOWN__GRACE_MS") or defaults["shutdown"]["grace_ms"])
    return math.ceil(ms / 1000), "shutdown.grace_ms"


def container_env(pod, docs):
    """The loanflow container's environment: literal values, `None` for a value read by reference."""
    configmaps, env = by_kind(docs, "ConfigMap"), {}
    container = pod["containers"][0]
    for source in container.get("envFrom", []):
        env.update(configmaps.get(source.get("configMapRef", {}).get("name"), {}).get("data", {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def roles_of(pod, docs):
    """The node's roles (`LOANFLOW__NODE__ROLES`; unset = all), and the unknown ones listed."""
    listed = container_env(pod, docs).get("LOANFLOW__NODE__ROLES")
    if listed is None:
        return set(ROLES), []
    roles = {r.strip().lower() for r in listed.split(",") if r.strip()}
    return roles or set(ROLES), sorted(roles - ROLES)


def cluster_problems(docs, workloads):
    """Roles, disruption budgets and autoscalers: what only a cluster of role groups has."""
    problems, covered = [], set()
    pods = {name: w["spec"]["template"] for name, w in workloads.items()}
    for name, template in pods.items():
        env = container_env(template["spec"], docs)
        roles, unknown = roles_of(template["spec"], docs)
        covered |= roles
        if unknown:
            problems.append(f"{name}: LOANFLOW__NODE__ROLES has unknown roles {unknown} (the roles are {sorted(ROLES)})")
        in_cluster = "LOANFLOW__BROKER__URL" in env
        if "LOANFLOW__NODE__ROLES" in env and not in_cluster:
            problems.append(f"{name}: LOANFLOW__NODE__ROLES without LOANFLOW__BROKER__URL (an embedded node refuses roles)")
    if any("LOANFLOW__NODE__ROLES" in container_env(t["spec"], docs) for t in pods.values()) and covered != ROLES:
        problems.append(f"no Deployment has the roles {sorted(ROLES - covered)}: their work would wait forever")
    for name, s in by_kind(docs, "Service").items():
        for wname, template in pods.items():
            if selects(s["spec"].get("selector", {}), template["metadata"]["labels"]):
                if "api" not in roles_of(template["spec"], docs)[0]:
                    problems.append(f"Service {name} selects {wname}, whose pods have no api role (they serve no API)")
    for name, pdb in by_kind(docs, "PodDisruptionBudget").items():
        selector = pdb["spec"].get("selector", {}).get("matchLabels")
        chosen = [w for w, t in pods.items() if selects(selector, t["metadata"]["labels"])]
        if not chosen:
            problems.append(f"PodDisruptionBudget {name}: its selector {selector} selects no pod")
        for w in chosen:
            replicas = workloads[w]["spec"].get("replicas", 1)
            autoscaled = [h for h in by_kind(docs, "HorizontalPodAutoscaler").values() if h["spec"]["scaleTargetRef"]["name"] == w]
            least = min([h["spec"].get("minReplicas", 1) for h in autoscaled] or [replicas])
            if pdb["spec"].get("minAvailable", 0) >= least:
                problems.append(f"PodDisruptionBudget {name}: minAvailable {pdb['spec'].get('minAvailable')} blocks every drain of {w} ({least} replicas)")
    for name, hpa in by_kind(docs, "HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target.get("apiVersion") != "apps/v1" or target.get("name") not in workloads:
            problems.append(f"HorizontalPodAutoscaler {name}: scaleTargetRef {target} names no Deployment here")
            continue
        deployment = workloads[target["name"]]
        if "replicas" in deployment["spec"]:
            problems.append(f"HorizontalPodAutoscaler {name}: its Deployment {target['name']} sets replicas (each apply would undo the autoscaler)")
        resources = {m["resource"]["name"] for m in hpa["spec"].get("metrics", []) if m["type"] == "Resource"}
        for c in deployment["spec"]["template"]["spec"]["containers"]:
            missing = resources - set(c.get("resources", {}).get("requests", {}))
            if missing:
                problems.append(f"HorizontalPodAutoscaler {name}: scales on {sorted(missing)} that {target['name']}/{c['name']} requests none of")
    return problems


def problems_of(docs, facts, settings):
    problems = []
    workloads = by_kind(docs, "Deployment")
    problems += cluster_problems(docs, workloads)
    for name, d in workloads.items():
        spec, template = d["spec"], d["spec"]["template"]
        if not selects(spec["selector"].get("matchLabels"), template["metadata"].get("labels", {})):
            problems.append(f"{name}: its selector does not match its pod template's labels")
        pod = template["spec"]
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
        pvcs = by_kind(docs, "PersistentVolumeClaim")
        if any("ReadWriteOnce" in pvcs.get(c, {}).get("spec", {}).get("accessModes", []) for c in claims):
            if spec.get("replicas") != 1 or spec.get("strategy", {}).get("type") != "Recreate":
                problems.append(f"{name}: on a ReadWriteOnce volume it needs replicas: 1 and strategy Recreate")
        problems += pod_problems(name, pod, docs, facts, settings)
    for name, s in by_kind(docs, "Service").items():
        selector = s["spec"].get("selector", {})
        pods = [w["spec"]["template"] for w in workloads.values() if selects(selector, w["spec"]["template"]["metadata"]["labels"])]
        if not pods:
            problems.append(f"Service {name}: its selector {selector} selects no pod")
        for port in s["spec"]["ports"]:
            for pod in pods:
                named = {p.get("name"): p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
                if port["targetPort"] not in named and port["targetPort"] not in named.values():
                    problems.append(f"Service {name}: targetPort {port['targetPort']} is no container port")
    return problems


def self_test(docs, facts, settings):
    """Each break must be reported; the unbroken overlay must pass."""

    def pod(d):
        return next(x for x in d if x["kind"] == "Deployment")["spec"]["template"]["spec"]

    def service(d):
        return next(x for x in d if x["kind"] == "Service")["spec"]

    def deployment(d):
        return next(x for x in d if x["kind"] == "Deployment")["spec"]

    breaks = {
        "selects no pod": lambda d: service(d)["selector"].update({"loanflow/api": "false"}),
        "targetPort": lambda d: service(d)["ports"][0].update({"targetPort": "web"}),
        "replicas: 1 and strategy Recreate": lambda d: deployment(d).update({"strategy": {"type": "RollingUpdate"}}),
        "does not match": lambda d: deployment(d)["selector"]["matchLabels"].update({"extra": "x"}),
        "missing ConfigMap": lambda d: pod(d)["containers"][0]["envFrom"][0]["configMapRef"].update({"name": "nope"}),
        "neither here nor documented": lambda d: pod(d)["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"].update({"name": "x"}),
        "missing PersistentVolumeClaim": lambda d: pod(d)["volumes"][0]["persistentVolumeClaim"].update({"claimName": "x"}),
        "readOnlyRootFilesystem": lambda d: pod(d)["containers"][0]["securityContext"].update({"readOnlyRootFilesystem": False}),
        "non-root": lambda d: pod(d)["securityContext"].update({"runAsUser": 0}),
        "readinessProbe": lambda d: pod(d)["containers"][0]["readinessProbe"]["httpGet"].update({"path": "/health/live"}),
        "terminationGracePeriodSeconds": lambda d: pod(d).update({"terminationGracePeriodSeconds": 10}),
        "no setting": lambda d: pod(d)["containers"][0]["env"].append({"name": "LOANFLOW__HTTP__PROT", "value": "1"}),
        "memory limit": lambda d: pod(d)["containers"][0]["resources"].pop("limits"),
        "/tmp must be": lambda d: pod(d)["containers"][0]["volumeMounts"].pop(),
    }
    failures = [f"self-test: the unbroken overlay fails: {p}" for p in problems_of(docs, facts, settings)]
    for expected, breaking in breaks.items():
        broken = copy.deepcopy(docs)
        breaking(broken)
        if not any(expected in p for p in problems_of(broken, facts, settings)):
            failures.append(f"self-test: a break was not reported (expected a problem with `{expected}`)")
    return failures


def cluster_self_test(docs, facts, settings):
    """The cluster overlay's own breaks: roles, disruption budgets, the autoscaler."""

    def named(d, kind, name):
        return next(x for x in d if x["kind"] == kind and x["metadata"]["name"] == name)

    def roles(d, deployment, value):
        env = named(d, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]["env"]
        next(v for v in env if v["name"] == "LOANFLOW__NODE__ROLES")["value"] = value

    breaks = {
        "unknown roles": lambda d: roles(d, "loanflow-worker", "credit,apraisal,notifier"),
        "would wait forever": lambda d: roles(d, "loanflow-worker", "credit,appraisal"),
        "no api role": lambda d: roles(d, "loanflow-front", "loans"),
        "scaleTargetRef": lambda d: named(d, "HorizontalPodAutoscaler", "loanflow-worker")["spec"]["scaleTargetRef"].update({"name": "x"}),
        "sets replicas": lambda d: named(d, "Deployment", "loanflow-worker")["spec"].update({"replicas": 3}),
        "PodDisruptionBudget loanflow-worker: its selector": lambda d: named(d, "PodDisruptionBudget", "loanflow-worker")["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/component": "workers"}),
        "blocks every drain": lambda d: named(d, "PodDisruptionBudget", "loanflow-front")["spec"].update({"minAvailable": 2}),
    }
    failures = [f"self-test: the unbroken overlay fails: {p}" for p in problems_of(docs, facts, settings)]
    for expected, breaking in breaks.items():
        broken = copy.deepcopy(docs)
        breaking(broken)
        if not any(expected in p for p in problems_of(broken, facts, settings)):
            failures.append(f"self-test: a break was not reported (expected a problem with `{expected}`)")
    return failures


def main():
    facts, settings = dockerfile_facts(), known_settings()
    problems = []
    found = overlays()
    if not found:
        problems.append("no overlay found under deploy/kubernetes")
    for overlay in found:
        docs = render(overlay)
        print(f"{overlay.name}: rendered {len(docs)} objects: {', '.join(d['kind'] + '/' + d['metadata']['name'] for d in docs)}")
        if overlay.name == "embedded":
            problems += self_test(docs, facts, settings)
        if overlay.name == "cluster":
            problems += cluster_self_test(docs, facts, settings)
        problems += validate(docs, overlay.name)
        problems += [f"{overlay.name}: {p}" for p in problems_of(docs, facts, settings)]
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("deploy/kubernetes: every overlay renders, validates and cross-checks")


if __name__ == "__main__":
    main()
