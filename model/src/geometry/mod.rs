//! Rotated-box geometry: boxes, polygons, exact convex intersection, IoU and rotated NMS.
//!
//! Coordinates are image coordinates (x to the right, y down). A [`RotatedBox`] follows the
//! MMRotate `le90` convention: corner k is `c + R(angle)·d_k` with
//! `R = [[cos, −sin], [sin, cos]]`, so a positive angle turns the box clockwise on screen.

mod min_area_rect;
mod nms;
pub(crate) mod polygon;
mod rotated_box;

pub use nms::{hull_nms_per_class, rotated_nms, rotated_nms_per_class};
pub use polygon::{box_iou, polygon_area, polygon_intersection_area, polygon_iou, Aabb};
pub use rotated_box::{Quad, RotatedBox};
