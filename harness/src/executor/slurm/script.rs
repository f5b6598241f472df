//! The batch script of a stage's Slurm job: the local executor's command line, environment and
//! working directory, with the command `exec`ed so that Slurm's signals reach it directly.

use super::super::Invocation;

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
    script.push_str(&format!("exec {}\n", argv.join(" ")));
    script
}

/// `text` as one single-quoted shell word.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_script_runs_the_exact_argv_in_the_stage_dir() {
        let invocation = Invocation {
            argv: vec!["sh".into(), "-c".into(), "echo \"$1\" 'it''s'".into()],
            cwd: PathBuf::from("/data/my recipes"),
            env: vec![("RSFM_DEVICE".into(), "cpu".into())],
            log_path: PathBuf::from("/r/work/k/stage.log"),
            time_limit: None,
            ranks: 1,
        };
        let script = batch_script(&invocation, "example/generate@1");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.sh");
        let script = script.replace("/data/my recipes", &dir.path().display().to_string());
        std::fs::write(&path, &script).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}");
        // `sh -c SCRIPT` with no further words: `$1` is empty.
        assert_eq!(String::from_utf8_lossy(&out.stdout), " its\n");
        assert!(script.contains("export RSFM_DEVICE='cpu'\n"));
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
