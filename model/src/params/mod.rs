//! The parameters of every worker stage kind, once: the recipe loader checks a stage against
//! them, `rsfm kinds` prints them, the plan writes them into `stage.json` and `rsfm-worker`
//! reads them back. Torch-free, so the harness uses them without libtorch.
//!
//! Each kind's struct is declared with [`schema!`](crate::schema) (see [`schema`] for why a
//! declarative macro): the `///` doc of a field is its documentation, `= value` its default, and
//! the key a recipe writes is the key the worker reads.

pub mod backbone;
pub mod data;
pub mod detector;
pub mod error;
pub mod evaluate;
pub mod finetune_det;
pub mod finetune_seg;
pub mod init;
pub mod loop_checks;
pub mod lr_decay;
pub mod mae;
pub mod mae_pretrain;
pub mod norm;
pub mod precision;
pub mod prepare;
pub mod schema;
pub mod types;
pub mod vitdet;

pub use backbone::{Backbone, ModelRef};
pub use error::ParamError;
pub use evaluate::EvaluateParams;
pub use finetune_det::FinetuneDetParams;
pub use finetune_seg::FinetuneSegParams;
pub use mae_pretrain::MaePretrainParams;
pub use prepare::{PrepareOp, PrepareParams};
pub use schema::{Field, Schema};
pub use types::{ParamType, ParamValue};

/// Parameters that change how fast a stage runs but never what it computes: the plan leaves
/// them out of the stage key (they still reach the worker in `stage.json`).
pub const NOT_IN_KEY: &[&str] = &["loader_threads", "optimizer_sharding"];

/// Whether the plan leaves parameter `name` of a `kind` stage out of its key: the
/// [`NOT_IN_KEY`] ones, and `accum_steps` except on `finetune-seg` (micro-batches change only
/// the rounding of a gradient sum, as the number of data-parallel processes does, unless batch
/// norm takes its statistics per micro-batch, as the segmentation head's does).
pub fn left_out_of_key(kind: &str, name: &str) -> bool {
    NOT_IN_KEY.contains(&name) || (name == "accum_steps" && kind != "finetune-seg")
}
