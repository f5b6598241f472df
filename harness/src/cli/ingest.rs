//! `rsfm ingest --server dota-v2|loveda --stage KEY FILE [--archive SHA256]`: the score an
//! evaluation server sent back (its e-mail or results page, saved to FILE) stored as final
//! `test-server` metrics of the stage whose archive it scores (the newest archive `rsfm submit`
//! wrote for that stage and server, or the one `--archive` names), tied to that archive's
//! sha256. The report fills the paper's test-server cells from them.
//!
//! JSON output: `{"stage","key","server","archive_sha256","reply","reply_sha256","scores":{..}}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sha2::{Digest, Sha256};

use super::session::open_store;
use super::BadInput;
use crate::query::short_key;
use crate::servers::{reply, Server};
use crate::store::{Reply, StageFilter};

/// Shortest key prefix `--stage` accepts.
const MIN_KEY_PREFIX: usize = 8;

/// Arguments of `rsfm ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The reply saved to a file.
    reply: PathBuf,
    /// The server that sent it: dota-v2 or loveda.
    #[arg(long, value_parser = Server::parse)]
    server: Server,
    /// The key (or a prefix of 8 or more characters) of the stage whose archive was scored, as
    /// `rsfm submit` printed it.
    #[arg(long)]
    stage: String,
    /// The sha256 (or a prefix) of the archive scored, when the stage has several.
    #[arg(long)]
    archive: Option<String>,
}

/// Runs `rsfm ingest`.
pub async fn run(args: IngestArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = fs_err::read(&args.reply).map_err(BadInput::wrap)?;
    let text = String::from_utf8_lossy(&bytes);
    let scores = reply::parse(args.server, &text)
        .map_err(|e| BadInput::msg(format!("{}: {e:#}", args.reply.display())))?;
    if args.stage.len() < MIN_KEY_PREFIX {
        return Err(BadInput::msg(format!(
            "`--stage {}`: give at least {MIN_KEY_PREFIX} characters of the key `rsfm submit` printed",
            args.stage
        )));
    }
    let (_, store) = open_store(results).await?;
    let stages = store
        .stages(&StageFilter {
            key_prefix: Some(args.stage.clone()),
            ..StageFilter::default()
        })
        .await?;
    let stage = match stages.as_slice() {
        [one] => one,
        [] => {
            return Err(BadInput::msg(format!(
                "no stage with key `{}` in {}",
                args.stage,
                store.path().display()
            )))
        }
        _ => {
            return Err(BadInput::msg(format!(
                "`{}` is the start of {} stage keys: give more of it",
                args.stage,
                stages.len()
            )))
        }
    };
    let submissions = store.submissions(&stage.key, args.server.name()).await?;
    let submission = submissions
        .iter()
        .find(|s| {
            args.archive
                .as_deref()
                .is_none_or(|sha| s.archive_sha256.starts_with(sha))
        })
        .ok_or_else(|| {
            BadInput::msg(format!(
                "stage {} ({}) has no {}archive for {}: `rsfm submit RECIPE {} --server {}` writes one",
                stage.name,
                short_key(&stage.key),
                args.archive
                    .as_deref()
                    .map(|a| format!("`{a}…` "))
                    .unwrap_or_default(),
                args.server.name(),
                stage.name,
                args.server.name()
            ))
        })?;
    let reply_path = std::path::absolute(&args.reply)?;
    let reply_sha256 = hex::encode(Sha256::digest(&bytes));
    store
        .ingest_reply(
            submission,
            &Reply {
                path: &reply_path.to_string_lossy(),
                sha256: &reply_sha256,
                scores: &scores,
            },
        )
        .await?;
    if json {
        let value = serde_json::json!({
            "stage": stage.name,
            "key": stage.key,
            "server": args.server.name(),
            "archive_sha256": submission.archive_sha256,
            "reply": reply_path,
            "reply_sha256": reply_sha256,
            "scores": scores
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                .collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (mean, value) = &scores[0];
    println!(
        "ingested {}: {mean} {:.2} and {} per-class scores, as test-server metrics of stage {} ({}), archive sha256 {}",
        args.reply.display(),
        100.0 * value,
        scores.len() - 1,
        stage.name,
        short_key(&stage.key),
        &submission.archive_sha256[..12]
    );
    Ok(ExitCode::SUCCESS)
}
