//! Which folders rsfm writes results into. A results folder carries a mark at its root
//! ([`MARK_FILE`]); rsfm writes the mark into a folder it creates, an empty one, or one an older
//! rsfm filled (it holds `rsfm.db` or a tagged `cache/`), and refuses any other folder, so that
//! its sweeps and `cache gc` only ever meet what it made.

use std::path::Path;

use crate::error::BadInput;

/// The file that marks a folder as an rsfm results folder.
pub const MARK_FILE: &str = ".rsfm-results";

/// What the mark says, for a person who finds it.
const MARK_TEXT: &str = "This folder holds rsfm's results (rsfm.db, cache/, work/, tmp/, locks/, \
submissions/). \
rsfm removes only what it made here: its own build folders in tmp/ and cache entries.\n";

/// Refuses, as bad input naming the path and the problem, an output folder (`report --out`:
/// the `flag` named in the fix) that cannot be one: a file, a loop of symbolic links, a link to
/// nothing, a folder this user may not enter. A folder that does not exist yet is fine: it is
/// created.
pub fn check_output_folder(dir: &Path, flag: &str) -> anyhow::Result<()> {
    let problem = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => None,
        Ok(_) => Some("is not a folder".to_string()),
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            Some("is a loop of symbolic links".to_string())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::read_link(dir) {
                Ok(target) => Some(format!(
                    "is a symbolic link to `{}`, which does not exist",
                    target.display()
                )),
                // Missing: created on first write (a missing parent too).
                Err(_) => None,
            }
        }
        Err(err) => Some(format!("cannot be used ({err})")),
    };
    if let Some(problem) = problem {
        return Err(BadInput::msg(format!(
            "`{}` {problem}: pass `{flag}` a folder (it is created when missing)",
            dir.display()
        )));
    }
    Ok(())
}

/// [`check_output_folder`] for `--results`, and its results database path (`rsfm.db`) must not
/// be anything but a file.
pub fn check_results_folder(dir: &Path) -> anyhow::Result<()> {
    check_output_folder(dir, "--results")?;
    let db = dir.join("rsfm.db");
    if std::fs::symlink_metadata(&db).is_ok_and(|m| !m.is_file()) {
        return Err(BadInput::msg(format!(
            "`{}` is not a file: it is where the results database lives; move it away, or pass `--results` another folder",
            db.display()
        )));
    }
    Ok(())
}

/// Makes `dir` an rsfm results folder (creating it when missing), or refuses it with a
/// bad-input error naming what rsfm did not make when it already holds other files.
pub fn claim(dir: &Path) -> anyhow::Result<()> {
    check_results_folder(dir)?;
    if dir.join(MARK_FILE).is_file() {
        return Ok(());
    }
    fs_err::create_dir_all(dir).map_err(|err| cannot_create(dir, err))?;
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
    fs_err::write(dir.join(MARK_FILE), MARK_TEXT).map_err(|err| cannot_create(dir, err))?;
    Ok(())
}

/// A folder rsfm could not write at start: the path and why (a full disk, no permission), as
/// bad input.
fn cannot_create(dir: &Path, err: std::io::Error) -> anyhow::Error {
    let full = crate::disk::full_note(dir)
        .or_else(|| dir.parent().and_then(crate::disk::full_note))
        .map(|note| format!("; {note}"))
        .unwrap_or_default();
    BadInput::msg(format!(
        "cannot write the results folder `{}`: {err}{full}",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_link_loops_dangling_links_and_a_folder_for_the_database_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let dangling = root.path().join("dangling");
        std::os::unix::fs::symlink(root.path().join("gone"), &dangling).unwrap();
        let with_db_dir = root.path().join("results");
        std::fs::create_dir_all(with_db_dir.join("rsfm.db")).unwrap();
        for (dir, expected) in [
            (&file, "is not a folder"),
            (&a, "loop of symbolic links"),
            (&dangling, "which does not exist"),
            (&with_db_dir, "rsfm.db` is not a file"),
        ] {
            let err = check_results_folder(dir).unwrap_err();
            assert!(crate::error::is_bad_input(&err));
            let message = format!("{err:#}");
            assert!(message.contains(expected), "{message}");
        }
        check_results_folder(&root.path().join("new/deeper")).unwrap();
    }

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
