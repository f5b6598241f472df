//! Parameter types as recipes write them, and the Rust types that carry each.

use super::data::{DetFormat, EvalTask, SegFormat};
use super::init::BackboneInit;
use super::lr_decay::LrDecay;
use super::norm::Norm;
use super::precision::Precision;
use super::prepare::PrepareOp;
use crate::data::formats::potsdam::PotsdamLabels;

/// The type of a parameter as a recipe writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamType {
    /// A string.
    Str,
    /// A non-negative integer.
    Count,
    /// A finite number (integers are stored as floats).
    Float,
    /// A number between 0 and 1 inclusive.
    Ratio,
    /// A boolean.
    Bool,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// An array of strings.
    StrList,
    /// A non-empty array of strings: a program and its arguments.
    Argv,
    /// An array of non-negative integers.
    CountList,
    /// An array of finite numbers.
    FloatList,
}

impl ParamType {
    /// How the type reads in messages: `integer`, `array of strings`.
    pub fn describe(self) -> String {
        match self {
            ParamType::Str => "string".to_string(),
            ParamType::Count => "integer".to_string(),
            ParamType::Float => "float".to_string(),
            ParamType::Ratio => "float between 0 and 1".to_string(),
            ParamType::Bool => "boolean".to_string(),
            ParamType::Choice(options) => format!("one of {}", options.join(", ")),
            ParamType::StrList => "array of strings".to_string(),
            ParamType::Argv => "non-empty array of strings".to_string(),
            ParamType::CountList => "array of integers".to_string(),
            ParamType::FloatList => "array of floats".to_string(),
        }
    }

    /// The type of the elements, for array types.
    pub fn element(self) -> Option<ParamType> {
        match self {
            ParamType::StrList | ParamType::Argv => Some(ParamType::Str),
            ParamType::CountList => Some(ParamType::Count),
            ParamType::FloatList => Some(ParamType::Float),
            _ => None,
        }
    }
}

/// A number between 0 and 1, for `as RATIO` in [`schema!`](crate::schema).
pub const RATIO: ParamType = ParamType::Ratio;
/// A program and its arguments, for `as ARGV` in [`schema!`](crate::schema).
pub const ARGV: ParamType = ParamType::Argv;

/// A Rust type a parameter can have, with the [`ParamType`] recipes write it as.
pub trait ParamValue {
    /// How recipes write it.
    const TYPE: ParamType;
}

macro_rules! param_values {
    ($($ty:ty => $param:expr),* $(,)?) => {
        $(impl ParamValue for $ty {
            const TYPE: ParamType = $param;
        })*
    };
}

param_values! {
    String => ParamType::Str,
    usize => ParamType::Count,
    u64 => ParamType::Count,
    u32 => ParamType::Count,
    f64 => ParamType::Float,
    bool => ParamType::Bool,
    Vec<String> => ParamType::StrList,
    Vec<usize> => ParamType::CountList,
    Vec<u64> => ParamType::CountList,
    Vec<f64> => ParamType::FloatList,
    SegFormat => ParamType::Choice(SegFormat::SPELLINGS),
    DetFormat => ParamType::Choice(DetFormat::SPELLINGS),
    EvalTask => ParamType::Choice(EvalTask::SPELLINGS),
    BackboneInit => ParamType::Choice(BackboneInit::SPELLINGS),
    Precision => ParamType::Choice(Precision::SPELLINGS),
    Norm => ParamType::Choice(Norm::SPELLINGS),
    PotsdamLabels => ParamType::Choice(PotsdamLabels::SPELLINGS),
    LrDecay => ParamType::Choice(LrDecay::SPELLINGS),
    PrepareOp => ParamType::Choice(PrepareOp::SPELLINGS),
}

impl<T: ParamValue> ParamValue for Option<T> {
    const TYPE: ParamType = T::TYPE;
}
