//! The [`Schema`] trait and the [`schema!`](crate::schema) macro that declares a parameter
//! struct, its defaults, its serde form and its field table in one place.
//!
//! Why a declarative macro and not a derive: a derive needs a proc-macro crate, and a
//! hand-written table beside each struct is the second list this module exists to remove.
//! `macro_rules!` can read the `///` lines of each field (they arrive as `#[doc = "..."]`
//! attributes), so one declaration gives the Rust struct (with those docs), its `Default`, its
//! serde form (flat keys, unknown keys refused, missing optional keys defaulted, missing required
//! keys named) and [`Schema::fields`]: name, type, default and doc of every key, which the recipe
//! loader checks against and `rsfm kinds` prints.

use serde_json::{Map, Value};

use super::types::{ParamType, ParamValue};
use super::ParamError;

/// One key of a stage's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The key, as recipes and `stage.json` spell it.
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
    /// What it means: the field's `///` doc, lines joined.
    pub doc: String,
    /// The value used when the key is left out; `None` when the key is required.
    pub default: Option<Value>,
}

impl Field {
    /// Whether a stage must set it.
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

/// A set of parameters declared with [`schema!`](crate::schema).
pub trait Schema: Default + Sized {
    /// Every key, the included groups' first, in declaration order.
    fn fields() -> Vec<Field>;

    /// Removes this schema's keys from `map` and builds the value; a missing key takes its
    /// default, a missing required key or a value of the wrong type is an error naming the key.
    fn take(map: &mut Map<String, Value>) -> Result<Self, ParamError>;

    /// Writes every key that has a value (unset options are left out) into `map`.
    fn put(&self, map: &mut Map<String, Value>);

    /// The parameters in `map`; a key the schema does not know is an error that lists the
    /// allowed ones.
    fn from_map(mut map: Map<String, Value>) -> Result<Self, ParamError> {
        let value = Self::take(&mut map)?;
        match map.keys().next() {
            None => Ok(value),
            Some(unknown) => {
                let allowed: Vec<&str> = Self::fields().iter().map(|f| f.name).collect();
                Err(ParamError::new(
                    unknown.clone(),
                    format!(
                        "unknown parameter `{unknown}`; allowed: {}",
                        allowed.join(", ")
                    ),
                ))
            }
        }
    }

    /// The parameters as a flat JSON object.
    fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        self.put(&mut map);
        map
    }
}

/// The text of a field's `///` lines: each trimmed, joined with spaces.
pub fn doc_text(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The type of a field: the one its Rust type implies, or `explicit` where the macro gave one.
pub const fn field_type<T: ParamValue>(explicit: Option<ParamType>) -> ParamType {
    match explicit {
        Some(ty) => ty,
        None => T::TYPE,
    }
}

/// Reads one key of `map` as `T`, naming the key on a type error.
pub fn take_value<T: serde::de::DeserializeOwned>(
    map: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<T>, ParamError> {
    match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| ParamError::new(name, format!("`{name}`: {e}"))),
    }
}

/// Writes `value` under `name` unless it serialises to null (an unset option).
pub fn put_value<T: serde::Serialize>(map: &mut Map<String, Value>, name: &str, value: &T) {
    match serde_json::to_value(value) {
        Ok(Value::Null) => {}
        Ok(value) => {
            map.insert(name.to_string(), value);
        }
        Err(e) => unreachable!("parameter `{name}` always serialises: {e}"),
    }
}

/// Declares a parameter struct: its fields with their `///` docs and defaults (a field without
/// `= default` is required), the groups of other [`Schema`] structs whose keys it includes flat,
/// and an optional explicit [`ParamType`] constant (`as RATIO`) where the Rust type says too
/// little.
///
/// ```text
/// schema! {
///     /// Parameters of a `finetune-seg` stage.
///     pub struct FinetuneSegParams includes {
///         /// The backbone.
///         backbone: Backbone,
///     } {
///         /// Optimiser steps.
///         steps: u64,
///         /// Fraction of the training images used.
///         fraction: f64 as RATIO = 1.0,
///     }
/// }
/// ```
#[macro_export]
macro_rules! schema {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident includes {
            $(
                $(#[doc = $gdoc:literal])*
                $group:ident : $gty:ty
            ),* $(,)?
        } {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident : $ty:ty $(as $pty:path)? $(= $default:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $gdoc])*
                pub $group: $gty,
            )*
            $(
                $(#[doc = $fdoc])*
                pub $field: $ty,
            )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                Self {
                    $($group: ::std::default::Default::default(),)*
                    $($field: $crate::schema!(@default $($default)?),)*
                }
            }
        }

        impl $crate::params::Schema for $name {
            fn fields() -> ::std::vec::Vec<$crate::params::Field> {
                #[allow(unused_variables, reason = "read only by the fields that have a default")]
                let defaults = <Self as ::std::default::Default>::default();
                let own = ::std::vec![$(
                    $crate::params::Field {
                        name: stringify!($field),
                        ty: $crate::params::schema::field_type::<$ty>(
                            $crate::schema!(@type $($pty)?)
                        ),
                        doc: $crate::params::schema::doc_text(&[$($fdoc),*]),
                        default: $crate::schema!(
                            @default_json (::serde_json::to_value(&defaults.$field)
                                .unwrap_or(::serde_json::Value::Null)) $($default)?
                        ),
                    }
                ),*];
                let parts: ::std::vec::Vec<::std::vec::Vec<$crate::params::Field>> = ::std::vec![
                    $(<$gty as $crate::params::Schema>::fields(),)*
                    own,
                ];
                parts.concat()
            }

            #[allow(unused_variables, reason = "a schema with no keys reads nothing from the map")]
            fn take(
                map: &mut ::serde_json::Map<::std::string::String, ::serde_json::Value>,
            ) -> ::std::result::Result<Self, $crate::params::ParamError> {
                Ok(Self {
                    $($group: <$gty as $crate::params::Schema>::take(map)?,)*
                    $(
                        $field: match $crate::params::schema::take_value::<$ty>(
                            map,
                            stringify!($field),
                        )? {
                            Some(value) => value,
                            None => $crate::schema!(@missing stringify!($field) $(, $default)?),
                        },
                    )*
                })
            }

            #[allow(unused_variables, reason = "a schema with no keys writes nothing into the map")]
            fn put(&self, map: &mut ::serde_json::Map<::std::string::String, ::serde_json::Value>) {
                $($crate::params::Schema::put(&self.$group, map);)*
                $($crate::params::schema::put_value(map, stringify!($field), &self.$field);)*
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                ::serde::Serialize::serialize(&$crate::params::Schema::to_map(self), serializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let map = <::serde_json::Map<::std::string::String, ::serde_json::Value>
                    as ::serde::Deserialize>::deserialize(deserializer)?;
                <Self as $crate::params::Schema>::from_map(map).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
    (@default) => { ::std::default::Default::default() };
    (@default $default:expr) => { $default };
    (@type) => { None };
    (@type $pty:path) => { Some($pty) };
    (@default_json ($value:expr)) => { None };
    (@default_json ($value:expr) $default:expr) => { Some($value) };
    (@missing $name:expr) => {
        return Err($crate::params::ParamError::new($name, format!("`{}` is required", $name)))
    };
    (@missing $name:expr, $default:expr) => { $default };
}
