//! Model presets: `recipes/models/NAME.toml` found from a folder upwards, in the folders of
//! `RSFM_MODELS`, or built into the binary.

use std::path::{Path, PathBuf};

use rsfm_model::arch::ModelPreset;

/// Folders (separated by `:`) searched for `NAME.toml` after the recipe's folder and parents.
const MODELS_ENV: &str = "RSFM_MODELS";

/// The presets of `recipes/models/`, built into the binary: a recipe anywhere can name them.
const BUILT_IN: &[(&str, &str)] = &[
    ("vit-b", include_str!("../../recipes/models/vit-b.toml")),
    (
        "vit-605m",
        include_str!("../../recipes/models/vit-605m.toml"),
    ),
    (
        "vit-1.3b",
        include_str!("../../recipes/models/vit-1.3b.toml"),
    ),
    (
        "vit-2.4b",
        include_str!("../../recipes/models/vit-2.4b.toml"),
    ),
    (
        "vit-tiny",
        include_str!("../../recipes/models/vit-tiny.toml"),
    ),
    (
        "vit-tiny-parallel",
        include_str!("../../recipes/models/vit-tiny-parallel.toml"),
    ),
    (
        "vit-mini",
        include_str!("../../recipes/models/vit-mini.toml"),
    ),
];

/// Finds and parses the preset `model` through the search path: a path to a preset file
/// (relative to `dir`), `recipes/models/NAME.toml` in `dir` or its nearest ancestor that has it,
/// `NAME.toml` in a folder of `RSFM_MODELS`, then the presets built into the binary. Returns
/// where it came from (a file, or `built-in NAME`) and the preset.
pub fn load_preset(model: &str, dir: &Path) -> anyhow::Result<(String, ModelPreset)> {
    let found = find_preset(model, dir)?;
    let preset = found.parse()?;
    Ok((found.origin, preset))
}

/// A preset's text and where it came from.
#[derive(Debug, Clone)]
pub struct PresetText {
    /// Its file, or `built-in NAME`.
    pub origin: String,
    /// Its TOML text.
    pub text: String,
}

impl PresetText {
    /// The preset, parsed and checked; an error names where it came from. The one parse of a
    /// preset's architecture.
    pub fn parse(&self) -> anyhow::Result<ModelPreset> {
        ModelPreset::from_toml(&self.text, &self.origin)
    }

    /// Its table `section` (`vit`, `defaults`) with each value as written (provenance tables
    /// included); `None` when the text or the table cannot be read.
    pub fn section(&self, section: &str) -> Option<toml::Table> {
        let mut table = self.text.parse::<toml::Table>().ok()?;
        match table.remove(section)? {
            toml::Value::Table(section) => Some(section),
            _ => None,
        }
    }
}

/// Finds the text of the preset `model` through the search path of [`load_preset`].
pub fn find_preset(model: &str, dir: &Path) -> anyhow::Result<PresetText> {
    let on_disk = resolve_preset(model, dir).ok().or_else(|| {
        std::env::var_os(MODELS_ENV).and_then(|dirs| {
            std::env::split_paths(&dirs)
                .map(|d| d.join(format!("{model}.toml")))
                .find(|f| f.is_file())
        })
    });
    if let Some(file) = on_disk {
        return Ok(PresetText {
            origin: file.display().to_string(),
            text: fs_err::read_to_string(&file)?,
        });
    }
    if let Some((name, text)) = BUILT_IN.iter().find(|(name, _)| *name == model) {
        return Ok(PresetText {
            origin: format!("built-in {name}"),
            text: text.to_string(),
        });
    }
    let built_in: Vec<&str> = BUILT_IN.iter().map(|(name, _)| *name).collect();
    let typo = crate::suggest::closest(model, built_in.iter().copied())
        .map(|close| format!(" (did you mean `{close}`?)"))
        .unwrap_or_default();
    anyhow::bail!(
        "no model preset `{model}`{typo}: looked for recipes/models/{model}.toml in {} and its \
         parents, in ${MODELS_ENV}, and among the built-in presets ({})",
        dir.display(),
        built_in.join(", ")
    )
}

/// The table `section` (`vit`, `defaults`) of the preset `model` as found by [`find_preset`],
/// with each value as written (provenance tables included); `None` when the preset or the
/// table cannot be read.
pub fn preset_section(model: &str, dir: &Path, section: &str) -> Option<toml::Table> {
    find_preset(model, dir).ok()?.section(section)
}

/// Finds the preset file for `model`: an existing path as given, else
/// `recipes/models/NAME.toml` in `cwd` or the nearest ancestor that has it.
pub fn resolve_preset(model: &str, cwd: &Path) -> anyhow::Result<PathBuf> {
    let as_path = cwd.join(model);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let file_name = format!("{model}.toml");
    for dir in cwd.ancestors() {
        let candidate = dir.join("recipes").join("models").join(&file_name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let known = cwd
        .ancestors()
        .map(|d| d.join("recipes").join("models"))
        .find(|d| d.is_dir())
        .map(|d| list_presets(&d))
        .unwrap_or_default();
    anyhow::bail!(
        "no model preset `{model}`: looked for recipes/models/{file_name} in {} and its parents{}",
        cwd.display(),
        if known.is_empty() {
            String::new()
        } else {
            format!("; known: {}", known.join(", "))
        }
    )
}

fn list_presets(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.path()
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_of_recipes_models_is_built_in_and_parses() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/models");
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut built_in: Vec<String> = BUILT_IN.iter().map(|(name, _)| name.to_string()).collect();
        built_in.sort();
        assert_eq!(built_in, names);
        let nowhere = tempfile::tempdir().unwrap();
        for name in &names {
            let (origin, _) = load_preset(name, nowhere.path()).unwrap();
            assert_eq!(origin, format!("built-in {name}"));
        }
    }
}
