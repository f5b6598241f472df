//! Content keys of stages (DESIGN.md, *Content-addressed cache*).
//!
//! A key is the sha256 of the canonical JSON of exactly these inputs: the cache layout version,
//! the stage kind, its resolved parameters without provenance, the keys of the stages it needs (in
//! order), the fingerprints of its datasets (in order), the sha256 of each `deps` file, the worker
//! identity (for stages run by `rsfm-worker`) and the seed. Names, descriptions, resources,
//! retries, output formats, absolute paths and the environment are not in it.
//! `docs/caching.md` states the same list; `tests::the_key_holds_exactly_the_documented_fields`
//! pins it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::canonical::{canonical_hash, sha256_hex};

/// Version of the cache layout and key material; bumping it makes every old entry unreachable.
pub const CACHE_LAYOUT: u64 = 1;

/// Everything that enters a stage's key.
#[derive(Debug, Clone)]
pub struct KeyInputs {
    /// Stage kind as spelled in recipes.
    pub kind: String,
    /// Resolved kind-specific parameters, provenance stripped.
    pub params: Map<String, Value>,
    /// Needed stages as (name, key), in the order of `needs`. Names only label the manifest.
    pub needs: Vec<(String, String)>,
    /// Datasets as (name, fingerprint), in the stage's order. Names only label the manifest.
    pub datasets: Vec<(String, String)>,
    /// `deps` files as (path relative to the recipe folder, sha256 of content).
    pub deps: Vec<(String, String)>,
    /// Identity of the code that runs the stage: the worker's for worker-run kinds, `rsfm`'s
    /// for `prepare`; `None` for `command` stages.
    pub worker: Option<Value>,
    /// The stage's seed.
    pub seed: u64,
}

/// One labelled field of a key with its own hash, so `rsfm explain` can name what changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyField {
    /// The field's value as it entered the key.
    pub value: Value,
    /// sha256 of the value's canonical JSON.
    pub sha256: String,
}

/// A stage key with its manifest (stored as `key.json` in the cache entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyManifest {
    /// The stage key: sha256 hex.
    pub key: String,
    /// Labelled fields: `layout`, `kind`, `seed`, `worker.<path>` (`worker` when `null`),
    /// `params.<path>`, `needs.<stage>`, `datasets.<name>`, `deps.<file>`.
    pub fields: BTreeMap<String, KeyField>,
}

impl KeyInputs {
    /// Computes the key and its manifest.
    pub fn manifest(&self) -> KeyManifest {
        let material = json!({
            "layout": CACHE_LAYOUT,
            "kind": self.kind,
            "params": Value::Object(self.params.clone()),
            "needs": self.needs.iter().map(|(_, key)| key.clone()).collect::<Vec<_>>(),
            "datasets": self.datasets.iter().map(|(_, fp)| fp.clone()).collect::<Vec<_>>(),
            "deps": self.deps.iter().map(|(path, hash)| json!([path, hash])).collect::<Vec<_>>(),
            "worker": self.worker.clone().unwrap_or(Value::Null),
            "seed": self.seed,
        });
        let mut fields = BTreeMap::new();
        let mut add = |label: String, value: Value| {
            let sha256 = canonical_hash(&value);
            fields.insert(label, KeyField { value, sha256 });
        };
        add("layout".into(), json!(CACHE_LAYOUT));
        add("kind".into(), json!(self.kind));
        add("seed".into(), json!(self.seed));
        let mut leaves = Vec::new();
        match &self.worker {
            Some(worker) => flatten("worker", worker, &mut leaves),
            None => leaves.push(("worker".into(), Value::Null)),
        }
        flatten("params", &Value::Object(self.params.clone()), &mut leaves);
        for (label, value) in leaves {
            add(label, value);
        }
        for (name, key) in &self.needs {
            add(format!("needs.{name}"), json!(key));
        }
        for (name, fp) in &self.datasets {
            add(format!("datasets.{name}"), json!(fp));
        }
        for (path, hash) in &self.deps {
            add(format!("deps.{path}"), json!(hash));
        }
        KeyManifest {
            key: canonical_hash(&material),
            fields,
        }
    }
}

/// Flattens nested objects and arrays into `prefix.a.b[2]` leaves; empty containers stay leaves.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                flatten(&format!("{prefix}.{key}"), item, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), item, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// One difference between two key manifests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field label (`params.lr`, `datasets.potsdam`, …).
    pub field: String,
    /// Its value in the old manifest, if it had the field.
    pub old: Option<Value>,
    /// Its value in the new manifest, if it has the field.
    pub new: Option<Value>,
}

impl KeyManifest {
    /// The fields whose hashes differ between `previous` and `self` (added, removed or changed).
    pub fn changes_since(&self, previous: &KeyManifest) -> Vec<FieldChange> {
        let labels: std::collections::BTreeSet<&String> =
            self.fields.keys().chain(previous.fields.keys()).collect();
        labels
            .into_iter()
            .filter_map(|label| {
                let old = previous.fields.get(label);
                let new = self.fields.get(label);
                let same = matches!((old, new), (Some(a), Some(b)) if a.sha256 == b.sha256);
                (!same).then(|| FieldChange {
                    field: label.clone(),
                    old: old.map(|f| f.value.clone()),
                    new: new.map(|f| f.value.clone()),
                })
            })
            .collect()
    }
}

/// sha256 of a deps file's content, by path relative to `base`.
pub fn hash_dep(base: &std::path::Path, relative: &str) -> anyhow::Result<String> {
    let path = base.join(relative);
    let bytes = fs_err::read(&path)?;
    Ok(sha256_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> KeyInputs {
        let mut params = Map::new();
        params.insert("lr".into(), json!(1e-4));
        params.insert("argv".into(), json!(["sh", "a.sh", "{out}"]));
        KeyInputs {
            kind: "command".into(),
            params,
            needs: vec![("generate".into(), "k1".into())],
            datasets: vec![("potsdam".into(), "fp1".into())],
            deps: vec![("a.sh".into(), "h1".into())],
            worker: None,
            seed: 7,
        }
    }

    #[test]
    fn the_key_holds_exactly_the_documented_fields() {
        let manifest = inputs().manifest();
        let labels: Vec<&str> = manifest.fields.keys().map(String::as_str).collect();
        assert_eq!(
            labels,
            [
                "datasets.potsdam",
                "deps.a.sh",
                "kind",
                "layout",
                "needs.generate",
                "params.argv[0]",
                "params.argv[1]",
                "params.argv[2]",
                "params.lr",
                "seed",
                "worker"
            ]
        );
        // Every documented input changes the key.
        let base = manifest.key.clone();
        type Change = Box<dyn Fn(&mut KeyInputs)>;
        let variants: Vec<Change> = vec![
            Box::new(|k| k.kind = "prepare".into()),
            Box::new(|k| {
                k.params.insert("lr".into(), json!(2e-4));
            }),
            Box::new(|k| k.needs[0].1 = "k2".into()),
            Box::new(|k| k.datasets[0].1 = "fp2".into()),
            Box::new(|k| k.deps[0].1 = "h2".into()),
            Box::new(|k| k.worker = Some(json!({"version": "x"}))),
            Box::new(|k| k.seed = 8),
        ];
        for change in variants {
            let mut changed = inputs();
            change(&mut changed);
            assert_ne!(changed.manifest().key, base);
        }
        // Labels (stage and dataset names) are not in the key.
        let mut renamed = inputs();
        renamed.needs[0].0 = "other-name".into();
        renamed.datasets[0].0 = "other-dataset".into();
        assert_eq!(renamed.manifest().key, base);
    }

    #[test]
    fn changes_name_exactly_the_changed_fields() {
        let old = inputs().manifest();
        let mut changed = inputs();
        changed.params.insert("lr".into(), json!(3e-4));
        let changes = changed.manifest().changes_since(&old);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "params.lr");
        assert_eq!(changes[0].old, Some(json!(1e-4)));
    }
}
