//! `rsfm kinds [KIND] [--json]`: each stage kind's parameters with type, default and doc, read
//! from the kind's schema struct (the same one the loader checks and the worker reads).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::BadInput;
use crate::recipe::StageKind;

/// Arguments of `rsfm kinds`.
#[derive(Debug, Clone, Args)]
pub struct KindsArgs {
    /// One kind (`finetune-seg`); all kinds when left out.
    pub kind: Option<String>,
}

/// One parameter in the `--json` output: a stable contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamDoc {
    /// Its key in a stage table.
    pub name: String,
    /// Its type as messages spell it (`integer`, `one of loveda, potsdam`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether a stage must set it.
    pub required: bool,
    /// The value used when it is left out (`null`: unset, see the doc).
    pub default: Option<Value>,
    /// What it means.
    pub doc: String,
}

/// One kind in the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindDoc {
    /// Its spelling in recipes.
    pub kind: String,
    /// Its parameters, in declaration order.
    pub params: Vec<ParamDoc>,
}

/// The documentation of `kind`, from its schema.
pub fn kind_doc(kind: StageKind) -> KindDoc {
    KindDoc {
        kind: kind.to_string(),
        params: kind
            .params()
            .iter()
            .map(|field| ParamDoc {
                name: field.name.to_string(),
                ty: field.ty.describe(),
                required: field.required(),
                default: field.default.clone(),
                doc: field.doc.clone(),
            })
            .collect(),
    }
}

/// Runs `rsfm kinds`.
pub fn run(args: &KindsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let kinds = match &args.kind {
        None => StageKind::ALL.to_vec(),
        Some(text) => match StageKind::parse(text) {
            Some(kind) => vec![kind],
            None => {
                let known: Vec<&str> = StageKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(BadInput::msg(format!(
                    "unknown stage kind `{text}`; kinds: {}",
                    known.join(", ")
                )));
            }
        },
    };
    let docs: Vec<KindDoc> = kinds.into_iter().map(kind_doc).collect();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &docs)?;
        writeln!(out)?;
    } else {
        for doc in &docs {
            write!(out, "{}", render(doc))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form: one block per kind, one line per parameter and its doc indented below.
fn render(doc: &KindDoc) -> String {
    let mut text = format!("{}\n", doc.kind);
    if doc.params.is_empty() {
        text.push_str("  (no parameters)\n");
    }
    for param in &doc.params {
        let default = match (&param.default, param.required) {
            (_, true) => "required".to_string(),
            (Some(Value::Null) | None, false) => "default: unset".to_string(),
            (Some(value), false) => format!("default: {value}"),
        };
        text.push_str(&format!(
            "  {} ({}; {default})\n      {}\n",
            param.name, param.ty, param.doc
        ));
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsfm_model::params::{
        EvaluateParams, FinetuneDetParams, FinetuneSegParams, MaePretrainParams, Schema,
    };
    use serde_json::{json, Map};

    /// The parameters a worker reads from a `stage.json` that sets only the required keys.
    fn worker_reads<T: Schema + serde::de::DeserializeOwned + Serialize>(
        required: Value,
    ) -> Map<String, Value> {
        let parsed: T = serde_json::from_value(required).unwrap();
        let mut all = Map::new();
        for field in T::fields() {
            let value = serde_json::to_value(&parsed).unwrap()[field.name].clone();
            all.insert(field.name.to_string(), value);
        }
        all
    }

    #[test]
    fn every_default_shown_is_the_default_the_worker_uses() {
        let vit = json!({ "patch_size": 8, "image_size": 32, "embed_dim": 32, "depth": 2, "num_heads": 2 });
        let cases = [
            (
                StageKind::MaePretrain,
                worker_reads::<MaePretrainParams>(
                    json!({ "model": vit, "steps": 1, "batch_size": 1 }),
                ),
            ),
            (
                StageKind::FinetuneSeg,
                worker_reads::<FinetuneSegParams>(
                    json!({ "model": vit, "steps": 1, "batch_size": 1 }),
                ),
            ),
            (
                StageKind::FinetuneDet,
                worker_reads::<FinetuneDetParams>(json!({ "model": vit, "batch_size": 1 })),
            ),
            (
                StageKind::Evaluate,
                worker_reads::<EvaluateParams>(json!({})),
            ),
        ];
        for (kind, read) in cases {
            let shown = kind_doc(kind);
            assert_eq!(shown.params.len(), read.len(), "{kind}");
            for param in shown.params {
                match param.default {
                    Some(default) => {
                        assert_eq!(read[&param.name], default, "{kind}.{}", param.name)
                    }
                    None => assert!(param.required, "{kind}.{}", param.name),
                }
            }
        }
    }

    #[test]
    fn text_lists_type_default_and_doc() {
        let text = render(&kind_doc(StageKind::FinetuneSeg));
        assert!(text.starts_with("finetune-seg\n"), "{text}");
        assert!(
            text.contains("  lr (float; default: 0.00006)")
                || text.contains("  lr (float; default: 6e-5)"),
            "{text}"
        );
        assert!(text.contains("  steps (integer; required)"), "{text}");
        assert!(
            text.contains("  global_stages (array of integers; default: unset)"),
            "{text}"
        );
        assert!(text.contains("Peak learning rate."), "{text}");
    }
}
