// The build identity of a binary, computed by a build script and embedded in the binary's
// `.rsfm_build_identity` ELF section: what the binary is compiled from and how. Included with
// `include!` by the build scripts of the `rsfm` and `rsfm-model` packages (and by a harness test).
//
// The identity is a JSON object: `sources` (sha256 over the relative path and bytes of every file
// under the given roots, dot files left out, in path order), `compiler` (`rustc -vV`'s first
// line), `profile`, `opt_level` and `debug` (Cargo's), `features` (the package's, sorted),
// `target` and `rustflags`. Two builds of the same files with the same compiler and flags have
// the same identity; an edit, another profile, feature set, compiler or `Cargo.lock` changes it.

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

/// The build identity of the package being built, as a JSON object: `roots` are its source
/// files and folders relative to `base` (the workspace root). Reads Cargo's build-script
/// environment and runs `$RUSTC -vV`.
fn build_identity_json(base: &std::path::Path, roots: &[&str]) -> String {
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
    let field = |name: &str, value: &str| format!("{}:{}", json_string(name), json_string(value));
    let features: Vec<String> = features.iter().map(|f| json_string(f)).collect();
    let fields = [
        field("compiler", &rustc),
        field("debug", &env("DEBUG")),
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

/// Writes the build identity to `$OUT_DIR/build_identity.json` and tells Cargo to run the build
/// script again when any of `roots` changes.
fn write_build_identity(base: &std::path::Path, roots: &[&str]) {
    for root in roots {
        println!("cargo:rerun-if-changed={}", base.join(root).display());
    }
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set"));
    std::fs::write(
        out.join("build_identity.json"),
        build_identity_json(base, roots),
    )
    .expect("writing the build identity");
}
