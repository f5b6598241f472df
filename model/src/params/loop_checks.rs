//! The checks every training stage (`mae-pretrain`, `finetune-det`, `finetune-seg`) makes of
//! its step loop and of a fine-tune's start, written once: each failure is a [`ParamError`]
//! at its key.
//!
//! [`ParamError`]: super::ParamError

/// The step-loop values of a training stage.
#[derive(Debug, Clone, Copy)]
pub struct LoopValues {
    /// `batch_size`.
    pub batch_size: usize,
    /// `log_every`.
    pub log_every: u64,
    /// `accum_steps`.
    pub accum_steps: usize,
    /// `grad_clip`.
    pub grad_clip: Option<f64>,
    /// `loader_threads`.
    pub loader_threads: Option<usize>,
}

impl LoopValues {
    /// Checks that each is positive (`loader_threads` and `grad_clip` where set).
    pub fn check(&self) -> anyhow::Result<()> {
        crate::ensure_param!(
            self.loader_threads != Some(0),
            "loader_threads",
            "`loader_threads` must be positive (or unset for one per core)"
        );
        crate::ensure_param!(
            self.batch_size > 0,
            "batch_size",
            "`batch_size` must be positive"
        );
        crate::ensure_param!(
            self.log_every > 0,
            "log_every",
            "`log_every` must be positive"
        );
        crate::ensure_param!(
            self.accum_steps > 0,
            "accum_steps",
            "`accum_steps` must be positive"
        );
        crate::ensure_param!(
            self.grad_clip.is_none_or(|c| c > 0.0),
            "grad_clip",
            "`grad_clip` must be positive"
        );
        Ok(())
    }
}

/// The values a fine-tuning stage adds to its loop's: the share of the training set and the
/// optimiser's rate and layer decay.
#[derive(Debug, Clone, Copy)]
pub struct FineTuneValues {
    /// `fraction`.
    pub fraction: f64,
    /// `lr`.
    pub lr: f64,
    /// `layer_decay`.
    pub layer_decay: f64,
}

impl FineTuneValues {
    /// Checks `fraction` in (0, 1] and a positive `lr` and `layer_decay`.
    pub fn check(&self) -> anyhow::Result<()> {
        crate::ensure_param!(
            self.fraction > 0.0 && self.fraction <= 1.0,
            "fraction",
            "`fraction` must be in (0, 1], got {}",
            self.fraction
        );
        crate::ensure_param!(self.lr > 0.0, "lr", "`lr` must be positive");
        crate::ensure_param!(
            self.layer_decay > 0.0,
            "layer_decay",
            "`layer_decay` must be in (0, 1]"
        );
        Ok(())
    }
}

/// The [`LoopValues`] of a training stage's parameters (each training schema has these fields
/// under these names).
#[macro_export]
macro_rules! loop_values {
    ($params:expr) => {
        $crate::params::loop_checks::LoopValues {
            batch_size: $params.batch_size,
            log_every: $params.log_every,
            accum_steps: $params.accum_steps,
            grad_clip: $params.grad_clip,
            loader_threads: $params.loader_threads,
        }
    };
}

/// The [`FineTuneValues`] of a fine-tuning stage's parameters.
#[macro_export]
macro_rules! fine_tune_values {
    ($params:expr) => {
        $crate::params::loop_checks::FineTuneValues {
            fraction: $params.fraction,
            lr: $params.lr,
            layer_decay: $params.layer_decay,
        }
    };
}
