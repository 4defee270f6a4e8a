// Validates every object of a rendered chart (a YAML stream on stdin or in
// the files given) against the Kubernetes schemas of npm kubernetes-models
// (core API), @kubernetes-models/cert-manager and
// @kubernetes-models/prometheus-operator, offline. Unknown fields are refused
// too, as the API server's strict field validation does.
//
// The models' validators are ajv-compiled code that reads each declared
// property of an object (data.name, data.args, ...) and iterates the keys of
// maps (labels, data). Running them over proxies that record those reads
// tells which keys the schema knows: a key never read in an object that was
// never iterated is unknown to the schema.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const packages = {
  "cert-manager.io": "@kubernetes-models/cert-manager/cert-manager.io",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator/monitoring.coreos.com",
};

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const path = packages[group] ? `${packages[group]}/${version}`
             : group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  let mod;
  try { mod = await import(`${path}/${kind}`); } catch { mod = undefined; }
  if (!mod || !mod[kind]) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return mod[kind];
}

// Wraps `value` so reads are recorded in `seen` (object -> Set of keys, or
// true when the object's keys were enumerated).
function track(value, seen) {
  if (value === null || typeof value !== "object") return value;
  const reads = new Set();
  seen.set(value, reads);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string") reads.add(key);
      const v = Reflect.get(target, key, receiver);
      if (v === null || typeof v !== "object") return v;
      if (!children.has(key)) children.set(key, track(v, seen));
      return children.get(key);
    },
    has(target, key) {
      if (typeof key === "string") reads.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      seen.set(value, true);
      return Reflect.ownKeys(target);
    },
  });
}

function unknownFields(value, seen, path, out) {
  if (value === null || typeof value !== "object") return;
  const reads = seen.get(value);
  for (const key of Object.keys(value)) {
    const p = Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`;
    if (!Array.isArray(value) && reads !== true && !(reads && reads.has(key))) {
      out.push(p);
      continue;
    }
    unknownFields(value[key], seen, p, out);
  }
}

const inputs = process.argv.length > 2 ? process.argv.slice(2).map((f) => readFileSync(f, "utf8"))
                                       : [readFileSync(0, "utf8")];
let failures = 0, count = 0;
for (const text of inputs) {
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) { console.error(`YAML: ${doc.errors[0].message}`); failures++; continue; }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const name = `${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
    count++;
    try {
      const Model = await modelFor(obj.apiVersion, obj.kind);
      const seen = new Map();
      Model.prototype.validate.call(track(obj, seen));
      const unknown = [];
      unknownFields(obj, seen, "", unknown);
      if (unknown.length) throw new Error(`unknown fields: ${unknown.join(", ")}`);
    } catch (e) {
      console.error(`INVALID ${name}: ${e.message}`);
      failures++;
    }
  }
}
if (failures) process.exit(1);
console.log(`${count} objects valid`);
