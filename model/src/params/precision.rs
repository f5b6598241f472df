//! The numeric precision a training stage computes in (a stage switch).

use serde::{Deserialize, Serialize};

/// How forward passes compute: plain fp32, or bf16 autocast over fp32 master weights and
/// optimiser state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in fp32.
    Fp32,
    /// Matrix products and convolutions in bf16 under autocast; weights, gradients and
    /// optimiser state stay fp32.
    Bf16,
}

impl Precision {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["fp32", "bf16"];

    /// The precision a stage gets when its recipe names none: bf16 on a GPU (`cuda…`), fp32
    /// elsewhere.
    pub fn default_for_device(device: &str) -> Self {
        if device.starts_with("cuda") {
            Precision::Bf16
        } else {
            Precision::Fp32
        }
    }

    /// `requested`, or the device's default when None.
    pub fn resolve(requested: Option<Precision>, device: &str) -> Self {
        requested.unwrap_or_else(|| Self::default_for_device(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_default_to_bf16_and_cpus_to_fp32() {
        assert_eq!(Precision::resolve(None, "cuda:0"), Precision::Bf16);
        assert_eq!(Precision::resolve(None, "cpu"), Precision::Fp32);
        assert_eq!(
            Precision::resolve(Some(Precision::Bf16), "cpu"),
            Precision::Bf16
        );
        let parsed: Precision = serde_json::from_str("\"bf16\"").unwrap();
        assert_eq!(parsed, Precision::Bf16);
    }
}
