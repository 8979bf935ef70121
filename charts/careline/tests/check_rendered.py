#!/usr/bin/env python3
"""Checks what the chart renders for each value set, as a platform team would notice it.

scripts/test-deploy.sh renders every value set into RENDERED_DIR/<set>.yaml first; this file
reads them (and the kustomize overlays, kustomize-dev and kustomize-prod) and checks
behaviour: store URLs, JetStream replicas, probes, drain times, security settings,
autoscaling, NetworkPolicies, email-intake's SMTP exposure, the web listeners of chat-gateway,
survey-dispatcher and console (HTTP ports, Ingresses, shared secrets), campaigns (router keys,
replicas), the tenants Job,
operator RBAC and monitoring wiring.
Prints one line per check and a closing "N passed, N failed" line; exits 1 on a failure.

    charts/careline/tests/check_rendered.py RENDERED_DIR deploy/tenants/demo-health.yaml
"""

import base64
import os
import re
import sys
import traceback

import yaml

RENDERED = sys.argv[1]
DEMO_TENANT = sys.argv[2]
# The repository (for the services' sources): charts/careline/tests/ is three levels down.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# The release the test renders: `helm template careline charts/careline -n careline`.
PREFIX = "careline"
# What scripts/test-deploy.sh renders: the value sets and the kustomize overlays.
VALUE_SETS = ("default", "bundled", "external", "redis-cluster", "tls", "tls-server", "hpa-off",
              "production")
OVERLAYS = ("kustomize-dev", "kustomize-prod")
# The gRPC services every render runs, with their ports and listen-address variables.
GRPC_SERVICES = (("router", 50051, "CARELINE_ROUTER_ADDR"),
                 ("presence", 50052, "CARELINE_PRESENCE_ADDR"),
                 ("email-intake", 50053, "CARELINE_EMAIL_ADDR"),
                 ("notifications", 50054, "CARELINE_NOTIFICATIONS_ADDR"),
                 ("chat-gateway", 50055, "CARELINE_CHAT_ADDR"),
                 ("survey-dispatcher", 50056, "CARELINE_SURVEY_ADDR"),
                 ("console", 50057, "CARELINE_CONSOLE_ADDR"),
                 ("campaigns", 50058, "CARELINE_CAMPAIGNS_ADDR"))
SERVICE_NAMES = tuple(name for name, _, _ in GRPC_SERVICES)
SMTP_PORT = 2525
# The services with a web listener: HTTP port and its listen-address variable. chat-gateway
# and survey-dispatcher are public (members), console internal (supervisors).
WEB_SERVICES = (("chat-gateway", 8090, "CARELINE_CHAT_HTTP_ADDR"),
                ("survey-dispatcher", 8091, "CARELINE_SURVEY_HTTP_ADDR"),
                ("console", 8092, "CARELINE_CONSOLE_HTTP_ADDR"))
# The keepalives of the long-lived web connections (services/chat-gateway/src/limits.rs
# PING_INTERVAL; axum's default SSE keep-alive in services/console/src/web.rs): an ingress
# read timeout must be well above them.
WEBSOCKET_PING_SECS = 20
SSE_KEEPALIVE_SECS = 15


def render(value_set):
    with open("%s/%s.yaml" % (RENDERED, value_set), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name):
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert matches, "%s %s not rendered" % (kind, name)
    return matches[0]


def kinds(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def secret_value(docs, key):
    secret = find(docs, "Secret", PREFIX + "-stores")
    if "stringData" in secret:
        return secret["stringData"][key]
    return base64.b64decode(secret["data"][key]).decode()


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def pod_specs(docs):
    """(kind/name, pod spec) of every workload."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            yield "%s/%s" % (d["kind"], d["metadata"]["name"]), d["spec"]["template"]["spec"]
        elif d["kind"] == "Job":
            yield "Job/%s" % d["metadata"]["name"], d["spec"]["template"]["spec"]


def config_env(docs):
    return find(docs, "ConfigMap", PREFIX + "-env")["data"]


# --- checks -------------------------------------------------------------------------------

def bundled_stores_are_the_default_with_single_replica_streams():
    docs = render("default")
    assert secret_value(docs, "redis-url") == "redis://careline-redis:6379/"
    assert secret_value(docs, "nats-url") == "nats://careline-nats:4222"
    assert config_env(docs)["CARELINE_NATS_REPLICAS"] == "1"
    assert config_env(docs)["CARELINE_NATS_ATOMIC_BATCHES"] == "false"
    redis = find(docs, "StatefulSet", PREFIX + "-redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["--appendonly", "yes"], args
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    nats = find(docs, "StatefulSet", PREFIX + "-nats")
    assert "--jetstream" in nats["spec"]["template"]["spec"]["containers"][0]["args"]


def external_stores_replace_the_bundled_ones_and_streams_default_to_three_replicas():
    docs = render("external")
    assert not kinds(docs, "StatefulSet"), "bundled stores rendered with external URLs"
    assert secret_value(docs, "redis-url") == "redis://:s3cret@redis.data.svc:6379/0"
    assert secret_value(docs, "nats-url").count("nats://") == 3
    assert config_env(docs)["CARELINE_NATS_REPLICAS"] == "3"
    # A password never lands in the ConfigMap; credentials come from the user's Secret.
    assert "s3cret" not in yaml.safe_dump(config_env(docs))
    for name in SERVICE_NAMES:
        container = find(docs, "Deployment", "%s-%s" % (PREFIX, name))["spec"]["template"]["spec"]["containers"][0]
        assert {"secretRef": {"name": "careline-smtp"}} in container["envFrom"], name


def redis_cluster_nodes_are_joined_into_one_url_list():
    docs = render("redis-cluster")
    assert secret_value(docs, "redis-url") == ",".join(
        "redis://redis-cluster-%d.redis-cluster:6379" % i for i in range(3))
    assert config_env(docs)["CARELINE_NATS_REPLICAS"] == "5"
    router = find(docs, "Deployment", PREFIX + "-router")["spec"]["template"]["spec"]
    nats = env_of(router["containers"][0])["CARELINE_NATS_URL"]["valueFrom"]["secretKeyRef"]
    assert nats == {"name": "careline-nats", "key": "url"}, nats


def tls_mounts_the_ca_and_points_the_services_at_it():
    docs = render("tls")
    for name, spec in pod_specs(docs):
        container = spec["containers"][0]
        env = env_of(container)
        assert env["CARELINE_TLS_CA"]["value"] == "/etc/careline/tls/ca.crt", name
        # TLS to the stores only: the services' own ports stay plaintext.
        assert "CARELINE_TLS_CERT" not in env and "CARELINE_TLS_CLIENT_CA" not in env, name
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["tls-ca"]["mountPath"] == "/etc/careline/tls", name
        volume = {v["name"]: v for v in spec["volumes"]}["tls-ca"]["secret"]
        assert volume == {"secretName": "careline-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]}


def plaintext_is_the_default():
    for name, spec in pod_specs(render("default")):
        for container in spec["containers"]:
            assert not [e for e in env_of(container) if e.startswith("CARELINE_TLS_")], name


def server_tls_serves_the_certificate_requires_client_certificates_and_probes_https():
    docs = render("tls-server")
    careline = [(name, spec) for name, spec in pod_specs(docs)
                if not name.endswith(("-redis", "-nats"))]
    assert {name for name, _ in careline} >= {"Deployment/%s-%s" % (PREFIX, service)
                                              for service in SERVICE_NAMES}, [n for n, _ in careline]
    for name, spec in careline:
        container = spec["containers"][0]
        env = env_of(container)
        assert env["CARELINE_TLS_CERT"]["value"] == "/etc/careline/tls-server/tls.crt", name
        assert env["CARELINE_TLS_KEY"]["value"] == "/etc/careline/tls-server/tls.key", name
        assert env["CARELINE_TLS_CLIENT_CA"]["value"] == "/etc/careline/tls/ca.crt", name
        assert env["CARELINE_TLS_CA"]["value"] == "/etc/careline/tls/ca.crt", name
        volume = {v["name"]: v for v in spec["volumes"]}["tls-server"]["secret"]
        assert volume == {"secretName": "careline-tls", "items": [
            {"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}, name
        if name.startswith("Job/"):
            continue
        # kubelet gRPC probes cannot speak TLS: HTTPS on the metrics port instead, readiness
        # still following the gRPC health (/readyz).
        for probe, path in (("readinessProbe", "/readyz"), ("startupProbe", "/readyz"),
                            ("livenessProbe", "/healthz")):
            if probe not in container:
                continue
            check = container[probe]
            assert "grpc" not in check, (name, probe)
            assert check["httpGet"]["scheme"] == "HTTPS", (name, probe)
            assert check["httpGet"]["path"] == path, (name, probe)
    intake = find(docs, "Deployment", PREFIX + "-email-intake")["spec"]["template"]["spec"]
    assert env_of(intake["containers"][0])["CARELINE_ROUTER_URL"]["value"] == (
        "https://%s-router:50051" % PREFIX)
    endpoint = kinds(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https", endpoint
    assert endpoint["tlsConfig"]["serverName"] == "%s-router.careline.svc" % PREFIX, endpoint


def services_listen_on_all_interfaces_with_grpc_probes():
    docs = render("default")
    for name, port, env in GRPC_SERVICES:
        spec = find(docs, "Deployment", "%s-%s" % (PREFIX, name))["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["command"] == ["careline-" + name]
        assert env_of(container)[env]["value"] == "0.0.0.0:%d" % port
        assert container["readinessProbe"]["grpc"]["port"] == port
        assert container["startupProbe"]["grpc"]["port"] == port
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert config_env(docs)["CARELINE_METRICS_ADDR"] == "0.0.0.0:9464"
    # Without an SMTP relay, mail is written to the writable /tmp volume (read-only root).
    notifications = find(docs, "Deployment", PREFIX + "-notifications")["spec"]["template"]["spec"]
    assert env_of(notifications["containers"][0])["CARELINE_MAIL_DIR"]["value"].startswith("/tmp/")


def termination_grace_outlasts_the_prestop_sleep_and_the_drain():
    for value_set, drain in (("default", 20), ("hpa-off", 45)):
        docs = render(value_set)
        assert config_env(docs)["CARELINE_SHUTDOWN_GRACE_SECS"] == str(drain)
        for name in SERVICE_NAMES:
            spec = find(docs, "Deployment", "%s-%s" % (PREFIX, name))["spec"]["template"]["spec"]
            sleep = spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("sleep", {})
            grace = spec["terminationGracePeriodSeconds"]
            assert grace > drain + sleep.get("seconds", 0), (value_set, name, grace)


def every_container_runs_non_root_read_only_without_capabilities():
    for value_set in ("bundled", "production"):
        for name, spec in pod_specs(render(value_set)):
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault", name
            assert pod["runAsUser"] != 0, name
            for container in spec["containers"]:
                sc = container["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True, name
                assert sc["allowPrivilegeEscalation"] is False, name
                assert sc["capabilities"]["drop"] == ["ALL"], name
                assert "limits" in container["resources"] and "requests" in container["resources"], name


def autoscaling_on_by_default_and_fixed_replicas_when_off():
    docs = render("default")
    assert {h["metadata"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler")} == {
        "%s-%s" % (PREFIX, name) for name in SERVICE_NAMES}
    assert "replicas" not in find(docs, "Deployment", PREFIX + "-router")["spec"]
    assert len(kinds(docs, "PodDisruptionBudget")) == len(SERVICE_NAMES)
    docs = render("hpa-off")
    assert not kinds(docs, "HorizontalPodAutoscaler")
    assert not kinds(docs, "PodDisruptionBudget")
    assert not kinds(docs, "NetworkPolicy")
    assert find(docs, "Deployment", PREFIX + "-router")["spec"]["replicas"] == 3
    assert find(docs, "Deployment", PREFIX + "-presence")["spec"]["replicas"] == 1
    assert find(docs, "Deployment", PREFIX + "-notifications")["spec"]["replicas"] == 1
    assert find(docs, "Deployment", PREFIX + "-email-intake")["spec"]["replicas"] == 1
    for name in [name for name, _, _ in WEB_SERVICES] + ["campaigns"]:
        assert find(docs, "Deployment", "%s-%s" % (PREFIX, name))["spec"]["replicas"] == 1, name


def selected_by(policy, labels):
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def every_pod_has_a_policy_for_ingress_and_egress():
    for value_set in ("bundled", "external", "production"):
        docs = render(value_set)
        policies = kinds(docs, "NetworkPolicy")
        for d in docs:
            if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
                continue
            labels = d["spec"]["template"]["metadata"]["labels"]
            matching = [p for p in policies if selected_by(p, labels)]
            assert len(matching) == 1, (value_set, d["metadata"]["name"], len(matching))
            assert matching[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def network_policies_allow_only_the_architecture_flows():
    docs = render("bundled")
    policy = {p["metadata"]["name"][len(PREFIX) + 1:]: p["spec"] for p in kinds(docs, "NetworkPolicy")}
    assert set(policy) == set(SERVICE_NAMES) | {"operator", "tenants", "redis", "nats"}, set(policy)

    def components(rule, side):
        return sorted(peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                      for peer in rule.get(side, []))

    # Only the gRPC services reach Redis; NATS is reached by them, the operator and the Job.
    assert components(policy["redis"]["ingress"][0], "from") == sorted(SERVICE_NAMES)
    assert components(policy["nats"]["ingress"][0], "from") == sorted(SERVICE_NAMES + ("operator", "tenants"))
    # Only notifications reaches an SMTP relay.
    smtp = [r for r in policy["notifications"]["egress"] if {"port": 587, "protocol": "TCP"} in r["ports"]]
    assert len(smtp) == 1 and "to" not in smtp[0], policy["notifications"]["egress"]
    for name in ("router", "presence", "email-intake"):
        assert all({"port": 587, "protocol": "TCP"} not in r["ports"] for r in policy[name]["egress"]), name
    # Mail arrives at email-intake's SMTP port from anywhere (an MX); only email-intake calls
    # the router, and nothing else takes SMTP.
    smtp_in = [r for r in policy["email-intake"]["ingress"] if r["ports"] == [{"port": "smtp", "protocol": "TCP"}]]
    assert len(smtp_in) == 1 and "from" not in smtp_in[0], policy["email-intake"]["ingress"]
    to_router = [r for r in policy["email-intake"]["egress"] if components(r, "to") == ["router"]]
    assert [r["ports"] for r in to_router] == [[{"port": 50051, "protocol": "TCP"}]], policy["email-intake"]["egress"]
    for name in ("router", "presence", "notifications"):
        assert all(components(r, "to") != ["router"] for r in policy[name]["egress"]), name
        assert all(p["port"] != "smtp" for r in policy[name]["ingress"] for p in r["ports"]), name
    # chat-gateway calls the router, email-intake (contact forms) and campaigns (call-backs),
    # console and campaigns the router; survey-dispatcher none (it asks notifications through NATS).
    def grpc_to(name):
        return sorted((components(r, "to")[0], r["ports"][0]["port"]) for r in policy[name]["egress"]
                      if len(components(r, "to")) == 1 and components(r, "to")[0] not in ("redis", "nats"))
    assert grpc_to("chat-gateway") == [("campaigns", 50058), ("email-intake", 50053), ("router", 50051)], \
        policy["chat-gateway"]["egress"]
    assert grpc_to("console") == [("router", 50051)], policy["console"]["egress"]
    assert grpc_to("survey-dispatcher") == [], policy["survey-dispatcher"]["egress"]
    assert grpc_to("campaigns") == [("router", 50051)], policy["campaigns"]["egress"]
    # The web listeners take HTTP (from anywhere by default: webFrom and consoleFrom are
    # empty); the other services have no HTTP port to open.
    for name, _, _ in WEB_SERVICES:
        http_in = [r for r in policy[name]["ingress"] if r["ports"] == [{"port": "http", "protocol": "TCP"}]]
        assert len(http_in) == 1 and "from" not in http_in[0], (name, policy[name]["ingress"])
    for name in ("router", "presence", "notifications", "email-intake", "campaigns"):
        assert all(p["port"] != "http" for r in policy[name]["ingress"] for p in r["ports"]), name
    # The tenants Job takes no traffic and talks to DNS and NATS only.
    assert policy["tenants"]["ingress"] == []
    assert [components(r, "to") for r in policy["tenants"]["egress"]] == [[], ["nats"]]
    # The operator may not reach Redis.
    assert all(components(r, "to") != ["redis"] for r in policy["operator"]["egress"])
    # The production set restricts callers, scrapers and store addresses.
    prod = {p["metadata"]["name"]: p["spec"] for p in kinds(render("production"), "NetworkPolicy")}
    ingress_nginx = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    assert prod[PREFIX + "-presence"]["ingress"][0]["from"] == [ingress_nginx]
    # Restricted callers still leave email-intake its way to the router.
    def pods(component):
        return {"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "careline", "app.kubernetes.io/instance": "careline",
            "app.kubernetes.io/component": component}}}
    assert prod[PREFIX + "-router"]["ingress"][0]["from"] == [
        ingress_nginx, pods("campaigns"), pods("chat-gateway"), pods("console"), pods("email-intake")]
    assert prod[PREFIX + "-campaigns"]["ingress"][0]["from"] == [ingress_nginx, pods("chat-gateway")]
    assert prod[PREFIX + "-email-intake"]["ingress"][0]["from"] == [ingress_nginx, pods("chat-gateway")]
    assert prod[PREFIX + "-survey-dispatcher"]["ingress"][0]["from"] == [ingress_nginx]
    # Senders restricted to CIDRs (external set): SMTP from those only.
    external = {p["metadata"]["name"]: p["spec"] for p in kinds(render("external"), "NetworkPolicy")}
    smtp_in = [r for r in external[PREFIX + "-email-intake"]["ingress"] if r["ports"][0]["port"] == "smtp"]
    assert smtp_in == [{"ports": [{"port": "smtp", "protocol": "TCP"}],
                        "from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}], smtp_in
    # Production: the public pages from the ingress controller's namespace only, the floor view
    # from the internal controller's.
    def http_from(policies, name):
        return [r.get("from") for r in policies["%s-%s" % (PREFIX, name)]["ingress"]
                if r["ports"] == [{"port": "http", "protocol": "TCP"}]]
    assert http_from(prod, "chat-gateway") == http_from(prod, "survey-dispatcher") == [[ingress_nginx]]
    assert http_from(prod, "console") == [[{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx-internal"}}}]], http_from(prod, "console")
    stores = [r for r in prod[PREFIX + "-router"]["egress"] if r["ports"][0]["port"] == 6379]
    assert stores[0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def tenants_from_values_are_applied_by_one_job_container_each():
    docs = render("bundled")
    # Compared as strings: Helm writes dates (holidays) back as quoted strings.
    with open(DEMO_TENANT, encoding="utf-8") as f:
        demo = yaml.load(f, Loader=yaml.BaseLoader)
    config = find(docs, "ConfigMap", PREFIX + "-tenants")
    assert yaml.load(config["data"]["demo-health.yaml"], Loader=yaml.BaseLoader) == demo
    job = find(docs, "Job", PREFIX + "-tenants")
    assert "post-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    containers = job["spec"]["template"]["spec"]["containers"]
    assert [c["command"] for c in containers] == [
        ["careline", "config", "apply", "-f", "/etc/careline/tenants/demo-health.yaml"]]
    assert env_of(containers[0])["CARELINE_NATS_REPLICAS"]["value"] == "1"
    assert not kinds(render("default"), "Job"), "a Job without tenants"


def operator_gets_least_privilege_rbac_and_its_identity():
    docs = render("bundled")
    rules = find(docs, "ClusterRole", PREFIX + "-operator")["rules"]
    assert rules == [
        {"apiGroups": ["careline.io"], "resources": ["tenants", "contactqueues"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["careline.io"], "resources": ["tenants/status", "contactqueues/status"],
         "verbs": ["get", "patch"]},
    ], rules
    role = find(docs, "Role", PREFIX + "-operator")
    assert role["metadata"]["namespace"] == "careline"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    ], role["rules"]
    spec = find(docs, "Deployment", PREFIX + "-operator")["spec"]["template"]["spec"]
    env = env_of(spec["containers"][0])
    assert env["CARELINE_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["CARELINE_OPERATOR_IDENTITY"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["CARELINE_OPERATOR_ADDR"]["value"] == "0.0.0.0:50059"
    assert spec["containers"][0]["readinessProbe"]["grpc"]["port"] == 50059
    assert not kinds(render("default"), "ClusterRole"), "operator RBAC while the operator is off"


def monitoring_resources_select_what_the_chart_renders():
    docs = render("bundled")
    monitor = find(docs, "ServiceMonitor", PREFIX)
    selector = monitor["spec"]["selector"]
    components = set(selector["matchExpressions"][0]["values"])
    services = [s for s in kinds(docs, "Service")
                if all(s["metadata"]["labels"].get(k) == v for k, v in selector["matchLabels"].items())
                and s["metadata"]["labels"]["app.kubernetes.io/component"] in components]
    scraped = {s["metadata"]["name"] for s in services if "metrics" in [p["name"] for p in s["spec"]["ports"]]}
    assert scraped == {"%s-%s" % (PREFIX, name) for name in SERVICE_NAMES + ("operator",)}, scraped
    # The SMTP Service shares email-intake's label but has no metrics port: no second target.
    assert {s["metadata"]["name"] for s in services} - scraped == {PREFIX + "-email-intake-smtp"}
    dashboard = find(docs, "ConfigMap", PREFIX + "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert '"uid": "careline-overview"' in dashboard["data"]["careline.json"]
    assert config_env(docs)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert config_env(docs)["OTEL_TRACES_SAMPLER_ARG"] == "0.1"


def kustomize_dev_overlay_runs_one_replica_without_autoscaling():
    docs = render("kustomize-dev")
    assert not kinds(docs, "HorizontalPodAutoscaler") and not kinds(docs, "PodDisruptionBudget")
    for deployment in kinds(docs, "Deployment"):
        assert deployment["spec"]["replicas"] == 1, deployment["metadata"]["name"]
    assert config_env(docs)["CARELINE_LOG_FORMAT"] == "text"
    assert {s["metadata"]["name"] for s in kinds(docs, "StatefulSet")} == {PREFIX + "-redis", PREFIX + "-nats"}


def kustomize_prod_overlay_uses_external_stores_with_three_stream_replicas():
    docs = render("kustomize-prod")
    assert not kinds(docs, "StatefulSet"), "bundled stores in the prod overlay"
    names = {d["metadata"]["name"] for d in docs}
    assert not {PREFIX + "-redis", PREFIX + "-nats"} & names, names
    assert secret_value(docs, "redis-url").startswith("redis+cluster://")
    assert secret_value(docs, "nats-url").count("nats://") == 3
    assert config_env(docs)["CARELINE_NATS_REPLICAS"] == "3"
    # No egress rule still points at the deleted bundled stores.
    for policy in kinds(docs, "NetworkPolicy"):
        for rule in policy["spec"]["egress"]:
            for peer in rule.get("to", []):
                component = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                assert component not in ("redis", "nats"), (policy["metadata"]["name"], peer)
    assert {h["metadata"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler")} == {
        "%s-%s" % (PREFIX, name) for name in SERVICE_NAMES}
    # email-intake: router keys from the overlay's Secret, SMTP on a load balancer.
    container = find(docs, "Deployment", PREFIX + "-email-intake")["spec"]["template"]["spec"]["containers"][0]
    keys = env_of(container)["CARELINE_EMAIL_ROUTER_API_KEYS"]["valueFrom"]["secretKeyRef"]
    secret = find(docs, "Secret", keys["name"])
    assert base64.b64decode(secret["data"][keys["key"]]).decode().startswith("acme-health="), secret
    smtp = find(docs, "Service", PREFIX + "-email-intake-smtp")["spec"]
    assert smtp["type"] == "LoadBalancer" and smtp["externalTrafficPolicy"] == "Local", smtp


def port_number(container, port):
    """A Service's targetPort (a name or a number) as the container's port number, or None."""
    for p in container.get("ports", []):
        if port in (p["name"], p["containerPort"]):
            return p["containerPort"]
    return None


def every_render_runs_email_intake_with_its_smtp_port_exposed():
    for value_set in VALUE_SETS + OVERLAYS:
        docs = render(value_set)
        deployment = find(docs, "Deployment", PREFIX + "-email-intake")
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["command"] == ["careline-email-intake"], value_set
        assert env_of(container)["CARELINE_SMTP_ADDR"]["value"] == "0.0.0.0:%d" % SMTP_PORT, value_set
        assert port_number(container, "smtp") == SMTP_PORT, (value_set, container["ports"])
        # Some Service sends SMTP to those pods, and gRPC to the gRPC port.
        exposed = {port: (name, number) for port, (name, number, _) in services_exposing(docs, pod).items()}
        assert exposed.get(SMTP_PORT) == (PREFIX + "-email-intake-smtp", 25), (value_set, exposed)
        assert exposed.get(50053) == (PREFIX + "-email-intake", 50053), (value_set, exposed)


def email_intake_reaches_the_router_and_takes_its_secrets_from_secrets():
    docs = render("default")
    container = find(docs, "Deployment", PREFIX + "-email-intake")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    router = find(docs, "Service", PREFIX + "-router")
    assert env["CARELINE_ROUTER_URL"]["value"] == "http://%s:%d" % (
        router["metadata"]["name"], router["spec"]["ports"][0]["port"])
    assert env["CARELINE_EMAIL_MAX_MESSAGE_BYTES"]["value"] == str(10 * 1024 * 1024)
    # Without a key Secret or a certificate: no key variable, no STARTTLS.
    assert "CARELINE_EMAIL_ROUTER_API_KEYS" not in env and "CARELINE_SMTP_TLS_CERT" not in env
    assert find(docs, "Service", PREFIX + "-email-intake-smtp")["spec"]["type"] == "ClusterIP"

    docs = render("production")
    spec = find(docs, "Deployment", PREFIX + "-email-intake")["spec"]["template"]["spec"]
    env = env_of(spec["containers"][0])
    assert env["CARELINE_EMAIL_ROUTER_API_KEYS"] == {"name": "CARELINE_EMAIL_ROUTER_API_KEYS", "valueFrom": {
        "secretKeyRef": {"name": "careline-email-intake", "key": "router-api-keys"}}}
    assert env["CARELINE_SMTP_HOSTNAME"]["value"] == "mx.careline.example"
    # The certificate files the service is pointed at are in the mounted Secret.
    mount = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}["smtp-tls"]
    volume = {v["name"]: v for v in spec["volumes"]}["smtp-tls"]["secret"]
    assert volume["secretName"] == "careline-smtp-tls"
    files = {"%s/%s" % (mount["mountPath"], item["path"]) for item in volume["items"]}
    assert {env["CARELINE_SMTP_TLS_CERT"]["value"], env["CARELINE_SMTP_TLS_KEY"]["value"]} == files, files
    assert mount["readOnly"] is True
    smtp = find(docs, "Service", PREFIX + "-email-intake-smtp")["spec"]
    assert smtp["type"] == "LoadBalancer" and smtp["externalTrafficPolicy"] == "Local", smtp
    # NodePort: the fixed node port; the gRPC Service stays inside the cluster.
    docs = render("hpa-off")
    smtp = find(docs, "Service", PREFIX + "-email-intake-smtp")["spec"]
    assert smtp["type"] == "NodePort" and smtp["ports"][0]["nodePort"] == 30025, smtp
    assert find(docs, "Service", PREFIX + "-email-intake")["spec"]["type"] == "ClusterIP"
    container = find(docs, "Deployment", PREFIX + "-email-intake")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(container)["CARELINE_EMAIL_MAX_MESSAGE_BYTES"]["value"] == "1048576"


def services_exposing(docs, pod):
    """container port number -> (Service name, Service port, type) of the Services selecting pod."""
    container = pod["spec"]["containers"][0]
    labels = pod["metadata"]["labels"]
    exposed = {}
    for service in kinds(docs, "Service"):
        selector = service["spec"].get("selector")
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            for p in service["spec"]["ports"]:
                exposed[port_number(container, p["targetPort"])] = (
                    service["metadata"]["name"], p["port"], service["spec"].get("type", "ClusterIP"))
    return exposed


def every_render_runs_the_web_services_with_their_http_ports_exposed():
    # chat-gateway, survey-dispatcher and console in every value set and overlay: their
    # binary, HTTP listener on all interfaces, and a ClusterIP Service carrying gRPC and HTTP
    # (an Ingress makes HTTP public, never gRPC).
    for value_set in VALUE_SETS + OVERLAYS:
        docs = render(value_set)
        for (name, http, http_env), grpc in zip(WEB_SERVICES, (50055, 50056, 50057)):
            pod = find(docs, "Deployment", "%s-%s" % (PREFIX, name))["spec"]["template"]
            container = pod["spec"]["containers"][0]
            assert container["command"] == ["careline-" + name], (value_set, name)
            assert env_of(container)[http_env]["value"] == "0.0.0.0:%d" % http, (value_set, name)
            assert port_number(container, "http") == http, (value_set, name, container["ports"])
            exposed = services_exposing(docs, pod)
            service = "%s-%s" % (PREFIX, name)
            assert exposed.get(http) == (service, http, "ClusterIP"), (value_set, name, exposed)
            assert exposed.get(grpc) == (service, grpc, "ClusterIP"), (value_set, name, exposed)


def every_render_runs_campaigns_replicated_with_router_keys_from_a_secret():
    # campaigns in every value set and overlay: its binary on its gRPC port behind a ClusterIP
    # Service, calling this release's router (https with tls.server). Every replica schedules
    # (claims are atomic in Redis): autoscaled from 2 like the other services, no singleton.
    for value_set in VALUE_SETS + OVERLAYS:
        docs = render(value_set)
        deployment = find(docs, "Deployment", PREFIX + "-campaigns")
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["command"] == ["careline-campaigns"], value_set
        env = env_of(container)
        assert env["CARELINE_CAMPAIGNS_ADDR"]["value"] == "0.0.0.0:50058", value_set
        scheme = "https" if value_set == "tls-server" else "http"
        assert env["CARELINE_ROUTER_URL"]["value"] == "%s://%s-router:50051" % (scheme, PREFIX), value_set
        assert "value" not in env.get("CARELINE_CAMPAIGNS_ROUTER_API_KEYS", {}), value_set
        exposed = services_exposing(docs, pod)
        assert exposed.get(50058) == (PREFIX + "-campaigns", 50058, "ClusterIP"), (value_set, exposed)
        assert set(exposed) == {50058, 9464}, (value_set, exposed)
        if value_set not in ("hpa-off", "kustomize-dev"):
            hpa = find(docs, "HorizontalPodAutoscaler", PREFIX + "-campaigns")["spec"]
            assert hpa["minReplicas"] >= 2 and "replicas" not in deployment["spec"], (value_set, hpa)
            assert find(docs, "PodDisruptionBudget", PREFIX + "-campaigns"), value_set
    # No key Secret named: no key variable (the service then runs email campaigns only).
    container = find(render("default"), "Deployment", PREFIX + "-campaigns")["spec"]["template"]["spec"]["containers"][0]
    assert "CARELINE_CAMPAIGNS_ROUTER_API_KEYS" not in env_of(container)
    # Production and the prod overlay: the keys from the Secret careline-campaigns.
    for value_set in ("production", "kustomize-prod"):
        docs = render(value_set)
        container = find(docs, "Deployment", PREFIX + "-campaigns")["spec"]["template"]["spec"]["containers"][0]
        ref = env_of(container)["CARELINE_CAMPAIGNS_ROUTER_API_KEYS"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "careline-campaigns", "key": "router-api-keys"}, (value_set, ref)
        if value_set == "kustomize-prod":
            assert secret_data(docs, ref).startswith("acme-health="), ref


def secret_data(docs, ref):
    secret = find(docs, "Secret", ref["name"])
    if "stringData" in secret:
        return secret["stringData"][ref["key"]]
    return base64.b64decode(secret["data"][ref["key"]]).decode()


def web_services_share_their_signing_secrets_and_reach_the_router():
    # The survey link keys and the floor view's session secret come from one Secret that every
    # replica reads (a login or a link made by one replica works on the others), generated by
    # the chart when none is named, and never written as a plain value.
    for value_set in VALUE_SETS + OVERLAYS:
        docs = render(value_set)
        for name, variable in (("survey-dispatcher", "CARELINE_SURVEY_LINK_KEYS"),
                               ("console", "CARELINE_CONSOLE_SESSION_SECRET")):
            container = find(docs, "Deployment", "%s-%s" % (PREFIX, name))["spec"]["template"]["spec"]["containers"][0]
            ref = env_of(container)[variable]["valueFrom"]["secretKeyRef"]
            assert "value" not in env_of(container)[variable], (value_set, name)
            if value_set != "production":  # it names Secrets made outside the chart (below)
                assert secret_data(docs, ref), (value_set, name, ref)
    docs = render("default")
    for name, variable in (("survey-link-keys", "link-keys"), ("console-session", "session-secret")):
        value = secret_data(docs, {"name": "%s-%s" % (PREFIX, name), "key": variable})
        # As strong as `careline key new` makes them (survey-dispatcher refuses weak link keys).
        assert re.fullmatch("[A-Za-z0-9]{40}", value) and len(set(value)) >= 10, (name, value)
    assert find(docs, "Secret", PREFIX + "-survey-link-keys")["metadata"]["annotations"][
        "helm.sh/resource-policy"] == "keep"
    # Production names its own Secrets (GitOps renders cannot keep generated values).
    docs = render("production")
    assert not [d for d in kinds(docs, "Secret") if d["metadata"]["name"] in (
        PREFIX + "-survey-link-keys", PREFIX + "-console-session")]
    survey = env_of(find(docs, "Deployment", PREFIX + "-survey-dispatcher")["spec"]["template"]["spec"]["containers"][0])
    assert survey["CARELINE_SURVEY_LINK_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "careline-survey-link-keys", "key": "link-keys"}
    console = env_of(find(docs, "Deployment", PREFIX + "-console")["spec"]["template"]["spec"]["containers"][0])
    assert console["CARELINE_CONSOLE_SESSION_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "careline-console-session", "key": "session-secret"}
    chat = env_of(find(docs, "Deployment", PREFIX + "-chat-gateway")["spec"]["template"]["spec"]["containers"][0])
    assert chat["CARELINE_CHAT_ROUTER_API_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "careline-chat-gateway", "key": "router-api-keys"}
    assert console["CARELINE_CONSOLE_ROUTER_API_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "careline-console", "key": "router-api-keys"}
    # They call this release's router (and chat-gateway email-intake and campaigns), over https
    # with tls.server.
    for value_set, scheme in (("default", "http"), ("tls-server", "https")):
        docs = render(value_set)
        chat = env_of(find(docs, "Deployment", PREFIX + "-chat-gateway")["spec"]["template"]["spec"]["containers"][0])
        console = env_of(find(docs, "Deployment", PREFIX + "-console")["spec"]["template"]["spec"]["containers"][0])
        assert chat["CARELINE_ROUTER_URL"]["value"] == "%s://%s-router:50051" % (scheme, PREFIX), value_set
        assert chat["CARELINE_EMAIL_INTAKE_URL"]["value"] == "%s://%s-email-intake:50053" % (scheme, PREFIX), value_set
        assert chat["CARELINE_CAMPAIGNS_URL"]["value"] == "%s://%s-campaigns:50058" % (scheme, PREFIX), value_set
        assert console["CARELINE_ROUTER_URL"]["value"] == "%s://%s-router:50051" % (scheme, PREFIX), value_set
        # The floor view's cookie is Secure exactly when it is served over HTTPS.
        assert console["CARELINE_CONSOLE_SECURE_COOKIE"]["value"] == str(scheme == "https").lower(), value_set
        http = [p for p in find(docs, "Service", PREFIX + "-console")["spec"]["ports"] if p["name"] == "http"]
        assert http[0]["appProtocol"] == scheme, (value_set, http)


def ingress_rules(ingress):
    """(host, path, Service name, Service port name) of each rule of an Ingress."""
    return [(rule["host"], path["path"], path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
            for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]


def seconds(annotations, name):
    return int(annotations.get("nginx.ingress.kubernetes.io/" + name, "60"))


def ingresses_are_off_by_default_and_route_only_the_web_ports():
    for value_set in ("default", "bundled", "tls-server", "kustomize-dev"):
        assert not kinds(render(value_set), "Ingress"), value_set
    for value_set, hosts in (
            ("production", ("chat.careline.example", "surveys.careline.example", "floor.careline.internal")),
            ("kustomize-prod", ("chat.careline.example", "surveys.careline.example", "floor.careline.internal"))):
        docs = render(value_set)
        ingresses = {i["metadata"]["name"]: i for i in kinds(docs, "Ingress")}
        assert set(ingresses) == {"%s-%s" % (PREFIX, name) for name, _, _ in WEB_SERVICES}, (value_set, set(ingresses))
        for (name, http, _), host in zip(WEB_SERVICES, hosts):
            ingress = ingresses["%s-%s" % (PREFIX, name)]
            service = "%s-%s" % (PREFIX, name)
            assert ingress_rules(ingress) == [(host, "/", service, "http")], (value_set, ingress_rules(ingress))
            # The port the Ingress names is the Service's HTTP port, never gRPC.
            ports = {p["name"]: p["port"] for p in find(docs, "Service", service)["spec"]["ports"]}
            assert ports["http"] == http, (value_set, ports)
            assert [t["hosts"] for t in ingress["spec"]["tls"]] == [[host]], (value_set, name)
        annotations = {name: ingresses["%s-%s" % (PREFIX, name)]["metadata"].get("annotations", {})
                       for name, _, _ in WEB_SERVICES}
        # Long-lived connections: timeouts far above the keepalives; SSE unbuffered.
        assert seconds(annotations["chat-gateway"], "proxy-read-timeout") >= 10 * WEBSOCKET_PING_SECS, value_set
        assert seconds(annotations["console"], "proxy-read-timeout") >= 10 * SSE_KEEPALIVE_SECS, value_set
        assert annotations["console"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off", value_set
        # The floor view is internal: another class, and only internal source ranges.
        assert ingresses[PREFIX + "-console"]["spec"]["ingressClassName"] == "nginx-internal", value_set
        assert ingresses[PREFIX + "-chat-gateway"]["spec"]["ingressClassName"] == "nginx", value_set
        # Survey links point at the public host; the session cookie is Secure behind TLS.
        survey = env_of(find(docs, "Deployment", PREFIX + "-survey-dispatcher")["spec"]["template"]["spec"]["containers"][0])
        assert survey["CARELINE_SURVEY_PUBLIC_URL"]["value"] == "https://surveys.careline.example", value_set
        console = env_of(find(docs, "Deployment", PREFIX + "-console")["spec"]["template"]["spec"]["containers"][0])
        assert console["CARELINE_CONSOLE_SECURE_COOKIE"]["value"] == "true", value_set
    # Without a public URL or an Ingress, no survey link URL is invented.
    survey = env_of(find(render("default"), "Deployment", PREFIX + "-survey-dispatcher")["spec"]["template"]["spec"]["containers"][0])
    assert "CARELINE_SURVEY_PUBLIC_URL" not in survey


def declared_env_names(*source_dirs):
    """Every "CARELINE_..." string literal in the Rust sources under source_dirs."""
    names = set()
    for source_dir in source_dirs:
        for root, _, files in os.walk(os.path.join(REPO, source_dir)):
            for name in files:
                if name.endswith(".rs"):
                    with open(os.path.join(root, name), encoding="utf-8") as f:
                        names.update(re.findall(r'"(CARELINE_[A-Z0-9_]+)"', f.read()))
    return names


def every_variable_the_chart_sets_is_one_the_program_reads():
    # A misspelt or renamed variable is silently ignored by the program: compare with the
    # names its configuration (services/<component>/src, careline-kit's common settings) reads.
    common = declared_env_names("crates/careline-kit/src")
    for value_set in ("bundled", "production", "hpa-off", "tls-server"):
        docs = render(value_set)
        unknown = set(config_env(docs)) - common - {"RUST_LOG"} - {k for k in config_env(docs) if k.startswith("OTEL_")}
        assert not unknown, (value_set, "ConfigMap", unknown)
        for d in docs:
            if d["kind"] not in ("Deployment", "Job"):
                continue
            component = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
            program = "services/careline" if component == "tenants" else "services/" + component
            assert os.path.isdir(os.path.join(REPO, program)), program
            declared = common | declared_env_names(program)
            for container in d["spec"]["template"]["spec"]["containers"]:
                unknown = {name for name in env_of(container) if name.startswith("CARELINE_")} - declared
                assert not unknown, (value_set, d["metadata"]["name"], unknown)


def config_changes_roll_the_pods():
    default = find(render("default"), "Deployment", PREFIX + "-router")
    external = find(render("external"), "Deployment", PREFIX + "-router")
    key = "checksum/config"
    assert re.fullmatch("[0-9a-f]{64}", default["spec"]["template"]["metadata"]["annotations"][key])
    assert (default["spec"]["template"]["metadata"]["annotations"][key]
            != external["spec"]["template"]["metadata"]["annotations"][key])


CHECKS = [
    bundled_stores_are_the_default_with_single_replica_streams,
    external_stores_replace_the_bundled_ones_and_streams_default_to_three_replicas,
    redis_cluster_nodes_are_joined_into_one_url_list,
    tls_mounts_the_ca_and_points_the_services_at_it,
    plaintext_is_the_default,
    server_tls_serves_the_certificate_requires_client_certificates_and_probes_https,
    services_listen_on_all_interfaces_with_grpc_probes,
    termination_grace_outlasts_the_prestop_sleep_and_the_drain,
    every_container_runs_non_root_read_only_without_capabilities,
    autoscaling_on_by_default_and_fixed_replicas_when_off,
    every_pod_has_a_policy_for_ingress_and_egress,
    network_policies_allow_only_the_architecture_flows,
    tenants_from_values_are_applied_by_one_job_container_each,
    operator_gets_least_privilege_rbac_and_its_identity,
    monitoring_resources_select_what_the_chart_renders,
    kustomize_dev_overlay_runs_one_replica_without_autoscaling,
    kustomize_prod_overlay_uses_external_stores_with_three_stream_replicas,
    every_render_runs_email_intake_with_its_smtp_port_exposed,
    email_intake_reaches_the_router_and_takes_its_secrets_from_secrets,
    every_render_runs_the_web_services_with_their_http_ports_exposed,
    every_render_runs_campaigns_replicated_with_router_keys_from_a_secret,
    web_services_share_their_signing_secrets_and_reach_the_router,
    ingresses_are_off_by_default_and_route_only_the_web_ports,
    every_variable_the_chart_sets_is_one_the_program_reads,
    config_changes_roll_the_pods,
]


def main():
    passed = failed = 0
    for check in CHECKS:
        try:
            check()
        except Exception:  # noqa: BLE001 - every failure is reported, the run goes on
            failed += 1
            print("FAIL %s" % check.__name__)
            traceback.print_exc(limit=2)
        else:
            passed += 1
            print("ok   %s" % check.__name__)
    print("rendered manifests: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
