//! The identity of the code that runs worker stages, part of their keys: the build identity of
//! the `rsfm-worker` executable in use (the hash of the sources it was compiled from, the
//! compiler, profile, features and flags; build-support/identity.rs) and the version and
//! sha256 of the libtorch libraries it loads, resolved as the dynamic loader resolves them at
//! run time (rpath, `LD_LIBRARY_PATH`); for `prepare` stages, which `rsfm prepare` runs, the
//! build identity of the `rsfm` executable. An executable without one (built elsewhere, a
//! script) is keyed on its sha256.
//!
//! Not the executable's bytes where the build identity is known: a rebuild of the same sources
//! with the same flags (after `make bench`, `cargo clean`) keeps the cache. Not the git commit
//! either: that misses uncommitted edits and `RSFM_WORKER` pointing elsewhere. Library hashes
//! go through the store's stat cache, so an unchanged libtorch costs a few `stat`s per plan.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::build_identity::read_build_identity;
use crate::error::BadInput;
use crate::executor::command_line::find_worker;
use crate::fingerprint::sha256_file_cached;
use crate::store::Store;

/// Library name prefixes that make up libtorch.
const LIBTORCH_PREFIXES: [&str; 2] = ["libtorch", "libc10"];

/// The worker identity of every worker-run stage: `{"build": {"sources": sha256, "compiler":
/// …, "profile": …, …}, "libtorch": {"version": "2.11.0", "libtorch_cpu.so": sha256, ...}}`
/// (`"executable": sha256` in place of `build` for a worker without a build identity).
pub async fn worker_identity(store: &Store) -> anyhow::Result<Value> {
    let worker = locate(&find_worker())?;
    let (field, code) = executable_identity(&worker, store).await?;
    let traced = worker.clone();
    let libraries = tokio::task::spawn_blocking(move || libtorch_libraries(&traced)).await??;
    let mut libtorch = Map::new();
    if let Some(first) = libraries.first() {
        libtorch.insert("version".into(), json!(libtorch_version(first)));
    }
    for library in &libraries {
        let name = file_name(library);
        let sha256 = sha256_file_cached(library, store)
            .await
            .with_context(|| format!("hashing {}", library.display()))?;
        libtorch.insert(name, json!(sha256));
    }
    Ok(json!({ field: code, "libtorch": libtorch }))
}

/// The worker [`find_worker`] names, when it is not there (not a file where it has a folder,
/// not on `PATH` otherwise): worker stages' keys cannot be computed.
pub fn missing_worker() -> Option<PathBuf> {
    let worker = find_worker();
    locate(&worker).is_err().then_some(worker)
}

/// The identity of the code that runs `prepare` stages, which `rsfm prepare` runs: `{"rsfm":
/// build identity}` of the running `rsfm` executable (the one the executor starts), or its
/// sha256 when it has none.
pub async fn rsfm_identity(store: &Store) -> anyhow::Result<Value> {
    let rsfm = std::env::current_exe().context("locating the running rsfm executable")?;
    let (_, code) = executable_identity(&rsfm, store).await?;
    Ok(json!({ "rsfm": code }))
}

/// `("build", build identity)` of `executable`, or `("executable", sha256)` when it carries no
/// build identity.
async fn executable_identity(
    executable: &Path,
    store: &Store,
) -> anyhow::Result<(&'static str, Value)> {
    let path = executable.to_path_buf();
    if let Some(identity) =
        tokio::task::spawn_blocking(move || read_build_identity(&path)).await??
    {
        return Ok(("build", identity));
    }
    let sha256 = sha256_file_cached(executable, store)
        .await
        .with_context(|| format!("hashing {}", executable.display()))?;
    Ok(("executable", json!(sha256)))
}

/// The worker's absolute path: as given when it has a folder, else found on `PATH`.
fn locate(worker: &Path) -> anyhow::Result<PathBuf> {
    let found = if worker.components().count() > 1 {
        worker.is_file().then(|| worker.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(worker))
                .find(|candidate| candidate.is_file())
        })
    };
    found.ok_or_else(|| {
        BadInput::msg(format!(
            "the worker `{}` was not found; worker stages' keys hold its hash\nhelp: build it with `make worker` (or `make build`), or set RSFM_WORKER to its path",
            worker.display()
        ))
    })
}

/// The libtorch libraries `worker` loads, as the dynamic loader resolves them now
/// (`LD_TRACE_LOADED_OBJECTS`, what `ldd` does, without running the worker), plus a
/// `libtorch_cuda.so` beside `libtorch_cpu.so`, which the worker may load at run time.
fn libtorch_libraries(worker: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = std::process::Command::new(worker)
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .output()
        .with_context(|| format!("resolving the libraries of {}", worker.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{}: the dynamic loader cannot resolve its libraries: {}\nhelp: rebuild it with `make worker`, or set LD_LIBRARY_PATH to the libtorch it was built against",
            worker.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut libraries = parse_loader_trace(&String::from_utf8_lossy(&output.stdout));
    if let Some(cpu) = libraries
        .iter()
        .find(|lib| file_name(lib) == "libtorch_cpu.so")
    {
        let cuda = cpu.with_file_name("libtorch_cuda.so");
        if cuda.is_file() && !libraries.contains(&cuda) {
            libraries.push(cuda);
        }
    }
    libraries.sort();
    Ok(libraries)
}

/// The libtorch libraries in the loader's trace: lines `libtorch_cpu.so => /path (0x…)`.
fn parse_loader_trace(trace: &str) -> Vec<PathBuf> {
    trace
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(" => ")?;
            let path = rest.split(" (").next()?.trim();
            let is_libtorch = LIBTORCH_PREFIXES.iter().any(|p| name.starts_with(p));
            (is_libtorch && path.starts_with('/')).then(|| PathBuf::from(path))
        })
        .collect()
}

/// The version of the libtorch that `library` (one of its `lib/*.so`) belongs to.
fn libtorch_version(library: &Path) -> String {
    library
        .parent()
        .and_then(Path::parent)
        .and_then(rsfm_model::libtorch_version::libtorch_version)
        .unwrap_or_else(|| "unknown".into())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_yields_the_libtorch_libraries_only() {
        let trace = "\tlinux-vdso.so.1 (0x00007f)\n\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x7f)\n\tlibtorch_cpu.so => /opt/lt/lib/libtorch_cpu.so (0x7f)\n\tlibc10.so => /opt/lt/lib/libc10.so (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n\tlibtorch.so => not found\n";
        assert_eq!(
            parse_loader_trace(trace),
            [
                PathBuf::from("/opt/lt/lib/libtorch_cpu.so"),
                PathBuf::from("/opt/lt/lib/libc10.so")
            ]
        );
    }

    #[test]
    fn the_version_is_the_library_roots_or_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib/libtorch_cpu.so");
        assert_eq!(libtorch_version(&lib), "unknown");
        std::fs::write(
            dir.path().join("version.py"),
            "from typing import Optional\n__version__ = '2.11.0+cu130'\n",
        )
        .unwrap();
        assert_eq!(libtorch_version(&lib), "2.11.0+cu130");
        std::fs::write(dir.path().join("build-version"), "2.11.0\n").unwrap();
        assert_eq!(libtorch_version(&lib), "2.11.0");
    }
}
