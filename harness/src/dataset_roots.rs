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
use std::path::{Path, PathBuf};

use rsfm_model::data::formats::dota;

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
    /// Other entries that would do instead of `absent` (DOTA's label folders), none of them
    /// there either.
    pub alternatives: Vec<String>,
    /// The layout its format needs, one line per entry.
    pub layout: &'static str,
    /// What to move, link or unpack when the layout is close (one folder too deep, a doubled
    /// folder, labels beside their folder), as commands with the paths.
    pub fix: Option<String>,
}

/// The expected layout of `format`, one entry a line, as the readers of `rsfm-model` open it.
pub fn expected_layout(format: &str) -> Option<&'static str> {
    Some(match format {
        "dota" => "train/images/**/<id>.png and val/images/**/<id>.png (any depth: the official archives unpack into images/part4/, …), labels in {train,val}/labelTxt/<id>.txt or the official archives' train/labelTxt-v2.0/DOTA-v2.0_train/, val/labelTxt-v2.0/DOTA-v2.0_val/ (v1.5: labelTxt-v1.5/DOTA-v1.5_{train,val}/, v1.0: labelTxt-v1.0/labelTxt/); test-dev/images/ for the server",
        "dior-r" => "Annotations/Oriented Bounding Boxes/<id>.xml, JPEGImages-trainval/<id>.jpg, JPEGImages-test/<id>.jpg, ImageSets/Main/{trainval,test}.txt",
        "potsdam" => "top_potsdam_<a>_<b>_RGB.tif with top_potsdam_<a>_<b>_label.tif or _label_noBoundary.tif anywhere below the root (the official 2_Ortho_RGB/, 5_Labels_all/, 5_Labels_all_noBoundary/ unpacked side by side)",
        "loveda" => "Train/{Urban,Rural}/{images_png,masks_png}/<id>.png, Val/{Urban,Rural}/{images_png,masks_png}/<id>.png (Train.zip, Val.zip unpacked in the root), Test/{Urban,Rural}/images_png/ for the server",
        "millionaid" => "test/<id>.jpg (the ~990k unlabelled scenes pretraining needs) and train/<category path>/<id>.jpg (the 10k labelled ones); pretraining reads every image below the root",
        _ => return None,
    })
}

/// One thing a format's layout needs, relative to the root.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// A folder or file that must exist.
    Entry(&'static str),
    /// A label folder of DOTA split `0` holding `.txt` files, one of `dota::label_dirs`.
    DotaLabels(&'static str),
    /// Potsdam: an `_RGB.tif` tile and a label tile somewhere below the root.
    PotsdamTiles,
}

/// What `format` needs, in the order it is checked.
fn needs(format: &str) -> &'static [Need] {
    use Need::{DotaLabels, Entry, PotsdamTiles};
    match format {
        "dota" => &[
            Entry("train/images"),
            DotaLabels("train"),
            Entry("val/images"),
            DotaLabels("val"),
        ],
        "dior-r" => &[
            Entry("Annotations/Oriented Bounding Boxes"),
            Entry("JPEGImages-trainval"),
            Entry("JPEGImages-test"),
            Entry("ImageSets/Main/trainval.txt"),
            Entry("ImageSets/Main/test.txt"),
        ],
        "loveda" => &[
            Entry("Train/Urban/images_png"),
            Entry("Train/Urban/masks_png"),
            Entry("Train/Rural/images_png"),
            Entry("Train/Rural/masks_png"),
            Entry("Val/Urban/images_png"),
            Entry("Val/Rural/images_png"),
        ],
        "millionaid" => &[Entry("test")],
        "potsdam" => &[PotsdamTiles],
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
            seen.insert(def.root.clone(), problem(def));
        }
    }
    seen.into_values().flatten().collect()
}

/// The problem with `def`'s layout, if any: what `run` refuses and `plan` marks `no-data`.
pub fn problem(def: &DatasetDef) -> Option<MissingDataset> {
    let format = def.format.as_deref().unwrap_or("");
    let (absent, alternatives) = first_unmet(&def.root, format)?;
    let fix = near_miss(&def.root, format, &def.name, &absent);
    Some(MissingDataset {
        name: def.name.clone(),
        root: def.root.clone(),
        defined_at: def.location.to_string(),
        absent,
        alternatives,
        layout: expected_layout(format).unwrap_or("any files (no format given)"),
        fix,
    })
}

/// The first need of `format` that `root` does not meet: the entry named in messages and the
/// ones that would do instead. An absent root (or a plain file where a folder belongs) gives
/// an empty entry; a pipe, socket or device is left to the fingerprint, which refuses it.
fn first_unmet(root: &Path, format: &str) -> Option<(String, Vec<String>)> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(meta) if !meta.is_file() => return None,
        _ => return Some((String::new(), Vec::new())),
    }
    needs(format).iter().find_map(|need| match *need {
        Need::Entry(entry) => (!root.join(entry).exists()).then(|| (entry.to_string(), vec![])),
        Need::DotaLabels(split) => {
            let mut dirs: Vec<String> = dota::label_dirs(split, None)
                .into_iter()
                .map(|d| format!("{split}/{d}"))
                .collect();
            if dirs.iter().any(|d| dota::holds_labels(&root.join(d))) {
                return None;
            }
            // The devkit's name first: it is the one most users expect.
            dirs.rotate_right(1);
            let first = dirs.remove(0);
            Some((first, dirs))
        }
        Need::PotsdamTiles => {
            let (rgb, labels) = potsdam_tiles(root);
            if !rgb {
                Some(("top_potsdam_<a>_<b>_RGB.tif".to_string(), vec![]))
            } else if !labels {
                Some((
                    "top_potsdam_<a>_<b>_label.tif".to_string(),
                    vec!["top_potsdam_<a>_<b>_label_noBoundary.tif".to_string()],
                ))
            } else {
                None
            }
        }
    })
}

/// Whether an ISPRS Potsdam RGB tile and a label tile lie below `root` (three folders deep at
/// most, so a wrong root such as `/` is not walked whole).
fn potsdam_tiles(root: &Path) -> (bool, bool) {
    fn walk(dir: &Path, depth: usize, found: &mut (bool, bool)) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if depth < 3 {
                    walk(&path, depth + 1, found);
                }
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(rest) = name.strip_prefix("top_potsdam_") {
                found.0 |= rest.ends_with("_RGB.tif");
                found.1 |= rest.ends_with("_label.tif") || rest.ends_with("_label_noBoundary.tif");
            }
            if found.0 && found.1 {
                return;
            }
        }
    }
    let mut found = (false, false);
    walk(root, 0, &mut found);
    found
}

/// The commands that turn a close layout into the expected one, if it is close.
fn near_miss(root: &Path, format: &str, name: &str, absent: &str) -> Option<String> {
    let shown = lexically_normal(root);
    let show = |rel: &str| shell_path(&shown.join(rel));
    let base = base_name(name);
    if needs(format).is_empty() {
        return None;
    }
    if format == "potsdam" {
        // Found at any depth: no folder is one off; only archives left zipped are near.
        return root
            .is_dir()
            .then(|| potsdam_near_miss(root, absent, &show))
            .flatten();
    }
    // The whole dataset one folder down (`DOTA/train/...` from unzipping into a folder).
    if root.is_dir() {
        let inner: Vec<PathBuf> = sorted_dirs(root)
            .into_iter()
            .filter(|dir| first_unmet(dir, format).is_none())
            .collect();
        if let [inner] = inner.as_slice() {
            let inner = shell_path(&lexically_normal(inner));
            return Some(format!(
                "the dataset is one folder down, in {inner}: point at it with --data {base}={inner}, or move it up: mv {}/* {} && rmdir {inner}",
                inner,
                shell_path(&shown)
            ));
        }
    }
    // The root is a folder inside the dataset (`--data dota=/data/DOTA/train`).
    if let Some(parent) = shown.parent() {
        if !parent.as_os_str().is_empty() && first_unmet(parent, format).is_none() {
            let parent = shell_path(parent);
            return Some(format!(
                "{} is a folder inside the dataset: point at its root with --data {base}={parent}",
                shell_path(&shown)
            ));
        }
    }
    if !root.is_dir() {
        return None;
    }
    // A doubled folder (`Train/Train/Urban/...` from unzipping Train.zip into `Train/`).
    if let Some((top, _)) = absent.split_once('/') {
        let doubled = format!("{top}/{top}");
        if root.join(&doubled).join(&absent[top.len() + 1..]).exists() {
            return Some(format!(
                "{} holds a second {top}/ (unzipped into a folder of its own name): mv {}/* {} && rmdir {}",
                show(top),
                show(&doubled),
                show(top),
                show(&doubled)
            ));
        }
    }
    match format {
        "dota" => dota_labels_near_miss(root, absent, &show),
        _ => None,
    }
}

/// DOTA label folders one level too deep or too shallow, or only the horizontal-box labels.
fn dota_labels_near_miss(
    root: &Path,
    absent: &str,
    show: &dyn Fn(&str) -> String,
) -> Option<String> {
    let split = absent.split('/').next()?;
    if !absent.starts_with(&format!("{split}/labelTxt")) {
        return None;
    }
    let official = dota::label_dirs(split, None);
    for label_dir in &official {
        let rel = format!("{split}/{label_dir}");
        let dir = root.join(&rel);
        // Only the horizontal-box labels beside where the oriented ones go.
        if dota::holds_labels(&root.join(format!("{rel}_hbb"))) {
            return Some(format!(
                "{} holds horizontal boxes only; rsfm reads the oriented labels: unpack {}.zip (the archive without `_hbb`) so that {}/ holds its .txt files",
                show(&format!("{rel}_hbb")),
                dir.file_name()?.to_string_lossy(),
                show(&rel)
            ));
        }
        // One level too deep: the .txt files in a single folder below the label folder.
        if dir.is_dir() {
            let inner: Vec<PathBuf> = sorted_dirs(&dir)
                .into_iter()
                .filter(|d| !d.to_string_lossy().ends_with("_hbb") && dota::holds_labels(d))
                .collect();
            if let [inner] = inner.as_slice() {
                let inner_rel = format!("{rel}/{}", inner.file_name()?.to_string_lossy());
                return Some(format!(
                    "the labels are one folder too deep, in {}: mv {}/*.txt {}/ && rmdir {}",
                    show(&inner_rel),
                    show(&inner_rel),
                    show(&rel),
                    show(&inner_rel)
                ));
            }
        }
        // One level too shallow: `labelTxt-v2.0/*.txt` without its `DOTA-v2.0_train/`.
        if let Some((outer, _)) = label_dir.split_once('/') {
            let outer_rel = format!("{split}/{outer}");
            if dota::holds_labels(&root.join(&outer_rel)) {
                let devkit = format!("{split}/labelTxt");
                let clear = if root.join(&devkit).is_dir() {
                    format!("rmdir {} && ", show(&devkit))
                } else {
                    String::new()
                };
                return Some(format!(
                    "the labels lie directly in {}: {clear}mv {} {}",
                    show(&outer_rel),
                    show(&outer_rel),
                    show(&devkit)
                ));
            }
        }
    }
    None
}

/// Potsdam archives left zipped in the root.
fn potsdam_near_miss(root: &Path, absent: &str, show: &dyn Fn(&str) -> String) -> Option<String> {
    let archives: &[&str] = if absent.ends_with("_RGB.tif") {
        &["2_Ortho_RGB.zip"]
    } else {
        &["5_Labels_all_noBoundary.zip", "5_Labels_all.zip"]
    };
    let zipped: Vec<String> = archives
        .iter()
        .filter(|a| root.join(a).is_file())
        .map(|a| format!("unzip {} -d {}", show(a), show("")))
        .collect();
    (!zipped.is_empty()).then(|| format!("unpack the archive: {}", zipped.join(" && ")))
}

/// The sub-folders of `dir`, sorted.
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// `path` as a shell word: quoted when it holds anything but plain path characters.
fn shell_path(path: &Path) -> String {
    let text = path.display().to_string();
    let text = text.trim_end_matches('/').to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=,@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A message naming each missing dataset, what was looked for, the expected layout, what to
/// move where when the layout is close, and the ways to set its root.
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
        } else if m.alternatives.is_empty() {
            format!("{} has no `{}`", root.display(), m.absent)
        } else {
            let others: Vec<String> = m.alternatives.iter().map(|a| format!("`{a}`")).collect();
            format!(
                "{} has no `{}` (nor {})",
                root.display(),
                m.absent,
                others.join(", ")
            )
        };
        let _ = write!(text, "\n  dataset `{}`: {what}", m.name);
        if let Some(fix) = &m.fix {
            let _ = write!(text, "\n    fix: {fix}");
        }
        let _ = write!(
            text,
            "\n    expected layout: {}\n    set its root: {}=/path, or --data {base}=/path, or edit `root` at {}",
            m.layout,
            env_var(base),
            m.defined_at
        );
    }
    text
}

/// `path` with `.` and `dir/..` pairs removed, without touching the filesystem.
fn lexically_normal(path: &Path) -> PathBuf {
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

    fn dataset(root: &Path, format: &str) -> DatasetDef {
        DatasetDef {
            name: format.into(),
            root: root.to_path_buf(),
            format: Some(format.into()),
            location: crate::recipe::Location::start_of(Path::new("r.toml")),
        }
    }

    fn touch(root: &Path, rel: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }

    #[test]
    fn a_partial_tree_names_the_first_missing_entry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("train/images")).unwrap();
        let def = dataset(dir.path(), "dota");
        let found = problem(&def).unwrap();
        assert_eq!(found.absent, "train/labelTxt");
        assert!(found
            .alternatives
            .contains(&"train/labelTxt-v2.0/DOTA-v2.0_train".to_string()));
        // An empty label folder is not a label folder.
        for entry in ["train/labelTxt", "val/images", "val/labelTxt"] {
            std::fs::create_dir_all(dir.path().join(entry)).unwrap();
        }
        assert_eq!(problem(&def).unwrap().absent, "train/labelTxt");
        touch(dir.path(), "train/labelTxt/P0000.txt");
        touch(dir.path(), "val/labelTxt/P0003.txt");
        assert_eq!(problem(&def), None);
        let text = describe_missing(&[found]);
        assert!(
            text.contains("RSFM_DATA_DOTA=/path") && text.contains("--data dota=/path"),
            "{text}"
        );
    }

    #[test]
    fn the_official_dota_v2_label_folders_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "train/images/part4/P1234.png");
        touch(root, "train/labelTxt-v2.0/DOTA-v2.0_train/P1234.txt");
        touch(root, "train/labelTxt-v2.0/DOTA-v2.0_train_hbb/P1234.txt");
        touch(root, "val/images/part2/P2000.png");
        touch(root, "val/labelTxt-v2.0/DOTA-v2.0_val/P2000.txt");
        assert_eq!(problem(&dataset(root, "dota")), None);
    }

    #[test]
    fn close_dota_layouts_get_the_command_that_fixes_them() {
        let fix = |files: &[&str]| {
            let dir = tempfile::tempdir().unwrap();
            for file in files {
                touch(dir.path(), file);
            }
            let found = problem(&dataset(dir.path(), "dota")).expect("a problem");
            let root = dir.path().display().to_string();
            found.fix.unwrap_or_default().replace(&root, "ROOT")
        };
        let official = [
            "train/images/P1.png",
            "train/labelTxt-v2.0/DOTA-v2.0_train/P1.txt",
            "val/images/P2.png",
            "val/labelTxt-v2.0/DOTA-v2.0_val/P2.txt",
        ];
        let wrapped: Vec<String> = official.iter().map(|f| format!("DOTA/{f}")).collect();
        let wrapped: Vec<&str> = wrapped.iter().map(String::as_str).collect();
        assert!(
            fix(&wrapped).contains("--data dota=ROOT/DOTA")
                && fix(&wrapped).contains("mv ROOT/DOTA/* ROOT && rmdir ROOT/DOTA"),
            "{}",
            fix(&wrapped)
        );
        let deep = fix(&[
            "train/images/P1.png",
            "train/labelTxt/DOTA-v2.0_train/P1.txt",
            "val/images/P2.png",
        ]);
        assert_eq!(
            deep,
            "the labels are one folder too deep, in ROOT/train/labelTxt/DOTA-v2.0_train: mv ROOT/train/labelTxt/DOTA-v2.0_train/*.txt ROOT/train/labelTxt/ && rmdir ROOT/train/labelTxt/DOTA-v2.0_train"
        );
        let shallow = fix(&["train/images/P1.png", "train/labelTxt-v2.0/P1.txt"]);
        assert_eq!(
            shallow,
            "the labels lie directly in ROOT/train/labelTxt-v2.0: mv ROOT/train/labelTxt-v2.0 ROOT/train/labelTxt"
        );
        let hbb = fix(&[
            "train/images/P1.png",
            "train/labelTxt-v2.0/DOTA-v2.0_train_hbb/P1.txt",
        ]);
        assert!(
            hbb.contains("horizontal boxes only") && hbb.contains("DOTA-v2.0_train.zip"),
            "{hbb}"
        );
    }

    #[test]
    fn a_root_inside_the_dataset_names_the_dataset_root() {
        let dir = tempfile::tempdir().unwrap();
        for split in ["Train", "Val"] {
            for domain in ["Urban", "Rural"] {
                for kind in ["images_png", "masks_png"] {
                    touch(dir.path(), &format!("{split}/{domain}/{kind}/1.png"));
                }
            }
        }
        let found = problem(&dataset(&dir.path().join("Train"), "loveda")).unwrap();
        let root = dir.path().display().to_string();
        assert_eq!(
            found.fix.unwrap().replace(&root, "ROOT"),
            "ROOT/Train is a folder inside the dataset: point at its root with --data loveda=ROOT"
        );
    }

    #[test]
    fn a_doubled_loveda_split_folder_is_moved_up() {
        let dir = tempfile::tempdir().unwrap();
        for domain in ["Urban", "Rural"] {
            for kind in ["images_png", "masks_png"] {
                touch(dir.path(), &format!("Train/Train/{domain}/{kind}/1.png"));
                touch(dir.path(), &format!("Val/{domain}/{kind}/2.png"));
            }
        }
        let found = problem(&dataset(dir.path(), "loveda")).unwrap();
        let root = dir.path().display().to_string();
        assert_eq!(
            found.fix.unwrap().replace(&root, "ROOT"),
            "ROOT/Train holds a second Train/ (unzipped into a folder of its own name): mv ROOT/Train/Train/* ROOT/Train && rmdir ROOT/Train/Train"
        );
    }

    #[test]
    fn potsdam_needs_tiles_and_labels_below_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let def = dataset(dir.path(), "potsdam");
        touch(dir.path(), "2_Ortho_RGB.zip");
        let found = problem(&def).unwrap();
        assert_eq!(found.absent, "top_potsdam_<a>_<b>_RGB.tif");
        assert!(found.fix.unwrap().starts_with("unpack the archive: unzip "));
        touch(dir.path(), "2_Ortho_RGB/top_potsdam_2_10_RGB.tif");
        assert_eq!(
            problem(&def).unwrap().absent,
            "top_potsdam_<a>_<b>_label.tif"
        );
        touch(
            dir.path(),
            "5_Labels_all_noBoundary/top_potsdam_2_10_label_noBoundary.tif",
        );
        assert_eq!(problem(&def), None);
    }

    #[test]
    fn shell_paths_are_quoted_when_they_need_it() {
        assert_eq!(shell_path(Path::new("/data/DOTA-v2.0")), "/data/DOTA-v2.0");
        assert_eq!(
            shell_path(Path::new("/data/my data/it's")),
            r"'/data/my data/it'\''s'"
        );
    }
}
