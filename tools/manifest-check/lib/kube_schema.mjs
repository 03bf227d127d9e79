// Validation of built-in Kubernetes kinds against the Kubernetes OpenAPI
// schemas, as compiled into the kubernetes-models package (Kubernetes 1.27
// schemas in the 4.x line, the last that runs on Debian 12's Node 18).
//
// Those validators check types, required fields and enums, but let unknown
// fields through, while `kubectl apply` (strict field validation, the default
// since Kubernetes 1.27) refuses them. So each object is validated through a
// Proxy that records which keys the validator reads: a key present in an
// object whose other keys the validator did look at, but never read itself,
// is a field the schema does not have. Objects the validator never looked
// into (free-form JSON, such as a CRD schema's `default`) are left alone.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

// "/spec/template/spec/containers/0/ports/0" -> "spec.template.spec.containers[0].ports[0]"
export function fieldPath(pointer) {
  let out = "";
  for (const seg of pointer.split("/").slice(1)) {
    const s = seg.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(s) ? `[${s}]` : (out ? "." : "") + s;
  }
  return out || "(the object)";
}

function modelPath(apiVersion, kind) {
  if (!/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z]+$/.test(kind)) return null;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const models = new Map();
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!models.has(key)) {
    const p = modelPath(apiVersion, kind);
    let model = null;
    if (p) {
      try {
        require.resolve(p);
        model = (await import(p))[kind] ?? null;
      } catch {
        model = null;
      }
    }
    models.set(key, model);
  }
  return models.get(key);
}

export async function isBuiltinKind(apiVersion, kind) {
  return (await modelFor(apiVersion, kind)) !== null;
}

// Wraps value so that every key read on it (at any depth) is recorded in
// `reads`, a Map from the original object to the Set of keys read.
function tracked(value, reads) {
  if (value === null || typeof value !== "object") return value;
  const keys = new Set();
  reads.set(value, keys);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== "string") return v;
      keys.add(key);
      if (v === null || typeof v !== "object") return v;
      if (!children.has(key)) children.set(key, tracked(v, reads));
      return children.get(key);
    },
  });
}

// The kubernetes-models generator drops every property named `description`
// (it takes it for documentation) and the x-kubernetes-* extensions of a
// CRD's JSONSchemaProps from its compiled schemas, so their validators never
// read them. They are judged here instead: a description must be a string;
// the extensions are checked with the CRD rules (crd_schema.mjs).
function generatorGap(key, value) {
  if (key === "description") return typeof value === "string" ? "" : "must be string";
  if (key.startsWith("x-kubernetes-")) return "";
  return null;
}

function unknownFields(value, reads, pointer, out) {
  if (value === null || typeof value !== "object") return;
  const keys = reads.get(value);
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, reads, `${pointer}/${i}`, out));
    return;
  }
  if (!keys) return; // never reached by the validator: free-form or under an unknown field
  const looked = keys.size > 0;
  for (const k of Object.keys(value)) {
    const p = `${pointer}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`;
    if (!looked || keys.has(k)) {
      unknownFields(value[k], reads, p, out);
      continue;
    }
    const gap = generatorGap(k, value[k]);
    if (gap === null) out.push(`${fieldPath(p)}: unknown field (the schema has no such field)`);
    else if (gap) out.push(`${fieldPath(p)}: ${gap}`);
  }
}

// Validates a built-in object. Returns a list of messages, each naming the
// field; empty when the object is valid. `null` when the kind is unknown.
export async function validateBuiltin(obj) {
  const Model = await modelFor(obj.apiVersion, obj.kind);
  if (!Model) return null;
  const reads = new Map();
  const errors = [];
  try {
    // The model's validate() runs the compiled schema on `this`; called on the
    // tracked object it sees exactly the data we pass.
    Model.prototype.validate.call(tracked(obj, reads));
  } catch (e) {
    for (const err of e.errors ?? [{ instancePath: "", message: e.message }]) {
      let msg = err.message;
      if (err.keyword === "required") msg = `required field ${err.params.missingProperty} is missing`;
      if (err.keyword === "enum") msg += `: ${err.params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
      errors.push(`${fieldPath(err.instancePath)}: ${msg}`);
    }
  }
  unknownFields(obj, reads, "", errors);
  return [...new Set(errors)];
}

// ObjectMeta of a custom resource (its schema in a CRD never covers metadata).
export async function validateObjectMeta(meta) {
  const { ObjectMeta } = await import("@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta");
  const reads = new Map();
  const errors = [];
  try {
    ObjectMeta.prototype.validate.call(tracked(meta, reads));
  } catch (e) {
    for (const err of e.errors ?? []) errors.push(`metadata${fieldPath(err.instancePath) === "(the object)" ? "" : "." + fieldPath(err.instancePath)}: ${err.message}`);
  }
  const unknown = [];
  unknownFields(meta, reads, "", unknown);
  for (const u of unknown) errors.push(`metadata.${u}`);
  return errors;
}
