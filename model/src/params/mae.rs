//! MAE decoder and loss settings of a `mae-pretrain` stage.

use super::types::RATIO;

crate::schema! {
    /// MAE decoder and loss settings (defaults: MAE's).
    pub struct MaeConfig includes {} {
        /// Fraction of patches hidden from the encoder.
        mask_ratio: f64 as RATIO = 0.75,
        /// Normalise the target pixels per patch (mean 0, variance 1).
        norm_pix_loss: bool = true,
        /// Decoder token width.
        decoder_embed_dim: usize = 512,
        /// Decoder blocks.
        decoder_depth: usize = 8,
        /// Decoder attention heads.
        decoder_num_heads: usize = 16,
    }
}

impl MaeConfig {
    /// Checks the settings; the error names the offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::ensure_param!(
            self.mask_ratio > 0.0 && self.mask_ratio < 1.0,
            "mask_ratio",
            "`mask_ratio` must be in (0, 1), got {}",
            self.mask_ratio
        );
        crate::ensure_param!(
            self.decoder_num_heads > 0
                && self
                    .decoder_embed_dim
                    .is_multiple_of(self.decoder_num_heads),
            "decoder_embed_dim",
            "`decoder_embed_dim` ({}) must be a positive multiple of `decoder_num_heads` ({})",
            self.decoder_embed_dim,
            self.decoder_num_heads
        );
        crate::ensure_param!(
            self.decoder_embed_dim.is_multiple_of(4),
            "decoder_embed_dim",
            "`decoder_embed_dim` must be divisible by 4 for sin-cos position embeddings, got {}",
            self.decoder_embed_dim
        );
        Ok(())
    }
}
