//! Model presets on disk: `recipes/models/NAME.toml`, found from a folder upwards.

use std::path::{Path, PathBuf};

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
