// The build identity of a binary, computed by a build script and embedded in the binary's
// `.rsfm_build_identity` ELF section: what the binary is compiled from and how. Included with
// `include!` by the build scripts of the `rsfm` and `rsfm-model` packages (and by a harness test).
//
// The identity is a JSON object: `sources` (sha256 over the relative path and bytes of every file
// under the given roots, dot files left out, in path order), `dependencies` (sha256 of the
// `Cargo.lock` entries the package depends on, transitively, and of the workspace's
// `[workspace.dependencies]` and `[profile…]` tables), `compiler` (`rustc -vV`'s first line),
// `profile`, `opt_level` and `debug` (Cargo's), `features` (the package's, sorted), `target` and
// `rustflags`. Two builds of the same files with the same compiler and flags have the same
// identity; an edit, another profile, feature set, compiler or dependency of the package
// changes it, while a dependency added to another package of the workspace does not.

/// The sha256 (hex) over every file under `roots` (files or folders, relative to `base`):
/// each file's path relative to `base`, a NUL, its length as 8 little-endian bytes, its bytes.
fn sources_sha256(base: &std::path::Path, roots: &[&str]) -> std::io::Result<String> {
    use sha2::Digest;
    let mut files = Vec::new();
    for root in roots {
        collect_files(base, &base.join(root), &mut files)?;
    }
    files.sort();
    files.dedup();
    let mut hasher = sha2::Sha256::new();
    for relative in &files {
        let bytes = std::fs::read(base.join(relative))?;
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The sha256 (hex) of what the package `package` builds with from the workspace's manifests:
/// the `[[package]]` entries of `Cargo.lock` it reaches through `dependencies` (itself
/// included), and the `[workspace.dependencies]` and `[profile…]` tables of `Cargo.toml`.
fn dependencies_sha256(lock: &str, manifest: &str, package: &str) -> String {
    use sha2::Digest;
    let entries: Vec<&str> = lock.split("[[package]]").skip(1).collect();
    let field = |entry: &str, name: &str| -> Option<String> {
        entry.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.trim_start().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
    };
    // A dependency is written `"name"` (one version in the lock) or `"name version ..."`.
    let find = |reference: &str| -> Vec<usize> {
        let mut parts = reference.split_whitespace();
        let name = parts.next().unwrap_or_default();
        let version = parts.next();
        (0..entries.len())
            .filter(|&i| {
                field(entries[i], "name").as_deref() == Some(name)
                    && version.is_none_or(|v| field(entries[i], "version").as_deref() == Some(v))
            })
            .collect()
    };
    let dependencies = |entry: &str| -> Vec<String> {
        let Some(start) = entry.find("dependencies = [") else {
            return Vec::new();
        };
        let list = &entry[start..];
        let list = &list[..list.find(']').unwrap_or(list.len())];
        list.lines()
            .skip(1)
            .map(|line| {
                line.trim()
                    .trim_end_matches(',')
                    .trim_matches('"')
                    .to_string()
            })
            .filter(|reference| !reference.is_empty())
            .collect()
    };
    let mut reached = vec![false; entries.len()];
    let mut stack = find(package);
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        for reference in dependencies(entries[i]) {
            stack.extend(find(&reference));
        }
    }
    let mut hasher = sha2::Sha256::new();
    for (entry, _) in entries.iter().zip(&reached).filter(|(_, &r)| r) {
        hasher.update(entry.trim().as_bytes());
        hasher.update([0]);
    }
    let mut keep = false;
    for line in manifest.lines() {
        let header = line.trim_start();
        if header.starts_with('[') {
            keep = header.starts_with("[workspace.dependencies]") || header.starts_with("[profile");
        }
        if keep {
            hasher.update(line.as_bytes());
            hasher.update([b'\n']);
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Pushes the path (relative to `base`, `/`-separated) of every file at or under `path`,
/// leaving out names that start with a dot (editor and VCS files).
fn collect_files(
    base: &std::path::Path,
    path: &std::path::Path,
    files: &mut Vec<String>,
) -> std::io::Result<()> {
    let hidden = path
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'));
    if hidden {
        return Ok(());
    }
    let metadata = std::fs::metadata(path)?;
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect_files(base, &entry?.path(), files)?;
        }
    } else {
        let relative = path.strip_prefix(base).unwrap_or(path);
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        files.push(parts.join("/"));
    }
    Ok(())
}

/// The build identity of the package `package` being built, as a JSON object: `roots` are its
/// source files and folders relative to `base` (the workspace root, holding `Cargo.toml` and
/// `Cargo.lock`). Reads Cargo's build-script environment and runs `$RUSTC -vV`.
fn build_identity_json(base: &std::path::Path, roots: &[&str], package: &str) -> String {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let rustc =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-vV")
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(name, _)| {
            name.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase())
        })
        .collect();
    features.sort();
    let sources = sources_sha256(base, roots).expect("hashing the sources for the build identity");
    let read = |name: &str| std::fs::read_to_string(base.join(name)).unwrap_or_default();
    let dependencies = dependencies_sha256(&read("Cargo.lock"), &read("Cargo.toml"), package);
    let field = |name: &str, value: &str| format!("{}:{}", json_string(name), json_string(value));
    let features: Vec<String> = features.iter().map(|f| json_string(f)).collect();
    let fields = [
        field("compiler", &rustc),
        field("debug", &env("DEBUG")),
        field("dependencies", &dependencies),
        format!("\"features\":[{}]", features.join(",")),
        field("opt_level", &env("OPT_LEVEL")),
        field("profile", &env("PROFILE")),
        field(
            "rustflags",
            &env("CARGO_ENCODED_RUSTFLAGS").replace('\u{1f}', " "),
        ),
        field("sources", &sources),
        field("target", &env("TARGET")),
    ];
    format!("{{{}}}", fields.join(","))
}

/// `value` as a JSON string literal.
fn json_string(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if u32::from(c) < 0x20 => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Writes the build identity of `package` to `$OUT_DIR/build_identity.json` and tells Cargo to
/// run the build script again when any of `roots` or the workspace's manifests change.
fn write_build_identity(base: &std::path::Path, roots: &[&str], package: &str) {
    for root in roots.iter().chain(&["Cargo.toml", "Cargo.lock"]) {
        println!("cargo:rerun-if-changed={}", base.join(root).display());
    }
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set"));
    std::fs::write(
        out.join("build_identity.json"),
        build_identity_json(base, roots, package),
    )
    .expect("writing the build identity");
}
