//! Learning-rate schedule: linear warmup, then half a cosine down to a floor (MAE, ViTDet).

/// A warmup + cosine schedule over `total` steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSchedule {
    /// Peak learning rate, reached at the end of warmup.
    pub peak_lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Steps of linear warmup from 0.
    pub warmup_steps: u64,
    /// Total steps.
    pub total_steps: u64,
}

impl CosineSchedule {
    /// Learning rate at `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * step as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        self.min_lr
            + (self.peak_lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// MAE's linear scaling rule: `base_lr × batch / 256`.
pub fn scaled_lr(base_lr: f64, batch_size: usize) -> f64 {
    base_lr * batch_size as f64 / 256.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_to_the_floor() {
        let s = CosineSchedule {
            peak_lr: 1.0,
            min_lr: 0.1,
            warmup_steps: 10,
            total_steps: 110,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 0.5).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.55).abs() < 1e-12);
        assert!((s.lr(110) - 0.1).abs() < 1e-12);
        assert!(s.lr(30) > s.lr(40));
        assert_eq!(scaled_lr(1.5e-4, 512), 3e-4);
    }
}
