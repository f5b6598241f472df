//! Runs a stage's processes on this machine (one, or one per data-parallel rank): each in its
//! own process group, protocol events parsed from rank 0's stdout, all of stdout and stderr
//! appended to the stage log, SIGTERM then SIGKILL on interrupt or when a rank fails. Ranks that
//! exit with [`STOPPED_AT_CHECKPOINT`] end the stage [`ProcessEnd::Stopped`], as under Slurm.
//!
//! The stage ends when its processes exit. Children they leave behind (`server &`), which may
//! hold stdout open for ever, get [`DRAIN`] to close it; then whatever is left of the stage's
//! process groups is ended (SIGTERM, then SIGKILL after [`LEFTOVER_GRACE`]) and reported.

use std::process::Stdio;
use std::time::Duration;

use rsfm_model::dist::{free_port, RankEnv};
use rsfm_model::protocol::Event;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use super::bounded_lines::{next_line, Tail};
use super::{own_process_group, Finished, Invocation, ProcessEnd, STOPPED_AT_CHECKPOINT};
use crate::plan::PlannedStage;
use crate::recipe::{ErrorKind, RecipeError};

/// Time between SIGTERM and SIGKILL (`RSFM_KILL_GRACE_S` overrides; default 10 s).
fn kill_grace() -> Duration {
    std::env::var("RSFM_KILL_GRACE_S")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// How long the pipes may stay open after every rank exited (output still in flight).
const DRAIN: Duration = Duration::from_secs(1);
/// Time between SIGTERM and SIGKILL for the processes a stage left running.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// Refuses `stages` that ask for more than one node (`nodes = M`): this executor starts its
/// processes on this machine, so it names the recipe line and the backend that can run them.
pub fn refuse_multi_node<'a>(
    stages: impl IntoIterator<Item = &'a PlannedStage>,
) -> Result<(), RecipeError> {
    let Some(stage) = stages.into_iter().find(|s| s.stage.resources.nodes() > 1) else {
        return Ok(());
    };
    Err(RecipeError::at(
        ErrorKind::InvalidValue,
        stage.stage.location_of("nodes"),
        format!(
            "stage {} asks for `nodes = {}`, but the local backend runs every rank on this machine",
            stage.display_name(),
            stage.stage.resources.nodes()
        ),
    )
    .help("run it with `--backend slurm` (docs/slurm.md; `scripts/slurm-local.sh start DIR --nodes 2` makes a local cluster), or remove `nodes` to run its ranks here"))
}

/// One line a rank wrote.
struct RankLine {
    rank: usize,
    stderr: bool,
    text: String,
}

/// Runs `invocation` as `invocation.ranks` processes (data-parallel ranks with the rendezvous
/// variables on a free local port when there are several), calling `on_event` for every
/// protocol event on rank 0's stdout, until all exit, one fails (the others are then
/// stopped), the time limit passes, or `cancel` turns true.
pub async fn run(
    invocation: &Invocation,
    mut on_event: impl FnMut(Event),
    mut cancel: watch::Receiver<bool>,
) -> Finished {
    let fail = Finished::failure;
    if invocation.argv.is_empty() {
        return fail("empty argv".into());
    }
    let mut log = match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&invocation.log_path)
        .await
    {
        Ok(file) => file,
        Err(e) => {
            return fail(format!(
                "cannot open log {}: {e}",
                invocation.log_path.display()
            ))
        }
    };
    let ranks = invocation.ranks.max(1) as usize;
    let rendezvous = if ranks > 1 {
        match free_port() {
            Ok(port) => Some(port),
            Err(e) => {
                return fail(format!(
                    "no free port for the data-parallel rendezvous: {e}"
                ))
            }
        }
    } else {
        None
    };
    let (pids, mut exits, mut lines) = match spawn_ranks(invocation, ranks, rendezvous) {
        Ok(started) => started,
        Err(reason) => return fail(reason),
    };

    let mut tail = Tail::default();
    let mut lines_open = true;
    let deadline = invocation
        .time_limit
        .map(|limit| tokio::time::Instant::now() + limit);
    let mut stop_reason: Option<ProcessEnd> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut failure: Option<String> = None;
    // Whether a rank exited stopped at a resume checkpoint.
    let mut stopped = false;
    // Set once every rank has exited: the end of the wait for the pipes to close.
    let mut drain_until: Option<tokio::time::Instant> = None;

    while lines_open || !exits.is_empty() {
        tokio::select! {
            line = lines.recv(), if lines_open => match line {
                Some(RankLine { rank, stderr, text }) => {
                    // Every line goes to the log, protocol events included; ranks other than 0
                    // are marked.
                    let shown = if rank == 0 { text.clone() } else { format!("[rank {rank}] {text}") };
                    // Flushed line by line: the log shows a running stage's progress and keeps
                    // every line a crash would otherwise lose.
                    let _ = log.write_all(format!("{shown}\n").as_bytes()).await;
                    let _ = log.flush().await;
                    if stderr {
                        tail.push(&shown);
                    } else if rank == 0 {
                        if let Some(event) = Event::parse_line(&text) {
                            on_event(event);
                        }
                    }
                }
                None => lines_open = false,
            },
            Some(exit) = exits.join_next(), if !exits.is_empty() => {
                let problem = match rank_exit(exit) {
                    RankExit::Ok => None,
                    // Every rank stops at the same step; the others are left to exit alike.
                    RankExit::Stopped => {
                        stopped = true;
                        None
                    }
                    RankExit::Failed(rank, reason) => Some((rank, reason)),
                };
                if let Some((rank, reason)) = problem {
                    if failure.is_none() {
                        failure = Some(if ranks > 1 { format!("rank {rank} {reason}") } else { reason });
                    }
                    // The other ranks would wait for it in their next collective: stop them.
                    if ranks > 1 && kill_at.is_none() {
                        kill_at = Some(terminate(&pids));
                    }
                }
                if exits.is_empty() {
                    drain_until = Some(tokio::time::Instant::now() + DRAIN);
                }
            },
            _ = sleep_until(drain_until), if drain_until.is_some() => {
                // Output still in flight from exited processes is read to its end; a pipe held
                // open by their leftovers is not waited for.
                if !alive_groups(&pids).is_empty() {
                    break;
                }
                drain_until = None;
            }
            _ = cancel.changed(), if stop_reason.is_none() => {
                if *cancel.borrow() {
                    stop_reason = Some(ProcessEnd::Interrupted);
                    kill_at.get_or_insert_with(|| terminate(&pids));
                }
            }
            _ = sleep_until(deadline), if stop_reason.is_none() => {
                let limit = invocation.time_limit.unwrap_or_default();
                stop_reason = Some(ProcessEnd::Failure(format!("exceeded its time limit of {limit:?}")));
                kill_at.get_or_insert_with(|| terminate(&pids));
            }
            _ = sleep_until(kill_at), if kill_at.is_some() => {
                signal_all(&pids, libc::SIGKILL);
                kill_at = None;
            }
        }
    }
    let leftovers = end_leftovers(&pids).await;
    if let Some(note) = &leftovers {
        let _ = log.write_all(format!("rsfm: {note}\n").as_bytes()).await;
        let _ = log.flush().await;
    }
    let stderr_tail = tail.text();
    let end = match (stop_reason, failure) {
        (Some(reason), _) => reason,
        (None, Some(reason)) => ProcessEnd::Failure(reason),
        (None, None) if stopped => ProcessEnd::Stopped,
        (None, None) => ProcessEnd::Success,
    };
    Finished {
        end,
        stderr_tail,
        leftovers,
        run_s: None,
    }
}

/// The processes of one start of a stage: their pids, their exits as they come, and their
/// output lines.
type StartedRanks = (
    Vec<Option<i32>>,
    tokio::task::JoinSet<(usize, std::io::Result<std::process::ExitStatus>)>,
    tokio::sync::mpsc::UnboundedReceiver<RankLine>,
);

/// Starts `invocation` as `ranks` processes, each in its own process group, with the
/// rendezvous variables on `rendezvous` when there are several; on a failure to start one,
/// the ones started are killed and the reason returned.
fn spawn_ranks(
    invocation: &Invocation,
    ranks: usize,
    rendezvous: Option<u16>,
) -> Result<StartedRanks, String> {
    let Some((program, args)) = invocation.argv.split_first() else {
        return Err("empty argv".into());
    };
    let (line_tx, lines) = tokio::sync::mpsc::unbounded_channel::<RankLine>();
    let mut exits = tokio::task::JoinSet::new();
    let mut pids = Vec::with_capacity(ranks);
    for rank in 0..ranks {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&invocation.cwd)
            .envs(invocation.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(port) = rendezvous {
            command.envs(RankEnv::local_vars(rank, ranks, port));
        }
        own_process_group(&mut command, true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                signal_all(&pids, libc::SIGKILL);
                return Err(format!("cannot start `{program}`: {e}"));
            }
        };
        pids.push(child.id().map(|p| p as i32));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        forward_lines(rank, false, stdout, line_tx.clone());
        forward_lines(rank, true, stderr, line_tx.clone());
        exits.spawn(async move { (rank, child.wait().await) });
    }
    Ok((pids, exits, lines))
}

/// How one rank's process ended, as the run loop weighs it.
enum RankExit {
    /// Exit status 0.
    Ok,
    /// Stopped at a resume checkpoint ([`STOPPED_AT_CHECKPOINT`]).
    Stopped,
    /// Anything else: the rank and why.
    Failed(usize, String),
}

/// The [`RankExit`] of a joined rank task.
fn rank_exit(
    joined: Result<(usize, std::io::Result<std::process::ExitStatus>), tokio::task::JoinError>,
) -> RankExit {
    match joined {
        Ok((_, Ok(status))) if status.success() => RankExit::Ok,
        Ok((_, Ok(status))) if status.code() == Some(STOPPED_AT_CHECKPOINT) => RankExit::Stopped,
        Ok((rank, Ok(status))) => RankExit::Failed(rank, describe_exit(status)),
        Ok((rank, Err(e))) => RankExit::Failed(rank, format!("cannot wait for the process: {e}")),
        Err(e) => RankExit::Failed(0, format!("cannot wait for the process: {e}")),
    }
}

/// Ends what is left of the process groups of `pids` after their leaders exited (children
/// started in the background): SIGTERM, then SIGKILL after [`LEFTOVER_GRACE`]. Returns a note
/// for the user when there was anything to end.
async fn end_leftovers(pids: &[Option<i32>]) -> Option<String> {
    let groups = alive_groups(pids);
    if groups.is_empty() {
        return None;
    }
    let group_list = groups
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let groups: Vec<Option<i32>> = groups.into_iter().map(Some).collect();
    signal_all(&groups, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + LEFTOVER_GRACE;
    while !alive_groups(&groups).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let how = if alive_groups(&groups).is_empty() {
        "SIGTERM"
    } else {
        signal_all(&groups, libc::SIGKILL);
        "SIGKILL"
    };
    Some(format!(
        "the stage's process exited but left processes running in its process group {group_list} (started in the background?); they were ended with {how}, as every stage's leftovers are"
    ))
}

/// The process groups among `pids` (our ranks' groups) that still have members.
fn alive_groups(pids: &[Option<i32>]) -> Vec<i32> {
    pids.iter()
        .flatten()
        // SAFETY: signal 0 only checks that the group we created still has members.
        .filter(|&&pid| unsafe { libc::killpg(pid, 0) } == 0)
        .copied()
        .collect()
}

/// Sends the lines of `pipe` to `tx`, marked with the rank and stream they came from.
fn forward_lines(
    rank: usize,
    stderr: bool,
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tx: tokio::sync::mpsc::UnboundedSender<RankLine>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe);
        while let Some(text) = next_line(&mut reader).await {
            if tx.send(RankLine { rank, stderr, text }).is_err() {
                break;
            }
        }
    });
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// SIGTERM to the process groups of `pids`; returns when SIGKILL is due.
fn terminate(pids: &[Option<i32>]) -> tokio::time::Instant {
    signal_all(pids, libc::SIGTERM);
    tokio::time::Instant::now() + kill_grace()
}

/// Sends `signal` to the process group of each of `pids`.
fn signal_all(pids: &[Option<i32>], signal: i32) {
    for pid in pids.iter().flatten() {
        // SAFETY: signalling a process group we created.
        unsafe { libc::killpg(*pid, signal) };
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended abnormally".into(),
    }
}
