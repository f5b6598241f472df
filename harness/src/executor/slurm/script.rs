//! The batch script of a stage's Slurm job: the local executor's command line, environment and
//! working directory, with the command `exec`ed so that Slurm's signals reach it directly. A
//! data-parallel stage (`ranks > 1`, on one node or several) `exec`s `srun`, which starts one
//! task per rank; each task takes PyTorch's rendezvous variables from Slurm's own
//! ([`rank_setup`], [`rank_launcher`]).

use super::super::Invocation;

/// First port of the range the rendezvous port is taken from (see [`rank_setup`]).
pub(crate) const MASTER_PORT_BASE: u32 = 20_000;
/// Size of that range: ports `MASTER_PORT_BASE .. MASTER_PORT_BASE + MASTER_PORT_SPAN`.
pub(crate) const MASTER_PORT_SPAN: u32 = 10_000;

/// The script `sbatch` runs for `invocation` (`label` names the stage in a comment).
pub(crate) fn batch_script(invocation: &Invocation, label: &str) -> String {
    let mut script = String::from("#!/bin/sh\n");
    script.push_str(&format!(
        "# rsfm stage {label}: the command line `rsfm run --backend local` runs.\n"
    ));
    script.push_str(&format!(
        "cd {} || exit 1\n",
        shell_quote(&invocation.cwd.display().to_string())
    ));
    for (name, value) in &invocation.env {
        script.push_str(&format!("export {name}={}\n", shell_quote(value)));
    }
    let argv: Vec<String> = invocation.argv.iter().map(|a| shell_quote(a)).collect();
    let launcher = if invocation.ranks > 1 {
        script.push_str(&rank_setup(invocation.ranks));
        rank_launcher(invocation.ranks)
    } else {
        String::new()
    };
    script.push_str(&format!("exec {launcher}{}\n", argv.join(" ")));
    script
}

/// The lines before `exec srun ... ARGV` (see [`rank_launcher`]) that export the rendezvous
/// address of a `ranks`-task job.
///
/// - `MASTER_ADDR`: the address Slurm reaches the job's first node at (its `NodeAddr`, else its
///   name). Tasks are laid out in blocks, so rank 0 (`SLURM_PROCID` 0) runs there.
/// - `MASTER_PORT`: `20000 + job id mod 10000`. It needs no free-port search on a node the
///   script may not run on, every rank computes the same value, a requeued job keeps it, and
///   it stays below Linux's ephemeral range (32768 and up) where outgoing connections take
///   their ports. Two jobs on one node share it only when their ids differ by a multiple of
///   10000.
fn rank_setup(ranks: u32) -> String {
    format!(
        "# {ranks} data-parallel ranks, one srun task each; rank 0 runs on the first node.\n\
         first_node=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\n\
         MASTER_ADDR=$(scontrol show node \"$first_node\" | sed -n 's/.*NodeAddr=\\([^ ]*\\).*/\\1/p')\n\
         MASTER_ADDR=${{MASTER_ADDR:-$first_node}}\n\
         MASTER_PORT=$(({MASTER_PORT_BASE} + SLURM_JOB_ID % {MASTER_PORT_SPAN}))\n\
         export MASTER_ADDR MASTER_PORT\n"
    )
}

/// The words before the command that start it as `ranks` `srun` tasks (laid out over the
/// job's nodes as `--ntasks-per-node` says), each with `RANK`, `WORLD_SIZE` and `LOCAL_RANK`
/// from `SLURM_PROCID`, `SLURM_NTASKS` and `SLURM_LOCALID`, and torchrun's `LOCAL_WORLD_SIZE`
/// and `GROUP_RANK` (the node's index) from `SLURM_NNODES` and `SLURM_NODEID` (a `sh -c`
/// wrapper sets them, then `exec`s the command).
///
/// `srun` exits with the highest exit status of its tasks, so ranks that all stop at a
/// checkpoint (status 3) make the job end with 3. It is not given `--kill-on-bad-exit`, which
/// would kill the other ranks as soon as the first one exits 3 and turn that status into a
/// signal's; a rank that fails ends the others through their next collective instead (the
/// peer's connection closes, or the collective times out).
fn rank_launcher(ranks: u32) -> String {
    format!(
        "srun --ntasks={ranks} sh -c \
         'RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID; \
         LOCAL_WORLD_SIZE=$((SLURM_NTASKS / SLURM_NNODES)) GROUP_RANK=$SLURM_NODEID; \
         export RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE GROUP_RANK; exec \"$@\"' rsfm-rank "
    )
}

/// `text` as one single-quoted shell word.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn invocation(argv: &[&str], cwd: &Path, ranks: u32) -> Invocation {
        Invocation {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            cwd: cwd.to_path_buf(),
            env: vec![("RSFM_DEVICE".into(), "cpu".into())],
            log_path: PathBuf::from("/r/work/k/stage.log"),
            time_limit: None,
            ranks,
        }
    }

    #[test]
    fn the_script_runs_the_exact_argv_in_the_stage_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("my recipes");
        std::fs::create_dir(&cwd).unwrap();
        let script = batch_script(
            &invocation(&["sh", "-c", "echo \"$1\" 'it''s'"], &cwd, 1),
            "example/generate@1",
        );
        let path = dir.path().join("job.sh");
        std::fs::write(&path, &script).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}");
        // `sh -c SCRIPT` with no further words: `$1` is empty.
        assert_eq!(String::from_utf8_lossy(&out.stdout), " its\n");
        assert!(script.contains("export RSFM_DEVICE='cpu'\n"));
        assert!(!script.contains("srun"), "{script}");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }

    /// Writes an executable shell script `name` into `dir`.
    fn tool(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn each_rank_gets_the_rendezvous_variables_from_slurms_own() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // Stand-ins for Slurm's clients, enough to see what the script asks of them: `srun`
        // runs its command once per task with the variables Slurm gives a task.
        tool(
            &bin,
            "scontrol",
            "case $2 in hostnames) echo node7; echo node8 ;; node) echo \"NodeName=$3 Arch=x86_64\"; echo \"   NodeAddr=10.0.0.7 NodeHostName=$3\" ;; esac\n",
        );
        tool(
            &bin,
            "srun",
            "n=${1#--ntasks=}; shift; i=0; while [ $i -lt $n ]; do SLURM_PROCID=$i SLURM_NTASKS=$n SLURM_LOCALID=$((i % 2)) SLURM_NNODES=$((n / 2)) SLURM_NODEID=$((i / 2)) \"$@\" || exit; i=$((i + 1)); done\n",
        );
        let argv = [
            "sh",
            "-c",
            "echo \"$RANK/$WORLD_SIZE/$LOCAL_RANK/$LOCAL_WORLD_SIZE/$GROUP_RANK $MASTER_ADDR:$MASTER_PORT $1\"",
            "sh",
            "it's",
        ];
        // Two nodes of two ranks each.
        let script = batch_script(&invocation(&argv, dir.path(), 4), "ddp/pretrain");
        assert!(script.contains("exec srun --ntasks=4 sh -c "), "{script}");
        let path = dir.path().join("job.sh");
        std::fs::write(&path, &script).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&path)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("SLURM_JOB_NODELIST", "node[7-8]")
            .env("SLURM_JOB_ID", "123456")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "0/4/0/2/0 10.0.0.7:23456 it's\n1/4/1/2/0 10.0.0.7:23456 it's\n\
             2/4/0/2/1 10.0.0.7:23456 it's\n3/4/1/2/1 10.0.0.7:23456 it's\n"
        );
    }
}
