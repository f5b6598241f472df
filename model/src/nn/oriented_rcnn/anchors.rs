//! Horizontal anchors on the pyramid levels and their IoU with horizontal boxes.

use tch::{Device, Kind, Tensor};

/// Anchors `[H·W·A, 4]` `(x1, y1, x2, y2)` of a level with `stride` on an `height`×`width`
/// map, ordered by row, column, then anchor; side `size`, one per height/width `ratio`,
/// centred on the cells.
pub fn level_anchors(
    stride: f64,
    size: f64,
    ratios: &[f64],
    height: i64,
    width: i64,
    device: Device,
) -> Tensor {
    let shapes: Vec<f32> = ratios
        .iter()
        .flat_map(|r| {
            let (w, h) = (size / r.sqrt(), size * r.sqrt());
            [-w / 2.0, -h / 2.0, w / 2.0, h / 2.0].map(|v| v as f32)
        })
        .collect();
    let base = Tensor::from_slice(&shapes)
        .reshape([1, ratios.len() as i64, 4])
        .to_device(device);
    let opts = (Kind::Float, device);
    let xs = (Tensor::arange(width, opts) + 0.5) * stride;
    let ys = (Tensor::arange(height, opts) + 0.5) * stride;
    let grid = Tensor::meshgrid_indexing(&[&ys, &xs], "ij");
    let (cy, cx) = (grid[0].reshape([-1]), grid[1].reshape([-1]));
    let centres = Tensor::stack(&[&cx, &cy, &cx, &cy], 1).unsqueeze(1);
    (centres + base).reshape([-1, 4])
}

/// IoU matrix `[N, M]` of horizontal boxes `a` `[N, 4]` and `b` `[M, 4]`.
pub fn hbox_iou(a: &Tensor, b: &Tensor) -> Tensor {
    let area = |t: &Tensor| {
        (t.select(1, 2) - t.select(1, 0)).clamp_min(0.0)
            * (t.select(1, 3) - t.select(1, 1)).clamp_min(0.0)
    };
    let lt = a
        .narrow(1, 0, 2)
        .unsqueeze(1)
        .maximum(&b.narrow(1, 0, 2).unsqueeze(0));
    let rb = a
        .narrow(1, 2, 2)
        .unsqueeze(1)
        .minimum(&b.narrow(1, 2, 2).unsqueeze(0));
    let wh = (rb - lt).clamp_min(0.0);
    let inter = wh.select(2, 0) * wh.select(2, 1);
    let union = area(a).unsqueeze(1) + area(b).unsqueeze(0) - &inter;
    inter / union.clamp_min(1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_centred_on_cells_with_the_given_shapes() {
        let a = level_anchors(8.0, 16.0, &[0.5, 1.0, 2.0], 2, 3, Device::Cpu);
        assert_eq!(a.size(), vec![18, 4]);
        let v = Vec::<f32>::try_from(a.reshape([-1])).unwrap();
        // Row 0, column 1, ratio 1: a 16×16 box around (12, 4).
        let k = (3 + 1) * 4;
        assert_eq!(&v[k..k + 4], &[4.0, -4.0, 20.0, 12.0]);
    }

    #[test]
    fn hbox_iou_of_half_overlapping_boxes() {
        let a = Tensor::from_slice(&[0.0f32, 0.0, 2.0, 2.0]).reshape([1, 4]);
        let b = Tensor::from_slice(&[1.0f32, 0.0, 3.0, 2.0, 5.0, 5.0, 6.0, 6.0]).reshape([2, 4]);
        let iou = Vec::<f32>::try_from(hbox_iou(&a, &b).reshape([-1])).unwrap();
        assert!((iou[0] - 1.0 / 3.0).abs() < 1e-6 && iou[1] == 0.0);
    }
}
