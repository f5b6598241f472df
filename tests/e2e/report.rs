//! `rsfm report` end to end: a tiny real study (two sizes × two fractions on synthetic LoveDA)
//! rendered in every format and loaded in headless Chromium; reported values read at report
//! time; cells from current keys only. And the paper study: planned whole, refused without its
//! datasets.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{repo_root, text, worker, Project};

/// The tiny study: its description carries markup that must stay text in the HTML.
pub const TINY: &str = r#"
[experiment]
name = "tiny-report"
description = "tiny <script>alert(1)</script> study"

[matrix]
model = ["vit-tiny", "vit-tiny-parallel"]
fraction = [0.5, 1.0]

[stage.loveda]
kind = "command"
matrix = []
argv = ["sh", "-c", "exec \"$RSFM_BIN\" synth loveda --out \"$1\" --images 6 --size 32 --seed 2", "sh", "{out}"]

[stage.finetune]
kind = "finetune-seg"
needs = ["loveda"]
dataset = "loveda"
format = "loveda"
model = "{model}"
fraction = "{fraction}"
image_size = 32
window_size = 2
head_channels = 16
steps = 2
batch_size = 2
lr = { value = 2e-3, source = "assumed: a high rate for two toy steps" }

[stage.evaluate]
kind = "evaluate"
needs = ["finetune", "loveda"]
dataset = "loveda"
format = "loveda"
"#;

/// The tables of `recipes/paper/tables/tables.toml` a LoveDA-only study can fill.
const TABLES: [&str; 5] = ["sizes", "loveda", "comparison", "efficiency", "claims"];

/// The tables it cannot fill: left out of every format, named once in `index.html`.
const LEFT_OUT: [&str; 3] = ["dota", "dior-r", "potsdam"];

/// A project with the tiny study, copies of the tiny presets and of the paper folder's
/// reported values and tables.
fn tiny_project() -> Project {
    let project = Project::new();
    for preset in ["vit-tiny", "vit-tiny-parallel"] {
        let text =
            std::fs::read_to_string(repo_root().join(format!("recipes/models/{preset}.toml")))
                .unwrap();
        project.write(&format!("recipes/models/{preset}.toml"), &text);
    }
    project.write("recipes/study/tiny.toml", TINY);
    project.copy_paper_folder();
    project
}

/// `rsfm report recipes/study --paper paper --out reports`; requires success.
fn report(project: &Project) {
    project.ok(&[
        "report",
        "recipes/study",
        "--paper",
        "paper",
        "--out",
        "reports",
    ]);
}

fn read(project: &Project, rel: &str) -> String {
    std::fs::read_to_string(project.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The Markdown row of `label` in `table`.
fn md_row(project: &Project, table: &str, label: &str) -> String {
    read(project, &format!("reports/{table}.md"))
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row `{label}` in {table}.md"))
        .to_string()
}

fn count(project: &Project, sql: &str) -> i64 {
    project.sql(sql)[0]["n"].as_i64().unwrap()
}

/// Chromium's flags for a quiet, offline, throwaway profile.
fn chromium(profile: &Path) -> Command {
    let found = ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let name = found.unwrap_or_else(|| {
        panic!("headless Chromium is needed for this test: install it (Debian: `apt-get install -y chromium`; CI installs it)")
    });
    let mut command = Command::new(name);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

#[test]
fn a_tiny_study_reports_current_results_in_every_format_and_loads_in_chromium() {
    let project = tiny_project();
    let run = project
        .command(&["run", "recipes/study", "--gpus", "none"])
        .env("RSFM_WORKER", worker())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "rsfm run failed: {}",
        text(&run.stderr)
    );
    report(&project);
    for table in TABLES {
        for ext in ["md", "tex", "csv"] {
            assert!(
                project.path(&format!("reports/{table}.{ext}")).is_file(),
                "{table}.{ext}"
            );
        }
    }
    for table in LEFT_OUT {
        for ext in ["md", "tex", "csv"] {
            assert!(
                !project.path(&format!("reports/{table}.{ext}")).exists(),
                "{table}.{ext}: no stage of the study can fill it"
            );
        }
    }
    // No folder of this machine in any format: recipe files relative to the project.
    let root = project.path("").canonicalize().unwrap();
    for file in ["loveda.md", "loveda.tex", "index.html"] {
        // minijinja's HTML escaping writes `/` as `&#x2f;`.
        let written = read(&project, &format!("reports/{file}")).replace("&#x2f;", "/");
        assert!(
            !written.contains(root.to_str().unwrap())
                && written.contains("recipes/study/tiny.toml"),
            "{file} names the recipe relative to the project"
        );
    }
    let asked = project.rsfm(&[
        "report",
        "recipes/study",
        "--paper",
        "paper",
        "--table",
        "dota",
    ]);
    assert_eq!(asked.status.code(), Some(2), "{}", text(&asked.stderr));
    assert!(text(&asked.stderr).contains("no stage of these recipes can fill"));
    let tex = read(&project, "reports/loveda.tex");
    assert!(
        tex.contains("\\toprule") && tex.contains("\\bottomrule"),
        "{tex}"
    );

    // Smoke scale: a banner, reproduced values, no verdict.
    let loveda = read(&project, "reports/loveda.md");
    assert!(loveda.contains("Smoke scale"), "{loveda}");
    assert!(!loveda.contains('✓') && !loveda.contains('✗'), "{loveda}");
    let miou = md_row(&project, "loveda", "mIoU");
    assert!(!miou.contains("| — · — |"), "every size ran: {miou}");
    let efficiency = md_row(&project, "efficiency", "LoveDA mIoU · vit-tiny (113.6K)");
    assert_eq!(
        efficiency.matches(" · —").count(),
        2,
        "both fractions ran: {efficiency}"
    );
    // Each table closes with the code that produced it: the worker build and its libtorch.
    let code = loveda
        .lines()
        .find(|l| l.starts_with("Recipes:"))
        .unwrap_or_default();
    assert!(
        code.contains("Code: rsfm-worker sources ") && code.contains("libtorch 2.11"),
        "{code}"
    );
    // The paper's claims, checked on the two sizes: a verdict with the pair it rests on.
    for claim in [
        "LoveDA mIoU grows with parameter count",
        "Larger models lose less LoveDA mIoU on a fraction of the training set",
    ] {
        let row = md_row(&project, "claims", claim);
        assert!(
            (row.contains("| held |") || row.contains("| not held |"))
                && row.contains("vit-tiny → vit-tiny-parallel: P(better) ")
                && row.contains("(n=1, 1)"),
            "{row}"
        );
    }
    let claims = read(&project, "reports/claims.md");
    assert!(
        !claims.contains("DOTA v2.0 mAP"),
        "claims about unscored datasets are left out: {claims}"
    );

    // Headless Chromium: no console message, every table and plot in the DOM, a screenshot.
    let index = project.path("reports/index.html");
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(
        !html.contains("<script")
            && !html.contains("<link")
            && !html.contains("src=")
            && !html.contains("href="),
        "offline, no scripts, nothing fetched"
    );
    let url = format!("file://{}", index.display());
    let dom = chromium(&project.path("chromium-dom"))
        .args(["--enable-logging=stderr", "--dump-dom", &url])
        .output()
        .unwrap();
    let (dom_text, log) = (text(&dom.stdout), text(&dom.stderr));
    assert!(dom.status.success(), "chromium failed: {log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("INFO:CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    for table in TABLES {
        assert!(
            dom_text.contains(&format!("<table id=\"table-{table}\"")),
            "table {table} missing from the DOM"
        );
    }
    for kind in ["scaling", "efficiency"] {
        assert!(
            dom_text.contains(&format!("id=\"plot-{kind}-loveda-miou\"")),
            "plot {kind}-loveda-miou missing"
        );
        for dataset in ["dota-map", "dior-r-map", "potsdam-oa"] {
            assert!(
                !dom_text.contains(&format!("id=\"plot-{kind}-{dataset}\"")),
                "plot {kind}-{dataset}: nothing scores it"
            );
        }
    }
    let left_out = dom_text
        .lines()
        .find(|l| l.contains("id=\"left-out\""))
        .unwrap_or_else(|| panic!("no left-out line in the DOM"));
    for table in LEFT_OUT {
        assert!(
            left_out.contains(&format!("<code>{table}</code>")),
            "{left_out}"
        );
    }
    assert!(
        dom_text.contains("tiny &lt;script&gt;alert(1)&lt;/script&gt; study"),
        "the description shows as text"
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("index.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot = chromium(&project.path("chromium-shot"))
        .args([
            "--window-size=1280,4000",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        text(&screenshot.stderr)
    );

    // A value added to reported.toml shows on the next report; no stage runs.
    let runs = count(&project, "SELECT count(*) AS n FROM stage_runs");
    assert!(
        md_row(&project, "loveda", "mIoU").contains("· — ⚠"),
        "nothing reported yet for vit-tiny"
    );
    let mut reported = read(&project, "paper/reported.toml");
    reported += "\n[[value]]\ndataset = \"loveda\"\nmetric = \"miou\"\nmodel = \"vit-tiny\"\nvalue = 42.5\nsource = \"paper: a test value\"\n";
    project.write("paper/reported.toml", &reported);
    report(&project);
    assert!(
        md_row(&project, "loveda", "mIoU").contains("· 42.50"),
        "{}",
        md_row(&project, "loveda", "mIoU")
    );
    assert_eq!(
        count(&project, "SELECT count(*) AS n FROM stage_runs"),
        runs,
        "no stage reran"
    );
    assert_eq!(
        count(
            &project,
            "SELECT count(*) AS n FROM reported WHERE row = 'vit-tiny' AND value = 42.5"
        ),
        1
    );

    // Cells come from current keys only: after an edit nobody ran, the old results stay in the
    // store but fill no cell.
    let stored = count(
        &project,
        "SELECT count(*) AS n FROM metrics WHERE name = 'miou'",
    );
    project.write(
        "recipes/study/tiny.toml",
        &TINY.replace("steps = 2", "steps = 3"),
    );
    report(&project);
    let miou = md_row(&project, "loveda", "mIoU");
    assert_eq!(
        miou.matches("| — · ").count(),
        2,
        "superseded runs fill no cell: {miou}"
    );
    assert_eq!(
        count(
            &project,
            "SELECT count(*) AS n FROM metrics WHERE name = 'miou'"
        ),
        stored
    );
    assert!(!read(&project, "reports/loveda.md").contains("Provenance:"));
}

#[test]
fn the_paper_study_plans_whole_and_refuses_to_run_without_its_datasets() {
    let project = Project::new();
    let paper = repo_root().join("recipes/paper");
    let paper = paper.to_str().unwrap();
    let without_data = |args: &[&str]| {
        let mut command = project.command(args);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("RSFM_DATA_")) {
            command.env_remove(name);
        }
        let missing = project.path("no-data");
        for name in ["MILLIONAID", "DOTA", "DIOR_R", "POTSDAM", "LOVEDA"] {
            command.env(format!("RSFM_DATA_{name}"), missing.join(name));
        }
        command.output().unwrap()
    };

    let plan = without_data(&["plan", paper, "--json", "--estimate", "--gpu", "a100"]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let plan: serde_json::Value = serde_json::from_str(&text(&plan.stdout)).unwrap();
    let stages = plan["stages"].as_array().unwrap();
    // 4 pretrainings, the Potsdam crops and the DOTA patches (LoveDA trains on whole images),
    // 4 datasets × 4 sizes × 4 fractions × (fine-tune + evaluate), and per size the test-server
    // protocol of DOTA and LoveDA (train + val fine-tune, test prediction).
    assert_eq!(stages.len(), 4 + 2 + 4 * 4 * 4 * 2 + 2 * 4 * 2);
    assert!(stages.iter().all(|s| s["status"] == "no-data"));
    let estimate = &plan["estimate"];
    assert_eq!(
        estimate["stages"].as_array().unwrap().len(),
        4 + 4 * 4 * 4 + 2 * 4
    );
    assert!(estimate["total_gpu_hours"].as_f64().unwrap() > 0.0);

    let run = without_data(&["run", paper, "--gpus", "none"]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    for expected in [
        "dataset `dota`",
        "RSFM_DATA_DOTA=/path",
        "--data dota=/path",
        "train/labelTxt",
        "nothing was run",
    ] {
        assert!(stderr.contains(expected), "`{expected}` not in: {stderr}");
    }
    assert_eq!(count(&project, "SELECT count(*) AS n FROM stages"), 0);

    std::fs::create_dir_all(project.path("dota/train/images")).unwrap();
    let dota = format!("dota={}", project.path("dota").display());
    let run = without_data(&["run", paper, "--gpus", "none", "--data", &dota]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has no `train/labelTxt`"), "{stderr}");
}

/// The tiny study cut to one size and one fraction, over two learning rates, one seed each.
fn sweep() -> String {
    TINY.replace("name = \"tiny-report\"", "name = \"lr-sweep\"")
        .replace(
            "model = [\"vit-tiny\", \"vit-tiny-parallel\"]\nfraction = [0.5, 1.0]",
            "lr = [1e-3, 3e-3]",
        )
        .replace(
            "model = \"{model}\"\nfraction = \"{fraction}\"",
            "model = \"vit-tiny\"",
        )
        .replace(
            "lr = { value = 2e-3, source = \"assumed: a high rate for two toy steps\" }",
            "lr = \"{lr}\"",
        )
}

#[test]
fn a_learning_rate_sweep_is_never_averaged_as_seeds() {
    let project = tiny_project();
    std::fs::remove_file(project.path("recipes/study/tiny.toml")).unwrap();
    let sweep = sweep();
    assert!(sweep.contains("lr = [1e-3, 3e-3]") && sweep.contains("lr = \"{lr}\""));
    project.write("recipes/study/sweep.toml", &sweep);
    let run = project
        .command(&["run", "recipes/study", "--gpus", "none"])
        .env("RSFM_WORKER", worker())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    // Each evaluation's rows say what they scored and how; `--where` filters on it.
    let rows: serde_json::Value = serde_json::from_str(&project.ok(&[
        "results",
        "--where",
        "split = 'val' and metric = 'miou'",
        "--format",
        "json",
    ]))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r["protocol"] == "flip=false"),
        "{rows:?}"
    );
    report(&project);
    let miou = md_row(&project, "loveda", "mIoU");
    assert!(
        miou.contains("not averaged: lr differs (0.001, 0.003)"),
        "{miou}"
    );
    assert!(
        !miou.contains('±'),
        "two learning rates are not two seeds: {miou}"
    );
}
