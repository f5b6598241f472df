//! Submission of a detached run: every pending stage of the plan, in plan order (each after the
//! stages it needs), one `sbatch` each with `--dependency=afterok:…` on the jobs of the stages it
//! needs that this run submits, and `--kill-on-invalid-dep=yes`, so that Slurm cancels the
//! dependents of a job that fails. Cached stages are not submitted; their entries are inputs.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::super::commands;
use super::super::script::{batch_script, shell_quote};
use super::super::settings::SlurmSettings;
use super::super::states::JobId;
use super::spec::{write_json, JobSpec, JOB_END_FILE, JOB_SPEC_FILE, STARTS_FILE};
use crate::executor::command_line::StagePaths;
use crate::executor::launch::{stage_inputs, Launch};
use crate::executor::Placement;
use crate::plan::Plan;
use crate::scheduler::lineage::Lineage;
use crate::scheduler::stage_task::{stage_json, stage_record};
use crate::scheduler::{is_forced, RunContext};
use crate::store::{DetachedJob, QUEUED};

/// What a detached submission did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Submitted {
    /// The run id (`rsfm status RUN`, `rsfm cancel RUN`).
    pub run: String,
    /// The stages submitted, with their job ids, in submission order.
    pub jobs: Vec<(String, JobId)>,
    /// Stages found in the cache (not submitted).
    pub cached: usize,
    /// Seconds from the first `sbatch` to the last.
    pub submit_s: f64,
}

/// Submits the pending stages of `plan` (and those `force` names) as detached run `run` of
/// `ctx`'s invocation and records each job in the store as soon as Slurm accepted it.
pub async fn submit(
    plan: &Plan,
    ctx: &RunContext,
    settings: &SlurmSettings,
    force: &[String],
    run: &str,
) -> anyhow::Result<Submitted> {
    ctx.store
        .record_detached_run(run, ctx.invocation_id)
        .await?;
    let started = Instant::now();
    let mut job_of_key: HashMap<&str, JobId> = HashMap::new();
    let mut submitted = Submitted {
        run: run.to_string(),
        jobs: Vec::new(),
        cached: 0,
        submit_s: 0.0,
    };
    for (i, planned) in plan.stages.iter().enumerate() {
        let key = planned.key.key.as_str();
        if job_of_key.contains_key(key) {
            continue;
        }
        if planned.cached && !is_forced(planned, force) {
            submitted.cached += 1;
            continue;
        }
        let needs: Vec<&str> = planned
            .needs
            .iter()
            .map(|&j| plan.stages[j].key.key.as_str())
            .collect();
        let after: Vec<JobId> = needs
            .iter()
            .filter_map(|k| job_of_key.get(k).copied())
            .collect();
        let work = ctx.results_dir.join("work").join(key);
        fs_err::create_dir_all(&work)?;
        let job = prepare(plan, i, ctx, &work)?;
        if !submitted.jobs.is_empty() {
            tokio::time::sleep(settings.submit_interval()).await;
        }
        let mut flags = vec![
            format!("--job-name={}:{run}", planned.display_name()),
            format!("--output={}", work.join("stage.log").display()),
            "--open-mode=append".to_string(),
            "--requeue".to_string(),
        ];
        if !after.is_empty() {
            let ids: Vec<String> = after.iter().map(JobId::to_string).collect();
            flags.push(format!("--dependency=afterok:{}", ids.join(":")));
            flags.push("--kill-on-invalid-dep=yes".to_string());
        }
        flags.extend(settings.stage_flags(planned).into_iter().map(|f| f.flag));
        let job_id = commands::sbatch(&flags, &job.script)
            .await
            .with_context(|| {
                format!(
                "submitting {} ({} jobs of run {run} are queued: `rsfm cancel {run}` cancels them)",
                planned.display_name(),
                submitted.jobs.len()
            )
            })?;
        let record = DetachedJob {
            run_id: run.to_string(),
            position: submitted.jobs.len() as i64,
            stage_key: key.to_string(),
            stage: planned.display_name(),
            job_id,
            needs: needs.iter().map(|k| k.to_string()).collect(),
            work_dir: work.display().to_string(),
            log_offset: job.log_offset,
            record: job.record,
            state: QUEUED.to_string(),
            reason: None,
        };
        ctx.store.record_detached_job(&record).await?;
        job_of_key.insert(key, job_id);
        submitted.jobs.push((planned.display_name(), job_id));
    }
    submitted.submit_s = started.elapsed().as_secs_f64();
    Ok(submitted)
}

/// The files of one stage's detached job, written into its work dir.
struct PreparedJob {
    /// `slurm-job.sh`, the script to submit.
    script: std::path::PathBuf,
    /// The stage log's length now.
    log_offset: u64,
    /// The stage's store record, as JSON.
    record: String,
}

/// Writes the stage script (the command line of `rsfm run --backend slurm`), the job spec and the
/// job script of stage `i` into `work`.
fn prepare(plan: &Plan, i: usize, ctx: &RunContext, work: &Path) -> anyhow::Result<PreparedJob> {
    let planned = &plan.stages[i];
    // A new job: what an earlier job of the key left says nothing about it.
    for stale in [JOB_END_FILE, STARTS_FILE] {
        let _ = std::fs::remove_file(work.join(stale));
    }
    let inputs = stage_inputs(plan, i, &ctx.cache);
    let resources = &planned.stage.resources;
    let placement = Placement::on_cluster(resources.gpus);
    let log = work.join("stage.log");
    let launch = Launch {
        planned,
        paths: StagePaths {
            out: work.join("build"),
            work: work.to_path_buf(),
            inputs: inputs.clone(),
        },
        placement,
        // One CPU per task unless the site's flags give more: Slurm's default allocation.
        cpu_threads: 1,
        log_path: log.clone(),
    };
    let invocation = launch.invocation(&ctx.worker)?;
    let label = planned.display_name();
    let stage_script = work.join("slurm-stage.sh");
    fs_err::write(&stage_script, batch_script(&invocation, &label))?;
    let spec = JobSpec {
        results_dir: ctx.results_dir.clone(),
        label: label.clone(),
        key: planned.key.clone(),
        stage_name: planned.stage.name.clone(),
        stage_json: stage_json(planned),
        resolved_recipe: crate::plan::replay::resolved_recipe(plan, i),
        inputs,
        out: launch.paths.out.clone(),
        log: log.clone(),
        stage_script,
        device: launch.placement.device.clone(),
    };
    let spec_path = work.join(JOB_SPEC_FILE);
    write_json(&spec_path, &spec)?;
    let rsfm = std::env::current_exe().context("cannot find the rsfm executable")?;
    let script = work.join("slurm-job.sh");
    fs_err::write(
        &script,
        format!(
            "#!/bin/sh\n# rsfm detached stage {label}: runs slurm-stage.sh, then commits its cache entry.\n\
             exec {} --results {} stage-job {}\n",
            shell_quote(&rsfm.display().to_string()),
            shell_quote(&ctx.results_dir.display().to_string()),
            shell_quote(&spec_path.display().to_string()),
        ),
    )?;
    let record = stage_record(
        ctx,
        planned,
        &Lineage::of(plan, i),
        &launch.placement.device,
        work,
        &log,
    );
    Ok(PreparedJob {
        script,
        log_offset: std::fs::metadata(&log).map_or(0, |m| m.len()),
        record: serde_json::to_string(&record)?,
    })
}
