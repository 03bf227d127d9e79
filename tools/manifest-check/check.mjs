#!/usr/bin/env node
// Offline check of Shunt's Kubernetes manifests (CTest: deploy.manifests).
//
//   node tools/manifest-check/check.mjs [--strict-testdata]
//
// 1. `kubectl kustomize deploy/kubernetes`: every object against the
//    Kubernetes OpenAPI schema of its kind (unknown fields are errors, as with
//    `kubectl apply`'s strict validation); the CRDs also against the API
//    server's CRD rules (structural schemas, one storage version, printer
//    columns, conversion None only between compatible versions); RBAC, the
//    ConfigMap and the DaemonSet against each other and the agent's needs
//    (its flags as agent/main.cc defines them).
// 2. deploy/examples (bookstore via kustomize, demo as files), the uninstall
//    DaemonSet and the test pods of vagrant/scenarios: SMI objects against the openAPIV3Schema of
//    their version in our CRDs, the rest against the Kubernetes schemas.
// 3. SMI objects the e2e tests use (test/e2e/testdata, and YAML in the
//    tests' raw string literals): reported; fatal with --strict-testdata.
// 4. Self-checks: deliberately broken objects must be refused, so the check
//    cannot pass vacuously.
// Exit status 0 when everything holds, 1 otherwise; every message names the
// file, the object and the field.
import path from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
if (!existsSync(path.join(ROOT, "tools/manifest-check/node_modules/kubernetes-models"))) {
  console.error("manifest-check: tools/manifest-check/node_modules is missing; run\n" +
    "  npm ci --prefix tools/manifest-check --no-audit --no-fund   (tools/install-deps.sh does it)");
  process.exit(1);
}
const { embeddedYaml, kustomize, objectName, readYamlDir } = await import("./lib/docs.mjs");
const { validateBuiltin, validateObjectMeta } = await import("./lib/kube_schema.mjs");
const { compileCrds, crdErrors, structuralErrors, validateCustom } = await import("./lib/crd_schema.mjs");

const strictTestdata = process.argv.includes("--strict-testdata");
const started = Date.now();
const problems = [];
const findings = [];
const say = (msg) => console.log(`manifest-check: ${msg}`);
const problem = (origin, obj, msg) => problems.push(`${origin}: ${obj ? objectName(obj) + ": " : ""}${msg}`);

// What the agent's kube source lists and watches: "group/resource" ("" for
// core), read from the API paths in agent/source/kube/resources.cc.
const RESOURCES_CC = "agent/source/kube/resources.cc";
function agentReads() {
  const file = path.join(ROOT, RESOURCES_CC);
  if (!existsSync(file)) return null;
  const text = readFileSync(file, "utf8");
  const out = new Set();
  for (const m of text.matchAll(/"\/api\/v1\/([a-z]+)"/g)) out.add(`/${m[1]}`);
  for (const m of text.matchAll(/"\/apis\/([a-z0-9.-]+)\/v[0-9a-z]+\/([a-z]+)"/g)) out.add(`${m[1]}/${m[2]}`);
  return out;
}
const AGENT_SMI_VERSIONS = [
  "access.smi-spec.io/v1alpha3/TrafficTarget",
  "specs.smi-spec.io/v1alpha4/HTTPRouteGroup",
  "specs.smi-spec.io/v1alpha4/TCPRoute",
  "specs.smi-spec.io/v1alpha4/UDPRoute",
  "split.smi-spec.io/v1alpha4/TrafficSplit",
  "split.smi-spec.io/v1alpha2/TrafficSplit",
];

const isSmi = (obj) => typeof obj?.apiVersion === "string" && /^[a-z]+\.smi-spec\.io\//.test(obj.apiVersion);
const smiKey = (obj) => `${obj.apiVersion}/${obj.kind}`;

// Returns the messages for one object (empty: valid).
async function judge(obj, validators) {
  if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") return ["apiVersion and kind are required"];
  if (isSmi(obj)) {
    const fn = validators.get(smiKey(obj));
    if (!fn) return [`no CRD of deploy/kubernetes/crds serves ${obj.apiVersion} ${obj.kind}`];
    const errs = validateCustom(fn, obj);
    if (obj.metadata && typeof obj.metadata === "object") {
      if (!obj.metadata.name) errs.push("metadata.name: required field is missing");
      errs.push(...(await validateObjectMeta(obj.metadata)));
    }
    return errs;
  }
  const errs = await validateBuiltin(obj);
  return errs ?? [`${obj.apiVersion} ${obj.kind} is not a Kubernetes kind this check knows (Kubernetes 1.27 schemas)`];
}

async function judgeAll(objects, validators, sink) {
  let bad = 0;
  for (const { obj, origin } of objects) {
    const errs = await judge(obj, validators);
    if (errs.length) bad++;
    for (const e of errs) sink(origin, obj, e);
  }
  return bad;
}

// --- 1. deploy/kubernetes ---------------------------------------------------
const deploy = kustomize(ROOT, "deploy/kubernetes");
deploy.errors.forEach((e) => problems.push(e));
const crds = deploy.objects.filter((o) => o.obj.kind === "CustomResourceDefinition");
for (const { obj, origin } of crds) for (const e of crdErrors(obj)) problem(origin, obj, e);
const { validators, errors: compileErrors } = compileCrds(crds);
problems.push(...compileErrors);
await judgeAll(deploy.objects, validators, problem);

for (const key of AGENT_SMI_VERSIONS) {
  if (!validators.has(key)) problems.push(`deploy/kubernetes/crds: no CRD serves ${key}, which the agent watches`);
}

// RBAC: the agent may list and watch exactly what it reads, nothing more.
const byKind = (kind, name) => deploy.objects.find((o) => o.obj.kind === kind && o.obj.metadata?.name === name);
const role = byKind("ClusterRole", "shunt-agent");
if (!role) problems.push("deploy/kubernetes: ClusterRole shunt-agent is missing");
else {
  const granted = new Set();
  for (const [i, r] of (role.obj.rules ?? []).entries()) {
    const verbs = [...(r.verbs ?? [])].sort().join(",");
    if (verbs !== "list,watch") problem(role.origin, role.obj, `rules[${i}].verbs: must be exactly list and watch (is ${verbs})`);
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) granted.add(`${g}/${res}`);
  }
  const wanted = agentReads();
  if (!wanted || wanted.size === 0) problems.push(`${RESOURCES_CC}: no API paths found; cannot compare the agent's reads with its RBAC`);
  else {
    for (const w of wanted) if (!granted.has(w)) problem(role.origin, role.obj, `rules: the agent reads ${w} (${RESOURCES_CC}) but may not list/watch it`);
    for (const g of granted) if (!wanted.has(g)) problem(role.origin, role.obj, `rules: ${g} is granted but the agent does not read it (${RESOURCES_CC})`);
    for (const c of crds) {
      const r = `${c.obj.spec.group}/${c.obj.spec.names.plural}`;
      if (!wanted.has(r)) problem(c.origin, c.obj, `the agent does not read ${r}`);
    }
  }
}

// The DaemonSet reads its settings from the ConfigMap, and the proxy fronts
// the metrics address the ConfigMap gives the agent.
const ds = byKind("DaemonSet", "shunt-agent");
const cms = new Map(deploy.objects.filter((o) => o.obj.kind === "ConfigMap").map((o) => [o.obj.metadata.name, o.obj]));
if (ds) {
  const containers = ds.obj.spec?.template?.spec?.containers ?? [];
  for (const [ci, c] of containers.entries()) {
    for (const [ei, e] of (c.env ?? []).entries()) {
      const ref = e.valueFrom?.configMapKeyRef;
      if (ref && !(cms.get(ref.name)?.data ?? {})[ref.key]) {
        problem(ds.origin, ds.obj, `spec.template.spec.containers[${ci}].env[${ei}]: ConfigMap ${ref.name} has no key ${ref.key}`);
      }
    }
  }
  const proxy = containers.find((c) => c.name === "kube-rbac-proxy");
  const upstream = (proxy?.args ?? []).find((a) => a.startsWith("--upstream="));
  const metricsAddr = cms.get("shunt-config")?.data?.["metrics-addr"];
  if (!proxy || !upstream) problem(ds.origin, ds.obj, "the kube-rbac-proxy container with --upstream is missing");
  else if (upstream !== `--upstream=http://${metricsAddr}/`) {
    problem(ds.origin, ds.obj, `kube-rbac-proxy ${upstream} does not match shunt-config metrics-addr ${metricsAddr}`);
  }
  if (metricsAddr && !/^(127\.0\.0\.1|\[::1\]|localhost):\d+$/.test(metricsAddr)) {
    problems.push(`deploy/kubernetes/configmap.yaml: shunt-config metrics-addr ${metricsAddr} is not loopback: the traffic graph would be open to every pod on the node`);
  }
  // Every flag the manifests give shunt-agent is one it defines.
  const agentFlags = new Set([...readFileSync(path.join(ROOT, "agent/main.cc"), "utf8")
    .matchAll(/ABSL_FLAG\(\s*[\w:]+(?:<[^>]*>)?\s*,\s*(\w+)/g)].map((m) => m[1].replace(/_/g, "-")));
  const agent = containers.find((c) => c.name === "agent");
  for (const arg of [...(agent?.command ?? []), ...(agent?.args ?? [])]) {
    const flag = /^--([a-z0-9-]+)/.exec(arg)?.[1];
    if (flag && !agentFlags.has(flag)) problem(ds.origin, ds.obj, `the agent's command: --${flag} is not a flag of shunt-agent (agent/main.cc)`);
  }
  // Settings the agent checks only at start, checked here before a rollout:
  // a typo would crash-loop every node's agent.
  const settings = cms.get("shunt-config")?.data ?? {};
  const allowed = { mode: ["permissive", "enforce"], mtls: ["off", "permissive", "strict"] };
  for (const [key, values] of Object.entries(allowed)) {
    if (settings[key] !== undefined && !values.includes(settings[key])) {
      problems.push(`deploy/kubernetes/configmap.yaml: shunt-config ${key}: ${settings[key]} is not one of ${values.join(", ")}`);
    }
  }
  // The CA directory the agent is given is a mounted volume, or the agent
  // finds no CA when mTLS is on.
  const caDir = (agent?.command ?? []).map((a) => /^--ca-dir=(.+)$/.exec(a)?.[1]).find(Boolean);
  if (caDir && !(agent.volumeMounts ?? []).some((m) => m.mountPath === caDir)) {
    problem(ds.origin, ds.obj, `the agent's --ca-dir=${caDir} is not a volumeMount of the agent container`);
  }
  if (settings.mtls && settings.mtls !== "off" && !caDir) {
    problem(ds.origin, ds.obj, `shunt-config mtls is ${settings.mtls} but the agent's command has no --ca-dir`);
  }
} else problems.push("deploy/kubernetes: DaemonSet shunt-agent is missing");
// The image: the agent runs shunt-proxy from beside itself (--proxy-bin's
// default), so the Dockerfile must build and copy it to the same directory.
{
  const dockerfile = readFileSync(path.join(ROOT, "deploy/Dockerfile"), "utf8");
  const targets = /--target\s+([\w\s-]+?)\s*(?:\\|&&|$)/m.exec(dockerfile)?.[1].split(/\s+/) ?? [];
  const copied = new Map([...dockerfile.matchAll(/^COPY --from=build \S+ (\S+)\/([\w-]+)$/gm)].map((m) => [m[2], m[1]]));
  for (const bin of ["shunt-agent", "shunt-proxy", "shuntctl"]) {
    if (!targets.includes(bin)) problems.push(`deploy/Dockerfile: the build's --target list does not build ${bin}`);
    if (!copied.has(bin)) problems.push(`deploy/Dockerfile: ${bin} is not copied into the image`);
  }
  if (copied.has("shunt-proxy") && copied.get("shunt-proxy") !== copied.get("shunt-agent")) {
    problems.push(`deploy/Dockerfile: shunt-proxy is copied to ${copied.get("shunt-proxy")}, not beside shunt-agent (${copied.get("shunt-agent")}), where the agent looks for it`);
  }
}
say(`deploy/kubernetes: ${deploy.objects.length} objects against the Kubernetes schemas, ${crds.length} CRDs against the API server's CRD rules, ${validators.size} served versions compiled`);

// --- 2. deploy/examples --------------------------------------------------------
const examples = [
  kustomize(ROOT, "deploy/examples/bookstore"),
  readYamlDir(ROOT, "deploy/examples/demo"),
  readYamlDir(ROOT, "vagrant/scenarios"), // the scenarios' test pods and their TrafficTarget
  readYamlDir(ROOT, "deploy/uninstall"),
];
let exampleCount = 0;
for (const ex of examples) {
  problems.push(...ex.errors);
  exampleCount += ex.objects.length;
  await judgeAll(ex.objects, validators, problem);
}
const exampleSmi = examples.flatMap((e) => e.objects).filter((o) => isSmi(o.obj)).length;
say(`deploy/examples, deploy/uninstall, vagrant/scenarios: ${exampleCount} objects (${exampleSmi} SMI, against our CRDs)`);

// --- 3. what the e2e tests use ------------------------------------------------------
const testdata = readYamlDir(ROOT, "test/e2e/testdata");
const embedded = [embeddedYaml(ROOT, "test/e2e"), embeddedYaml(ROOT, "test/e2e/harness")];
const testObjects = [...testdata.objects, ...embedded.flatMap((e) => e.objects)].filter((o) => isSmi(o.obj));
const finding = (origin, obj, msg) => findings.push(`${origin}: ${objectName(obj)}: ${msg}`);
const rejected = await judgeAll(testObjects, validators, finding);
const skipped = embedded.flatMap((e) => e.skipped);
say(`test/e2e: ${testObjects.length} SMI objects (testdata files and raw string literals), ${rejected} rejected by our CRDs` +
  (skipped.length ? `, ${skipped.length} literals skipped (fragments)` : ""));
for (const f of findings) console.log(`  ${strictTestdata ? "ERROR" : "finding"}: ${f}`);
if (strictTestdata) problems.push(...findings);

// --- 4. self-checks: broken objects must be refused ------------------------------
const pick = (list, kind) => structuredClone(list.find((o) => o.obj.kind === kind)?.obj ?? null);
const exObjects = examples.flatMap((e) => e.objects);
const selfChecks = [
  ["TrafficSplit backend without weight", () => {
    const o = pick(exObjects, "TrafficSplit");
    delete o.spec.backends[0].weight;
    return o;
  }, "weight"],
  ["TrafficSplit with a fractional weight", () => {
    const o = pick(exObjects, "TrafficSplit");
    o.spec.backends[0].weight = 0.5;
    return o;
  }, "integer"],
  ["TrafficSplit with an unknown field", () => {
    const o = pick(exObjects, "TrafficSplit");
    o.spec.backend = o.spec.backends;
    return o;
  }, "spec.backend"],
  ["TrafficTarget rule of an unknown kind", () => {
    const o = pick(exObjects, "TrafficTarget");
    o.spec.rules[0].kind = "HTTPRoute";
    return o;
  }, "spec.rules[0].kind"],
  ["HTTPRouteGroup with a method that is not HTTP", () => {
    const o = pick(exObjects, "HTTPRouteGroup");
    o.spec.matches[0].methods = ["FETCH"];
    return o;
  }, "methods"],
  ["DaemonSet with a port number written as a string", () => {
    const o = pick(deploy.objects, "DaemonSet");
    o.spec.template.spec.containers[0].ports[0].containerPort = "9466";
    return o;
  }, "containerPort"],
  ["DaemonSet with a misspelt field", () => {
    const o = pick(deploy.objects, "DaemonSet");
    o.spec.template.spec.hostNetwrok = true;
    return o;
  }, "hostNetwrok"],
  ["ClusterRole without rules' verbs", () => {
    const o = pick(deploy.objects, "ClusterRole");
    delete o.rules[0].verbs;
    return o;
  }, "verbs"],
];
let refused = 0;
for (const [what, make, mention] of selfChecks) {
  let obj;
  try {
    obj = make();
  } catch (e) {
    problems.push(`self-check "${what}": could not build it from the manifests (${e.message})`);
    continue;
  }
  const errs = await judge(obj, validators);
  if (errs.length === 0) problems.push(`self-check "${what}": the broken object was ACCEPTED, so this check proves nothing`);
  else if (!errs.some((e) => e.includes(mention))) problems.push(`self-check "${what}": refused, but no message names ${mention}: ${errs.join("; ")}`);
  else refused++;
}
// And for the CRD rules: a field without a type, and versions that conversion
// None cannot serve together.
const crdSelfChecks = [
  ["CRD schema field without a type", () => {
    const c = structuredClone(crds.find((x) => x.obj.spec.names.kind === "TCPRoute").obj);
    delete c.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.matches.properties.ports.items.type;
    return structuralErrors(c.spec.versions[0].schema.openAPIV3Schema);
  }, "needs a type"],
  ["TrafficSplit v1alpha2 weight typed differently from the storage version", () => {
    const c = structuredClone(crds.find((x) => x.obj.spec.names.kind === "TrafficSplit").obj);
    const v2 = c.spec.versions.find((v) => v.name === "v1alpha2");
    v2.schema.openAPIV3Schema.properties.spec.properties.backends.items.properties.weight.type = "string";
    return crdErrors(c);
  }, "conversion None"],
];
for (const [what, run, mention] of crdSelfChecks) {
  let errs;
  try {
    errs = run();
  } catch (e) {
    problems.push(`self-check "${what}": could not build it from the CRDs (${e.message})`);
    continue;
  }
  if (!errs.some((e) => e.includes(mention))) problems.push(`self-check "${what}": not refused (${errs.join("; ") || "no errors"}), so this check proves nothing`);
  else refused++;
}
say(`self-checks: ${refused} of ${selfChecks.length + crdSelfChecks.length} deliberately broken objects refused`);

for (const p of problems) console.log(`ERROR ${p}`);
const secs = ((Date.now() - started) / 1000).toFixed(1);
if (problems.length) {
  say(`FAILED: ${problems.length} problem(s) (${secs} s)`);
  process.exit(1);
}
say(`OK (${secs} s)`);
