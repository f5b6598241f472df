//! Runs a stage's process on this machine: its own process group, protocol events parsed from
//! stdout, all of stdout and stderr appended to the stage log, SIGTERM then SIGKILL on interrupt.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Duration;

use rsfm_model::protocol::Event;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use super::{own_process_group, Finished, Invocation, ProcessEnd};

/// Lines of stderr kept for the database when a stage fails.
pub const STDERR_TAIL_LINES: usize = 40;

/// Time between SIGTERM and SIGKILL (`RSFM_KILL_GRACE_S` overrides; default 10 s).
fn kill_grace() -> Duration {
    std::env::var("RSFM_KILL_GRACE_S")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// Runs `invocation`, calling `on_event` for every protocol event on stdout, until it exits,
/// times out, or `cancel` turns true.
pub async fn run(
    invocation: &Invocation,
    mut on_event: impl FnMut(Event),
    mut cancel: watch::Receiver<bool>,
) -> Finished {
    let fail = Finished::failure;
    let Some((program, args)) = invocation.argv.split_first() else {
        return fail("empty argv".into());
    };
    let log = match tokio::fs::OpenOptions::new()
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
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&invocation.cwd)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    own_process_group(&mut command, true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return fail(format!("cannot start `{program}`: {e}")),
    };
    let pid = child.id().map(|p| p as i32);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut log = tokio::io::BufWriter::new(log);
    let mut out_lines = BufReader::new(stdout).lines();
    let mut err_lines = BufReader::new(stderr).lines();
    let mut tail: VecDeque<String> = VecDeque::with_capacity(STDERR_TAIL_LINES);
    let (mut out_open, mut err_open) = (true, true);
    let deadline = invocation
        .time_limit
        .map(|limit| tokio::time::Instant::now() + limit);
    let mut stop_reason: Option<ProcessEnd> = None;

    while out_open || err_open {
        tokio::select! {
            line = out_lines.next_line(), if out_open => match line {
                Ok(Some(line)) => {
                    // Every stdout line goes to the log, protocol events included.
                    let _ = log.write_all(format!("{line}\n").as_bytes()).await;
                    if let Some(event) = Event::parse_line(&line) {
                        on_event(event);
                    }
                }
                _ => out_open = false,
            },
            line = err_lines.next_line(), if err_open => match line {
                Ok(Some(line)) => {
                    let _ = log.write_all(format!("{line}\n").as_bytes()).await;
                    if tail.len() == STDERR_TAIL_LINES { tail.pop_front(); }
                    tail.push_back(line);
                }
                _ => err_open = false,
            },
            _ = cancel.changed(), if stop_reason.is_none() => {
                if *cancel.borrow() {
                    stop_reason = Some(ProcessEnd::Interrupted);
                    terminate(pid, &mut child).await;
                }
            }
            _ = sleep_until(deadline), if stop_reason.is_none() => {
                let limit = invocation.time_limit.unwrap_or_default();
                stop_reason = Some(ProcessEnd::Failure(format!("exceeded its time limit of {limit:?}")));
                terminate(pid, &mut child).await;
            }
        }
    }
    let status = child.wait().await;
    let _ = log.flush().await;
    let stderr_tail = Vec::from(tail).join("\n");
    let end = match (stop_reason, status) {
        (Some(reason), _) => reason,
        (None, Ok(status)) if status.success() => ProcessEnd::Success,
        (None, Ok(status)) => ProcessEnd::Failure(describe_exit(status)),
        (None, Err(e)) => ProcessEnd::Failure(format!("cannot wait for the process: {e}")),
    };
    Finished { end, stderr_tail }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// SIGTERM to the process group, then SIGKILL after the grace period.
async fn terminate(pid: Option<i32>, child: &mut tokio::process::Child) {
    let Some(pid) = pid else { return };
    // SAFETY: signalling a process group we created.
    unsafe { libc::killpg(pid, libc::SIGTERM) };
    if tokio::time::timeout(kill_grace(), child.wait())
        .await
        .is_err()
    {
        // SAFETY: as above.
        unsafe { libc::killpg(pid, libc::SIGKILL) };
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
