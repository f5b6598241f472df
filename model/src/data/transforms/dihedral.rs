//! Flips and quarter turns of a square image (the dihedral group of the square), applied to
//! pixels and to points alike, so oriented boxes follow the objects they outline.

use crate::data::image_io::Image;
use crate::geometry::Quad;
use crate::rng::SplitMix64;

/// A flip and quarter-turn combination for a square image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dihedral {
    /// Mirror left–right.
    pub hflip: bool,
    /// Mirror top–bottom.
    pub vflip: bool,
    /// Quarter turns (counter-clockwise on screen), applied after the flips.
    pub quarter_turns: u8,
}

impl Dihedral {
    /// Draws flips (each with probability ½) and, when `rotate`, 0–3 quarter turns.
    pub fn draw(rng: &mut SplitMix64, flips: bool, rotate: bool) -> Self {
        Dihedral {
            hflip: flips && rng.below(2) == 1,
            vflip: flips && rng.below(2) == 1,
            quarter_turns: if rotate { rng.below(4) as u8 } else { 0 },
        }
    }

    /// The transformed image; quarter turns need a square image (flips take any).
    pub fn image(&self, image: &Image) -> Image {
        let mut out = image.clone();
        if self.hflip {
            out = remap(&out, out.width, out.height, |x, y| (image.width - 1 - x, y));
        }
        if self.vflip {
            out = remap(&out, out.width, out.height, |x, y| {
                (x, image.height - 1 - y)
            });
        }
        for _ in 0..self.quarter_turns {
            assert_eq!(out.width, out.height, "quarter turns need a square image");
            let last = out.width - 1;
            out = remap(&out, out.width, out.height, |x, y| (last - y, x));
        }
        out
    }

    /// Where point `p` of a `side`-pixel square goes (pixel edges at integers).
    pub fn point(&self, p: [f64; 2], side: f64) -> [f64; 2] {
        let [mut x, mut y] = p;
        if self.hflip {
            x = side - x;
        }
        if self.vflip {
            y = side - y;
        }
        for _ in 0..self.quarter_turns {
            (x, y) = (y, side - x);
        }
        [x, y]
    }

    /// The polygon `quad` of a `side`-pixel square, corner by corner.
    pub fn quad(&self, quad: &Quad, side: f64) -> Quad {
        quad.map(|p| self.point(p, side))
    }
}

/// A `width × height` image whose pixel (x, y) is pixel `source(x, y)` of `image`.
fn remap(image: &Image, width: u32, height: u32, source: impl Fn(u32, u32) -> (u32, u32)) -> Image {
    let mut out = Image::new(width, height, image.channels);
    for y in 0..height {
        for x in 0..width {
            let (sx, sy) = source(x, y);
            out.pixel_mut(x, y).copy_from_slice(image.pixel(sx, sy));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> impl Iterator<Item = Dihedral> {
        (0..16u8).map(|code| Dihedral {
            hflip: code & 1 == 1,
            vflip: code & 2 == 2,
            quarter_turns: code >> 2,
        })
    }

    #[test]
    fn boxes_follow_the_pixels_through_flips_and_turns() {
        let side = 8u32;
        let mut image = Image::new(side, side, 2);
        image.pixel_mut(5, 1).copy_from_slice(&[7, 9]);
        for t in all() {
            let moved = t.image(&image);
            let [x, y] = t.point([5.5, 1.5], f64::from(side));
            assert_eq!(
                moved.pixel(x.floor() as u32, y.floor() as u32),
                &[7, 9],
                "{t:?} sent the pixel elsewhere than ({x}, {y})"
            );
            assert_eq!(moved.data.iter().filter(|&&v| v != 0).count(), 2);
        }
    }

    #[test]
    fn one_quarter_turn_is_counter_clockwise_on_screen() {
        let turn = Dihedral {
            quarter_turns: 1,
            ..Dihedral::default()
        };
        // The top-right corner goes to the top-left.
        assert_eq!(turn.point([4.0, 0.0], 4.0), [0.0, 0.0]);
        let quad = [[1.0, 0.0], [2.0, 0.0], [2.0, 1.0], [1.0, 1.0]];
        assert_eq!(
            turn.quad(&quad, 4.0),
            [[0.0, 3.0], [0.0, 2.0], [1.0, 2.0], [1.0, 3.0]]
        );
    }

    #[test]
    fn flips_take_rectangular_images_and_draws_respect_the_switches() {
        let image = Image {
            width: 3,
            height: 2,
            channels: 1,
            data: vec![1, 2, 3, 4, 5, 6],
        };
        let h = Dihedral {
            hflip: true,
            ..Dihedral::default()
        };
        assert_eq!(h.image(&image).data, vec![3, 2, 1, 6, 5, 4]);
        let v = Dihedral {
            vflip: true,
            ..Dihedral::default()
        };
        assert_eq!(v.image(&image).data, vec![4, 5, 6, 1, 2, 3]);
        let mut rng = SplitMix64::new(1, 2, 3);
        for _ in 0..20 {
            assert_eq!(Dihedral::draw(&mut rng, false, false), Dihedral::default());
        }
        let drawn: Vec<Dihedral> = (0..64)
            .map(|_| Dihedral::draw(&mut rng, true, true))
            .collect();
        assert!(drawn.iter().any(|d| d.hflip) && drawn.iter().any(|d| d.quarter_turns == 3));
    }
}
