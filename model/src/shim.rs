//! The raw C API of the C++ shim in `model/csrc/rsfm_shim.cpp` (c10d process groups and
//! autocast), and the conversion of its error strings. Safe wrappers live in [`crate::dist`]
//! and [`crate::autocast`].

use std::ffi::{c_char, c_int, CStr};

use torch_sys::C_tensor;

/// A rank's process group on the C++ side.
#[repr(C)]
pub struct RsfmProcessGroup {
    _opaque: [u8; 0],
}

extern "C" {
    /// Frees an error string the shim returned.
    pub fn rsfm_free_error(error: *mut c_char);
    /// 1 when NCCL was compiled into the shim.
    pub fn rsfm_has_nccl() -> c_int;
    /// Rendezvous through a TCPStore and create the Gloo (and NCCL) backends.
    pub fn rsfm_pg_new(
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: c_int,
        with_nccl: c_int,
        out: *mut *mut RsfmProcessGroup,
    ) -> *mut c_char;
    /// Destroys a process group.
    pub fn rsfm_pg_free(pg: *mut RsfmProcessGroup);
    /// Sums tensors in place over all ranks.
    pub fn rsfm_pg_allreduce_sum(
        pg: *mut RsfmProcessGroup,
        tensors: *const *const C_tensor,
        n: usize,
    ) -> *mut c_char;
    /// Overwrites tensors with the root rank's values.
    pub fn rsfm_pg_broadcast(
        pg: *mut RsfmProcessGroup,
        tensors: *const *const C_tensor,
        n: usize,
        root: c_int,
    ) -> *mut c_char;
    /// A new tensor with the sum of `input` over all ranks, differentiable (the backward
    /// pass sums the gradients over the ranks).
    pub fn rsfm_pg_allreduce_sum_autograd(
        pg: *mut RsfmProcessGroup,
        input: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    /// Waits for every rank.
    pub fn rsfm_pg_barrier(pg: *mut RsfmProcessGroup) -> *mut c_char;
    /// Enables autocast for a device type, reporting the previous state.
    pub fn rsfm_autocast_enter(
        device_type: c_int,
        dtype: c_int,
        prev_enabled: *mut c_int,
        prev_dtype: *mut c_int,
    ) -> *mut c_char;
    /// Restores the autocast state saved by `rsfm_autocast_enter`.
    pub fn rsfm_autocast_exit(
        device_type: c_int,
        prev_enabled: c_int,
        prev_dtype: c_int,
    ) -> *mut c_char;
}

/// Turns a shim return value into a result: null is success, anything else is the C++
/// exception's message, which this frees.
pub fn check(error: *mut c_char, what: &str) -> anyhow::Result<()> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: the shim returns either null or a NUL-terminated string from malloc.
    let message = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: the string came from the shim and is freed once, here.
    unsafe { rsfm_free_error(error) };
    anyhow::bail!("{what}: {message}")
}

extern "C" {
    /// Writes named tensors as a `torch.save`-compatible file: a flat dict when `group` is
    /// null, else `{group: {name: tensor}, "meta": {key: value}}`.
    pub fn rsfm_pth_write(
        path: *const c_char,
        group: *const c_char,
        names: *const *const c_char,
        tensors: *const *const C_tensor,
        n: usize,
        meta_keys: *const *const c_char,
        meta_values: *const *const c_char,
        m: usize,
    ) -> *mut c_char;
}
