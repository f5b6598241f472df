//! A worker stage's parameters as `rsfm-worker` reads them: the recipe's values in the kind's
//! schema struct (`rsfm_model::params`), with the model preset inlined (its `[defaults]` fill
//! the size-dependent keys the stage leaves out) and the inputs
//! resolved (`dataset`, `format`, `pretrained`, `model_from`, `task`), then checked as the
//! worker will check them. Names do not change on the way.

use std::path::PathBuf;

use anyhow::Context;
use rsfm_model::arch::{FineTuneTask, ModelPreset};
use rsfm_model::data::formats::potsdam::PotsdamLabels;
use rsfm_model::params::data::{EvalTask, SegDataParams, SegFormat};
use rsfm_model::params::{
    Backbone, EvaluateParams, FinetuneDetParams, FinetuneSegParams, MaePretrainParams, ModelRef,
    ParamError, PrepareParams, Schema,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::key_error;
use crate::presets::load_preset;
use crate::recipe::{Recipe, RecipeError, Stage, StageKind};

/// What the worker gets for one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerParams {
    /// The `params` of `stage.json`; placeholders are left for the executor.
    pub params: Map<String, Value>,
    /// Needed stages (base names) whose output dir the worker reads as the dataset of the
    /// same name.
    pub dataset_inputs: Vec<String>,
    /// Keys of `params` that the stage leaves out and the model preset's `[defaults]` fill,
    /// each with its key in that table.
    pub from_preset: Vec<(String, String)>,
    /// Keys of `params` that the stage leaves out and a rule of the kind sets, with the rule.
    pub by_rule: Vec<(String, &'static str)>,
    /// The published checkpoint `pretrained` names (resolved against the recipe's folder),
    /// when it names a file rather than a needed stage: its sha256 stands for it in the key.
    pub pretrained_file: Option<PathBuf>,
}

/// Why an `mae-pretrain` stage that sets no `drop_path` runs without stochastic depth.
pub const MAE_DROP_PATH_RULE: &str =
    "rule: MAE pretrains without stochastic depth (drop path is a fine-tuning setting; MAE and RVSA pretrain with none)";

/// A stage the translated one needs.
#[derive(Debug, Clone, Copy)]
pub struct Needed<'a> {
    /// Its base name (the key of its output dir in `stage.json`'s `inputs`).
    pub base: &'a str,
    /// Its kind.
    pub kind: StageKind,
}

/// The worker parameters of `stage` (of `recipe`), or `None` for a `command` stage. An error
/// points at the key it is about as the user wrote it (the stage's header for a key left out)
/// and says what to change.
pub fn translate(
    recipe: &Recipe,
    stage: &Stage,
    needed: &[Needed],
) -> Result<Option<WorkerParams>, RecipeError> {
    let mut inputs = Inputs {
        recipe,
        stage,
        needed,
        dataset_inputs: Vec::new(),
        from_preset: Vec::new(),
        by_rule: Vec::new(),
        pretrained_file: None,
    };
    let params = match stage.kind {
        StageKind::Command => return Ok(None),
        StageKind::Prepare => inputs.prepare(),
        StageKind::MaePretrain => inputs.mae_pretrain(),
        StageKind::FinetuneSeg => inputs.finetune_seg(),
        StageKind::FinetuneDet => inputs.finetune_det(),
        StageKind::Evaluate => inputs.evaluate(),
    }
    .map_err(|error| key_error::locate(stage, &error))?;
    Ok(Some(WorkerParams {
        params,
        dataset_inputs: inputs.dataset_inputs,
        from_preset: inputs.from_preset,
        by_rule: inputs.by_rule,
        pretrained_file: inputs.pretrained_file,
    }))
}

/// What a stage's inputs resolve against: the recipe and the stages it needs.
struct Inputs<'a> {
    recipe: &'a Recipe,
    stage: &'a Stage,
    needed: &'a [Needed<'a>],
    dataset_inputs: Vec<String>,
    from_preset: Vec<(String, String)>,
    by_rule: Vec<(String, &'static str)>,
    pretrained_file: Option<PathBuf>,
}

impl Inputs<'_> {
    fn prepare(&mut self) -> anyhow::Result<Map<String, Value>> {
        let mut params: PrepareParams = self.parse()?;
        params.validate()?;
        if let Some(wanted) = params.op.source_format() {
            let (name, format) = self.dataset(&params.dataset)?;
            if let Some(format) = format.filter(|format| format != wanted) {
                return Err(key_error::problem(
                    "dataset",
                    format!(
                        "`op = \"{}\"` cuts a `{wanted}` dataset, but `{name}` has format `{format}`",
                        params.op.as_str()
                    ),
                    format!("name a `{wanted}` dataset in `dataset`, or pick the op of `{format}`"),
                ));
            }
            params.dataset = Some(name);
        }
        if let Some(predictions) = &params.predictions {
            let needed = self
                .needed
                .iter()
                .any(|n| n.base == predictions && n.kind == StageKind::Evaluate);
            if !needed {
                return Err(key_error::problem(
                    "predictions",
                    format!("`predictions = \"{predictions}\"` is not an `evaluate` stage in `needs`"),
                    format!("add the evaluation to `needs` and name it here: `needs = [\"{predictions}\", ...]`"),
                ));
            }
        }
        Ok(params.resolved().to_map())
    }

    fn mae_pretrain(&mut self) -> anyhow::Result<Map<String, Value>> {
        let mut params: MaePretrainParams = self.parse()?;
        self.inline_preset(&mut params.backbone)?;
        if params.backbone.drop_path.is_none() {
            params.backbone.drop_path = Some(0.0);
            self.by_rule
                .push(("drop_path".to_string(), MAE_DROP_PATH_RULE));
        }
        params.dataset = Some(self.dataset(&params.dataset)?.0);
        params.validate()?;
        Ok(params.to_map())
    }

    fn finetune_seg(&mut self) -> anyhow::Result<Map<String, Value>> {
        let mut params: FinetuneSegParams =
            self.parse_with_size_defaults(FineTuneTask::Segmentation)?;
        self.inline_preset(&mut params.backbone)?;
        let (name, format) = self.dataset(&params.dataset)?;
        params.dataset = Some(name);
        params.format = Some(pick_format(params.format, format)?);
        params.labels = potsdam_labels_written_out(&params.seg_data()?);
        params.pretrained = self.pretrained(&params.pretrained)?;
        params.validate()?;
        params.check_layout(self.stage.resources.ranks() as usize)?;
        Ok(params.to_map())
    }

    fn finetune_det(&mut self) -> anyhow::Result<Map<String, Value>> {
        let mut params: FinetuneDetParams =
            self.parse_with_size_defaults(FineTuneTask::Detection)?;
        self.inline_preset(&mut params.backbone)?;
        let (name, format) = self.dataset(&params.dataset)?;
        params.dataset = Some(name);
        params.format = Some(pick_format(params.format, format)?);
        params.pretrained = self.pretrained(&params.pretrained)?;
        params.validate()?;
        Ok(params.to_map())
    }

    fn evaluate(&mut self) -> anyhow::Result<Map<String, Value>> {
        let mut params: EvaluateParams = self.parse()?;
        let model_from = self.model_from(&params.model_from)?;
        let from_kind = self
            .needed
            .iter()
            .find(|n| n.base == model_from)
            .map(|n| n.kind)
            .context("model_from is always a needed stage")?;
        let task = if from_kind == StageKind::FinetuneSeg {
            EvalTask::Seg
        } else {
            EvalTask::Det
        };
        if let Some(written) = params.task.filter(|written| *written != task) {
            let spelling = serde_json::to_value(written)?;
            return Err(key_error::problem(
                "task",
                format!("`task = {spelling}` but `{model_from}` is a `{from_kind}` stage"),
                "remove `task`: it follows from the stage in `model_from`",
            ));
        }
        let (name, format) = self.dataset(&params.dataset)?;
        params.task = Some(task);
        params.model_from = Some(model_from);
        params.dataset = Some(name);
        params.format = Some(pick_format(params.format, format)?);
        if task == EvalTask::Seg {
            params.labels = potsdam_labels_written_out(&params.seg_data()?);
        }
        params.validate()?;
        Ok(params.to_map())
    }

    /// The stage's parameters as the kind's schema struct.
    fn parse<T: Schema>(&self) -> anyhow::Result<T> {
        T::from_map(self.stage.params.clone()).map_err(anyhow::Error::from)
    }

    /// [`Self::parse`], with the model preset's size defaults (`[defaults]`) for the keys of
    /// `T` that the stage leaves out.
    fn parse_with_size_defaults<T: Schema>(&mut self, task: FineTuneTask) -> anyhow::Result<T> {
        let mut map = self.stage.params.clone();
        if let Some(Value::String(name)) = map.get("model").cloned() {
            let (_, preset) = self.preset(&name)?;
            let fields = T::fields();
            for entry in preset.defaults.entries(task) {
                if fields.iter().any(|f| f.name == entry.key) && !map.contains_key(entry.key) {
                    map.insert(entry.key.to_string(), entry.value);
                    self.from_preset
                        .push((entry.key.to_string(), entry.preset_key.to_string()));
                }
            }
        }
        T::from_map(map).map_err(anyhow::Error::from)
    }

    /// The model preset `name` and where it was found.
    fn preset(&self, name: &str) -> anyhow::Result<(String, ModelPreset)> {
        load_preset(name, &self.recipe.dir).map_err(|error| {
            key_error::problem(
                "model",
                format!("{error:#}"),
                "name one of the presets listed, or add recipes/models/NAME.toml",
            )
        })
    }

    /// Replaces the preset name in `backbone.model` by the preset's `[vit]` table, and checks
    /// the architecture with the stage's overrides.
    fn inline_preset(&self, backbone: &mut Backbone) -> anyhow::Result<()> {
        let ModelRef::Preset(name) = &backbone.model else {
            return Err(key_error::problem(
                "model",
                "`model` must be a preset name",
                "name a preset of recipes/models, e.g. `model = \"vit-tiny\"`",
            ));
        };
        let (file, preset) = self.preset(name)?;
        let name = name.clone();
        backbone.model = ModelRef::Config(preset.vit);
        let from = format!("(model `{name}` from {file} with the stage's overrides)");
        backbone
            .vit()
            .map_err(|error| match error.downcast::<ParamError>() {
                Ok(mut problem) => {
                    problem.message = format!("{} {from}", problem.message);
                    problem.into()
                }
                Err(error) => anyhow::anyhow!("{error:#} {from}"),
            })?;
        Ok(())
    }

    /// The dataset the stage reads: its name in `stage.json`'s `datasets` and the format its
    /// `[dataset]` entry gives. A needed stage's output dir is registered as a dataset input.
    fn dataset(&mut self, written: &Option<String>) -> anyhow::Result<(String, Option<String>)> {
        let stage = self.stage;
        let name = match written {
            Some(name) => name.clone(),
            None => match stage.datasets.as_slice() {
                [only] => only.clone(),
                [] => return Err(key_error::problem(
                    "dataset",
                    "no data: the stage reads no dataset",
                    "add `dataset = \"NAME\"` naming a needed stage that writes it, or list a `[dataset.NAME]` in `datasets`",
                )),
                _ => return Err(key_error::problem(
                    "dataset",
                    format!("several datasets ({}) and no `dataset`", stage.datasets.join(", ")),
                    "add `dataset = \"NAME\"` naming the one this stage reads",
                )),
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
        Err(key_error::problem(
            "dataset",
            format!("`dataset = \"{name}\"` is neither in the stage's `datasets` nor in its `needs`"),
            format!("add `{name}` to `datasets` (a `[dataset.{name}]` table) or to `needs` (a stage that writes it)"),
        ))
    }

    /// `pretrained`: a needed `mae-pretrain` stage, by default the only one, or a published
    /// checkpoint (`.pth`, `.safetensors`, or any path with a `/`) relative to the recipe's
    /// folder, which the worker gets as an absolute path.
    fn pretrained(&mut self, written: &Option<String>) -> anyhow::Result<Option<String>> {
        let pretrains = self.needed_of(&[StageKind::MaePretrain]);
        match written {
            Some(name) if pretrains.contains(&name.as_str()) => Ok(Some(name.clone())),
            Some(name) if names_a_file(name) => {
                let path = self.recipe.dir.join(name);
                if !path.is_file() {
                    return Err(key_error::problem(
                        "pretrained",
                        format!("`pretrained = \"{name}\"`: no such file ({})", path.display()),
                        "give a .pth or .safetensors checkpoint relative to the recipe's folder, or name a needed mae-pretrain stage",
                    ));
                }
                self.pretrained_file = Some(path.clone());
                Ok(Some(path.display().to_string()))
            }
            Some(name) => Err(key_error::problem(
                "pretrained",
                format!(
                    "`pretrained = \"{name}\"` must name a needed mae-pretrain stage (needed: {})",
                    list_or_none(&pretrains)
                ),
                format!("add `{name}` to `needs`, or name a needed mae-pretrain stage"),
            )),
            None => match pretrains.as_slice() {
                [] => Ok(None),
                [only] => Ok(Some(only.to_string())),
                _ => Err(key_error::problem(
                    "pretrained",
                    "several needed mae-pretrain stages and no `pretrained`",
                    format!("set `pretrained` to one of {}", pretrains.join(", ")),
                )),
            },
        }
    }

    /// `model_from`: a needed fine-tuning stage, by default the only one.
    fn model_from(&self, written: &Option<String>) -> anyhow::Result<String> {
        let finetunes = self.needed_of(&[StageKind::FinetuneSeg, StageKind::FinetuneDet]);
        match written {
            Some(name) if finetunes.contains(&name.as_str()) => Ok(name.clone()),
            Some(name) => Err(key_error::problem(
                "model_from",
                format!(
                    "`model_from = \"{name}\"` must name a needed finetune-seg or finetune-det stage (needed: {})",
                    list_or_none(&finetunes)
                ),
                format!("add `{name}` to `needs`, or name a needed fine-tuning stage"),
            )),
            None => match finetunes.as_slice() {
                [only] => Ok(only.to_string()),
                [] => Err(key_error::problem(
                    "needs",
                    "an evaluate stage scores a model, and it needs no fine-tuning stage",
                    "add the finetune-seg or finetune-det stage it scores to `needs`",
                )),
                _ => Err(key_error::problem(
                    "model_from",
                    "several needed fine-tuning stages and no `model_from`",
                    format!("set `model_from` to one of {}", finetunes.join(", ")),
                )),
            },
        }
    }

    /// Base names of the needed stages of `kinds`.
    fn needed_of(&self, kinds: &[StageKind]) -> Vec<&str> {
        self.needed
            .iter()
            .filter(|n| kinds.contains(&n.kind))
            .map(|n| n.base)
            .collect()
    }
}

/// A Potsdam stage's label variant, written out (unset reads the full labels, so the two share
/// a key); None for other layouts.
fn potsdam_labels_written_out(data: &SegDataParams) -> Option<PotsdamLabels> {
    (data.format == SegFormat::Potsdam).then_some(data.labels)
}

/// The `format` the stage sets, else its dataset's, as the layout type `T` of the stage.
fn pick_format<T: DeserializeOwned>(
    written: Option<T>,
    dataset_format: Option<String>,
) -> anyhow::Result<T> {
    match (written, dataset_format) {
        (Some(format), _) => Ok(format),
        (None, Some(format)) => {
            serde_json::from_value(Value::String(format.clone())).map_err(|_| {
                key_error::problem(
                    "format",
                    format!("the dataset's format `{format}` does not fit this stage"),
                    "set `format` to a layout this stage reads (`rsfm kinds` lists them)",
                )
            })
        }
        (None, None) => Err(key_error::problem(
            "format",
            "no dataset format",
            "set `format` here or in the dataset's `[dataset.NAME]` table",
        )),
    }
}

/// Whether a `pretrained` value names a checkpoint file rather than a stage.
fn names_a_file(value: &str) -> bool {
    value.contains('/')
        || [".pth", ".pt", ".safetensors"]
            .iter()
            .any(|ext| value.ends_with(ext))
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::recipe;
    use serde_json::json;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Loads `text` as a recipe beside a copy of the vit-tiny preset and translates each stage.
    fn translate_all(text: &str) -> Vec<Result<Option<WorkerParams>, RecipeError>> {
        load_and_translate(text)
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// A stage's parameters as loaded, and their translation.
    type Translated = (
        Map<String, Value>,
        Result<Option<WorkerParams>, RecipeError>,
    );

    /// Each stage's parameters as loaded, and their translation.
    fn load_and_translate(text: &str) -> Vec<Translated> {
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
                (stage.params.clone(), translate(&recipe, stage, &needed))
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
grad_clip = 35.0
accum_steps = 1
activation_checkpointing = true
optimizer_sharding = true
loader_threads = 2

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
image_size = 64
window_size = 2
global_stages = [1]
rel_pos = false
head_channels = 16
norm = "sync_bn"
dropout = 0.1
aux_loss_weight = 0.4
aux_channels = 8
schedule = "poly"
poly_power = 1.0
dataset = "loveda"
format = "potsdam"
val_tiles = ["2_13"]
labels = "eroded"
resize_side = 64
ratio_range = [0.5, 2.0]
cat_max_ratio = 0.75
photometric = true
fraction = 0.5
trainval = false
pretrained = "pretrain"
init = "pretrained"
steps = 3
batch_size = 2
lr = 1e-3
min_lr = 0.0
warmup_steps = 1
weight_decay = 0.01
layer_decay = 0.9
checkpoint_every = 0
log_every = 1
grad_clip = 35.0
accum_steps = 1
activation_checkpointing = true
optimizer_sharding = true
loader_threads = 2
precision = "fp32"

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
global_stages = [1]
rel_pos = false
dataset = "dota"
format = "dota"
version = "v2.0"
fraction = 1.0
trainval = true
pretrained = "pretrain"
init = "pretrained"
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
grad_clip = 35.0
accum_steps = 1
activation_checkpointing = true
optimizer_sharding = true
loader_threads = 2
precision = "bf16"

[stage.score_seg]
kind = "evaluate"
needs = ["seg"]
datasets = ["loveda"]
task = "seg"
model_from = "seg"
dataset = "loveda"
format = "potsdam"
val_tiles = ["2_13"]
labels = "eroded"
clutter = true
stride = 16
flip = true
split = "held-out"

[stage.score_det]
kind = "evaluate"
needs = ["det", "dota"]
task = "det"
model_from = "det"
dataset = "dota"
format = "dota"
version = "v2.0"
split = "held-out"
protocol = "mmrotate"
ap_metric = "voc12"
iou = 0.5
overlap = 16
merge_iou = 0.1
"#;

    #[test]
    fn every_parameter_of_every_worker_kind_reaches_the_worker() {
        let results = load_and_translate(EVERY_PARAMETER);
        let written: Vec<Map<String, Value>> =
            results.iter().skip(1).map(|(p, _)| p.clone()).collect();
        let translated: Vec<WorkerParams> = results
            .into_iter()
            .skip(1)
            .map(|(_, r)| {
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
        assert_eq!(pretrain["embed_dim"], json!(32), "as written");
        assert_eq!(pretrain["image_size"], json!(16));
        assert_eq!(
            pretrain["model"]["in_chans"],
            json!(3),
            "the preset, inlined"
        );
        assert_eq!(pretrain["mask_ratio"], json!(0.5));
        assert_eq!(pretrain["dataset"], json!("scenes"));
        assert_eq!(pretrain["precision"], json!("bf16"));

        let seg = &translated[1].params;
        assert_eq!(seg["image_size"], json!(64));
        assert_eq!(seg["window_size"], json!(2));
        assert_eq!(seg["global_stages"], json!([1]));
        assert_eq!(seg["format"], json!("potsdam"));
        assert_eq!(seg["val_tiles"], json!(["2_13"]));
        assert_eq!(seg["pretrained"], json!("pretrain"));

        let det = &translated[2];
        assert_eq!(det.dataset_inputs, ["dota"]);
        assert_eq!(det.params["fc_dim"], json!(256));
        assert_eq!(det.params["version"], json!("v2.0"));

        assert_eq!(translated[3].params["task"], json!("seg"));
        assert_eq!(translated[4].params["task"], json!("det"));
        assert_eq!(translated[4].params["merge_iou"], json!(0.1));

        // Every key the recipe wrote reaches the worker under the name it was written with.
        for (worker, stage_params) in translated.iter().zip(&written) {
            for (name, value) in stage_params {
                if name != "model" {
                    assert_eq!(&worker.params[name], value, "{name}");
                }
            }
        }
    }

    /// A pretraining, a fine-tuning and an evaluation stage that leave their inputs to be
    /// worked out from `needs`.
    pub(in crate::plan) const SMALL: &str = r#"
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
window_size = 2
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
        assert_eq!(score.params["task"], json!("seg"));
    }

    #[test]
    fn a_pretrained_file_is_resolved_against_the_recipe_and_a_missing_one_named() {
        let text = SMALL.replace(
            "format = \"loveda\"\nmodel",
            "format = \"loveda\"\npretrained = \"weights/mae.pth\"\nmodel",
        );
        let results = translate_all(&text);
        let error = format!("{:#}", results[2].as_ref().unwrap_err());
        assert!(
            error.contains("`pretrained = \"weights/mae.pth\"`: no such file"),
            "{error}"
        );
        assert!(error.contains("relative to the recipe's folder"), "{error}");
    }

    #[test]
    fn prepare_stages_resolve_the_dataset_they_tile() {
        let text = r#"
[experiment]
name = "tiles"

[stage.dota]
kind = "prepare"
op = "synth-dota"
images = 4

[stage.tiles]
kind = "prepare"
needs = ["dota"]
op = "tile-dota"
patch_size = 64
gap = 16
"#;
        let results = translate_all(text);
        let synth = results[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(synth.params["op"], json!("synth-dota"));
        assert_eq!(synth.params["images"], json!(4));
        assert!(synth.dataset_inputs.is_empty());
        let error = format!("{:#}", results[1].as_ref().unwrap_err());
        assert!(
            error.contains("study.toml:10:8: error: stage `tiles`: no data"),
            "{error}"
        );
        assert!(error.contains("help: add `dataset = \"NAME\"`"), "{error}");
        let named = translate_all(&text.replace("gap = 16", "gap = 16\ndataset = \"dota\""));
        let tiles = named[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(tiles.params["dataset"], json!("dota"));
        assert_eq!(tiles.dataset_inputs, ["dota"]);
    }

    #[test]
    fn crop_stages_write_their_defaults_and_refuse_a_dataset_of_another_format() {
        let text = r#"
[experiment]
name = "crops"

[dataset.loveda]
root = "../data"
format = "loveda"

[stage.loveda-crops]
kind = "prepare"
datasets = ["loveda"]
op = "crop-loveda"

[stage.potsdam-crops]
kind = "prepare"
datasets = ["loveda"]
op = "crop-potsdam"
stride = 256
"#;
        let results = translate_all(text);
        let crops = results[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(crops.params["dataset"], json!("loveda"));
        assert_eq!(crops.params["patch_size"], json!(512));
        assert_eq!(crops.params["stride"], json!(512));
        let error = format!("{:#}", results[1].as_ref().unwrap_err());
        assert!(
            error.contains("`op = \"crop-potsdam\"` cuts a `potsdam` dataset, but `loveda` has format `loveda`"),
            "{error}"
        );
        assert!(error.contains("help: name a `potsdam` dataset"), "{error}");
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
                    "[stage.data]\nkind = \"prepare\"\nop = \"synth-loveda\"\ngap = 10",
                ),
                "`gap` does not apply to `op = \"synth-loveda\"`",
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
    fn size_dependent_keys_the_stage_leaves_out_come_from_the_model_preset() {
        let text = SMALL.replacen("window_size = 2\n", "", 1);
        let results = translate_all(&text);
        let seg = results[2].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(seg.params["window_size"], json!(2), "vit-tiny's [defaults]");
        assert_eq!(
            seg.params["head_channels"],
            json!(32),
            "vit-tiny's [defaults]"
        );
        let written = translate_all(&SMALL.replacen(
            "window_size = 2\n",
            "window_size = 4\nhead_channels = 8\n",
            1,
        ));
        let seg = written[2].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(
            (&seg.params["window_size"], &seg.params["head_channels"]),
            (&json!(4), &json!(8)),
            "the stage's own values win"
        );
        // A preset default is still checked against the stage's grid: 8 px / patch 8 = 1.
        let small_image = SMALL.replacen("window_size = 2\n", "image_size = 8\n", 1);
        let error = translate_all(&small_image)[2]
            .as_ref()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`window_size` = 2 is larger than the 1×1 token grid"),
            "{error}"
        );
        assert!(
            error.contains("help: set `window_size` to at most 1"),
            "{error}"
        );
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
