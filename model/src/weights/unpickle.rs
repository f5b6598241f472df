//! The pickle of a `torch.save` archive (`data.pkl`) read as data, never run: only the opcodes
//! and the callables a state dict needs (`collections.OrderedDict`, PyTorch's tensor rebuild
//! functions and storage types). Any other class or function the pickle names is an error naming
//! it, before anything is built from it.
//!
//! libtorch's own unpickler (`torch::pickle_load`) reads `OrderedDict` as `None` (it expects one
//! only as a tensor's empty hook list), so it cannot read the state dicts `torch.save` writes.

use anyhow::Context;
use tch::Kind;

/// A tensor as the pickle describes it: a view of a storage record in the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Element type.
    pub kind: Kind,
    /// The storage's record name (`data/<key>` in the archive).
    pub key: String,
    /// Offset into the storage, in elements.
    pub offset: i64,
    /// Shape.
    pub size: Vec<i64>,
    /// Strides, in elements.
    pub stride: Vec<i64>,
}

/// A value of the pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int.
    Int(i64),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// bytes.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict (or `OrderedDict`), in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A tensor.
    Tensor(TensorRef),
    /// An allowed callable or storage type, by `module.name`.
    Global(String),
    /// A storage: its element type and record key.
    Storage(Kind, String),
}

/// The stack marker of MARK.
#[derive(Debug, Clone)]
enum Slot {
    Value(Value),
    Mark,
}

/// The element type of a storage class (`torch.FloatStorage`, ...).
fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "torch.FloatStorage" => Kind::Float,
        "torch.DoubleStorage" => Kind::Double,
        "torch.HalfStorage" => Kind::Half,
        "torch.BFloat16Storage" => Kind::BFloat16,
        "torch.LongStorage" => Kind::Int64,
        "torch.IntStorage" => Kind::Int,
        "torch.ShortStorage" => Kind::Int16,
        "torch.CharStorage" => Kind::Int8,
        "torch.ByteStorage" => Kind::Uint8,
        "torch.BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

/// The callables a state dict's pickle may name.
const CALLABLES: [&str; 3] = [
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
];

/// Reads a pickle (protocols 2–5) into a [`Value`]; fails naming any class or function outside
/// what a state dict needs.
pub fn unpickle(data: &[u8]) -> anyhow::Result<Value> {
    let mut reader = Reader { data, at: 0 };
    let mut stack: Vec<Slot> = Vec::new();
    let mut memo: std::collections::HashMap<u32, Value> = std::collections::HashMap::new();
    loop {
        let op = reader.byte()?;
        match op {
            0x80 => {
                reader.byte()?; // PROTO n
            }
            0x95 => {
                reader.take(8)?; // FRAME size
            }
            b'.' => {
                return match stack.pop() {
                    Some(Slot::Value(value)) => Ok(value),
                    _ => anyhow::bail!("the pickle ends without a value"),
                };
            }
            b'(' => stack.push(Slot::Mark),
            b'}' => push(&mut stack, Value::Dict(Vec::new())),
            b']' => push(&mut stack, Value::List(Vec::new())),
            b')' => push(&mut stack, Value::Tuple(Vec::new())),
            b'N' => push(&mut stack, Value::None),
            0x88 => push(&mut stack, Value::Bool(true)),
            0x89 => push(&mut stack, Value::Bool(false)),
            b'J' => {
                let v = i32::from_le_bytes(reader.array()?);
                push(&mut stack, Value::Int(i64::from(v)));
            }
            b'K' => {
                let v = reader.byte()?;
                push(&mut stack, Value::Int(i64::from(v)));
            }
            b'M' => {
                let v = u16::from_le_bytes(reader.array()?);
                push(&mut stack, Value::Int(i64::from(v)));
            }
            0x8a => {
                let n = usize::from(reader.byte()?);
                let bytes = reader.take(n)?;
                anyhow::ensure!(n <= 8, "an int of {n} bytes is too large");
                let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                    [0xff; 8]
                } else {
                    [0; 8]
                };
                buf[..n].copy_from_slice(bytes);
                push(&mut stack, Value::Int(i64::from_le_bytes(buf)));
            }
            b'G' => {
                let v = f64::from_be_bytes(reader.array()?);
                push(&mut stack, Value::Float(v));
            }
            b'X' => {
                let n = u32::from_le_bytes(reader.array()?) as usize;
                push(&mut stack, Value::Str(reader.string(n)?));
            }
            0x8c => {
                let n = usize::from(reader.byte()?);
                push(&mut stack, Value::Str(reader.string(n)?));
            }
            0x8d => {
                let n = usize::try_from(u64::from_le_bytes(reader.array()?))?;
                push(&mut stack, Value::Str(reader.string(n)?));
            }
            b'C' => {
                let n = usize::from(reader.byte()?);
                push(&mut stack, Value::Bytes(reader.take(n)?.to_vec()));
            }
            b'B' => {
                let n = u32::from_le_bytes(reader.array()?) as usize;
                push(&mut stack, Value::Bytes(reader.take(n)?.to_vec()));
            }
            b'c' => {
                let module = reader.line()?;
                let name = reader.line()?;
                push(&mut stack, global(&module, &name)?);
            }
            0x93 => {
                let name = pop_str(&mut stack)?;
                let module = pop_str(&mut stack)?;
                push(&mut stack, global(&module, &name)?);
            }
            b'q' => {
                let key = u32::from(reader.byte()?);
                memo.insert(key, top(&stack)?.clone());
            }
            b'r' => {
                let key = u32::from_le_bytes(reader.array()?);
                memo.insert(key, top(&stack)?.clone());
            }
            0x94 => {
                let key = u32::try_from(memo.len())?;
                memo.insert(key, top(&stack)?.clone());
            }
            b'h' => {
                let key = u32::from(reader.byte()?);
                push(
                    &mut stack,
                    memo.get(&key)
                        .context("a memo entry that was never stored")?
                        .clone(),
                );
            }
            b'j' => {
                let key = u32::from_le_bytes(reader.array()?);
                push(
                    &mut stack,
                    memo.get(&key)
                        .context("a memo entry that was never stored")?
                        .clone(),
                );
            }
            b't' => {
                let items = pop_to_mark(&mut stack)?;
                push(&mut stack, Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                anyhow::ensure!(stack.len() >= n, "a tuple of {n} on a shorter stack");
                let items = stack
                    .split_off(stack.len() - n)
                    .into_iter()
                    .map(value_of)
                    .collect::<anyhow::Result<_>>()?;
                push(&mut stack, Value::Tuple(items));
            }
            b'l' => {
                let items = pop_to_mark(&mut stack)?;
                push(&mut stack, Value::List(items));
            }
            b'd' => {
                let items = pop_to_mark(&mut stack)?;
                push(&mut stack, Value::Dict(pairs(items)?));
            }
            b'a' => {
                let item = pop(&mut stack)?;
                match top_mut(&mut stack)? {
                    Value::List(list) => list.push(item),
                    other => anyhow::bail!("APPEND to a {}", describe(other)),
                }
            }
            b'e' => {
                let items = pop_to_mark(&mut stack)?;
                match top_mut(&mut stack)? {
                    Value::List(list) => list.extend(items),
                    other => anyhow::bail!("APPENDS to a {}", describe(other)),
                }
            }
            b's' => {
                let value = pop(&mut stack)?;
                let key = pop(&mut stack)?;
                match top_mut(&mut stack)? {
                    Value::Dict(dict) => dict.push((key, value)),
                    other => anyhow::bail!("SETITEM on a {}", describe(other)),
                }
            }
            b'u' => {
                let items = pairs(pop_to_mark(&mut stack)?)?;
                match top_mut(&mut stack)? {
                    Value::Dict(dict) => dict.extend(items),
                    other => anyhow::bail!("SETITEMS on a {}", describe(other)),
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                push(&mut stack, storage(pid)?);
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                push(&mut stack, reduce(callable, args)?);
            }
            b'b' => {
                // BUILD: a state for the object below it; a dict's attributes (`_metadata`)
                // and a tensor's are not part of the weights.
                let _state = pop(&mut stack)?;
                match top(&stack)? {
                    Value::Dict(_) | Value::Tensor(_) => {}
                    other => anyhow::bail!("BUILD on a {}", describe(other)),
                }
            }
            other => anyhow::bail!(
                "pickle opcode 0x{other:02x} at byte {} is not one a state dict uses",
                reader.at - 1
            ),
        }
    }
}

/// What a value is, in messages.
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Tensor(_) => "tensor",
        Value::Global(_) => "class or function",
        Value::Storage(..) => "storage",
    }
}

fn global(module: &str, name: &str) -> anyhow::Result<Value> {
    let full = format!("{module}.{name}");
    if CALLABLES.contains(&full.as_str()) || storage_kind(&full).is_some() {
        return Ok(Value::Global(full));
    }
    anyhow::bail!(
        "the pickle names `{full}`, a Python class or function that is not part of a state dict; \
         rsfm reads tensors in dicts and plain values, and never runs code from a file"
    )
}

fn storage(pid: Value) -> anyhow::Result<Value> {
    match pid {
        Value::Tuple(items) => match items.as_slice() {
            [Value::Str(tag), Value::Global(class), Value::Str(key), _location, _numel]
                if tag == "storage" =>
            {
                let kind = storage_kind(class)
                    .with_context(|| format!("`{class}` is not a storage type"))?;
                Ok(Value::Storage(kind, key.clone()))
            }
            _ => anyhow::bail!("a persistent id that is not a tensor storage"),
        },
        other => anyhow::bail!("a persistent id that is a {}", describe(&other)),
    }
}

fn reduce(callable: Value, args: Value) -> anyhow::Result<Value> {
    let (Value::Global(name), Value::Tuple(args)) = (&callable, args) else {
        anyhow::bail!("REDUCE of a {}", describe(&callable));
    };
    match name.as_str() {
        "collections.OrderedDict" => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" => match args.as_slice() {
            [Value::Storage(kind, key), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), ..] => {
                Ok(Value::Tensor(TensorRef {
                    kind: *kind,
                    key: key.clone(),
                    offset: *offset,
                    size: ints(size)?,
                    stride: ints(stride)?,
                }))
            }
            _ => anyhow::bail!(
                "`{name}` with arguments that are not (storage, offset, size, stride, ...)"
            ),
        },
        "torch._utils._rebuild_parameter" => match args.into_iter().next() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor),
            _ => anyhow::bail!("`{name}` without a tensor"),
        },
        _ => anyhow::bail!("`{name}` cannot be called"),
    }
}

fn ints(values: &[Value]) -> anyhow::Result<Vec<i64>> {
    values
        .iter()
        .map(|v| match v {
            Value::Int(i) => Ok(*i),
            other => anyhow::bail!("a {} where a size is expected", describe(other)),
        })
        .collect()
}

fn pairs(items: Vec<Value>) -> anyhow::Result<Vec<(Value, Value)>> {
    anyhow::ensure!(items.len().is_multiple_of(2), "dict items of odd length");
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn push(stack: &mut Vec<Slot>, value: Value) {
    stack.push(Slot::Value(value));
}

fn value_of(slot: Slot) -> anyhow::Result<Value> {
    match slot {
        Slot::Value(v) => Ok(v),
        Slot::Mark => anyhow::bail!("a MARK where a value is expected"),
    }
}

fn pop(stack: &mut Vec<Slot>) -> anyhow::Result<Value> {
    value_of(stack.pop().context("the pickle pops an empty stack")?)
}

fn pop_str(stack: &mut Vec<Slot>) -> anyhow::Result<String> {
    match pop(stack)? {
        Value::Str(s) => Ok(s),
        other => anyhow::bail!("a {} where a name is expected", describe(&other)),
    }
}

fn top(stack: &[Slot]) -> anyhow::Result<&Value> {
    match stack.last() {
        Some(Slot::Value(v)) => Ok(v),
        _ => anyhow::bail!("no value on the stack"),
    }
}

fn top_mut(stack: &mut [Slot]) -> anyhow::Result<&mut Value> {
    match stack.last_mut() {
        Some(Slot::Value(v)) => Ok(v),
        _ => anyhow::bail!("no value on the stack"),
    }
}

fn pop_to_mark(stack: &mut Vec<Slot>) -> anyhow::Result<Vec<Value>> {
    let mark = stack
        .iter()
        .rposition(|slot| matches!(slot, Slot::Mark))
        .context("no MARK on the stack")?;
    let items = stack.split_off(mark + 1);
    stack.pop();
    items.into_iter().map(value_of).collect()
}

/// A cursor over the pickle's bytes.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.data.len());
        let end = end.context("the pickle ends early")?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        Ok(self.take(N)?.try_into()?)
    }

    fn string(&mut self, n: usize) -> anyhow::Result<String> {
        Ok(std::str::from_utf8(self.take(n)?)?.to_string())
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let rest = &self.data[self.at..];
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .context("the pickle ends early")?;
        let line = std::str::from_utf8(&rest[..end])?.to_string();
        self.at += end + 1;
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_outside_a_state_dict_is_named_and_refused() {
        // PROTO 2, GLOBAL 'os system', STOP.
        let err = unpickle(b"\x80\x02cos\nsystem\n.").unwrap_err().to_string();
        assert!(err.contains("`os.system`"), "{err}");
        let ok = unpickle(b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x05u.").unwrap();
        assert_eq!(
            ok,
            Value::Dict(vec![(Value::Str("a".into()), Value::Int(5))])
        );
    }
}
