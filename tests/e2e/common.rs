//! Helpers for the end-to-end tests: run the built `rsfm` binary against temp results dirs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temp project: a folder for recipes and a results dir.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A project holding `files` (`(path, text)`, e.g. a recipe's scripts) and the recipe
    /// `text` at `recipe`; returns the project and the recipe's path.
    pub fn with_recipe(recipe: &str, text: &str, files: &[(&str, &str)]) -> (Project, PathBuf) {
        let project = Project::new();
        for (path, contents) in files {
            project.write(path, contents);
        }
        let recipe = project.write(recipe, text);
        (project, recipe)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    /// Writes a file (creating parent folders).
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `rsfm --results <results> ARGS...` run in the project folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rsfm"));
        cmd.arg("--results")
            .arg(self.results())
            .args(args)
            .current_dir(self.dir.path());
        cmd.env_remove("RSFM_RESULTS").env("RSFM_KILL_GRACE_S", "2");
        cmd
    }

    pub fn rsfm(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("rsfm runs")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.rsfm(args);
        assert!(
            out.status.success(),
            "rsfm {args:?} failed: {}\n{}",
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `rsfm run RECIPE --json --gpus none` and its summary.
    pub fn run_json(&self, recipe: &Path, extra: &[&str]) -> serde_json::Value {
        let recipe = recipe.to_str().unwrap();
        let mut args = vec!["run", recipe, "--json", "--gpus", "none"];
        args.extend_from_slice(extra);
        let stdout = self.ok(&args);
        last_json_line(&stdout)
    }

    /// `rsfm plan RECIPE --json`: the stages with their names and keys.
    pub fn plan(&self, recipe: &Path) -> serde_json::Value {
        let stdout = self.ok(&["plan", recipe.to_str().unwrap(), "--json"]);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("plan output is not JSON ({e}): {stdout}"))
    }

    /// The key of the stage `name` in the plan of `recipe`.
    pub fn stage_key(&self, recipe: &Path, name: &str) -> String {
        let plan = self.plan(recipe);
        let stage = plan["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no stage {name} in {plan}"));
        stage["key"].as_str().unwrap().to_string()
    }

    /// The cache entry folder of the stage key `key`.
    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.results().join("cache").join(&key[..2]).join(key)
    }

    /// The final value (no step) of metric `name` of the stage named `stage`; exactly one.
    pub fn metric(&self, stage: &str, name: &str) -> f64 {
        let rows = self.sql(&format!(
            "SELECT m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
             WHERE s.name = '{stage}' AND m.name = '{name}' AND m.step IS NULL"
        ));
        assert_eq!(rows.len(), 1, "{stage}.{name}: {rows:?}");
        rows[0]["value"].as_f64().expect("a number")
    }

    /// Copies the paper folder's reported values, claims and tables into `paper/`, for
    /// `rsfm report … --paper paper`.
    pub fn copy_paper_folder(&self) {
        self.copy_paper_folder_to("paper");
    }

    /// Copies the paper folder's reported values, claims and tables into `dest`.
    pub fn copy_paper_folder_to(&self, dest: &str) {
        let paper = repo_root().join("recipes/paper");
        for file in ["reported.toml", "claims.toml"] {
            let text = std::fs::read_to_string(paper.join(file)).unwrap();
            self.write(&format!("{dest}/{file}"), &text);
        }
        for entry in std::fs::read_dir(paper.join("tables")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            self.write(
                &format!("{dest}/tables/{name}"),
                &std::fs::read_to_string(&path).unwrap(),
            );
        }
    }

    /// The final metrics of stage `name`, by metric name (NaN stored as null).
    pub fn final_metrics(&self, name: &str) -> Vec<(String, Option<f64>)> {
        self.sql(&format!(
            "SELECT m.name, m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
             WHERE s.name = '{name}' AND m.step IS NULL ORDER BY m.name"
        ))
        .iter()
        .map(|row| {
            (
                row["name"].as_str().unwrap().to_string(),
                row["value"].as_f64(),
            )
        })
        .collect()
    }

    /// Rows of `rsfm sql QUERY --json` as objects keyed by column.
    pub fn sql(&self, query: &str) -> Vec<serde_json::Value> {
        let stdout = self.ok(&["sql", query, "--json"]);
        let table: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("sql output is not JSON ({e}): {stdout}"));
        let columns = table["columns"].as_array().expect("columns");
        table["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| {
                let cells = row.as_array().expect("row");
                let object = columns
                    .iter()
                    .zip(cells)
                    .map(|(c, v)| (c.as_str().unwrap().to_string(), v.clone()));
                serde_json::Value::Object(object.collect())
            })
            .collect()
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn last_json_line(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {stdout}"));
    serde_json::from_str(line).unwrap()
}

/// Repository root (for recipes shipped with rsfm).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `rsfm-worker` beside the `rsfm` under test (built there by `make test`, whatever the target
/// dir), or a failure saying how to build it.
pub fn worker() -> PathBuf {
    let worker = PathBuf::from(env!("CARGO_BIN_EXE_rsfm")).with_file_name("rsfm-worker");
    assert!(
        worker.is_file(),
        "{} is missing: build it with `make worker` (cargo build -p rsfm-model --features torch --bin rsfm-worker)",
        worker.display()
    );
    worker
}
