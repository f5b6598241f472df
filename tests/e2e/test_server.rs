//! The evaluation servers' round trip at toy scale, in a project whose `recipes/paper/` holds a
//! tiny study (so the report gives verdicts) and whose `vit-2.4b` preset is a stand-in of
//! vit-tiny's size: DOTA v2.0 and LoveDA models trained on train + val, their hidden-label test
//! images predicted, `rsfm submit` archives checked as each server reads them, a hand-made
//! server reply per seed read back by `rsfm ingest`, and the paper's test-server cell filled
//! with a verdict, where before only a val number stood beside it, with none.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;

use crate::common::{repo_root, text, worker, Project};

const STUDY: &str = r#"
[experiment]
name = "server-round-trip"

[matrix]
model = ["vit-2.4b"]
seed = [0, 1]

[stage.dota]
kind = "prepare"
matrix = []
op = "synth-dota"
images = 5
size = 128
test_images = 3
seed = 3

[stage.det]
kind = "finetune-det"
needs = ["dota"]
dataset = "dota"
format = "dota"
version = "v2.0"
trainval = true
model = "{model}"
seed = "{seed}"
image_size = 128
window_size = 8
channels = 16
fc_dim = 32
rpn_pre_nms = 100
rpn_post_nms = 32
rpn_batch = 32
roi_batch = 16
steps = 2
batch_size = 2

[stage.score]
kind = "evaluate"
needs = ["det", "dota"]
dataset = "dota"
format = "dota"
version = "v2.0"

[stage.test]
kind = "evaluate"
needs = ["det", "dota"]
dataset = "dota"
format = "dota"
version = "v2.0"
split = "test"

[stage.loveda]
kind = "prepare"
matrix = []
op = "synth-loveda"
images = 4
size = 32
test_images = 2
seed = 4

[stage.seg]
kind = "finetune-seg"
matrix = ["model"]
needs = ["loveda"]
dataset = "loveda"
format = "loveda"
trainval = true
model = "{model}"
image_size = 32
window_size = 2
head_channels = 16
steps = 2
batch_size = 2

[stage.test-seg]
kind = "evaluate"
matrix = ["model"]
needs = ["seg", "loveda"]
dataset = "loveda"
format = "loveda"
split = "test"
"#;

fn project() -> Project {
    let project = Project::new();
    let tiny = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write(
        "recipes/models/vit-2.4b.toml",
        &tiny.replace("name = \"vit-tiny\"", "name = \"vit-2.4b\""),
    );
    project.copy_paper_folder_to("recipes/paper");
    project.write("recipes/paper/study.toml", STUDY);
    project
}

fn json(project: &Project, args: &[&str]) -> serde_json::Value {
    let stdout = project.ok(args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The files of the zip at `path`: name → bytes.
fn unzip(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            (file.name().to_string(), bytes)
        })
        .collect()
}

/// A single-channel 8-bit PNG's (width, height, pixels).
fn gray_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The Markdown row of `label` in the report's `table`.
fn md_row(project: &Project, table: &str, label: &str) -> String {
    std::fs::read_to_string(project.path(&format!("reports/{table}.md")))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row `{label}` in {table}.md"))
        .to_string()
}

fn report(project: &Project) {
    project.ok(&["report", "recipes/paper", "--out", "reports"]);
}

#[test]
fn test_predictions_go_to_the_servers_and_their_scores_fill_the_test_server_cells() {
    let project = project();
    let run = project
        .command(&["run", "recipes/paper", "--gpus", "none", "--json"])
        .env("RSFM_WORKER", worker())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let synth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            project
                .entry_dir(&stage_key(&project, "dota"))
                .join("synth.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let test_ids: BTreeSet<String> = synth["splits"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(test_ids.len(), 3);

    // Before any reply: the val score stands beside the test-server value, with no verdict.
    report(&project);
    let before = md_row(&project, "dota", "mAP");
    assert!(
        before.contains("test-server; this study: val, no verdict"),
        "{before}"
    );

    // DOTA: one archive per seed, 18 Task1 files at the root, every image a test image.
    let submitted = json(
        &project,
        &["submit", "recipes/paper", "--server", "dota-v2", "--json"],
    );
    let submitted = submitted.as_array().unwrap();
    assert_eq!(submitted.len(), 2, "{submitted:?}");
    let classes: BTreeSet<String> = [
        "plane",
        "baseball-diamond",
        "bridge",
        "ground-track-field",
        "small-vehicle",
        "large-vehicle",
        "ship",
        "tennis-court",
        "basketball-court",
        "storage-tank",
        "soccer-ball-field",
        "roundabout",
        "harbor",
        "swimming-pool",
        "helicopter",
        "container-crane",
        "airport",
        "helipad",
    ]
    .map(|c| format!("Task1_{c}.txt"))
    .into_iter()
    .collect();
    for archive in submitted {
        assert_eq!(archive["images"], 3);
        let files = unzip(Path::new(archive["archive"].as_str().unwrap()));
        let names: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, classes);
        for (name, bytes) in &files {
            for line in String::from_utf8(bytes.clone()).unwrap().lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(fields.len(), 10, "{name}: {line}");
                assert!(test_ids.contains(fields[0]), "{name}: {line}");
            }
        }
    }
    // The same predictions make the same archive.
    let again = json(
        &project,
        &[
            "submit",
            "recipes/paper",
            "test@vit-2.4b-0",
            "--server",
            "dota-v2",
            "--json",
        ],
    );
    assert_eq!(again[0]["sha256"], submitted[0]["sha256"]);

    // LoveDA: one PNG per test image, at the root, single channel, the image's size, 0–6.
    let loveda = json(
        &project,
        &["submit", "recipes/paper", "--server", "loveda", "--json"],
    );
    let files = unzip(Path::new(loveda[0]["archive"].as_str().unwrap()));
    let names: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let loveda_ids: BTreeSet<String> = ["4.png", "5.png"].map(String::from).into_iter().collect();
    assert_eq!(names, loveda_ids);
    for (name, bytes) in &files {
        let (width, height, pixels) = gray_png(bytes);
        assert_eq!((width, height), (32, 32), "{name}");
        assert!(pixels.iter().all(|&v| v <= 6), "{name}");
    }

    // A hand-made reply per seed, in the DOTA server's e-mail format.
    for (archive, map) in submitted.iter().zip([0.5860, 0.5878]) {
        let reply = project.write(
            &format!("reply-{map}.txt"),
            &format!(
                "This is your evaluation result for task 1 (VOC metrics):\n\nmAP: {map}\nap of each class: plane:{map}, ship:{map}\n\nThe submitted information is :\n\nDescription: rsfm\n"
            ),
        );
        let key = archive["key"].as_str().unwrap();
        let out = project.rsfm(&[
            "ingest",
            "--server",
            "dota-v2",
            "--stage",
            &key[..12],
            reply.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("map {:.2}", 100.0 * map)),
            "{}",
            text(&out.stdout)
        );
    }
    let rows = project.sql(
        "SELECT s.split, m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
         WHERE m.name = 'map' AND s.split = 'test-server' ORDER BY m.value",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["value"].as_f64(), Some(0.586));
    let tied = project.sql(
        "SELECT count(*) AS n FROM server_scores sc JOIN submissions su ON su.id = sc.submission_id \
         WHERE su.reply_sha256 IS NOT NULL",
    );
    assert_eq!(tied[0]["n"], 6, "{tied:?}");

    // The test-server cell now holds the two seeds' server scores, with a verdict.
    report(&project);
    let after = md_row(&project, "dota", "mAP");
    assert!(
        after.contains("58.69 ±") && after.contains("(n=2"),
        "{after}"
    );
    assert!(after.contains("✓ reproduced"), "{after}");
    assert!(!after.contains("this study: val"), "{after}");

    // A rerun finds everything cached and keeps the servers' scores.
    let rerun = project
        .command(&["run", "recipes/paper", "--gpus", "none"])
        .env("RSFM_WORKER", worker())
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert_eq!(
        project.sql("SELECT count(*) AS n FROM metrics WHERE name = 'map' AND value > 0.58")[0]
            ["n"],
        2
    );

    // A reply for a server the stage has no archive for is refused, naming what to do.
    let key = submitted[0]["key"].as_str().unwrap();
    let reply = project.write("loveda.txt", "mIoU: 54.4\n");
    let out = project.rsfm(&[
        "ingest",
        "--server",
        "loveda",
        "--stage",
        &key[..12],
        reply.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has no archive for loveda"),
        "{}",
        text(&out.stderr)
    );
}

fn stage_key(project: &Project, name: &str) -> String {
    project.stage_key(&project.path("recipes/paper/study.toml"), name)
}
