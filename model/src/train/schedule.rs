//! Learning-rate schedules as data: linear warmup then half a cosine down to a floor (MAE,
//! segmentation), or linear warmup from a fraction of the peak then ×0.1 steps (the
//! detector's 1x schedule).

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

/// Linear warmup from a third of the peak (mmdetection's `warmup_ratio = 1/3`), then ×0.1
/// after each drop step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDecaySchedule {
    /// Learning rate at the end of warmup.
    pub peak_lr: f64,
    /// Steps of linear warmup from `peak_lr / 3`.
    pub warmup_steps: u64,
    /// Steps after which the learning rate drops ×0.1.
    pub drops: Vec<u64>,
    /// Total steps.
    pub total_steps: u64,
}

impl StepDecaySchedule {
    /// Learning rate at `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            let progress = step as f64 / self.warmup_steps as f64;
            return self.peak_lr * (1.0 / 3.0 + 2.0 / 3.0 * progress);
        }
        let dropped = self.drops.iter().filter(|&&d| step >= d).count();
        self.peak_lr * 0.1f64.powi(dropped as i32)
    }
}

/// Linear warmup from 0, then mmseg's poly decay `(peak − min)·(1 − step/total)^power + min`
/// (the warmup scales the decayed value, as mmcv's linear warmup does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolySchedule {
    /// Learning rate at step 0 of the decay.
    pub peak_lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Exponent of the decay (1.0: linear).
    pub power: f64,
    /// Steps of linear warmup from 0.
    pub warmup_steps: u64,
    /// Total steps.
    pub total_steps: u64,
}

impl PolySchedule {
    /// Learning rate at `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        let progress = (step as f64 / self.total_steps.max(1) as f64).min(1.0);
        let decayed =
            (self.peak_lr - self.min_lr) * (1.0 - progress).powf(self.power) + self.min_lr;
        if step < self.warmup_steps {
            return decayed * step as f64 / self.warmup_steps as f64;
        }
        decayed
    }
}

/// The learning rate of every step of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Warmup + cosine.
    Cosine(CosineSchedule),
    /// Warmup + step decay.
    StepDecay(StepDecaySchedule),
    /// Warmup + poly decay.
    Poly(PolySchedule),
}

impl Schedule {
    /// Learning rate at `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        match self {
            Schedule::Cosine(s) => s.lr(step),
            Schedule::StepDecay(s) => s.lr(step),
            Schedule::Poly(s) => s.lr(step),
        }
    }

    /// Steps of the whole run.
    pub fn total_steps(&self) -> u64 {
        match self {
            Schedule::Cosine(s) => s.total_steps,
            Schedule::StepDecay(s) => s.total_steps,
            Schedule::Poly(s) => s.total_steps,
        }
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
        assert_eq!(Schedule::Cosine(s).lr(60), s.lr(60));
    }

    #[test]
    fn poly_decays_linearly_at_power_one_after_warmup() {
        let s = PolySchedule {
            peak_lr: 1.0,
            min_lr: 0.0,
            power: 1.0,
            warmup_steps: 10,
            total_steps: 100,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 0.95 * 0.5).abs() < 1e-12);
        assert!((s.lr(50) - 0.5).abs() < 1e-12);
        assert!((s.lr(100)).abs() < 1e-12);
        let squared = PolySchedule { power: 2.0, ..s };
        assert!((squared.lr(50) - 0.25).abs() < 1e-12);
        assert_eq!(Schedule::Poly(s).total_steps(), 100);
    }

    #[test]
    fn one_x_schedule_warms_up_from_a_third_then_drops_twice() {
        let s = Schedule::StepDecay(StepDecaySchedule {
            peak_lr: 3.0,
            warmup_steps: 3,
            drops: vec![8, 11],
            total_steps: 12,
        });
        assert!((s.lr(0) - 1.0).abs() < 1e-12);
        assert!((s.lr(3) - 3.0).abs() < 1e-12);
        assert!((s.lr(7) - 3.0).abs() < 1e-12);
        assert!((s.lr(8) - 0.3).abs() < 1e-12);
        assert!((s.lr(11) - 0.03).abs() < 1e-12);
        assert_eq!(s.total_steps(), 12);
    }
}
