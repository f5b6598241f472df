//! The segmentation model: ViTDet backbone (`backbone.*`) + UperNet head (`decode_head.*`)
//! and, for training, an auxiliary FCN head (`auxiliary_head.*`); cross-entropy with an
//! ignore index, and sliding-window inference (optionally with horizontal-flip averaging).

use tch::nn;
use tch::{Kind, Reduction, Tensor};

use super::upernet::{resize, FcnHead, HeadSettings, UperHead, AUX_MAP};
use super::vitdet::{VitDetBackbone, VitDetConfig};
use crate::arch::VitConfig;

/// Backbone + head.
#[derive(Debug)]
pub struct Segmenter {
    /// The backbone, under `backbone.`.
    pub backbone: VitDetBackbone,
    head: UperHead,
    aux_head: Option<FcnHead>,
    num_classes: i64,
}

/// The heads of a [`Segmenter`].
#[derive(Debug, Clone, Default)]
pub struct SegHeads {
    /// UperNet width.
    pub channels: i64,
    /// Width of the auxiliary FCN head (None: no auxiliary head).
    pub aux_channels: Option<i64>,
    /// Norm and dropout of both heads.
    pub settings: HeadSettings,
}

impl Segmenter {
    /// Builds the model at the root of `path`; `vit.image_size` is the crop size.
    pub fn new(
        path: &nn::Path,
        vit: &VitConfig,
        vitdet: &VitDetConfig,
        heads: &SegHeads,
        num_classes: i64,
    ) -> Self {
        let backbone = VitDetBackbone::new(&(path / "backbone"), vit, vitdet);
        let in_dim = vit.embed_dim as i64;
        let head = UperHead::new(
            &(path / "decode_head"),
            in_dim,
            heads.channels,
            num_classes,
            &heads.settings,
        );
        let aux_head = heads.aux_channels.map(|channels| {
            FcnHead::new(
                &(path / "auxiliary_head"),
                in_dim,
                channels,
                num_classes,
                &heads.settings,
            )
        });
        Segmenter {
            backbone,
            head,
            aux_head,
            num_classes,
        }
    }

    /// Class logits `[batch, classes, H, W]` at the input resolution.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> anyhow::Result<Tensor> {
        let (h, w) = (images.size()[2], images.size()[3]);
        let maps = self.backbone.forward(images, train);
        Ok(resize(&self.head.forward_t(&maps, train)?, h, w))
    }

    /// Training logits of the decode head and, when there is one, of the auxiliary head, both
    /// at the input resolution.
    pub fn forward_train(&self, images: &Tensor) -> anyhow::Result<(Tensor, Option<Tensor>)> {
        let (h, w) = (images.size()[2], images.size()[3]);
        let maps = self.backbone.forward(images, true);
        let main = resize(&self.head.forward_t(&maps, true)?, h, w);
        let aux = match &self.aux_head {
            Some(head) => Some(resize(&head.forward_t(&maps[AUX_MAP], true)?, h, w)),
            None => None,
        };
        Ok((main, aux))
    }

    /// Mean cross-entropy over pixels whose label is not `ignore_index`.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor, ignore_index: i64) -> Tensor {
        logits.cross_entropy_loss::<Tensor>(
            &labels.to_kind(Kind::Int64),
            None,
            Reduction::Mean,
            ignore_index,
            0.0,
        )
    }

    /// [`Self::slide_inference`], averaged with that of the horizontally flipped image
    /// (flipped back) when `flip` is set.
    pub fn slide_inference_flip(
        &self,
        image: &Tensor,
        crop: i64,
        stride: i64,
        flip: bool,
    ) -> anyhow::Result<Tensor> {
        let logits = self.slide_inference(image, crop, stride)?;
        if !flip {
            return Ok(logits);
        }
        let flipped = self.slide_inference(&image.flip([3]), crop, stride)?;
        Ok((logits + flipped.flip([3])) / 2.0)
    }

    /// Logits of a whole `[1, chans, H, W]` image from overlapping `crop × crop` windows
    /// `stride` apart, averaged where they overlap; images smaller than a crop are
    /// zero-padded.
    pub fn slide_inference(
        &self,
        image: &Tensor,
        crop: i64,
        stride: i64,
    ) -> anyhow::Result<Tensor> {
        let (_, c, h, w) = image.size4().expect("image is [1, chans, H, W]");
        let (ph, pw) = (h.max(crop), w.max(crop));
        let padded = image.pad([0, pw - w, 0, ph - h], "constant", 0.0);
        let starts = |len: i64| {
            let mut s: Vec<i64> = (0..)
                .map(|i| i * stride)
                .take_while(|&p| p + crop < len)
                .collect();
            s.push(len - crop);
            s
        };
        let opts = (Kind::Float, image.device());
        let sum = Tensor::zeros([1, self.num_classes, ph, pw], opts);
        let count = Tensor::zeros([1, 1, ph, pw], opts);
        for y in starts(ph) {
            for x in starts(pw) {
                let window = padded.narrow(2, y, crop).narrow(3, x, crop);
                let logits = self.forward_t(&window.reshape([1, c, crop, crop]), false)?;
                let mut target = sum.narrow(2, y, crop).narrow(3, x, crop);
                target += logits;
                let mut seen = count.narrow(2, y, crop).narrow(3, x, crop);
                seen += 1.0;
            }
        }
        Ok((sum / count).narrow(2, 0, h).narrow(3, 0, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A 3-class segmenter on 32² crops: 2 stages of 16 wide, 2² windows, an 8-wide head.
    fn tiny_segmenter(vs: &nn::VarStore) -> Segmenter {
        let backbone = VitConfig {
            patch_size: 8,
            image_size: 32,
            in_chans: 3,
            embed_dim: 16,
            depth: 2,
            parallel: 1,
            num_heads: 2,
            mlp_ratio: 4.0,
            qkv_bias: true,
            drop_path: 0.0,
        };
        let windows = VitDetConfig {
            window_size: 2,
            global_stages: None,
            rel_pos: false,
        };
        let heads = SegHeads {
            channels: 8,
            aux_channels: Some(4),
            settings: HeadSettings {
                dropout: 0.1,
                ..Default::default()
            },
        };
        Segmenter::new(&vs.root(), &backbone, &windows, &heads, 3)
    }

    #[test]
    fn logits_cover_the_input_and_ignored_pixels_do_not_count() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = tiny_segmenter(&vs);
        let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (logits, aux) = model.forward_train(&images).unwrap();
        assert_eq!(logits.size(), vec![2, 3, 32, 32]);
        assert_eq!(aux.unwrap().size(), vec![2, 3, 32, 32]);
        let labels = Tensor::zeros([2, 32, 32], (Kind::Int64, Device::Cpu));
        let all = model.loss(&logits, &labels, 255).double_value(&[]);
        let _ = labels.narrow(1, 0, 16).fill_(255);
        let partial = model.loss(&logits, &labels, 255).double_value(&[]);
        assert!(all.is_finite() && partial.is_finite() && (all - partial).abs() > 1e-7);
        assert!(vs
            .variables()
            .contains_key("decode_head.psp_modules.3.1.conv.weight"));
        assert!(vs
            .variables()
            .contains_key("backbone.blocks.1.attn.qkv.weight"));
        assert!(vs
            .variables()
            .contains_key("auxiliary_head.convs.0.bn.running_var"));
    }

    #[test]
    fn sliding_window_covers_images_of_any_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = tiny_segmenter(&vs);
        let big = Tensor::randn([1, 3, 40, 56], (Kind::Float, Device::Cpu));
        assert_eq!(
            tch::no_grad(|| model.slide_inference(&big, 32, 24))
                .unwrap()
                .size(),
            vec![1, 3, 40, 56]
        );
        let small = Tensor::randn([1, 3, 20, 32], (Kind::Float, Device::Cpu));
        assert_eq!(
            tch::no_grad(|| model.slide_inference_flip(&small, 32, 24, true))
                .unwrap()
                .size(),
            vec![1, 3, 20, 32]
        );
        // One window exactly: the same as a direct forward pass.
        let exact = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (a, b) = tch::no_grad(|| {
            (
                model.slide_inference(&exact, 32, 24).unwrap(),
                model.forward_t(&exact, false).unwrap(),
            )
        });
        assert!(a.allclose(&b, 1e-5, 1e-6, false));
    }
}
