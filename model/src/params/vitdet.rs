//! ViTDet settings: window attention in most block stages, global attention in a few.

crate::schema! {
    /// ViTDet settings of a fine-tuning stage's backbone.
    pub struct VitDetConfig includes {} {
        /// Window attention side in tokens.
        window_size: usize = 14,
        /// Block stages with global attention (unset: 4 evenly spaced, the last included,
        /// e.g. `[2, 5, 8, 11]` for 12 stages).
        global_stages: Option<Vec<usize>> = None,
        /// Decomposed relative position biases in every block (ViTDet): tables for the block's
        /// window or, in global stages, the whole grid, zero-initialised, resampled when a
        /// checkpoint's grid differs.
        rel_pos: bool = false,
    }
}

impl VitDetConfig {
    /// The stages with global attention for a backbone of `depth` stages.
    pub fn global_stages(&self, depth: usize) -> Vec<usize> {
        match &self.global_stages {
            Some(stages) => stages.clone(),
            None => {
                let count = depth.min(4);
                (1..=count).map(|k| k * depth / count - 1).collect()
            }
        }
    }

    /// Checks the settings against a backbone of `depth` stages on a `grid`×`grid` token
    /// grid; errors name the key and the fix.
    pub fn validate(&self, depth: usize, grid: usize) -> anyhow::Result<()> {
        crate::ensure_param!(
            self.window_size > 0,
            "window_size",
            "`window_size` must be positive"
        );
        crate::ensure_param!(
            self.window_size <= grid,
            "window_size",
            help = format!("set `window_size` to at most {grid}"),
            "`window_size` = {} is larger than the {grid}×{grid} token grid (image_size / patch_size)",
            self.window_size
        );
        if let Some(stages) = &self.global_stages {
            crate::ensure_param!(
                stages.iter().all(|&s| s < depth),
                "global_stages",
                "`global_stages` must be below the backbone's depth {depth}"
            );
        }
        Ok(())
    }
}
