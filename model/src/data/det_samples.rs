//! The annotated samples of a detection dataset (DOTA or DIOR-R) on disk, listed per part
//! (training or held-out), and their ground truth for the AP metrics. Pure Rust: training,
//! evaluation and `rescore-det` read them alike.

use std::path::{Path, PathBuf};

use crate::data::formats::dior::{self, DiorSplit};
use crate::data::formats::dota::{self, ClassCheck};
use crate::geometry::Quad;
use crate::metrics::detection::GroundTruth;
use crate::params::data::{DetDataParams, DetFormat};

use crate::data::seg_samples::trainval_refused;
pub use crate::data::seg_samples::Part;

/// The folder of a detection evaluation's output holding its merged detections as DOTA Task1
/// files (`Task1_<class>.txt`), which `rescore-dota` / `rescore-dior-r` score again.
pub const TASK1_DIR: &str = "task1";

/// One annotated object.
#[derive(Debug, Clone, PartialEq)]
pub struct DetObject {
    /// Corner polygon.
    pub poly: Quad,
    /// Class index.
    pub class: usize,
    /// The annotation's difficult flag.
    pub difficult: bool,
}

/// One image and its objects.
#[derive(Debug, Clone, PartialEq)]
pub struct DetSample {
    /// Image id (file stem).
    pub id: String,
    /// Image file.
    pub image: PathBuf,
    /// Objects.
    pub objects: Vec<DetObject>,
}

/// The samples of `part` of the dataset at `root`.
pub fn list_samples(
    root: &Path,
    params: &DetDataParams,
    part: Part,
) -> anyhow::Result<Vec<DetSample>> {
    let names = params.class_names()?;
    let index = |class: &str| names.iter().position(|n| n == class);
    let samples = match params.format {
        DetFormat::Dota => {
            let version = params.dota_version()?;
            let mut samples = Vec::new();
            for half in part.halves() {
                let dir = root.join(if *half == Part::Train { "train" } else { "val" });
                samples.extend(dota::read_split(
                    &dir.join("images"),
                    &dota::find_label_dir(&dir, Some(version))?,
                    ClassCheck::Version(version),
                )?);
            }
            samples
                .into_iter()
                .map(|s| DetSample {
                    id: s.id,
                    image: s.image,
                    objects: s
                        .label
                        .objects
                        .iter()
                        .filter_map(|o| {
                            index(&o.class).map(|class| DetObject {
                                poly: o.poly,
                                class,
                                difficult: o.difficult != 0,
                            })
                        })
                        .collect(),
                })
                .collect::<Vec<_>>()
        }
        DetFormat::DiorR => {
            let split = match part {
                Part::Train => DiorSplit::Trainval,
                Part::Val => DiorSplit::Test,
                Part::TrainVal => return Err(trainval_refused("dior-r")),
            };
            dior::read_split(root, split)?
                .into_iter()
                .map(|s| DetSample {
                    id: s.id,
                    image: s.image,
                    objects: s
                        .annotation
                        .objects
                        .iter()
                        .filter_map(|o| {
                            dior::dior_class_index(&o.class).map(|class| DetObject {
                                poly: o.geometry.polygon(),
                                class,
                                difficult: o.difficult,
                            })
                        })
                        .collect(),
                })
                .collect()
        }
    };
    anyhow::ensure!(
        !samples.is_empty(),
        "{}: no images found for this part of the dataset",
        root.display()
    );
    Ok(samples)
}

/// The ground truth of `samples` for [`crate::metrics::detection::evaluate`].
pub fn ground_truths(samples: &[DetSample], class_names: &[String]) -> Vec<GroundTruth> {
    samples
        .iter()
        .flat_map(|s| {
            s.objects.iter().map(|o| GroundTruth {
                image: s.id.clone(),
                class: class_names[o.class].clone(),
                poly: o.poly,
                difficult: o.difficult,
            })
        })
        .collect()
}
