//! Reads the build identity an rsfm binary carries in its `.rsfm_build_identity` ELF section
//! (written by build-support/identity.rs): what it was compiled from and how, so a rebuild of
//! the same sources with the same compiler and flags keeps the stages it ran cached.
//!
//! Only the ELF header, the section headers and two sections are read (a few KiB of a
//! 75 MB binary), so no stat cache is needed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// The section the build scripts fill.
const SECTION: &[u8] = b".rsfm_build_identity";
/// Sections larger than this are not an identity (bounds what a damaged file makes us read).
const MAX_SECTION: u64 = 1 << 20;
/// Section header tables longer than this many entries are not a real binary's.
const MAX_SECTIONS: u64 = 1 << 16;

/// The build identity in `executable`, or `None` when it is not a 64-bit little-endian ELF
/// file or has no such section (a script, a binary from elsewhere): the caller then keys on
/// the file's bytes.
pub fn read_build_identity(executable: &Path) -> anyhow::Result<Option<Value>> {
    let file =
        File::open(executable).with_context(|| format!("opening {}", executable.display()))?;
    let Some(bytes) = section(&file, SECTION)
        .with_context(|| format!("reading the ELF sections of {}", executable.display()))?
    else {
        return Ok(None);
    };
    let identity: Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: its build identity section is not JSON",
            executable.display()
        )
    })?;
    Ok(identity.is_object().then_some(identity))
}

/// The bytes of the section called `wanted`, if `file` is a 64-bit little-endian ELF file that
/// has one.
fn section(file: &File, wanted: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 64];
    if file.read_exact_at(&mut header, 0).is_err() || !header.starts_with(b"\x7fELF\x02\x01") {
        return Ok(None);
    }
    let table_offset = u64_at(&header, 0x28);
    let entry_size = u64::from(u16_at(&header, 0x3a));
    let count = u64::from(u16_at(&header, 0x3c));
    let names_index = u64::from(u16_at(&header, 0x3e));
    if entry_size < 64 || count > MAX_SECTIONS || names_index >= count {
        return Ok(None);
    }
    let mut table = vec![0u8; (entry_size * count) as usize];
    file.read_exact_at(&mut table, table_offset)?;
    let entry = |i: u64| &table[(i * entry_size) as usize..((i + 1) * entry_size) as usize];
    let read = |entry: &[u8]| -> std::io::Result<Option<Vec<u8>>> {
        let (offset, size) = (u64_at(entry, 24), u64_at(entry, 32));
        if size > MAX_SECTION {
            return Ok(None);
        }
        let mut bytes = vec![0u8; size as usize];
        file.read_exact_at(&mut bytes, offset)?;
        Ok(Some(bytes))
    };
    let Some(names) = read(entry(names_index))? else {
        return Ok(None);
    };
    for i in 0..count {
        let entry = entry(i);
        let name_at = u32_at(entry, 0) as usize;
        let name = names.get(name_at..).unwrap_or_default();
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name == wanted {
            return read(entry);
        }
    }
    Ok(None)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_elf_have_no_identity() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("worker.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        assert_eq!(read_build_identity(&script).unwrap(), None);
        let truncated = dir.path().join("truncated");
        std::fs::write(&truncated, b"\x7fELF\x02\x01\x01").unwrap();
        assert_eq!(read_build_identity(&truncated).unwrap(), None);
    }

    #[test]
    fn a_test_binary_has_elf_sections_but_no_identity() {
        let me = std::env::current_exe().unwrap();
        let file = File::open(&me).unwrap();
        assert!(section(&file, b".shstrtab").unwrap().is_some());
        assert_eq!(read_build_identity(&me).unwrap(), None);
    }

    /// The build scripts' source hash (build-support/identity.rs, included as they include it).
    #[allow(dead_code)]
    mod sources {
        include!("../../../build-support/identity.rs");

        #[test]
        fn an_edit_changes_the_source_hash_and_a_dot_file_does_not() {
            let dir = tempfile::tempdir().unwrap();
            let base = dir.path();
            std::fs::create_dir_all(base.join("src/nn")).unwrap();
            std::fs::write(base.join("src/lib.rs"), "pub mod nn;\n").unwrap();
            std::fs::write(base.join("src/nn/mod.rs"), "pub fn f() {}\n").unwrap();
            std::fs::write(base.join("Cargo.lock"), "# lock\n").unwrap();
            let roots = ["src", "Cargo.lock"];
            let first = sources_sha256(base, &roots).unwrap();
            assert_eq!(first.len(), 64);
            std::fs::write(base.join("src/.lib.rs.swp"), "editor state").unwrap();
            assert_eq!(sources_sha256(base, &roots).unwrap(), first);
            std::fs::write(base.join("src/nn/mod.rs"), "pub fn f() { }\n").unwrap();
            let edited = sources_sha256(base, &roots).unwrap();
            assert_ne!(edited, first);
            std::fs::rename(base.join("src/nn/mod.rs"), base.join("src/nn/other.rs")).unwrap();
            assert_ne!(sources_sha256(base, &roots).unwrap(), edited);
        }

        #[test]
        fn dependencies_are_those_the_package_reaches_in_the_lock() {
            let lock = |b_version: &str, c_version: &str| {
                format!(
                    "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"0.1.0\"\ndependencies = [\n \"b\",\n]\n\n[[package]]\nname = \"b\"\nversion = \"{b_version}\"\n\n[[package]]\nname = \"c\"\nversion = \"{c_version}\"\n"
                )
            };
            let manifest = "[workspace]\nmembers = []\n\n[profile.release]\ndebug = true\n";
            let base = dependencies_sha256(&lock("1.0.0", "1.0.0"), manifest, "a");
            assert_eq!(
                dependencies_sha256(&lock("1.0.0", "2.0.0"), manifest, "a"),
                base,
                "c is not a dependency of a"
            );
            assert_ne!(
                dependencies_sha256(&lock("1.0.1", "1.0.0"), manifest, "a"),
                base
            );
            let other_profile = manifest.replace("debug = true", "debug = false");
            assert_ne!(
                dependencies_sha256(&lock("1.0.0", "1.0.0"), &other_profile, "a"),
                base
            );
            let other_members = manifest.replace("members = []", "members = [\"x\"]");
            assert_eq!(
                dependencies_sha256(&lock("1.0.0", "1.0.0"), &other_members, "a"),
                base
            );
        }

        #[test]
        fn identity_strings_are_json_escaped() {
            let quoted = json_string("a\"b\\c\n");
            assert_eq!(
                serde_json::from_str::<String>(&quoted).unwrap(),
                "a\"b\\c\n"
            );
        }
    }
}
