// Where the objects come from: YAML files (with the line each document
// starts on), `kubectl kustomize DIR`, and YAML embedded in C++ raw string
// literals of the e2e tests. Every object carries an origin string that error
// messages start with.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { LineCounter, parseAllDocuments } from "yaml";

// Parses every YAML document of `text`. Returns {objects, errors}; each object
// is {obj, origin} with origin "FILE:LINE". Empty documents are skipped.
export function parseYaml(text, file) {
  const lineCounter = new LineCounter();
  const objects = [];
  const errors = [];
  for (const doc of parseAllDocuments(text, { lineCounter, uniqueKeys: true })) {
    const line = doc.contents ? lineCounter.linePos(doc.contents.range[0]).line : 1;
    const origin = `${file}:${line}`;
    if (doc.errors.length > 0) {
      errors.push(`${origin}: not valid YAML: ${doc.errors[0].message.split("\n")[0]}`);
      continue;
    }
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) continue;
    if (typeof obj !== "object" || Array.isArray(obj)) {
      errors.push(`${origin}: a document must be a mapping (a Kubernetes object)`);
      continue;
    }
    objects.push({ obj, origin });
  }
  return { objects, errors };
}

export function readYamlFile(root, rel) {
  return parseYaml(readFileSync(path.join(root, rel), "utf8"), rel);
}

// "Kind ns/name" or "Kind name": how messages name an object.
export function objectName(obj) {
  const m = obj?.metadata ?? {};
  const name = m.namespace ? `${m.namespace}/${m.name}` : `${m.name}`;
  return `${obj?.kind ?? "(no kind)"} ${name}`;
}

function identity(obj) {
  return `${obj.apiVersion}|${objectName(obj)}`;
}

// Runs `kubectl kustomize DIR` and returns {objects, errors}. Each object's
// origin is the file of DIR's resources that defines it (kustomize output
// carries no positions), found by apiVersion, kind, namespace and name.
export function kustomize(root, dir) {
  const errors = [];
  let out;
  try {
    out = execFileSync("kubectl", ["kustomize", path.join(root, dir)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 20000,
    });
  } catch (e) {
    const why = e.code === "ENOENT"
      ? "kubectl is not on PATH (tools/install-deps.sh installs Debian's kubernetes-client)"
      : `${(e.stderr || e.message || "").toString().trim()}`;
    return { objects: [], errors: [`kubectl kustomize ${dir}: ${why}`] };
  }
  const where = new Map();
  const kust = readYamlFile(root, path.join(dir, "kustomization.yaml"));
  for (const res of kust.objects[0]?.obj?.resources ?? []) {
    const rel = path.join(dir, res);
    if (!existsSync(path.join(root, rel)) || !/\.ya?ml$/.test(rel)) continue;
    for (const { obj, origin } of readYamlFile(root, rel).objects) where.set(identity(obj), origin);
  }
  const parsed = parseYaml(out, `kubectl kustomize ${dir}`);
  for (const o of parsed.objects) {
    const file = where.get(identity(o.obj));
    o.origin = file ? `${file} (via kustomize)` : `kubectl kustomize ${dir}`;
  }
  return { objects: parsed.objects, errors: errors.concat(parsed.errors) };
}

// Every *.yaml/*.yml/*.json file directly in DIR (sorted), parsed.
export function readYamlDir(root, dir) {
  const objects = [];
  const errors = [];
  const abs = path.join(root, dir);
  if (!existsSync(abs)) return { objects, errors };
  for (const f of readdirSync(abs).sort()) {
    if (!/\.(ya?ml|json)$/.test(f)) continue;
    if (f.endsWith(".schema.json")) continue; // JSON Schemas, not objects
    const r = readYamlFile(root, path.join(dir, f));
    objects.push(...r.objects);
    errors.push(...r.errors);
  }
  return { objects, errors };
}

// YAML inside C++ raw string literals R"(...)" of the *.cc files in DIR that
// mention an SMI group. Literals that are fragments of a larger string (glued
// with StrCat) may not parse; those are returned in `skipped`, not as errors.
export function embeddedYaml(root, dir) {
  const objects = [];
  const skipped = [];
  const abs = path.join(root, dir);
  for (const f of readdirSync(abs).sort()) {
    if (!f.endsWith(".cc")) continue;
    const rel = path.join(dir, f);
    const text = readFileSync(path.join(abs, f), "utf8");
    for (const m of text.matchAll(/R"\(([\s\S]*?)\)"/g)) {
      if (!m[1].includes("smi-spec.io")) continue;
      const line = text.slice(0, m.index).split("\n").length;
      const r = parseYaml(m[1], `${rel}:${line}`);
      if (r.errors.length > 0) {
        skipped.push(`${rel}:${line}: raw string does not parse as YAML on its own`);
        continue;
      }
      // Document lines inside the literal start at the literal's line.
      for (const o of r.objects) {
        const inner = Number(o.origin.split(":").pop());
        o.origin = `${rel}:${line + inner - 1}`;
        objects.push(o);
      }
    }
  }
  return { objects, skipped };
}
