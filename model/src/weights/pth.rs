//! `torch.save` files (the zip format of PyTorch ≥ 1.6): read with [`super::unpickle`] (data
//! only: a file naming any Python class or function outside a state dict fails to read, so
//! nothing in a file is ever run), written through libtorch's own pickler (the C++ shim).

use std::collections::BTreeMap;
use std::ffi::{c_char, CString};
use std::io::Read as _;
use std::path::Path;

use anyhow::Context;
use tch::Tensor;

use super::unpickle::{describe, unpickle, TensorRef, Value};
use crate::nn::checkpoint;
use crate::shim;

/// One leaf of a checkpoint's nested string-keyed dicts.
#[derive(Debug)]
pub enum Leaf {
    /// A tensor.
    Tensor(Tensor),
    /// Anything else.
    Value {
        /// What it is (`int`, `str`, `list holding Tensor`, `dict with Int keys`, ...).
        kind: String,
        /// Whether it is a plain value (number, bool, string, None, or lists and tuples of
        /// them), as checkpoint metadata holds.
        plain: bool,
    },
}

/// How [`write_pth`] nests the tensors.
#[derive(Debug, Clone, Copy)]
pub enum PthLayout<'a> {
    /// A flat `{name: tensor}` dict (a plain state dict).
    Flat,
    /// `{group: {name: tensor}, "meta": {key: value}}` (MMEngine's checkpoint).
    Grouped {
        /// The key of the state dict (`state_dict`).
        group: &'a str,
        /// The `meta` entries.
        meta: &'a [(String, String)],
    },
}

/// The leaves of the `torch.save` file at `path`, by dotted name (`model.blocks.0.attn.qkv.weight`)
/// in file order; tensors on the CPU. Its pickle is read as data ([`unpickle`]): a class or
/// function outside what a state dict needs is an error naming the file and the class.
pub fn read_pth(path: &Path) -> anyhow::Result<Vec<(String, Leaf)>> {
    let mut archive = zip::ZipArchive::new(fs_err::File::open(path)?)
        .with_context(|| format!("{}: not a zip archive", path.display()))?;
    let pickle_name = archive
        .file_names()
        .find(|name| name.ends_with("data.pkl"))
        .map(str::to_string)
        .with_context(|| {
            format!(
                "{}: a zip archive without `data.pkl`: not written by `torch.save`",
                path.display()
            )
        })?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    let mut pickle = Vec::new();
    archive.by_name(&pickle_name)?.read_to_end(&mut pickle)?;
    let value = unpickle(&pickle).map_err(|err| {
        err.context(format!(
            "{}: refused; save the state dict alone, e.g. `torch.save({{\"model\": \
             model.state_dict()}}, path)`",
            path.display()
        ))
    })?;
    let mut leaves = Vec::new();
    flatten(value, String::new(), &mut leaves);
    leaves
        .into_iter()
        .map(|(name, leaf)| {
            let leaf = match leaf {
                Flat::Tensor(tensor) => Leaf::Tensor(
                    load_tensor(&mut archive, &prefix, &tensor)
                        .with_context(|| format!("{}: tensor `{name}`", path.display()))?,
                ),
                Flat::Value { kind, plain } => Leaf::Value { kind, plain },
            };
            Ok((name, leaf))
        })
        .collect()
}

/// A leaf before its tensor is read from the archive.
enum Flat {
    Tensor(TensorRef),
    Value { kind: String, plain: bool },
}

/// The leaves of nested string-keyed dicts, by dotted name.
fn flatten(value: Value, name: String, out: &mut Vec<(String, Flat)>) {
    match value {
        Value::Tensor(tensor) => out.push((name, Flat::Tensor(tensor))),
        Value::Dict(items) => {
            if let Some((key, _)) = items.iter().find(|(key, _)| !matches!(key, Value::Str(_))) {
                let kind = format!("dict with {} keys", describe(key));
                out.push((name, Flat::Value { kind, plain: false }));
                return;
            }
            for (key, value) in items {
                let Value::Str(key) = key else { continue };
                let inner = if name.is_empty() {
                    key
                } else {
                    format!("{name}.{key}")
                };
                flatten(value, inner, out);
            }
        }
        other => {
            let plain = is_plain(&other);
            let kind = match &other {
                Value::List(items) | Value::Tuple(items) if !plain => format!(
                    "{} holding a {}",
                    describe(&other),
                    items
                        .iter()
                        .find(|v| !is_plain(v))
                        .map_or("value", describe)
                ),
                _ => describe(&other).to_string(),
            };
            out.push((name, Flat::Value { kind, plain }));
        }
    }
}

/// Numbers, bools, strings, None, and lists and tuples of them: what checkpoint metadata holds.
fn is_plain(value: &Value) -> bool {
    match value {
        Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) => true,
        Value::List(items) | Value::Tuple(items) => items.iter().all(is_plain),
        _ => false,
    }
}

/// The tensor `r` describes, copied out of its storage record `<prefix>data/<key>`.
fn load_tensor(
    archive: &mut zip::ZipArchive<fs_err::File>,
    prefix: &str,
    r: &TensorRef,
) -> anyhow::Result<Tensor> {
    let record = format!("{prefix}data/{}", r.key);
    let mut bytes = Vec::new();
    archive
        .by_name(&record)
        .with_context(|| format!("its storage `{record}` is not in the archive"))?
        .read_to_end(&mut bytes)?;
    let element = r.kind.elt_size_in_bytes();
    anyhow::ensure!(
        bytes.len().is_multiple_of(element),
        "its storage is not a whole number of elements"
    );
    let numel = (bytes.len() / element) as i64;
    let needed = r
        .size
        .iter()
        .zip(&r.stride)
        .map(|(size, stride)| (size - 1).max(0) * stride)
        .sum::<i64>()
        + r.offset
        + 1;
    anyhow::ensure!(
        r.size.contains(&0) || needed <= numel,
        "its view (offset {}, size {:?}, stride {:?}) reaches past its storage of {numel} elements",
        r.offset,
        r.size,
        r.stride
    );
    let storage = Tensor::f_from_data_size(&bytes, &[numel], r.kind)?;
    Ok(storage
        .f_as_strided(r.size.as_slice(), r.stride.as_slice(), Some(r.offset))?
        .contiguous())
}

/// Writes `tensors` as a `torch.save` file (loadable with `torch.load(path,
/// weights_only=True)`) through a temporary file renamed into place; refuses, writing nothing,
/// when a tensor holds a NaN or an infinity.
pub fn write_pth(
    path: &Path,
    layout: PthLayout,
    tensors: &BTreeMap<String, Tensor>,
) -> anyhow::Result<()> {
    if let Some((name, bad)) = checkpoint::first_non_finite(tensors) {
        anyhow::bail!(
            "not writing {}: `{name}` holds {bad} non-finite values (NaN or infinity)",
            path.display()
        );
    }
    let tmp = path.with_extension("pth.tmp");
    let c_tmp = path_cstring(&tmp)?;
    let names: Vec<CString> = tensors
        .keys()
        .map(|name| CString::new(name.as_str()))
        .collect::<Result<_, _>>()?;
    let contiguous: Vec<Tensor> = tensors
        .values()
        .map(|t| t.to_device(tch::Device::Cpu).contiguous())
        .collect();
    let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let tensor_ptrs: Vec<_> = contiguous.iter().map(|t| t.as_ptr()).collect();
    let (group, meta) = match layout {
        PthLayout::Flat => (None, &[][..]),
        PthLayout::Grouped { group, meta } => (Some(CString::new(group)?), meta),
    };
    let meta_keys: Vec<CString> = meta
        .iter()
        .map(|(k, _)| CString::new(k.as_str()))
        .collect::<Result<_, _>>()?;
    let meta_values: Vec<CString> = meta
        .iter()
        .map(|(_, v)| CString::new(v.as_str()))
        .collect::<Result<_, _>>()?;
    let key_ptrs: Vec<*const c_char> = meta_keys.iter().map(|k| k.as_ptr()).collect();
    let value_ptrs: Vec<*const c_char> = meta_values.iter().map(|v| v.as_ptr()).collect();
    // SAFETY: every pointer array lives until the call returns and has the length passed.
    let error = unsafe {
        shim::rsfm_pth_write(
            c_tmp.as_ptr(),
            group.as_ref().map_or(std::ptr::null(), |g| g.as_ptr()),
            name_ptrs.as_ptr(),
            tensor_ptrs.as_ptr(),
            name_ptrs.len(),
            key_ptrs.as_ptr(),
            value_ptrs.as_ptr(),
            key_ptrs.len(),
        )
    };
    shim::check(error, &format!("cannot write {}", tmp.display()))?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// Whether the file at `path` starts like a zip archive (`torch.save`'s format since 1.6).
pub fn is_zip(path: &Path) -> anyhow::Result<bool> {
    let mut head = [0u8; 4];
    let mut file = fs_err::File::open(path)?;
    let n = file.read(&mut head)?;
    Ok(n == 4 && head == *b"PK\x03\x04")
}

fn path_cstring(path: &Path) -> anyhow::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .with_context(|| format!("{}: a path with a NUL byte", path.display()))
}
