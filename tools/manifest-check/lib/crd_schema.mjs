// Our CRDs: the rules the API server applies to an apiextensions.k8s.io/v1
// CRD beyond its OpenAPI type (structural schemas, one storage version, ...),
// and validation of custom objects against the openAPIV3Schema of their
// version with Ajv, the way the API server would judge them with strict
// field validation (unknown fields are errors, not silently pruned).
import Ajv from "ajv";
import { fieldPath } from "./kube_schema.mjs";

const FORBIDDEN = ["$ref", "$schema", "id", "definitions", "dependencies", "additionalItems", "patternProperties"];
const VALUE_VALIDATION = ["allOf", "anyOf", "oneOf", "not"];

// Structural-schema rules (Kubernetes "Specifying a structural schema"), in
// the form this project needs them. Returns messages naming the schema path.
export function structuralErrors(schema, at = "openAPIV3Schema", inValueValidation = false, isRoot = true) {
  const errs = [];
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) return [`${at}: must be a schema object`];
  for (const k of FORBIDDEN) if (k in schema) errs.push(`${at}.${k}: not allowed in a CRD schema`);
  if (schema.uniqueItems === true) errs.push(`${at}.uniqueItems: cannot be true in a CRD schema`);
  if (schema["x-kubernetes-preserve-unknown-fields"] === false) errs.push(`${at}.x-kubernetes-preserve-unknown-fields: must be true or absent`);
  for (const k of ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource"]) {
    if (k in schema && typeof schema[k] !== "boolean") errs.push(`${at}.${k}: must be boolean`);
  }
  if ("x-kubernetes-list-type" in schema && !["atomic", "set", "map"].includes(schema["x-kubernetes-list-type"])) errs.push(`${at}.x-kubernetes-list-type: must be atomic, set or map`);
  if ("x-kubernetes-map-type" in schema && !["atomic", "granular"].includes(schema["x-kubernetes-map-type"])) errs.push(`${at}.x-kubernetes-map-type: must be atomic or granular`);
  if ("x-kubernetes-validations" in schema) errs.push(`${at}.x-kubernetes-validations: CEL rules cannot be checked offline; this check refuses them until it can`);
  const known = /^x-kubernetes-(preserve-unknown-fields|int-or-string|embedded-resource|list-type|list-map-keys|map-type|validations)$/;
  for (const k of Object.keys(schema)) if (k.startsWith("x-kubernetes-") && !known.test(k)) errs.push(`${at}.${k}: unknown extension`);
  const preserve = schema["x-kubernetes-preserve-unknown-fields"] === true;
  const intOrString = schema["x-kubernetes-int-or-string"] === true;
  if (inValueValidation) {
    for (const k of ["type", "description", "default", "additionalProperties", "nullable"]) {
      if (k in schema) errs.push(`${at}.${k}: not allowed inside allOf/anyOf/oneOf/not`);
    }
  } else {
    if (!schema.type && !preserve && !intOrString) errs.push(`${at}: every field needs a type (or x-kubernetes-int-or-string / x-kubernetes-preserve-unknown-fields)`);
    if (intOrString && schema.type) errs.push(`${at}: x-kubernetes-int-or-string and type exclude each other`);
    if (schema.type === "object" || schema.properties || schema.additionalProperties !== undefined) {
      if (schema.properties && schema.additionalProperties !== undefined) errs.push(`${at}: properties and additionalProperties exclude each other`);
      if (schema.additionalProperties === false) errs.push(`${at}.additionalProperties: false is not allowed (unknown fields are pruned or refused anyway)`);
    }
    if (schema.type === "array" && (schema.items === undefined || Array.isArray(schema.items))) errs.push(`${at}.items: an array needs one items schema`);
    if (schema.type && !["object", "array", "string", "integer", "number", "boolean"].includes(schema.type)) errs.push(`${at}.type: '${schema.type}' is not a type`);
    if (Array.isArray(schema.enum)) {
      for (const v of schema.enum) {
        const t = v === null ? "null" : Number.isInteger(v) ? "integer" : typeof v;
        const ok = schema.type === undefined || schema.type === t || (schema.type === "number" && t === "integer");
        if (!ok) errs.push(`${at}.enum: ${JSON.stringify(v)} is not of type ${schema.type}`);
      }
    }
  }
  if (isRoot) {
    if (schema.type !== "object") errs.push(`${at}.type: the root must be an object`);
    const meta = schema.properties?.metadata;
    if (meta) {
      const extra = Object.keys(meta.properties ?? {}).filter((k) => k !== "name" && k !== "generateName");
      if (extra.length || Object.keys(meta).some((k) => !["type", "properties"].includes(k))) errs.push(`${at}.properties.metadata: may only restrict name and generateName`);
    }
  }
  for (const [k, sub] of Object.entries(schema.properties ?? {})) errs.push(...structuralErrors(sub, `${at}.properties.${k}`, inValueValidation, false));
  if (schema.items && !Array.isArray(schema.items)) errs.push(...structuralErrors(schema.items, `${at}.items`, inValueValidation, false));
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") errs.push(...structuralErrors(schema.additionalProperties, `${at}.additionalProperties`, inValueValidation, false));
  for (const k of VALUE_VALIDATION) {
    const subs = k === "not" ? (schema.not ? [schema.not] : []) : schema[k] ?? [];
    subs.forEach((s, i) => errs.push(...structuralErrors(s, `${at}.${k}[${i}]`, true, false)));
  }
  return errs;
}

// The property paths of a schema with their types: ".spec.backends[].weight" -> "integer".
export function schemaPaths(schema, at = "", out = new Map()) {
  out.set(at || ".", schema["x-kubernetes-int-or-string"] ? "int-or-string" : schema.type ?? "any");
  for (const [k, sub] of Object.entries(schema.properties ?? {})) schemaPaths(sub, `${at}.${k}`, out);
  if (schema.items && !Array.isArray(schema.items)) schemaPaths(schema.items, `${at}[]`, out);
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") schemaPaths(schema.additionalProperties, `${at}{}`, out);
  return out;
}

function requiredPaths(schema, at = "", out = new Set()) {
  for (const r of schema.required ?? []) out.add(`${at}.${r}`);
  for (const [k, sub] of Object.entries(schema.properties ?? {})) requiredPaths(sub, `${at}.${k}`, out);
  if (schema.items && !Array.isArray(schema.items)) requiredPaths(schema.items, `${at}[]`, out);
  return out;
}

// Everything about one CRD that the API server would refuse, or that would
// make conversion strategy None lose or reject data. Returns messages.
export function crdErrors(crd) {
  const errs = [];
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  if (crd.metadata?.name !== `${names.plural}.${spec.group}`) errs.push(`metadata.name: must be <plural>.<group>, ${names.plural}.${spec.group}`);
  if (spec.scope !== "Namespaced") errs.push(`spec.scope: SMI objects are Namespaced`);
  const versions = spec.versions ?? [];
  const storage = versions.filter((v) => v.storage);
  if (storage.length !== 1) errs.push(`spec.versions: exactly one version must be the storage version (found ${storage.length})`);
  const seen = new Set();
  for (const [i, v] of versions.entries()) {
    const at = `spec.versions[${i}] (${v.name})`;
    if (seen.has(v.name)) errs.push(`${at}: version listed twice`);
    seen.add(v.name);
    const s = v.schema?.openAPIV3Schema;
    if (!s) {
      errs.push(`${at}.schema.openAPIV3Schema: every served version needs a schema`);
      continue;
    }
    errs.push(...structuralErrors(s).map((e) => `${at}.schema.${e}`));
    const paths = schemaPaths(s);
    for (const [j, col] of (v.additionalPrinterColumns ?? []).entries()) {
      const p = col.jsonPath ?? "";
      if (!p.startsWith(".metadata.") && !paths.has(p)) errs.push(`${at}.additionalPrinterColumns[${j}].jsonPath: ${p} is not a field of the schema`);
    }
  }
  // Conversion None: the API server only rewrites apiVersion. Sound only if
  // every other version's object is also a valid object of the storage
  // version: same fields with the same types, nothing newly required.
  const strategy = spec.conversion?.strategy ?? "None";
  if (strategy === "None" && storage.length === 1 && versions.length > 1) {
    const st = storage[0].schema?.openAPIV3Schema;
    const stPaths = st ? schemaPaths(st) : new Map();
    const stRequired = st ? requiredPaths(st) : new Set();
    for (const v of versions) {
      if (v === storage[0] || !v.schema?.openAPIV3Schema) continue;
      const s = v.schema.openAPIV3Schema;
      for (const [p, t] of schemaPaths(s)) {
        if (!stPaths.has(p)) errs.push(`spec.versions (${v.name}): field ${p} does not exist in storage version ${storage[0].name}; conversion None would drop it`);
        else if (stPaths.get(p) !== t) errs.push(`spec.versions (${v.name}): field ${p} is ${t} but ${stPaths.get(p)} in ${storage[0].name}; conversion None cannot change types`);
      }
      // A field the storage version requires must be required in this one
      // too, wherever this version can hold its parent at all.
      const req = requiredPaths(s);
      const paths = schemaPaths(s);
      for (const r of stRequired) {
        const parent = r.slice(0, r.lastIndexOf(".")) || ".";
        if (paths.has(parent) && !req.has(r)) errs.push(`spec.versions (${v.name}): ${r} is required in ${storage[0].name} but not in ${v.name}`);
      }
    }
  }
  return errs;
}

// OpenAPI v3 as Kubernetes reads it -> JSON Schema for Ajv, with Kubernetes'
// meanings: int-or-string, nullable, preserve-unknown-fields, and unknown
// fields refused (strict field validation) wherever properties are listed.
function toJsonSchema(s, isRoot) {
  const out = {};
  const preserve = s["x-kubernetes-preserve-unknown-fields"] === true;
  for (const k of ["properties", "required", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf", "description"]) {
    if (s[k] !== undefined) out[k] = s[k];
  }
  if (s.type) out.type = s.nullable ? [s.type, "null"] : s.type;
  if (s["x-kubernetes-int-or-string"]) out.anyOf = [{ type: "integer" }, { type: "string" }];
  // OpenAPI 3.0 has boolean exclusiveMinimum/Maximum next to minimum/maximum.
  if (s.exclusiveMinimum === true && s.minimum !== undefined) {
    out.exclusiveMinimum = s.minimum;
    delete out.minimum;
  }
  if (s.exclusiveMaximum === true && s.maximum !== undefined) {
    out.exclusiveMaximum = s.maximum;
    delete out.maximum;
  }
  if (s.properties) {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, toJsonSchema(v, false)]));
  }
  if (s.items && !Array.isArray(s.items)) out.items = toJsonSchema(s.items, false);
  if (typeof s.additionalProperties === "object") out.additionalProperties = toJsonSchema(s.additionalProperties, false);
  else if (s.additionalProperties === true) out.additionalProperties = true;
  else if (s.properties && !preserve) out.additionalProperties = false;
  for (const k of ["allOf", "anyOf", "oneOf"]) if (s[k]) out[k] = (out[k] ?? []).concat(s[k].map((x) => toJsonSchema(x, false)));
  if (s.not) out.not = toJsonSchema(s.not, false);
  if (isRoot) {
    // apiVersion, kind and metadata are implicit in every CRD schema.
    out.properties = { apiVersion: { type: "string" }, kind: { type: "string" }, metadata: { type: "object" }, ...(out.properties ?? {}) };
    out.required = [...new Set(["apiVersion", "kind", "metadata", ...(out.required ?? [])])];
  }
  return out;
}

// Compiles every served version of every CRD. Returns a Map from
// "group/version/Kind" to an Ajv validate function (with .crd naming its
// source), and a list of compile errors.
export function compileCrds(crds) {
  const ajv = new Ajv({ allErrors: true, strict: true });
  const validators = new Map();
  const errors = [];
  for (const { obj, origin } of crds) {
    for (const v of obj.spec?.versions ?? []) {
      if (!v.served || !v.schema?.openAPIV3Schema) continue;
      const key = `${obj.spec.group}/${v.name}/${obj.spec.names?.kind}`;
      try {
        const fn = ajv.compile(toJsonSchema(v.schema.openAPIV3Schema, true));
        fn.crd = `${obj.metadata?.name} ${v.name} (${origin})`;
        validators.set(key, fn);
      } catch (e) {
        errors.push(`${origin}: CRD ${obj.metadata?.name} version ${v.name}: schema does not compile: ${e.message}`);
      }
    }
  }
  return { validators, errors };
}

// Validates one custom object; messages name the field.
export function validateCustom(fn, obj) {
  if (fn(obj)) return [];
  return fn.errors.map((e) => {
    const at = fieldPath(e.instancePath);
    switch (e.keyword) {
      case "required":
        return `${at === "(the object)" ? "" : at + "."}${e.params.missingProperty}: required field is missing`;
      case "additionalProperties":
        return `${at === "(the object)" ? "" : at + "."}${e.params.additionalProperty}: unknown field (the CRD's schema has no such field)`;
      case "enum":
        return `${at}: must be one of ${e.params.allowedValues.map((x) => JSON.stringify(x)).join(", ")}`;
      default:
        return `${at}: ${e.message}`;
    }
  });
}
