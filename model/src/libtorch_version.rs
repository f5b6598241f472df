//! The version of a libtorch install, read from its files (no libtorch loaded): the one function
//! behind the worker's `--version` and the libtorch part of worker stages' keys.

use std::path::Path;

/// The version of the libtorch whose root (the folder holding `lib/` and `include/`) is `root`:
/// `build-version` (the libtorch archives' file), else `__version__` in `version.py` (a PyTorch
/// install), else the `TORCH_VERSION_*` defines of `include/torch/headeronly/version.h`.
pub fn libtorch_version(root: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(root.join("build-version")) {
        return Some(text.trim().to_string());
    }
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let version = text.lines().find_map(|line| {
            let value = line.strip_prefix("__version__")?.split('=').nth(1)?;
            Some(value.trim().trim_matches(['\'', '"']).to_string())
        });
        if version.is_some() {
            return version;
        }
    }
    let header = std::fs::read_to_string(root.join("include/torch/headeronly/version.h")).ok()?;
    let part = |name: &str| {
        header
            .lines()
            .find_map(|line| line.strip_prefix(&format!("#define TORCH_VERSION_{name} ")))
            .map(str::trim)
    };
    Some(format!(
        "{}.{}.{}",
        part("MAJOR")?,
        part("MINOR")?,
        part("PATCH")?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_version_then_version_py_then_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(libtorch_version(root), None);
        let include = root.join("include/torch/headeronly");
        std::fs::create_dir_all(&include).unwrap();
        std::fs::write(
            include.join("version.h"),
            "#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 11\n#define TORCH_VERSION_PATCH 0\n",
        )
        .unwrap();
        assert_eq!(libtorch_version(root).as_deref(), Some("2.11.0"));
        std::fs::write(
            root.join("version.py"),
            "from typing import Optional\n__version__ = '2.11.0+cu130'\n",
        )
        .unwrap();
        assert_eq!(libtorch_version(root).as_deref(), Some("2.11.0+cu130"));
        std::fs::write(root.join("build-version"), "2.11.0\n").unwrap();
        assert_eq!(libtorch_version(root).as_deref(), Some("2.11.0"));
    }
}
