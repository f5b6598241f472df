//! A worker stage's recipe parameters (flat names, a model preset by name) turned into the
//! `params` of `stage.json` that `rsfm-worker` reads (nested, the preset's `[vit]` table
//! inline). Every parameter of the kind's table is consumed here; a parameter left over is an
//! error, so a recipe never sets a value the worker does not honour.

use anyhow::{bail, Context};
use rsfm_model::arch::{ModelPreset, VitConfig};
use serde_json::{json, Map, Value};

use crate::presets::resolve_preset;
use crate::recipe::{Recipe, Stage, StageKind};

/// What the worker gets for one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerParams {
    /// The `params` of `stage.json`; placeholders are left for the executor.
    pub params: Map<String, Value>,
    /// Needed stages (base names) whose output dir the worker reads as the dataset of the
    /// same name.
    pub dataset_inputs: Vec<String>,
}

/// A stage the translated one needs.
#[derive(Debug, Clone, Copy)]
pub struct Needed<'a> {
    /// Its base name (the key of its output dir in `stage.json`'s `inputs`).
    pub base: &'a str,
    /// Its kind.
    pub kind: StageKind,
}

/// The worker parameters of `stage` (of `recipe`), or `None` for a `command` stage. Errors
/// start with the stage's `file:line:col` and say what to change.
pub fn translate(
    recipe: &Recipe,
    stage: &Stage,
    needed: &[Needed],
) -> anyhow::Result<Option<WorkerParams>> {
    let mut tr = Translation {
        recipe,
        stage,
        needed,
        rest: stage.params.clone(),
        dataset_inputs: Vec::new(),
    };
    let params = match stage.kind {
        StageKind::Command => return Ok(None),
        StageKind::Prepare => bail!(
            "{}: stage `{}`: no worker runs kind `prepare`; make the data with a `command` stage, e.g. argv = [\"rsfm\", \"synth\", \"loveda\", \"--out\", \"{{out}}\"], and read it with `dataset = \"{}\"` in the stages that need it",
            stage.location,
            stage.name,
            stage.base
        ),
        StageKind::MaePretrain => tr.mae_pretrain(),
        StageKind::FinetuneSeg => tr.finetune_seg(),
        StageKind::FinetuneDet => tr.finetune_det(),
        StageKind::Evaluate => tr.evaluate(),
    }
    .with_context(|| format!("{}: stage `{}`", stage.location, stage.name))?;
    if let Some(name) = tr.rest.keys().next() {
        bail!(
            "{}: stage `{}`: parameter `{name}` is not passed to the worker for kind `{}`",
            stage.location,
            stage.name,
            stage.kind
        );
    }
    Ok(Some(WorkerParams {
        params,
        dataset_inputs: tr.dataset_inputs,
    }))
}

/// Fields of the preset's `[vit]` table a recipe may override under the same name.
const VIT_OVERRIDES: &[&str] = &[
    "patch_size",
    "embed_dim",
    "depth",
    "parallel",
    "num_heads",
    "mlp_ratio",
    "qkv_bias",
    "drop_path",
];
const SEG_FORMATS: &[&str] = &["loveda", "potsdam"];
const DET_FORMATS: &[&str] = &["dota", "dior-r"];

/// The state of one stage's translation: the parameters not consumed yet.
struct Translation<'a> {
    recipe: &'a Recipe,
    stage: &'a Stage,
    needed: &'a [Needed<'a>],
    rest: Map<String, Value>,
    dataset_inputs: Vec<String>,
}

impl Translation<'_> {
    fn mae_pretrain(&mut self) -> anyhow::Result<Map<String, Value>> {
        self.require(&["steps", "batch_size"])?;
        let mut out = Map::new();
        out.insert("model".into(), self.backbone("image_size")?);
        let mut mae = Map::new();
        self.move_all(
            &mut mae,
            &[
                "mask_ratio",
                "norm_pix_loss",
                "decoder_embed_dim",
                "decoder_depth",
                "decoder_num_heads",
            ],
        );
        if !mae.is_empty() {
            out.insert("mae".into(), Value::Object(mae));
        }
        let (name, _) = self.dataset()?;
        out.insert("data".into(), json!({ "name": name }));
        self.move_all(
            &mut out,
            &[
                "steps",
                "batch_size",
                "base_lr",
                "min_lr",
                "warmup_steps",
                "weight_decay",
                "precision",
                "checkpoint_every",
                "log_every",
            ],
        );
        Ok(out)
    }

    fn finetune_seg(&mut self) -> anyhow::Result<Map<String, Value>> {
        self.require(&["steps", "batch_size"])?;
        let mut out = Map::new();
        out.insert("model".into(), self.backbone("crop_size")?);
        self.vitdet(&mut out);
        self.move_all(&mut out, &["head_channels"]);
        let data = self.seg_data()?;
        out.insert("data".into(), data);
        self.pretrained(&mut out)?;
        self.move_all(
            &mut out,
            &[
                "fraction",
                "steps",
                "batch_size",
                "lr",
                "min_lr",
                "warmup_steps",
                "weight_decay",
                "layer_decay",
                "checkpoint_every",
                "log_every",
            ],
        );
        Ok(out)
    }

    fn finetune_det(&mut self) -> anyhow::Result<Map<String, Value>> {
        self.require(&["batch_size"])?;
        let mut out = Map::new();
        out.insert("model".into(), self.backbone("image_size")?);
        self.vitdet(&mut out);
        let mut detector = Map::new();
        self.move_all(
            &mut detector,
            &[
                "channels",
                "anchor_scale",
                "finest_scale",
                "fc_dim",
                "rpn_pre_nms",
                "rpn_post_nms",
                "rpn_batch",
                "roi_batch",
                "score_threshold",
                "nms_iou",
                "max_detections",
            ],
        );
        if !detector.is_empty() {
            out.insert("detector".into(), Value::Object(detector));
        }
        let data = self.det_data()?;
        out.insert("data".into(), data);
        self.pretrained(&mut out)?;
        self.move_all(
            &mut out,
            &[
                "fraction",
                "epochs",
                "steps",
                "batch_size",
                "lr",
                "warmup_steps",
                "lr_steps",
                "weight_decay",
                "layer_decay",
                "flips",
                "rotate90",
                "checkpoint_every",
                "log_every",
            ],
        );
        Ok(out)
    }

    fn evaluate(&mut self) -> anyhow::Result<Map<String, Value>> {
        let model_from = self.model_from()?;
        let from_kind = self
            .needed
            .iter()
            .find(|n| n.base == model_from)
            .map(|n| n.kind)
            .context("model_from is always a needed stage")?;
        let task = if from_kind == StageKind::FinetuneSeg {
            "seg"
        } else {
            "det"
        };
        if let Some(written) = self.take_str("task")? {
            if written != task {
                bail!("`task = \"{written}\"` but `{model_from}` is a `{from_kind}` stage");
            }
        }
        let mut out = Map::new();
        out.insert("model_from".into(), model_from.into());
        if task == "seg" {
            self.refuse(
                &[
                    "version",
                    "protocol",
                    "ap_metric",
                    "iou",
                    "overlap",
                    "merge_nms_iou",
                ],
                "detection (task = \"det\")",
            )?;
            out.insert("task".into(), "segmentation".into());
            let data = self.seg_data()?;
            out.insert("data".into(), data);
            self.move_all(&mut out, &["stride"]);
        } else {
            self.refuse(&["val_tiles", "stride"], "segmentation (task = \"seg\")")?;
            out.insert("task".into(), "det".into());
            let data = self.det_data()?;
            out.insert("data".into(), data);
            self.move_all(&mut out, &["protocol", "ap_metric", "iou", "overlap"]);
            if let Some(iou) = self.rest.remove("merge_nms_iou") {
                out.insert("merge_iou".into(), iou);
            }
        }
        Ok(out)
    }

    /// The `[vit]` table of the `model` preset with the stage's overrides, `size_key` setting
    /// `image_size`; checked as the worker will check it.
    fn backbone(&mut self, size_key: &str) -> anyhow::Result<Value> {
        let model = self
            .take_str("model")?
            .context("`model` is required: a preset name from recipes/models")?;
        let file = resolve_preset(&model, &self.recipe.dir)?;
        let preset = ModelPreset::load(&file)?;
        let mut vit = match serde_json::to_value(&preset.vit)? {
            Value::Object(fields) => fields,
            _ => bail!("{}: [vit] is not a table", file.display()),
        };
        self.move_all(&mut vit, VIT_OVERRIDES);
        if let Some(size) = self.rest.remove(size_key) {
            vit.insert("image_size".into(), size);
        }
        let config: VitConfig = serde_json::from_value(Value::Object(vit))
            .with_context(|| format!("model `{model}` ({}) with overrides", file.display()))?;
        config.validate().with_context(|| {
            format!(
                "model `{model}` ({}) with the stage's overrides",
                file.display()
            )
        })?;
        Ok(serde_json::to_value(config)?)
    }

    /// `window_size` and `global_blocks` as the worker's `vitdet` table.
    fn vitdet(&mut self, out: &mut Map<String, Value>) {
        let mut vitdet = Map::new();
        self.move_all(&mut vitdet, &["window_size"]);
        if let Some(blocks) = self.rest.remove("global_blocks") {
            vitdet.insert("global_stages".into(), blocks);
        }
        if !vitdet.is_empty() {
            out.insert("vitdet".into(), Value::Object(vitdet));
        }
    }

    fn seg_data(&mut self) -> anyhow::Result<Value> {
        self.data(SEG_FORMATS, &["val_tiles"])
    }

    fn det_data(&mut self) -> anyhow::Result<Value> {
        self.data(DET_FORMATS, &["version"])
    }

    /// The worker's `data` table: the dataset's name, its format (one of `formats`) and the
    /// set parameters among `extra`.
    fn data(&mut self, formats: &[&str], extra: &[&str]) -> anyhow::Result<Value> {
        let (name, format) = self.dataset()?;
        let mut data = Map::new();
        data.insert("name".into(), name.into());
        data.insert("format".into(), self.format(format, formats)?.into());
        self.move_all(&mut data, extra);
        Ok(Value::Object(data))
    }

    /// The `format` parameter, else the dataset's; one of `allowed`.
    fn format(
        &mut self,
        dataset_format: Option<String>,
        allowed: &[&str],
    ) -> anyhow::Result<String> {
        let format = match self.take_str("format")? {
            Some(format) => format,
            None => dataset_format.with_context(|| {
                format!(
                    "no dataset format: set `format` to one of {}",
                    allowed.join(", ")
                )
            })?,
        };
        if !allowed.contains(&format.as_str()) {
            bail!(
                "format `{format}` does not fit this stage: use one of {}",
                allowed.join(", ")
            );
        }
        Ok(format)
    }

    /// The dataset the stage reads: its name in `stage.json`'s `datasets` and the format its
    /// `[dataset]` entry gives. A needed stage's output dir is registered as a dataset input.
    fn dataset(&mut self) -> anyhow::Result<(String, Option<String>)> {
        let stage = self.stage;
        let name = match self.take_str("dataset")? {
            Some(name) => name,
            None => match stage.datasets.as_slice() {
                [only] => only.clone(),
                [] => bail!("no data: set `dataset` to a needed stage that writes it, or list the dataset in `datasets`"),
                _ => bail!("several datasets: set `dataset` to the one this stage reads"),
            },
        };
        let listed = stage
            .datasets
            .iter()
            .find(|d| **d == name || d.split_once('@').is_some_and(|(base, _)| base == name));
        if let Some(listed) = listed {
            let format = self
                .recipe
                .datasets
                .get(listed)
                .and_then(|def| def.format.clone());
            return Ok((listed.clone(), format));
        }
        if self.needed.iter().any(|n| n.base == name) {
            self.dataset_inputs.push(name.clone());
            return Ok((name, None));
        }
        bail!("`dataset = \"{name}\"` is neither in the stage's `datasets` nor in its `needs`")
    }

    /// `pretrained`: a needed `mae-pretrain` stage, by default the only one.
    fn pretrained(&mut self, out: &mut Map<String, Value>) -> anyhow::Result<()> {
        let pretrains: Vec<&str> = self
            .needed
            .iter()
            .filter(|n| n.kind == StageKind::MaePretrain)
            .map(|n| n.base)
            .collect();
        let name = match self.take_str("pretrained")? {
            Some(name) if pretrains.contains(&name.as_str()) => name,
            Some(name) => bail!(
                "`pretrained = \"{name}\"` must name a needed mae-pretrain stage (needed: {})",
                list_or_none(&pretrains)
            ),
            None => match pretrains.as_slice() {
                [] => return Ok(()),
                [only] => only.to_string(),
                _ => bail!(
                    "several needed mae-pretrain stages: set `pretrained` to one of {}",
                    pretrains.join(", ")
                ),
            },
        };
        out.insert("pretrained".into(), name.into());
        Ok(())
    }

    /// `model_from`: a needed fine-tuning stage, by default the only one.
    fn model_from(&mut self) -> anyhow::Result<String> {
        let finetunes: Vec<&str> = self
            .needed
            .iter()
            .filter(|n| matches!(n.kind, StageKind::FinetuneSeg | StageKind::FinetuneDet))
            .map(|n| n.base)
            .collect();
        match self.take_str("model_from")? {
            Some(name) if finetunes.contains(&name.as_str()) => Ok(name),
            Some(name) => bail!(
                "`model_from = \"{name}\"` must name a needed finetune-seg or finetune-det stage (needed: {})",
                list_or_none(&finetunes)
            ),
            None => match finetunes.as_slice() {
                [only] => Ok(only.to_string()),
                [] => bail!("an evaluate stage scores a model: add the finetune-seg or finetune-det stage to `needs`"),
                _ => bail!(
                    "several needed fine-tuning stages: set `model_from` to one of {}",
                    finetunes.join(", ")
                ),
            },
        }
    }

    /// Fails when one of `names` is not set.
    fn require(&self, names: &[&str]) -> anyhow::Result<()> {
        match names.iter().find(|name| !self.rest.contains_key(**name)) {
            Some(name) => bail!(
                "`{name}` is required to run a `{}` stage: set it",
                self.stage.kind
            ),
            None => Ok(()),
        }
    }

    /// Fails when a parameter of the other task is set.
    fn refuse(&self, names: &[&str], other_task: &str) -> anyhow::Result<()> {
        match names.iter().find(|name| self.rest.contains_key(**name)) {
            Some(name) => bail!("`{name}` applies only when scoring {other_task}: remove it"),
            None => Ok(()),
        }
    }

    /// Moves the set parameters among `names` into `out` under the same names.
    fn move_all(&mut self, out: &mut Map<String, Value>, names: &[&str]) {
        for name in names {
            if let Some(value) = self.rest.remove(*name) {
                out.insert((*name).to_string(), value);
            }
        }
    }

    /// Takes a string parameter (the loader has checked its type).
    fn take_str(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        match self.rest.remove(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => bail!("`{name}` must be a string, got {other}"),
        }
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Loads `text` as a recipe beside a copy of the vit-tiny preset and translates each stage.
    fn translate_all(text: &str) -> Vec<anyhow::Result<Option<WorkerParams>>> {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("recipes/models");
        std::fs::create_dir_all(&models).unwrap();
        let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/models/vit-tiny.toml");
        std::fs::copy(preset, models.join("vit-tiny.toml")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let file = dir.path().join("recipes/study.toml");
        std::fs::write(&file, text).unwrap();
        let recipe = recipe::load(&file).unwrap_or_else(|e| panic!("{e}"));
        recipe
            .stages
            .iter()
            .map(|stage| {
                let needed: Vec<Needed> = stage
                    .needs
                    .iter()
                    .map(|name| {
                        let other = recipe.stages.iter().find(|s| &s.name == name).unwrap();
                        Needed {
                            base: &other.base,
                            kind: other.kind,
                        }
                    })
                    .collect();
                translate(&recipe, stage, &needed)
            })
            .collect()
    }

    const EVERY_PARAMETER: &str = r#"
[experiment]
name = "all"

[dataset.scenes]
root = "../data"

[dataset.loveda]
root = "../data"
format = "loveda"

[stage.dota]
kind = "command"
argv = ["true"]

[stage.pretrain]
kind = "mae-pretrain"
datasets = ["scenes"]
model = "vit-tiny"
patch_size = 4
embed_dim = 32
depth = 2
parallel = 2
num_heads = 2
mlp_ratio = 2.0
qkv_bias = false
drop_path = 0.1
image_size = 16
dataset = "scenes"
steps = 3
batch_size = 2
base_lr = 1e-3
min_lr = 1e-6
warmup_steps = 1
weight_decay = 0.05
mask_ratio = 0.5
norm_pix_loss = false
decoder_embed_dim = 16
decoder_depth = 1
decoder_num_heads = 2
precision = "bf16"
checkpoint_every = 2
log_every = 1

[stage.seg]
kind = "finetune-seg"
needs = ["pretrain"]
datasets = ["loveda"]
model = "vit-tiny"
patch_size = 8
embed_dim = 64
depth = 2
parallel = 1
num_heads = 2
mlp_ratio = 4.0
qkv_bias = true
drop_path = 0.0
crop_size = 64
window_size = 2
global_blocks = [1]
head_channels = 16
dataset = "loveda"
format = "potsdam"
val_tiles = ["2_13"]
fraction = 0.5
pretrained = "pretrain"
steps = 3
batch_size = 2
lr = 1e-3
min_lr = 0.0
warmup_steps = 1
weight_decay = 0.01
layer_decay = 0.9
checkpoint_every = 0
log_every = 1

[stage.det]
kind = "finetune-det"
needs = ["pretrain", "dota"]
model = "vit-tiny"
patch_size = 8
embed_dim = 64
depth = 2
parallel = 1
num_heads = 2
mlp_ratio = 4.0
qkv_bias = true
drop_path = 0.0
image_size = 128
window_size = 8
global_blocks = [1]
dataset = "dota"
format = "dota"
version = "v2.0"
fraction = 1.0
pretrained = "pretrain"
epochs = 1
steps = 3
batch_size = 2
lr = 1e-3
warmup_steps = 1
lr_steps = [2]
weight_decay = 0.0
layer_decay = 1.0
flips = true
rotate90 = false
channels = 64
anchor_scale = 4.0
finest_scale = 28.0
fc_dim = 256
rpn_pre_nms = 300
rpn_post_nms = 128
rpn_batch = 128
roi_batch = 128
score_threshold = 0.05
nms_iou = 0.1
max_detections = 100
checkpoint_every = 0
log_every = 10

[stage.score_seg]
kind = "evaluate"
needs = ["seg"]
datasets = ["loveda"]
task = "seg"
model_from = "seg"
dataset = "loveda"
format = "loveda"
val_tiles = ["2_13"]
stride = 16

[stage.score_det]
kind = "evaluate"
needs = ["det", "dota"]
task = "det"
model_from = "det"
dataset = "dota"
format = "dota"
version = "v2.0"
protocol = "mmrotate"
ap_metric = "voc12"
iou = 0.5
overlap = 16
merge_nms_iou = 0.1
"#;

    #[test]
    fn every_parameter_of_every_worker_kind_reaches_the_worker() {
        let results = translate_all(EVERY_PARAMETER);
        let translated: Vec<WorkerParams> = results
            .into_iter()
            .skip(1)
            .map(|r| {
                r.unwrap_or_else(|e| panic!("{e:#}"))
                    .expect("a worker stage")
            })
            .collect();
        // The test recipe sets every parameter of the tables, so none is left untranslated.
        for kind in [
            StageKind::MaePretrain,
            StageKind::FinetuneSeg,
            StageKind::FinetuneDet,
            StageKind::Evaluate,
        ] {
            let table: BTreeSet<&str> = kind.params().iter().map(|p| p.name).collect();
            let mut set = BTreeSet::new();
            for section in EVERY_PARAMETER.split("[stage.").skip(1) {
                if section.contains(&format!("kind = \"{kind}\"")) {
                    for line in section.lines().skip(1) {
                        if let Some((name, _)) = line.split_once(" = ") {
                            set.insert(name);
                        }
                    }
                }
            }
            let missing: Vec<_> = table.iter().filter(|n| !set.contains(**n)).collect();
            assert!(missing.is_empty(), "{kind}: the test sets no {missing:?}");
        }

        let pretrain = &translated[0].params;
        assert_eq!(pretrain["model"]["embed_dim"], json!(32));
        assert_eq!(pretrain["model"]["image_size"], json!(16));
        assert_eq!(pretrain["model"]["in_chans"], json!(3), "from the preset");
        assert_eq!(pretrain["mae"]["mask_ratio"], json!(0.5));
        assert_eq!(pretrain["data"], json!({ "name": "scenes" }));
        assert_eq!(pretrain["precision"], json!("bf16"));

        let seg = &translated[1].params;
        assert_eq!(seg["model"]["image_size"], json!(64), "crop_size");
        assert_eq!(
            seg["vitdet"],
            json!({ "window_size": 2, "global_stages": [1] })
        );
        assert_eq!(
            seg["data"],
            json!({ "name": "loveda", "format": "potsdam", "val_tiles": ["2_13"] })
        );
        assert_eq!(seg["pretrained"], json!("pretrain"));

        let det = &translated[2];
        assert_eq!(det.dataset_inputs, ["dota"]);
        assert_eq!(det.params["detector"]["fc_dim"], json!(256));
        assert_eq!(det.params["data"]["version"], json!("v2.0"));

        assert_eq!(translated[3].params["task"], json!("segmentation"));
        assert_eq!(translated[4].params["task"], json!("det"));
        assert_eq!(translated[4].params["merge_iou"], json!(0.1));
    }

    const SMALL: &str = r#"
[experiment]
name = "small"

[stage.data]
kind = "command"
argv = ["true"]

[stage.pretrain]
kind = "mae-pretrain"
needs = ["data"]
dataset = "data"
model = "vit-tiny"
steps = 2
batch_size = 2

[stage.seg]
kind = "finetune-seg"
needs = ["pretrain", "data"]
dataset = "data"
format = "loveda"
model = "vit-tiny"
steps = 2
batch_size = 2

[stage.score]
kind = "evaluate"
needs = ["seg", "data"]
dataset = "data"
format = "loveda"
"#;

    #[test]
    fn defaults_follow_the_needed_stages() {
        let results = translate_all(SMALL);
        assert!(results[0].as_ref().unwrap().is_none(), "command stages");
        let seg = results[2].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(seg.params["pretrained"], json!("pretrain"));
        assert_eq!(seg.dataset_inputs, ["data"]);
        let score = results[3].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(score.params["model_from"], json!("seg"));
        assert_eq!(score.params["task"], json!("segmentation"));
    }

    #[test]
    fn untranslatable_stages_are_errors_at_their_location() {
        let cases = [
            (
                ("model = \"vit-tiny\"\nsteps", "model = \"vit-huge\"\nsteps"),
                "no model preset `vit-huge`",
            ),
            (
                (
                    "dataset = \"data\"\nmodel",
                    "dataset = \"elsewhere\"\nmodel",
                ),
                "neither in the stage's `datasets` nor in its `needs`",
            ),
            (
                (
                    "steps = 2\nbatch_size = 2\n\n[stage.seg]",
                    "batch_size = 2\n\n[stage.seg]",
                ),
                "`steps` is required",
            ),
            (
                (
                    "[\"seg\", \"data\"]\ndataset = \"data\"\nformat = \"loveda\"\n",
                    "[\"seg\", \"data\"]\ndataset = \"data\"\nformat = \"dota\"\n",
                ),
                "format `dota` does not fit",
            ),
            (
                (
                    "kind = \"evaluate\"\n",
                    "kind = \"evaluate\"\ntask = \"det\"\n",
                ),
                "`task = \"det\"` but `seg` is a `finetune-seg` stage",
            ),
            (
                (
                    "[stage.data]\nkind = \"command\"\nargv = [\"true\"]",
                    "[stage.data]\nkind = \"prepare\"",
                ),
                "no worker runs kind `prepare`",
            ),
        ];
        for ((from, to), expected) in cases {
            let text = SMALL.replacen(from, to, 1);
            assert_ne!(text, SMALL, "{from}");
            let errors: Vec<String> = translate_all(&text)
                .into_iter()
                .filter_map(|r| r.err().map(|e| format!("{e:#}")))
                .collect();
            assert_eq!(errors.len(), 1, "{to}: {errors:?}");
            assert!(errors[0].contains(expected), "{}", errors[0]);
            assert!(errors[0].contains("study.toml:"), "{}", errors[0]);
        }
    }

    #[test]
    fn an_invalid_architecture_after_overrides_is_an_error() {
        let text = SMALL.replacen("batch_size = 2\n", "batch_size = 2\nnum_heads = 3\n", 1);
        let error = format!("{:#}", translate_all(&text)[1].as_ref().unwrap_err());
        assert!(
            error.contains("study.toml:") && error.contains("vit-tiny"),
            "{error}"
        );
    }
}
