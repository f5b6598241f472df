//! Scoped mixed precision: while an [`Autocast`] guard lives, this thread's matrix products
//! and convolutions on its device type run in bf16 (PyTorch's autocast, through the C++ shim:
//! `tch::autocast` only toggles CUDA and does nothing on a CPU).

use std::marker::PhantomData;

use tch::Device;

use crate::params::precision::Precision;
use crate::shim;

/// `c10::DeviceType::CPU`.
const DEVICE_TYPE_CPU: i32 = 0;
/// `c10::DeviceType::CUDA`.
const DEVICE_TYPE_CUDA: i32 = 1;
/// `c10::ScalarType::BFloat16`.
const SCALAR_TYPE_BF16: i32 = 15;

/// Autocast to bf16 on one device type until dropped, which restores the previous state.
#[derive(Debug)]
pub struct Autocast {
    device_type: i32,
    prev_enabled: i32,
    prev_dtype: i32,
    /// Autocast state is per thread: the guard stays on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl Autocast {
    /// Enables bf16 autocast for `device`'s type (CPU or CUDA).
    pub fn bf16(device: Device) -> anyhow::Result<Self> {
        let device_type = match device {
            Device::Cpu => DEVICE_TYPE_CPU,
            Device::Cuda(_) => DEVICE_TYPE_CUDA,
            other => anyhow::bail!("bf16 autocast supports cpu and cuda devices, not {other:?}"),
        };
        let (mut prev_enabled, mut prev_dtype) = (0, 0);
        // SAFETY: plain integers in, two integers written back.
        let error = unsafe {
            shim::rsfm_autocast_enter(
                device_type,
                SCALAR_TYPE_BF16,
                &mut prev_enabled,
                &mut prev_dtype,
            )
        };
        shim::check(error, "cannot enable bf16 autocast")?;
        Ok(Autocast {
            device_type,
            prev_enabled,
            prev_dtype,
            _not_send: PhantomData,
        })
    }

    /// A guard for `precision` on `device`: None for fp32.
    pub fn for_precision(precision: Precision, device: Device) -> anyhow::Result<Option<Self>> {
        match precision {
            Precision::Fp32 => Ok(None),
            Precision::Bf16 => Self::bf16(device).map(Some),
        }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: restores the state read by rsfm_autocast_enter on this thread.
        let error = unsafe {
            shim::rsfm_autocast_exit(self.device_type, self.prev_enabled, self.prev_dtype)
        };
        if let Err(err) = shim::check(error, "cannot restore the autocast state") {
            tracing::warn!("{err:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use tch::{Kind, Tensor};

    use super::*;

    #[test]
    fn matmuls_run_in_bf16_inside_the_guard_only() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        {
            let _guard = Autocast::bf16(Device::Cpu).unwrap();
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
            {
                let _inner = Autocast::bf16(Device::Cpu).unwrap();
                assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
            }
            assert_eq!(
                a.matmul(&a).kind(),
                Kind::BFloat16,
                "inner drop keeps outer state"
            );
        }
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }
}
