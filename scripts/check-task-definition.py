#!/usr/bin/env python3
"""Renders the task definitions the way .github/workflows/deploy.yml does
(deploy/aws/render-task-definition.sh over the stack's outputs) and checks them against
the stack template (deploy/aws/planscape.yaml): the service definition must equal the
template's TaskDefinition (containers, names, ports, health checks, environment, secrets,
volumes, roles, sizes), with and without the shared cache; the health-check design holds
(the balancer checks /health, which nginx forwards and which does not depend on the
database; the containers check that they answer); the
shutdown grace fits the stop timeout; the migrate and setup definitions have the shape
the runbook relies on.

Runs with the Python of the cfn-lint venv (it reads the template with cfn-lint's YAML
loader, which knows the short intrinsic tags). Prints one `ok`/`FAIL` line per check and
closes with `# pass N` / `# fail N`.
    scripts/check-task-definition.py
"""

import json
import os
import re
import subprocess
import sys
import tempfile

from cfnlint.decode import decode_str

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "deploy/aws/planscape.yaml")
RENDER = os.path.join(ROOT, "deploy/aws/render-task-definition.sh")
TAG = "0123456789abcdef0123456789abcdef01234567"

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}\n     {detail}")


def load_template():
    with open(TEMPLATE, encoding="utf-8") as f:
        template, matches = decode_str(f.read())
    if matches:
        sys.exit(f"cannot read {TEMPLATE}: {matches}")
    return template


def plain(node):
    """The decoded template as plain dicts and lists (for comparisons and JSON)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool):
        return node
    if isinstance(node, (int, float)):
        return node
    return str(node)


def fake_outputs(template, with_cache):
    """A value for every output of the stack, as describe-stacks would list them."""
    outputs = {}
    first = {}
    for key, out in template["Outputs"].items():
        # Outputs of the same expression (Name, ServiceName) have the same value.
        expression = json.dumps(plain(out["Value"]), sort_keys=True)
        if expression not in first:
            first[expression] = f"fake-{key}"
        outputs[key] = first[expression]
    outputs["Region"] = "us-west-2"
    for key in ("Name", "ServiceName", "ClusterName"):
        outputs[key] = "planscape"
    outputs["TaskCpu"] = "1024"
    outputs["TaskMemory"] = "2048"
    outputs["BackendMemory"] = "1536"
    outputs["TileCacheMb"] = "512"
    outputs["DbPoolSize"] = "10"
    outputs["SharedCacheUrlSecretArn"] = "fake-cache-url-arn" if with_cache else ""
    return outputs


class Resolver:
    """Resolves the template's intrinsic functions to the fake output values: an
    expression that is the value of an output resolves to that output's value."""

    def __init__(self, template, outputs, with_cache):
        self.outputs = outputs
        self.with_cache = with_cache
        self.by_expression = {}
        for key, out in template["Outputs"].items():
            value = plain(out["Value"])
            self.by_expression[json.dumps(value, sort_keys=True)] = outputs[key]
            # An output that is set only under a condition (the shared cache's secret).
            if isinstance(value, dict) and list(value) == ["Fn::If"] and outputs[key]:
                self.by_expression[json.dumps(value["Fn::If"][1], sort_keys=True)] = outputs[key]

    def lookup(self, expression):
        return self.by_expression.get(json.dumps(expression, sort_keys=True))

    def ref(self, name):
        if name == "ImageTag":
            return TAG
        if name == "AWS::Region":
            return self.outputs["Region"]
        value = self.lookup({"Ref": name})
        if value is None:
            raise KeyError(f"no output gives Ref {name}")
        return value

    def getatt(self, resource, attribute):
        value = self.lookup({"Fn::GetAtt": [resource, attribute]})
        if value is None:
            raise KeyError(f"no output gives GetAtt {resource}.{attribute}")
        return value

    def resolve(self, node):
        if isinstance(node, list):
            out = [self.resolve(v) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        known = self.lookup(node)
        if known is not None:
            return known
        if list(node) == ["Ref"]:
            if node["Ref"] == "AWS::NoValue":
                return NO_VALUE
            return self.ref(node["Ref"])
        if list(node) == ["Fn::GetAtt"]:
            resource, attribute = node["Fn::GetAtt"]
            return self.getatt(resource, attribute)
        if list(node) == ["Fn::Sub"]:

            def sub(m):
                name = m.group(1)
                if "." in name:
                    resource, attribute = name.split(".", 1)
                    return self.getatt(resource, attribute)
                return self.ref(name)

            return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", sub, node["Fn::Sub"])
        if list(node) == ["Fn::If"]:
            condition, yes, no = node["Fn::If"]
            if condition != "WithCache":
                raise KeyError(f"unexpected condition {condition} in the task definition")
            return self.resolve(yes if self.with_cache else no)
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}


NO_VALUE = object()


def camel(node, keep_keys=False):
    """CloudFormation's PascalCase property names as the ECS API's camelCase."""
    if isinstance(node, list):
        return [camel(v) for v in node]
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            key = k if keep_keys else k[0].lower() + k[1:]
            # Log driver options are free-form keys.
            out[key] = camel(v, keep_keys=(k == "Options"))
        return out
    return node


def scalars_as_strings(node):
    if isinstance(node, list):
        return [scalars_as_strings(v) for v in node]
    if isinstance(node, dict):
        return {k: scalars_as_strings(v) for k, v in node.items()}
    if isinstance(node, bool):
        return node
    return str(node)


def render(outputs, kind):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()], f)
        path = f.name
    try:
        result = subprocess.run(
            [RENDER, path, TAG, kind], capture_output=True, text=True, check=False
        )
    finally:
        os.unlink(path)
    if result.returncode != 0:
        sys.exit(f"{RENDER} {kind} failed: {result.stderr}")
    return json.loads(result.stdout)


def by_name(containers):
    return {c["name"]: c for c in containers}


def main():
    template = load_template()
    resources = template["Resources"]
    props = plain(resources["TaskDefinition"]["Properties"])

    with open(os.path.join(ROOT, ".github/workflows/deploy.yml"), encoding="utf-8") as f:
        workflow = f.read()
    check(
        "deploy.yml renders the task definitions with deploy/aws/migrate.sh (render-task-definition.sh)",
        "deploy/aws/migrate.sh" in workflow,
    )

    for with_cache in (False, True):
        label = "with the shared cache" if with_cache else "without the shared cache"
        outputs = fake_outputs(template, with_cache)
        expected = scalars_as_strings(camel(Resolver(template, outputs, with_cache).resolve(props)))
        rendered = render(outputs, "service")
        rendered_norm = scalars_as_strings(rendered)
        got = by_name(rendered_norm["containerDefinitions"])
        want = by_name(expected["containerDefinitions"])
        check(f"container names ({label})", sorted(got) == sorted(want), f"{sorted(got)} != {sorted(want)}")
        for name in sorted(set(got) & set(want)):
            for field in ("portMappings", "healthCheck", "image", "user", "dependsOn", "mountPoints",
                          "environment", "secrets", "command", "logConfiguration", "stopTimeout",
                          "essential", "readonlyRootFilesystem", "memory", "memoryReservation"):
                check(
                    f"{name}.{field} ({label})",
                    got[name].get(field) == want[name].get(field),
                    f"rendered {got[name].get(field)!r}\n     template {want[name].get(field)!r}",
                )
        rest_got = {k: v for k, v in rendered_norm.items() if k != "containerDefinitions"}
        rest_want = {k: v for k, v in expected.items() if k != "containerDefinitions"}
        check(
            f"family, sizes, roles, volumes, tags ({label})",
            rest_got == rest_want,
            f"rendered {rest_got!r}\n     template {rest_want!r}",
        )
        secrets = [s["name"] for s in got["backend"].get("secrets", [])]
        check(
            f"PLANSCAPE_SHARED_CACHE_URL {'present' if with_cache else 'absent'} ({label})",
            ("PLANSCAPE_SHARED_CACHE_URL" in secrets) == with_cache,
            f"{secrets}",
        )

    # The health-check design: liveness for the balancer and the containers.
    tg = plain(resources["TargetGroup"]["Properties"])
    check("target group checks /health (liveness)", tg.get("HealthCheckPath") == "/health", tg.get("HealthCheckPath"))
    service = plain(resources["Service"]["Properties"])
    lb = service["LoadBalancers"][0]
    containers = by_name(render(fake_outputs(template, False), "service")["containerDefinitions"])
    ports = [p["containerPort"] for p in containers.get(lb["ContainerName"], {}).get("portMappings", [])]
    check(
        "the balancer's container and port are mapped",
        lb["ContainerPort"] in ports and tg["Port"] == lb["ContainerPort"],
        f"{lb} vs ports {ports}",
    )
    backend_check = " ".join(containers["backend"]["healthCheck"]["command"])
    check(
        "backend container check: /health, any answer counts (no -f: 503 while starting is alive)",
        "http://127.0.0.1:8081/health" in backend_check and "curl -sS " in backend_check and " -f" not in backend_check,
        backend_check,
    )
    nginx_check = " ".join(containers["nginx"]["healthCheck"]["command"])
    check(
        "nginx container check: nginx's own page, not the backend",
        "http://127.0.0.1:8080/index.html" in nginx_check,
        nginx_check,
    )
    with open(os.path.join(ROOT, "docker/nginx/planscape.conf.template"), encoding="utf-8") as f:
        nginx = f.read()
    check(
        "nginx forwards /health to the server",
        re.search(r"location = /health \{[^}]*proxy_pass http://planscape", nginx) is not None,
    )
    backend = containers["backend"]
    grace = next(int(e["value"]) for e in backend["environment"] if e["name"] == "PLANSCAPE_SHUTDOWN_GRACE_S")
    check("shutdown grace < stopTimeout", grace < backend["stopTimeout"], f"{grace} vs {backend['stopTimeout']}")
    database_url = plain(resources["DatabaseUrl"]["Properties"]["SecretString"])
    check(
        "DATABASE_URL uses sslmode=verify-full with the baked RDS bundle",
        "sslmode=verify-full&sslrootcert=/etc/ssl/rds-global-bundle.pem" in json.dumps(database_url),
        database_url,
    )
    with open(os.path.join(ROOT, "docker/Dockerfile"), encoding="utf-8") as f:
        dockerfile = f.read()
    mount = backend["mountPoints"][0]["containerPath"]
    check(
        f"the image declares VOLUME {mount} (owned by the non-root user on Fargate)",
        f'VOLUME ["{mount}"]' in dockerfile,
    )
    params = plain(resources["DbParameterGroup"]["Properties"]["Parameters"])
    check("RDS enforces TLS (rds.force_ssl)", params.get("rds.force_ssl") == "1", params)
    job = plain(resources["SeedJobDefinition"]["Properties"]["ContainerProperties"])
    check(
        "the Batch job logs to the stack's seed log group",
        job["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "SeedLogGroup"},
        job["LogConfiguration"],
    )
    deploy_policy = json.dumps(plain(resources["DeployRole"]["Properties"]["Policies"]))
    check(
        "the deploy role may tag task definitions it registers",
        '"Action": "ecs:TagResource"' in deploy_policy
        and '"ecs:CreateAction": "RegisterTaskDefinition"' in deploy_policy,
    )

    migrate = render(fake_outputs(template, False), "migrate")
    mc = migrate["containerDefinitions"]
    check(
        "migrate: the backend alone, `migrate`, no health check or ports",
        [c["name"] for c in mc] == ["backend"]
        and mc[0]["command"] == ["migrate"]
        and "healthCheck" not in mc[0]
        and "portMappings" not in mc[0],
        json.dumps(mc),
    )
    setup = render(fake_outputs(template, False), "setup")
    sc = setup["containerDefinitions"]
    env = {e["name"]: e["value"] for e in sc[0]["environment"]}
    check(
        "setup: psql as the master over verify-full, with the setup SQL",
        [c["name"] for c in sc] == ["backend"]
        and env.get("PGSSLMODE") == "verify-full"
        and "CREATE EXTENSION IF NOT EXISTS postgis" in env.get("SETUP_SQL", "")
        and setup["executionRoleArn"] == "fake-SetupExecutionRoleArn",
        json.dumps(sc),
    )

    print(f"# pass {passed}")
    print(f"# fail {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
