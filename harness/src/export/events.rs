//! The few TensorBoard protobuf messages an exported events file holds, derived with `prost`.
//! Field numbers are those of TensorBoard's `event.proto`, `summary.proto`, `tensor.proto`,
//! `tensor_shape.proto`, `plugins/hparams/plugin_data.proto` and protobuf's `struct.proto`
//! (checked against the descriptors of the tensorboard 2.21 package); fields rsfm never writes
//! are left out, which protobuf readers accept.

use std::collections::BTreeMap;

/// The `file_version` every events file starts with (`event.proto`: "brain.Event:2").
pub const FILE_VERSION: &str = "brain.Event:2";

/// The hparams plugin's name and the version of its plugin data (`plugins/hparams/metadata.py`).
pub const HPARAMS_PLUGIN: &str = "hparams";
/// Version of the hparams plugin data that TensorBoard reads.
pub const HPARAMS_VERSION: i32 = 0;
/// Tag of the summary that opens a session (a run) for the hparams plugin.
pub const SESSION_START_TAG: &str = "_hparams_/session_start_info";
/// Tag of the summary that closes it.
pub const SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// `tensorboard.Event`: one record of an events file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event holds.
    #[prost(oneof = "EventKind", tags = "3, 5")]
    pub what: Option<EventKind>,
}

/// `Event.what`, the members rsfm writes.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventKind {
    /// The format version, in the first event of a file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Summary values.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorboard.Summary`: values recorded at one step.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorboard.Summary.Value`: one tagged value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The tag (the scalar's name).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin reads the value.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value.
    #[prost(oneof = "ValueKind", tags = "2, 8")]
    pub value: Option<ValueKind>,
}

/// `Summary.Value.value`, the members rsfm writes.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ValueKind {
    /// A scalar (TensorBoard stores scalars as 32-bit floats).
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// A tensor (the hparams summaries carry an empty one).
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorboard.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin and its data.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// `tensorboard.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// Plugin name (`hparams`).
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// The plugin's own serialized protobuf.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorboard.TensorProto`, as far as an empty float vector needs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `DataType` (1: `DT_FLOAT`).
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// Its shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShape>,
}

/// `tensorboard.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShape {
    /// Dimensions.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorDim>,
}

/// `tensorboard.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorDim {
    /// Size of the dimension.
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// `DataType.DT_FLOAT` of `types.proto`.
const DT_FLOAT: i32 = 1;

impl TensorProto {
    /// The length-0 float vector TensorBoard's hparams summaries carry (`metadata.NULL_TENSOR`).
    pub fn empty_float_vector() -> TensorProto {
        TensorProto {
            dtype: DT_FLOAT,
            tensor_shape: Some(TensorShape {
                dim: vec![TensorDim { size: 0 }],
            }),
        }
    }
}

/// `tensorboard.hparams.HParamsPluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// [`HPARAMS_VERSION`].
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// The session's start or end.
    #[prost(oneof = "HParamsData", tags = "3, 4")]
    pub data: Option<HParamsData>,
}

/// `HParamsPluginData.data`, the members rsfm writes.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamsData {
    /// The session's hyperparameters.
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    /// How it ended.
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// Hyperparameter values by name.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, HParamValue>,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// `tensorboard.hparams.Status`.
    #[prost(enumeration = "SessionStatus", tag = "1")]
    pub status: i32,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `tensorboard.hparams.Status` (`api.proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum SessionStatus {
    /// Unknown.
    Unknown = 0,
    /// Succeeded.
    Success = 1,
    /// Failed.
    Failure = 2,
    /// Still running.
    Running = 3,
}

/// `google.protobuf.Value`, the kinds a parameter takes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamValue {
    /// The value.
    #[prost(oneof = "HParamKind", tags = "2, 3, 4")]
    pub kind: Option<HParamKind>,
}

/// `google.protobuf.Value.kind`, the members rsfm writes.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamKind {
    /// A number.
    #[prost(double, tag = "2")]
    Number(f64),
    /// Text.
    #[prost(string, tag = "3")]
    Text(String),
    /// A boolean.
    #[prost(bool, tag = "4")]
    Bool(bool),
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn hex_of(message: &impl Message) -> String {
        hex::encode(message.encode_to_vec())
    }

    // The expected bytes below are what the tensorboard 2.21 package's own protobuf classes
    // serialize for the same messages.

    #[test]
    fn events_encode_as_tensorboard_encodes_them() {
        let version = Event {
            wall_time: 1_700_000_000.5,
            step: 0,
            what: Some(EventKind::FileVersion(FILE_VERSION.into())),
        };
        assert_eq!(
            hex_of(&version),
            "0900002040fc54d9411a0d627261696e2e4576656e743a32"
        );
        let scalar = Event {
            wall_time: 1_700_000_000.5,
            step: 7,
            what: Some(EventKind::Summary(Summary {
                value: vec![SummaryValue {
                    tag: "loss".into(),
                    metadata: None,
                    value: Some(ValueKind::SimpleValue(0.25)),
                }],
            })),
        };
        assert_eq!(
            hex_of(&scalar),
            "0900002040fc54d94110072a0d0a0b0a046c6f7373150000803e"
        );
        assert_eq!(hex_of(&TensorProto::empty_float_vector()), "080112021200");
    }

    #[test]
    fn hparams_encode_as_tensorboard_encodes_them() {
        let hparams = [
            ("flip", HParamKind::Bool(true)),
            ("lr", HParamKind::Number(0.001)),
            ("model", HParamKind::Text("vit-tiny".into())),
        ]
        .into_iter()
        .map(|(name, kind)| (name.to_string(), HParamValue { kind: Some(kind) }))
        .collect();
        let start = HParamsPluginData {
            version: HPARAMS_VERSION,
            data: Some(HParamsData::SessionStartInfo(SessionStartInfo {
                hparams,
                start_time_secs: 1_700_000_000.0,
            })),
        };
        assert_eq!(
            hex_of(&start),
            "1a3b0a0a0a04666c6970120220010a0f0a026c72120911fca9f1d24d62503f0a130a056d6f64656c120a1a087669742d74696e792900000040fc54d941"
        );
        let end = HParamsPluginData {
            version: HPARAMS_VERSION,
            data: Some(HParamsData::SessionEndInfo(SessionEndInfo {
                status: SessionStatus::Success as i32,
                end_time_secs: 1_700_000_100.0,
            })),
        };
        assert_eq!(hex_of(&end), "220b08011100000059fc54d941");
    }

    #[test]
    fn an_encoded_event_decodes_to_itself() {
        let event = Event {
            wall_time: 12.0,
            step: 3,
            what: Some(EventKind::Summary(Summary {
                value: vec![SummaryValue {
                    tag: "final/miou".into(),
                    metadata: None,
                    value: Some(ValueKind::SimpleValue(-1.5)),
                }],
            })),
        };
        let bytes = event.encode_to_vec();
        assert_eq!(Event::decode(bytes.as_slice()).unwrap(), event);
    }
}
