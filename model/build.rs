//! With the `torch` feature: compiles the C++ shim in `csrc/` (c10d process groups and
//! autocast) against the headers of the libtorch that torch-sys linked, and gives the binaries
//! and tests of this package an rpath to that libtorch, so `rsfm-worker` runs with no
//! environment set.
//!
//! Gloo's own headers are not in the libtorch wheel; Debian's `libgloo-dev` provides them.
//! NCCL compiles in only when the libtorch has CUDA (`libtorch_cuda.so`) and `nccl.h` and the
//! CUDA runtime headers are found (`RSFM_CUDA_INCLUDE`, `CUDA_HOME/include`, or the
//! `nvidia/*/include` folders a PyTorch wheel installs beside `torch/`).

use std::env;
use std::path::{Path, PathBuf};

include!("../build-support/identity.rs");

const SHIM: &str = "csrc/rsfm_shim.cpp";

/// What `rsfm-worker` is compiled from, for its build identity (relative to the workspace root;
/// its dependencies come from `Cargo.lock`).
const WORKER_SOURCES: [&str; 5] = [
    "model/src",
    "model/csrc",
    "model/build.rs",
    "model/Cargo.toml",
    "build-support",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={SHIM}");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=RSFM_CUDA_INCLUDE");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    println!("cargo:rerun-if-env-changed=CXX");
    println!("cargo:rerun-if-env-changed=CXXFLAGS");
    if env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    write_build_identity(Path::new(".."), &WORKER_SOURCES, "rsfm-model");
    let lib_dir = PathBuf::from(
        env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys did not report its libtorch lib dir (DEP_TCH_LIBTORCH_LIB)"),
    );
    let root = lib_dir
        .parent()
        .expect("libtorch lib dir has a parent")
        .to_path_buf();
    let include = root.join("include");
    if !Path::new("/usr/include/gloo/config.h").exists() && env::var_os("GLOO_INCLUDE").is_none() {
        println!(
            "cargo:warning=Gloo headers not found in /usr/include/gloo: install them with `apt-get install libgloo-dev` (or set GLOO_INCLUDE)"
        );
    }

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .std("c++17")
        // -O1: the shim only forwards a few calls into libtorch; -O3 made its compile (mostly
        // libtorch's headers) a long step of a fresh build.
        .opt_level(1)
        .file(SHIM)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .define("GLOG_USE_GLOG_EXPORT", None);
    if let Some(gloo) = env::var_os("GLOO_INCLUDE") {
        build.include(gloo);
    }
    let has_cuda = lib_dir.join("libtorch_cuda.so").exists();
    if has_cuda {
        match cuda_includes(&root) {
            Some(dirs) => {
                build
                    .includes(dirs)
                    .define("USE_C10D_NCCL", None)
                    .define("USE_CUDA", None)
                    .define("RSFM_WITH_NCCL", None);
            }
            None => println!(
                "cargo:warning=libtorch has CUDA but nccl.h / cuda_runtime_api.h were not found (set RSFM_CUDA_INCLUDE): building without NCCL, CUDA tensors go through Gloo"
            ),
        }
    }
    compile_shim_unless_built(&mut build, &lib_dir);

    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    for lib in ["torch_cpu", "c10", "torch"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    if has_cuda {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
}

/// Compiles the shim, or, when `OUT_DIR` holds it built from the same source with the same
/// compiler settings (the build script runs again on any source change of this package, for the
/// build identity), links that build as `cc` would.
fn compile_shim_unless_built(build: &mut cc::Build, lib_dir: &Path) {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set"));
    let inputs = format!(
        "{:?}\n{}\n{:?}\n{}",
        build.get_compiler().to_command(),
        lib_dir.display(),
        env::var_os("GLOO_INCLUDE"),
        std::fs::read_to_string(SHIM).expect("reading the shim"),
    );
    let stamp = out.join("rsfm_shim.inputs");
    let built = out.join("librsfm_shim.a");
    if built.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(inputs.as_str()) {
        println!("cargo:rustc-link-search=native={}", out.display());
        println!("cargo:rustc-link-lib=static=rsfm_shim");
        println!("cargo:rustc-link-lib=stdc++");
        return;
    }
    build.compile("rsfm_shim");
    std::fs::write(&stamp, inputs).expect("writing the shim's stamp");
}

/// Folders holding `nccl.h` and `cuda_runtime_api.h`, or None when either is missing.
fn cuda_includes(libtorch_root: &Path) -> Option<Vec<PathBuf>> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    for var in ["RSFM_CUDA_INCLUDE", "CUDA_HOME"] {
        if let Some(value) = env::var_os(var) {
            for dir in env::split_paths(&value) {
                candidates.push(dir.join("include"));
                candidates.push(dir);
            }
        }
    }
    // A PyTorch wheel: site-packages/torch beside site-packages/nvidia/<pkg>/include.
    if let Some(site) = libtorch_root.parent() {
        if let Ok(entries) = std::fs::read_dir(site.join("nvidia")) {
            for entry in entries.flatten() {
                candidates.push(entry.path().join("include"));
            }
        }
    }
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    let find = |header: &str| candidates.iter().find(|d| d.join(header).exists()).cloned();
    let nccl = find("nccl.h")?;
    let cuda = find("cuda_runtime_api.h")?;
    Some(if nccl == cuda {
        vec![nccl]
    } else {
        vec![nccl, cuda]
    })
}
