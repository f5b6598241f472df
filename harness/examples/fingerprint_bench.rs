//! Measures dataset fingerprinting (driven by `benches/fingerprint/run.sh`).
//!
//! `fingerprint_bench generate DIR FILES BYTES` writes FILES files of pseudo-random content
//! totalling BYTES bytes under DIR (sizes log-uniform, scaled to the total; 1,000 per folder).
//! `fingerprint_bench measure DIR DB` fingerprints DIR twice with a fresh stat cache in DB and
//! prints `key=value` lines: wall and CPU seconds of each pass, files, bytes, cache hits.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use rsfm_harness::fingerprint::fingerprint_tree_with_stats;
use rsfm_harness::store::Store;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", dir, files, bytes] => generate(
            Path::new(dir),
            files.parse().context("FILES")?,
            bytes.parse().context("BYTES")?,
        ),
        ["measure", dir, db] => {
            tokio::runtime::Runtime::new()?.block_on(measure(Path::new(dir), Path::new(db)))
        }
        _ => anyhow::bail!("usage: fingerprint_bench generate DIR FILES BYTES | measure DIR DB"),
    }
}

/// SplitMix64: a small deterministic generator for sizes and content.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn generate(dir: &Path, files: usize, total: u64) -> anyhow::Result<()> {
    let mut state = 42u64;
    let raw: Vec<f64> = (0..files)
        .map(|_| {
            let unit = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            (64f64.ln() + unit * ((512.0 * 1024.0f64).ln() - 64f64.ln())).exp()
        })
        .collect();
    let scale = total as f64 / raw.iter().sum::<f64>();
    let sizes: Vec<u64> = raw
        .iter()
        .map(|r| (r * scale).round().max(1.0) as u64)
        .collect();
    for folder in 0..files.div_ceil(1000) {
        fs_err::create_dir_all(dir.join(format!("d{folder:03}")))?;
    }
    (0..files)
        .into_par_iter()
        .try_for_each(|i| -> anyhow::Result<()> {
            let path: PathBuf = dir.join(format!("d{:03}/f{i:06}.bin", i / 1000));
            let mut seed = i as u64;
            let mut content = Vec::with_capacity(sizes[i] as usize + 8);
            while (content.len() as u64) < sizes[i] {
                content.extend_from_slice(&splitmix(&mut seed).to_le_bytes());
            }
            content.truncate(sizes[i] as usize);
            fs_err::File::create(&path)?.write_all(&content)?;
            Ok(())
        })?;
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    println!(
        "generated {files} files, {total} bytes (min {} / median {} / max {} bytes)",
        sorted[0],
        sorted[files / 2],
        sorted[files - 1]
    );
    Ok(())
}

/// User + system CPU seconds of this process, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

async fn measure(dir: &Path, db: &Path) -> anyhow::Result<()> {
    let store = Store::open(db).await?;
    println!("threads={}", rayon::current_num_threads());
    for pass in ["first", "second"] {
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let (fingerprint, stats) = fingerprint_tree_with_stats(dir, &store).await?;
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!("{pass}_wall_s={wall:.3}");
        println!("{pass}_cpu_s={cpu:.3}");
        println!("{pass}_cache_hits={}", stats.cache_hits);
        println!("{pass}_hashed_bytes={}", stats.hashed_bytes);
        println!("{pass}_sha256={}", fingerprint.sha256);
        println!("files={}", fingerprint.files);
        println!("bytes={}", fingerprint.bytes);
    }
    store.close().await;
    Ok(())
}
