//! DOTA-scale mAP benchmark input and rsfm's side of it.
//!
//! `bench_dota_map generate --out DIR [--images N] [--dets N] [--seed S]` writes a
//! deterministic DOTA-v2.0-like case (18 classes) as devkit files: `DIR/labelTxt/<id>.txt`,
//! `DIR/Task1/Task1_<class>.txt` and `DIR/imageset.txt`. Scores are all distinct, so the
//! result does not depend on how a tool breaks ties.
//!
//! `bench_dota_map evaluate --data DIR` reads those files back with rsfm's DOTA readers,
//! evaluates them under the DOTA-v2.0 devkit protocol (difficult objects counted, VOC07,
//! IoU > 0.5) and prints `{"map", "ap", "seconds", "eval_seconds"}` as JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rsfm_model::data::formats::dota::{
    read_label, read_task1_dir, write_label, write_task1_dir, ClassCheck, DotaLabel, DotaObject,
    DotaVersion, Task1Detection,
};
use rsfm_model::geometry::RotatedBox;
use rsfm_model::metrics::detection::{evaluate, ApMetric, Detection, EvalOptions, Protocol};
use rsfm_model::rng::SplitMix64;

struct Args {
    command: String,
    dir: PathBuf,
    images: usize,
    dets: usize,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = it
        .next()
        .context("usage: bench_dota_map generate|evaluate ...")?;
    let mut args = Args {
        command,
        dir: PathBuf::new(),
        images: 2000,
        dets: 300_000,
        seed: 20240611,
    };
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" | "--data" => args.dir = PathBuf::from(value),
            "--images" => args.images = value.parse().context("--images")?,
            "--dets" => args.dets = value.parse().context("--dets")?,
            "--seed" => args.seed = value.parse().context("--seed")?,
            other => bail!("unknown option {other}"),
        }
    }
    if args.dir.as_os_str().is_empty() {
        bail!("give the data folder with --out (generate) or --data (evaluate)");
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    match args.command.as_str() {
        "generate" => generate(&args),
        "evaluate" => run_evaluation(&args.dir),
        other => bail!("unknown command {other}: use generate or evaluate"),
    }
}

fn random_box(rng: &mut SplitMix64) -> RotatedBox {
    let w = rng.range(8.0, 120.0);
    let h = rng.range(8.0, 120.0);
    RotatedBox::new(
        rng.range(60.0, 964.0),
        rng.range(60.0, 964.0),
        w,
        h,
        rng.range(-1.6, 1.6),
    )
}

/// A detection near `gt`: small shifts of centre, size and angle.
fn jittered(rng: &mut SplitMix64, gt: &RotatedBox) -> RotatedBox {
    let s = rng.range(0.0, 0.25);
    RotatedBox::new(
        gt.cx + rng.range(-s, s) * gt.w,
        gt.cy + rng.range(-s, s) * gt.h,
        gt.w * rng.range(1.0 - s, 1.0 + s),
        gt.h * rng.range(1.0 - s, 1.0 + s),
        gt.angle + rng.range(-s, s),
    )
}

fn generate(args: &Args) -> Result<()> {
    let classes = DotaVersion::V2_0.classes();
    let mut rng = SplitMix64::from_state(args.seed);
    let labels_dir = args.dir.join("labelTxt");
    let mut names = Vec::with_capacity(args.images);
    // (image, class, raw score, box); raw scores become distinct ranks below.
    let mut raw: Vec<(usize, usize, f64, RotatedBox)> = Vec::with_capacity(args.dets);
    let per_image = args.dets / args.images.max(1);
    for i in 0..args.images {
        let name = format!("P{i:05}");
        let n_objects = 20 + rng.index_below(2 * per_image / 3 + 1);
        let objects: Vec<(usize, RotatedBox, bool)> = (0..n_objects)
            .map(|_| {
                (
                    rng.index_below(classes.len()),
                    random_box(&mut rng),
                    rng.index_below(10) == 0,
                )
            })
            .collect();
        let extra = usize::from(i < args.dets % args.images.max(1));
        for _ in 0..per_image + extra {
            let (class, b, quality) = if rng.index_below(10) < 7 {
                let (c, gt, _) = &objects[rng.index_below(objects.len())];
                let class = if rng.index_below(20) == 0 {
                    rng.index_below(classes.len())
                } else {
                    *c
                };
                (class, jittered(&mut rng, gt), 0.5)
            } else {
                (rng.index_below(classes.len()), random_box(&mut rng), 0.0)
            };
            raw.push((i, class, quality + rng.range(0.0, 1.0), b));
        }
        let label = DotaLabel {
            image_source: Some("GoogleEarth".into()),
            gsd: None,
            objects: objects
                .iter()
                .map(|(c, b, difficult)| DotaObject {
                    poly: b.corners(),
                    class: classes[*c].to_string(),
                    difficult: u8::from(*difficult),
                })
                .collect(),
        };
        write_label(&labels_dir.join(format!("{name}.txt")), &label)?;
        names.push(name);
    }
    let mut by_raw: Vec<usize> = (0..raw.len()).collect();
    by_raw.sort_by(|&a, &b| raw[a].2.total_cmp(&raw[b].2));
    let mut score = vec![0.0; raw.len()];
    for (rank, &k) in by_raw.iter().enumerate() {
        score[k] = (rank + 1) as f64 / (raw.len() + 1) as f64;
    }
    let dets: Vec<Task1Detection> = raw
        .iter()
        .zip(&score)
        .map(|((image, class, _, b), &s)| Task1Detection {
            image: names[*image].clone(),
            class: classes[*class].to_string(),
            score: s,
            poly: b.corners(),
        })
        .collect();
    write_task1_dir(&args.dir.join("Task1"), classes, &dets)?;
    std::fs::write(args.dir.join("imageset.txt"), names.join("\n") + "\n")
        .with_context(|| format!("writing {}", args.dir.join("imageset.txt").display()))?;
    eprintln!(
        "generated {} images, {} detections, {} classes in {}",
        args.images,
        dets.len(),
        classes.len(),
        args.dir.display()
    );
    Ok(())
}

fn run_evaluation(dir: &Path) -> Result<()> {
    let start = Instant::now();
    let imageset = dir.join("imageset.txt");
    let names = std::fs::read_to_string(&imageset)
        .with_context(|| format!("reading {}", imageset.display()))?;
    let mut gts = Vec::new();
    for name in names.lines().filter(|l| !l.trim().is_empty()) {
        let label = read_label(
            &dir.join("labelTxt").join(format!("{name}.txt")),
            ClassCheck::Any,
        )?;
        gts.extend(label.objects.into_iter().map(|o| o.into_ground_truth(name)));
    }
    let (_, task1) = read_task1_dir(&dir.join("Task1"))?;
    let dets: Vec<Detection> = task1.into_iter().map(Detection::from).collect();
    let classes: Vec<String> = DotaVersion::V2_0
        .classes()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let eval_start = Instant::now();
    let opts = EvalOptions {
        protocol: Protocol::DevkitV15,
        metric: ApMetric::Voc07,
        iou_thresholds: vec![0.5],
    };
    let report = evaluate(&gts, &dets, &classes, &opts);
    let eval_seconds = eval_start.elapsed().as_secs_f64();
    let mut json = serde_json::to_value(&report)?;
    json["seconds"] = start.elapsed().as_secs_f64().into();
    json["eval_seconds"] = eval_seconds.into();
    json["images"] = names.lines().count().into();
    json["detections"] = dets.len().into();
    json["objects"] = gts.len().into();
    println!("{json}");
    Ok(())
}
