//! `rsfm export tensorboard`: one run folder per stage, `<experiment>/<stage>-<key12>`, holding
//! one events file `events.out.tfevents.<start>.rsfm` that is rewritten from `rsfm.db` on every
//! export (so a second export, or one after a requeue added steps, never repeats a point).
//!
//! The file holds, in order: the `file_version` event; the stage's parameters as an hparams
//! session start (plugin `hparams`, `_hparams_/session_start_info`, at step 0); one event per
//! logged step with every curve value of that step as a scalar (tag = metric name); the final
//! metrics as scalars `final/<name>` at the last step; the session end with the stage's outcome.

use std::path::{Path, PathBuf};

use prost::Message;

use super::events::{
    Event, EventKind, HParamKind, HParamValue, HParamsData, HParamsPluginData, PluginData,
    SessionEndInfo, SessionStartInfo, SessionStatus, Summary, SummaryMetadata, SummaryValue,
    TensorProto, ValueKind, FILE_VERSION, HPARAMS_PLUGIN, HPARAMS_VERSION, SESSION_END_TAG,
    SESSION_START_TAG,
};
use super::source::{ExportStage, ParamValue};
use super::{file_safe, tfrecord, write_atomically, FINAL_PREFIX};

/// The suffix of the events files rsfm writes: the only ones it replaces in a run folder.
const EVENTS_SUFFIX: &str = ".rsfm";
/// What TensorBoard looks for in the name of an events file.
const EVENTS_MARK: &str = "tfevents";

/// Writes the events file of `stage` under `out` (replacing the one an earlier export wrote);
/// returns its path.
pub fn write_run(out: &Path, stage: &ExportStage) -> anyhow::Result<PathBuf> {
    let dir = out.join(run_folder(stage));
    fs_err::create_dir_all(&dir)?;
    let start_secs = stage.started_ms.or(stage.finished_ms).unwrap_or(0) / 1000;
    let file_name = format!("events.out.{EVENTS_MARK}.{start_secs:010}{EVENTS_SUFFIX}");
    let path = dir.join(&file_name);
    write_atomically(&path, &events_file(stage))?;
    // A requeued attempt starts later: the file an earlier export named after the old start goes.
    for entry in fs_err::read_dir(&dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name != file_name && name.contains(EVENTS_MARK) && name.ends_with(EVENTS_SUFFIX) {
            fs_err::remove_file(dir.join(name.as_ref()))?;
        }
    }
    Ok(path)
}

/// The run folder of a stage, relative to the export root: `<experiment>/<stage>-<key12>`.
pub fn run_folder(stage: &ExportStage) -> PathBuf {
    let short_key = stage
        .key
        .get(..crate::query::KEY_PREFIX_LEN)
        .unwrap_or(&stage.key);
    Path::new(&file_safe(&stage.experiment)).join(format!("{}-{short_key}", file_safe(&stage.name)))
}

/// The whole events file of `stage`: TFRecords of the events the module docs list.
pub fn events_file(stage: &ExportStage) -> Vec<u8> {
    let start = stage.started_ms.or(stage.finished_ms).unwrap_or(0) as f64 / 1000.0;
    let point_time = stage.point_time_ms() as f64 / 1000.0;
    let mut events = vec![
        Event {
            wall_time: start,
            step: 0,
            what: Some(EventKind::FileVersion(FILE_VERSION.into())),
        },
        hparams_event(
            start,
            0,
            SESSION_START_TAG,
            HParamsData::SessionStartInfo(SessionStartInfo {
                hparams: stage
                    .params
                    .iter()
                    .map(|(name, value)| (name.clone(), hparam(value)))
                    .collect(),
                start_time_secs: start,
            }),
        ),
    ];
    let mut by_step: std::collections::BTreeMap<i64, Vec<SummaryValue>> = Default::default();
    for (metric, points) in &stage.curves {
        for (step, value) in points {
            by_step
                .entry(*step)
                .or_default()
                .push(scalar(metric.clone(), *value));
        }
    }
    events.extend(by_step.into_iter().map(|(step, value)| Event {
        wall_time: point_time,
        step,
        what: Some(EventKind::Summary(Summary { value })),
    }));
    if !stage.finals.is_empty() {
        events.push(Event {
            wall_time: point_time,
            step: stage.last_step(),
            what: Some(EventKind::Summary(Summary {
                value: stage
                    .finals
                    .iter()
                    .map(|(name, value)| scalar(format!("{FINAL_PREFIX}{name}"), *value))
                    .collect(),
            })),
        });
    }
    if let Some(status) = session_status(&stage.status) {
        events.push(hparams_event(
            point_time,
            stage.last_step(),
            SESSION_END_TAG,
            HParamsData::SessionEndInfo(SessionEndInfo {
                status: status as i32,
                end_time_secs: point_time,
            }),
        ));
    }
    let mut file = Vec::new();
    for event in events {
        tfrecord::append_record(&mut file, &event.encode_to_vec());
    }
    file
}

/// A scalar summary value (TensorBoard keeps scalars as 32-bit floats).
fn scalar(tag: String, value: f64) -> SummaryValue {
    SummaryValue {
        tag,
        metadata: None,
        value: Some(ValueKind::SimpleValue(value as f32)),
    }
}

/// An event holding one hparams plugin summary, as TensorBoard's `hparams.summary` writes it:
/// the plugin data in the metadata and an empty float tensor as the value.
fn hparams_event(wall_time: f64, step: i64, tag: &str, data: HParamsData) -> Event {
    let content = HParamsPluginData {
        version: HPARAMS_VERSION,
        data: Some(data),
    }
    .encode_to_vec();
    Event {
        wall_time,
        step,
        what: Some(EventKind::Summary(Summary {
            value: vec![SummaryValue {
                tag: tag.into(),
                metadata: Some(SummaryMetadata {
                    plugin_data: Some(PluginData {
                        plugin_name: HPARAMS_PLUGIN.into(),
                        content,
                    }),
                }),
                value: Some(ValueKind::Tensor(TensorProto::empty_float_vector())),
            }],
        })),
    }
}

fn hparam(value: &ParamValue) -> HParamValue {
    let kind = match value {
        ParamValue::Number(n) => n
            .as_f64()
            .map_or_else(|| HParamKind::Text(n.to_string()), HParamKind::Number),
        ParamValue::Bool(b) => HParamKind::Bool(*b),
        ParamValue::Text(t) => HParamKind::Text(t.clone()),
    };
    HParamValue { kind: Some(kind) }
}

/// The hparams session status of a stage status; `None` while it runs (no end yet).
fn session_status(status: &str) -> Option<SessionStatus> {
    match status {
        "succeeded" | "cached" => Some(SessionStatus::Success),
        "failed" | "interrupted" => Some(SessionStatus::Failure),
        "running" => None,
        _ => Some(SessionStatus::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::fixtures::sample_stage as stage;

    /// Splits a TFRecord file into its records, checking both CRCs of each.
    fn records(mut file: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        while !file.is_empty() {
            let length = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
            let length_crc = u32::from_le_bytes(file[8..12].try_into().unwrap());
            assert_eq!(length_crc, tfrecord::masked_crc32c(&file[..8]));
            let data = &file[12..12 + length];
            let data_crc = u32::from_le_bytes(file[12 + length..16 + length].try_into().unwrap());
            assert_eq!(data_crc, tfrecord::masked_crc32c(data));
            events.push(Event::decode(data).unwrap());
            file = &file[16 + length..];
        }
        events
    }

    fn scalars(event: &Event) -> Vec<(String, f32)> {
        match &event.what {
            Some(EventKind::Summary(summary)) => summary
                .value
                .iter()
                .filter_map(|v| match v.value {
                    Some(ValueKind::SimpleValue(x)) => Some((v.tag.clone(), x)),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn the_file_holds_version_hparams_steps_finals_and_end() {
        let events = records(&events_file(&stage()));
        assert_eq!(events.len(), 6, "{events:#?}");
        assert_eq!(
            events[0].what,
            Some(EventKind::FileVersion("brain.Event:2".into()))
        );
        assert_eq!(events[0].wall_time, 1_700_000_000.0);
        let Some(EventKind::Summary(start)) = &events[1].what else {
            panic!("{:?}", events[1]);
        };
        assert_eq!(start.value[0].tag, SESSION_START_TAG);
        let plugin = start.value[0]
            .metadata
            .clone()
            .unwrap()
            .plugin_data
            .unwrap();
        assert_eq!(plugin.plugin_name, "hparams");
        let data = HParamsPluginData::decode(plugin.content.as_slice()).unwrap();
        let Some(HParamsData::SessionStartInfo(info)) = data.data else {
            panic!("{data:?}");
        };
        assert_eq!(
            info.hparams["model"].kind,
            Some(HParamKind::Text("vit-tiny".into()))
        );
        assert_eq!(info.hparams["lr"].kind, Some(HParamKind::Number(0.01)));
        assert_eq!(
            (events[2].step, scalars(&events[2])),
            (2, vec![("loss".into(), 1.5), ("lr".into(), 0.01)])
        );
        assert_eq!(
            (events[3].step, scalars(&events[3])),
            (4, vec![("loss".into(), 1.25), ("lr".into(), 0.005)])
        );
        assert_eq!(events[3].wall_time, 1_700_000_060.5);
        assert_eq!(
            (events[4].step, scalars(&events[4])),
            (4, vec![("final/miou".into(), 0.5)])
        );
        let Some(EventKind::Summary(end)) = &events[5].what else {
            panic!("{:?}", events[5]);
        };
        assert_eq!(end.value[0].tag, SESSION_END_TAG);
    }

    #[test]
    fn a_second_export_replaces_the_file_and_one_after_a_requeue_too() {
        let out = tempfile::tempdir().unwrap();
        let mut stage = stage();
        let first = write_run(out.path(), &stage).unwrap();
        assert_eq!(
            first,
            out.path()
                .join("smoke/finetune@vit-tiny-abababababab/events.out.tfevents.1700000000.rsfm")
        );
        assert_eq!(write_run(out.path(), &stage).unwrap(), first);
        // Another attempt: later start, one more step.
        stage.started_ms = Some(1_700_000_100_000);
        stage.curves.get_mut("loss").unwrap().push((6, 1.0));
        let second = write_run(out.path(), &stage).unwrap();
        let files: Vec<_> = fs_err::read_dir(second.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files, std::slice::from_ref(&second));
        let events = records(&fs_err::read(&second).unwrap());
        let loss_points = events
            .iter()
            .flat_map(scalars)
            .filter(|(tag, _)| tag == "loss")
            .count();
        assert_eq!(loss_points, 3);
    }

    #[test]
    fn other_files_in_a_run_folder_stay() {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join(run_folder(&stage()));
        fs_err::create_dir_all(&dir).unwrap();
        let theirs = dir.join("events.out.tfevents.1600000000.host");
        fs_err::write(&theirs, b"").unwrap();
        write_run(out.path(), &stage()).unwrap();
        assert!(theirs.is_file());
    }
}
