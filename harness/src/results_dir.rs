//! Which folders rsfm writes results into. A results folder carries a mark at its root
//! ([`MARK_FILE`]); rsfm writes the mark into a folder it creates, an empty one, or one an older
//! rsfm filled (it holds `rsfm.db` or a tagged `cache/`), and refuses any other folder, so that
//! its sweeps and `cache gc` only ever meet what it made.

use std::path::Path;

use crate::error::BadInput;

/// The file that marks a folder as an rsfm results folder.
pub const MARK_FILE: &str = ".rsfm-results";

/// What the mark says, for a person who finds it.
const MARK_TEXT: &str = "This folder holds rsfm's results (rsfm.db, cache/, work/, tmp/, locks/). \
rsfm removes only what it made here: its own build folders in tmp/ and cache entries.\n";

/// Makes `dir` an rsfm results folder (creating it when missing), or refuses it with a
/// bad-input error naming what rsfm did not make when it already holds other files.
pub fn claim(dir: &Path) -> anyhow::Result<()> {
    if dir.join(MARK_FILE).is_file() {
        return Ok(());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(BadInput::wrap(anyhow::anyhow!(
            "`{}` is not a folder: pass `--results` a folder (it is created when missing)",
            dir.display()
        )));
    }
    fs_err::create_dir_all(dir)?;
    let made_by_rsfm = dir.join("rsfm.db").is_file() || dir.join("cache/CACHEDIR.TAG").is_file();
    if !made_by_rsfm {
        let mut foreign: Vec<String> = fs_err::read_dir(dir)?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        foreign.sort();
        if let Some(first) = foreign.first() {
            let more = match foreign.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            return Err(BadInput::wrap(anyhow::anyhow!(
                "`{}` is not an rsfm results folder: it holds `{first}`{more}, which rsfm did not make, and rsfm writes rsfm.db, cache/, tmp/, work/ and locks/ there; pass `--results` a new or empty folder (or one rsfm made)",
                dir.display()
            )));
        }
    }
    fs_err::write(dir.join(MARK_FILE), MARK_TEXT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_empty_and_earlier_results_folders_are_claimed_others_refused() {
        let root = tempfile::tempdir().unwrap();
        let new = root.path().join("new");
        claim(&new).unwrap();
        assert!(new.join(MARK_FILE).is_file());
        claim(&new).unwrap();

        let earlier = root.path().join("earlier");
        std::fs::create_dir_all(earlier.join("cache")).unwrap();
        std::fs::write(earlier.join("rsfm.db"), b"").unwrap();
        claim(&earlier).unwrap();

        let project = root.path().join("project");
        std::fs::create_dir_all(project.join("tmp")).unwrap();
        std::fs::write(project.join("tmp/notes.txt"), b"mine").unwrap();
        std::fs::write(project.join("Cargo.toml"), b"").unwrap();
        let err = claim(&project).unwrap_err();
        assert!(crate::error::is_bad_input(&err), "{err:#}");
        let message = format!("{err:#}");
        assert!(
            message.contains("holds `Cargo.toml` and 1 more") && message.contains("--results"),
            "{message}"
        );
        assert!(!project.join(MARK_FILE).exists());
        assert!(project.join("tmp/notes.txt").exists());
    }
}
