//! Confusion-matrix accumulation throughput against this machine's memory bandwidth.
//!
//! Fills a prediction and a ground-truth buffer (`--mpix N` million pixels each, default
//! 256), then times, with the same rayon thread pool: a parallel read of both buffers
//! (wrapping sum of their 64-bit words), a `memcpy` of one buffer, and `ConfusionMatrix::accumulate` with
//! 6 classes and ignore index 255. Each is the best of 5 runs.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use rsfm_model::metrics::segmentation::ConfusionMatrix;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(out);
    }
    (best, last.unwrap_or_else(|| unreachable!("runs > 0")))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut mpix = 256usize;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--mpix" => mpix = args.next().context("--mpix needs a value")?.parse()?,
            other => bail!("unknown option {other}: use --mpix N"),
        }
    }
    let n = mpix << 20;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Blocky labels (runs of 16 pixels) with 2% ignore, like real label maps.
    let gt: Vec<u8> = (0..n / 16)
        .flat_map(|_| {
            let r = next();
            let v = if r % 50 == 0 { 255 } else { (r >> 8) as u8 % 6 };
            std::iter::repeat_n(v, 16)
        })
        .collect();
    let pred: Vec<u8> = gt
        .iter()
        .map(|&g| {
            let r = next();
            if r % 5 == 0 {
                (r >> 8) as u8 % 6
            } else {
                g % 6
            }
        })
        .collect();
    let threads = rayon::current_num_threads();

    let (read_s, sum) = best_of(5, || {
        let s = |b: &[u8]| -> u64 {
            b.par_chunks(1 << 20)
                .map(|c| {
                    c.chunks_exact(8)
                        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
                        .fold(0u64, u64::wrapping_add)
                })
                .reduce(|| 0, u64::wrapping_add)
        };
        s(&pred).wrapping_add(s(&gt))
    });
    let mut copy = vec![0u8; n];
    let (copy_s, _) = best_of(5, || {
        copy.par_chunks_mut(1 << 20)
            .zip(pred.par_chunks(1 << 20))
            .for_each(|(d, s)| d.copy_from_slice(s));
    });
    let (cm_s, cm) = best_of(5, || {
        let mut cm = ConfusionMatrix::new(6).expect("6 classes are supported");
        cm.accumulate(&pred, &gt, Some(255)).map(|_| cm)
    });
    let cm = cm?;
    let counted: u64 = cm.area_label().iter().sum();

    let gbs = |bytes: f64, s: f64| bytes / s / 1e9;
    println!("pixels per buffer: {n} ({mpix} Mi), rayon threads: {threads}, checksum {sum}, counted {counted}");
    println!(
        "read both buffers:   {:.2} GB/s",
        gbs(2.0 * n as f64, read_s)
    );
    println!(
        "memcpy one buffer:   {:.2} GB/s (read + write)",
        gbs(2.0 * n as f64, copy_s)
    );
    println!(
        "confusion matrix:    {:.3} Gpixel/s = {:.2} GB/s of pred+gt input ({:.0}% of the read bandwidth)",
        n as f64 / cm_s / 1e9,
        gbs(2.0 * n as f64, cm_s),
        100.0 * read_s / cm_s
    );
    Ok(())
}
