//! Where each dataset of a recipe lives: per-run overrides of its root (`--data NAME=PATH`,
//! `RSFM_DATA_<NAME>`) and a check of its on-disk layout before anything runs.
//!
//! Overrides replace the root a recipe gives; the command line wins over the environment. The
//! environment variable of dataset `dior-r` is `RSFM_DATA_DIOR_R` (upper case, `-` → `_`). The
//! layout check looks for the folders each format's reader opens, so a missing or misplaced
//! dataset is named with its expected layout and the ways to set its root instead of failing
//! deep inside a stage.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::recipe::{DatasetDef, Recipe};

/// Dataset roots given for this run, by dataset name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataRoots {
    roots: BTreeMap<String, PathBuf>,
}

impl DataRoots {
    /// Roots from `RSFM_DATA_<NAME>` variables of `env` for the datasets of `recipes`, then the
    /// `NAME=PATH` entries of `flags` (which win). A flag without `=` is an error.
    pub fn resolve(
        recipes: &[Recipe],
        env: impl Fn(&str) -> Option<String>,
        flags: &[String],
    ) -> anyhow::Result<DataRoots> {
        let mut roots = BTreeMap::new();
        for recipe in recipes {
            for name in recipe.datasets.keys() {
                let base = base_name(name);
                if let Some(path) = env(&env_var(base)).filter(|p| !p.is_empty()) {
                    roots.insert(base.to_string(), PathBuf::from(path));
                }
            }
        }
        for flag in flags {
            let Some((name, path)) = flag
                .split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            else {
                anyhow::bail!(
                    "--data `{flag}`: expected NAME=PATH, e.g. --data dota=/data/DOTA-v2.0"
                );
            };
            roots.insert(name.to_string(), PathBuf::from(path));
        }
        Ok(DataRoots { roots })
    }

    /// Replaces the root of every dataset of `recipes` that has an override. An override naming
    /// no dataset of the recipes is an error listing the names that exist.
    pub fn apply(&self, recipes: &mut [Recipe]) -> anyhow::Result<()> {
        let cwd = std::env::current_dir()?;
        for (name, root) in &self.roots {
            let mut used = false;
            for recipe in recipes.iter_mut() {
                for def in recipe.datasets.values_mut() {
                    if base_name(&def.name) == name {
                        def.root = cwd.join(root);
                        used = true;
                    }
                }
            }
            if !used {
                let known: Vec<&str> = recipes
                    .iter()
                    .flat_map(|r| r.datasets.keys().map(|n| base_name(n)))
                    .collect();
                anyhow::bail!(
                    "--data {name}=…: the recipes read no dataset `{name}` (they read: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
        Ok(())
    }
}

/// The environment variable that overrides the root of dataset `name`: `RSFM_DATA_DIOR_R`.
pub fn env_var(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("RSFM_DATA_{upper}")
}

/// A dataset whose root does not hold the layout its format needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingDataset {
    /// Its name in the recipe.
    pub name: String,
    /// The root looked at.
    pub root: PathBuf,
    /// Where the recipe sets the root.
    pub defined_at: String,
    /// The first expected entry that is absent, relative to the root (empty: the root itself).
    pub absent: String,
    /// The layout its format needs, one line per entry.
    pub layout: &'static str,
}

/// The expected layout of `format`, one entry a line, as the readers of `rsfm-model` open it.
pub fn expected_layout(format: &str) -> Option<&'static str> {
    Some(match format {
        "dota" => "train/images/<id>.png, train/labelTxt/<id>.txt, val/images/<id>.png, val/labelTxt/<id>.txt",
        "dior-r" => "Annotations/Oriented Bounding Boxes/<id>.xml, JPEGImages-trainval/<id>.jpg, JPEGImages-test/<id>.jpg, ImageSets/Main/{trainval,test}.txt",
        "potsdam" => "top_potsdam_<a>_<b>_RGB.tif with top_potsdam_<a>_<b>_label.tif anywhere below the root",
        "loveda" => "Train/{Urban,Rural}/{images_png,masks_png}/<id>.png, Val/{Urban,Rural}/{images_png,masks_png}/<id>.png",
        "millionaid" => "test/<id>.jpg (the ~990k unlabelled scenes pretraining needs) and train/<category path>/<id>.jpg (the 10k labelled ones); pretraining reads every image below the root",
        _ => return None,
    })
}

/// Entries (relative to the root) that must exist for `format`.
fn required_entries(format: &str) -> &'static [&'static str] {
    match format {
        "dota" => &[
            "train/images",
            "train/labelTxt",
            "val/images",
            "val/labelTxt",
        ],
        "dior-r" => &[
            "Annotations/Oriented Bounding Boxes",
            "JPEGImages-trainval",
            "JPEGImages-test",
            "ImageSets/Main/trainval.txt",
            "ImageSets/Main/test.txt",
        ],
        "loveda" => &[
            "Train/Urban/images_png",
            "Train/Urban/masks_png",
            "Train/Rural/images_png",
            "Train/Rural/masks_png",
            "Val/Urban/images_png",
            "Val/Rural/images_png",
        ],
        "millionaid" => &["test"],
        _ => &[],
    }
}

/// The datasets of `recipes` named by `wanted` whose root is missing or lacks its format's
/// layout, each root once.
pub fn missing(recipes: &[Recipe], wanted: impl Fn(&str) -> bool) -> Vec<MissingDataset> {
    let mut seen = BTreeMap::new();
    for recipe in recipes {
        for def in recipe.datasets.values() {
            if !wanted(&def.name) || seen.contains_key(&def.root) {
                continue;
            }
            seen.insert(def.root.clone(), check(def));
        }
    }
    seen.into_values().flatten().collect()
}

/// The problem with `def`'s layout, if any.
fn check(def: &DatasetDef) -> Option<MissingDataset> {
    let format = def.format.as_deref().unwrap_or("");
    let absent = if !def.root.is_dir() {
        Some(String::new())
    } else {
        required_entries(format)
            .iter()
            .find(|entry| !def.root.join(entry).exists())
            .map(|entry| entry.to_string())
    }?;
    Some(MissingDataset {
        name: def.name.clone(),
        root: def.root.clone(),
        defined_at: def.location.to_string(),
        absent,
        layout: expected_layout(format).unwrap_or("any files (no format given)"),
    })
}

/// A message naming each missing dataset, what was looked for, the expected layout and the
/// ways to set its root.
pub fn describe_missing(missing: &[MissingDataset]) -> String {
    let mut text = format!(
        "{} dataset{} not found; nothing was run",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" }
    );
    for m in missing {
        let base = base_name(&m.name);
        let root = lexically_normal(&m.root);
        let what = if m.absent.is_empty() {
            format!("{} does not exist", root.display())
        } else {
            format!("{} has no `{}`", root.display(), m.absent)
        };
        let _ = write!(
            text,
            "\n  dataset `{}`: {what}\n    expected layout: {}\n    set its root: {}=/path, or --data {base}=/path, or edit `root` at {}",
            m.name,
            m.layout,
            env_var(base),
            m.defined_at
        );
    }
    text
}

/// `path` with `.` and `dir/..` pairs removed, without touching the filesystem.
fn lexically_normal(path: &std::path::Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A dataset name without its matrix suffix: `potsdam@a` → `potsdam`.
fn base_name(name: &str) -> &str {
    name.split_once('@').map_or(name, |(base, _)| base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn messages_show_roots_without_dot_dot() {
        assert_eq!(
            lexically_normal(Path::new("/r/recipes/datasets/../../data/./dota")),
            Path::new("/r/data/dota")
        );
    }

    #[test]
    fn environment_names_are_upper_case_with_underscores() {
        assert_eq!(env_var("dior-r"), "RSFM_DATA_DIOR_R");
        assert_eq!(env_var("dota"), "RSFM_DATA_DOTA");
    }

    #[test]
    fn every_layout_check_has_a_description() {
        for format in ["dota", "dior-r", "potsdam", "loveda", "millionaid"] {
            assert!(expected_layout(format).is_some(), "{format}");
        }
        assert!(expected_layout("nope").is_none());
    }

    #[test]
    fn a_partial_tree_names_the_first_missing_entry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("train/images")).unwrap();
        let def = DatasetDef {
            name: "dota".into(),
            root: dir.path().to_path_buf(),
            format: Some("dota".into()),
            location: crate::recipe::Location::start_of(Path::new("r.toml")),
        };
        let problem = check(&def).unwrap();
        assert_eq!(problem.absent, "train/labelTxt");
        for entry in ["train/labelTxt", "val/images", "val/labelTxt"] {
            std::fs::create_dir_all(dir.path().join(entry)).unwrap();
        }
        assert_eq!(check(&def), None);
        let text = describe_missing(&[problem]);
        assert!(
            text.contains("RSFM_DATA_DOTA=/path") && text.contains("--data dota=/path"),
            "{text}"
        );
    }
}
