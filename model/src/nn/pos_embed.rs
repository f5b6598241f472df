//! Position embeddings: MAE's fixed 2-D sin-cos table and resampling of a learned table to
//! another patch grid (for fine-tuning at a new resolution).

use tch::{Device, Kind, Tensor};

/// MAE's 2-D sin-cos table `[grid², dim]` for a `grid × grid` patch grid, row-major.
///
/// The first half of each row encodes the column index and the second half the row index;
/// each half is `[sin(p·ω_k), cos(p·ω_k)]` with `ω_k = 10000^(-k / (dim/4))`.
/// `dim` must be a multiple of 4.
pub fn sincos_2d(dim: i64, grid: i64) -> Tensor {
    assert!(
        dim % 4 == 0,
        "sin-cos position embeddings need a width divisible by 4, got {dim}"
    );
    let opts = (Kind::Double, Device::Cpu);
    let quarter = dim / 4;
    let omega = (Tensor::arange(quarter, opts) / quarter as f64)
        .multiply_scalar(-(10000f64.ln()))
        .exp();
    let coords = Tensor::arange(grid, opts);
    let rows = coords.repeat_interleave_self_int(grid, 0, None::<i64>);
    let cols = coords.repeat([grid]);
    let encode = |pos: &Tensor| {
        let angles = pos.unsqueeze(1) * omega.unsqueeze(0);
        Tensor::cat(&[angles.sin(), angles.cos()], 1)
    };
    Tensor::cat(&[encode(&cols), encode(&rows)], 1).to_kind(Kind::Float)
}

/// MAE's table with a leading all-zero row for the class token: `[1, 1 + grid², dim]`.
pub fn sincos_2d_with_cls(dim: i64, grid: i64) -> Tensor {
    let table = sincos_2d(dim, grid);
    Tensor::cat(
        &[Tensor::zeros([1, dim], (Kind::Float, Device::Cpu)), table],
        0,
    )
    .unsqueeze(0)
}

/// Resamples the patch part of a position table (`[1, prefix + h·w, dim]`, `prefix` leading
/// class-token rows) to a `new_h × new_w` grid with bicubic interpolation; returns
/// `[1, new_h·new_w, dim]` without the prefix rows.
pub fn resample_patch_grid(pos: &Tensor, prefix: i64, new_h: i64, new_w: i64) -> Tensor {
    let (_, n, dim) = pos.size3().expect("position table is [1, tokens, dim]");
    let old = ((n - prefix) as f64).sqrt().round() as i64;
    let grid = pos
        .narrow(1, prefix, n - prefix)
        .reshape([1, old, old, dim])
        .permute([0, 3, 1, 2]);
    let resized = if (old, old) == (new_h, new_w) {
        grid
    } else {
        grid.upsample_bicubic2d([new_h, new_w], false, None, None)
    };
    resized
        .permute([0, 2, 3, 1])
        .reshape([1, new_h * new_w, dim])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sincos_table_encodes_column_then_row() {
        let table = sincos_2d(8, 3);
        assert_eq!(table.size(), vec![9, 8]);
        // Patch (row 1, col 2) = index 5: first quarter sin(2·ω), third quarter sin(1·ω).
        let row = Vec::<f32>::try_from(table.get(5)).unwrap();
        assert!((row[0] - 2f32.sin()).abs() < 1e-6);
        assert!((row[2] - 2f32.cos()).abs() < 1e-6);
        assert!((row[4] - 1f32.sin()).abs() < 1e-6);
        assert!((row[1] - (2.0 * 0.01f32).sin()).abs() < 1e-6);
        let with_cls = sincos_2d_with_cls(8, 3);
        assert_eq!(with_cls.size(), vec![1, 10, 8]);
        assert_eq!(
            with_cls
                .get(0)
                .get(0)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
    }

    #[test]
    fn resampling_to_the_same_grid_is_identity() {
        let pos = Tensor::randn([1, 17, 6], (Kind::Float, Device::Cpu));
        let same = resample_patch_grid(&pos, 1, 4, 4);
        assert!(same.equal(&pos.narrow(1, 1, 16)));
        assert_eq!(resample_patch_grid(&pos, 1, 6, 8).size(), vec![1, 48, 6]);
    }
}
