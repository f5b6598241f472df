//! Runs a stage's processes on this machine (one, or one per data-parallel rank): each in its
//! own process group, protocol events parsed from rank 0's stdout, all of stdout and stderr
//! appended to the stage log, SIGTERM then SIGKILL on interrupt or when a rank fails.

use std::process::Stdio;
use std::time::Duration;

use rsfm_model::dist::{free_port, RankEnv};
use rsfm_model::protocol::Event;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use super::bounded_lines::{next_line, Tail};
use super::{own_process_group, Finished, Invocation, ProcessEnd};

/// Time between SIGTERM and SIGKILL (`RSFM_KILL_GRACE_S` overrides; default 10 s).
fn kill_grace() -> Duration {
    std::env::var("RSFM_KILL_GRACE_S")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
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
    let Some((program, args)) = invocation.argv.split_first() else {
        return fail("empty argv".into());
    };
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
    let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<RankLine>();
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
                return fail(format!("cannot start `{program}`: {e}"));
            }
        };
        pids.push(child.id().map(|p| p as i32));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        forward_lines(rank, false, stdout, line_tx.clone());
        forward_lines(rank, true, stderr, line_tx.clone());
        exits.spawn(async move { (rank, child.wait().await) });
    }
    drop(line_tx);

    let mut tail = Tail::default();
    let mut lines_open = true;
    let deadline = invocation
        .time_limit
        .map(|limit| tokio::time::Instant::now() + limit);
    let mut stop_reason: Option<ProcessEnd> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut failure: Option<String> = None;

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
                let problem = match exit {
                    Ok((_, Ok(status))) if status.success() => None,
                    Ok((rank, Ok(status))) => Some((rank, describe_exit(status))),
                    Ok((rank, Err(e))) => Some((rank, format!("cannot wait for the process: {e}"))),
                    Err(e) => Some((0, format!("cannot wait for the process: {e}"))),
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
            },
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
    let stderr_tail = tail.text();
    let end = match (stop_reason, failure) {
        (Some(reason), _) => reason,
        (None, Some(reason)) => ProcessEnd::Failure(reason),
        (None, None) => ProcessEnd::Success,
    };
    Finished { end, stderr_tail }
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
