//! The threaded loader: a pool of threads decodes and augments samples, batches come back in
//! order, and at most `prefetch` batches are in flight ahead of the consumer.
//!
//! Each sample's randomness comes from (seed, epoch, index) alone, so the batches are the same
//! whatever the number of threads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::mae_augment::MaeAugment;
use crate::data::error::DataError;
use crate::data::image_io::read_image;
use crate::rng::SplitMix64;

/// Stream id of the loader's augmentation draws.
const AUGMENT_STREAM: u64 = 6;

/// One sample of a batch: which file, and the epoch it is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Index into the loader's file list.
    pub index: usize,
    /// Epoch of the draw; the augmentation differs between epochs.
    pub epoch: u64,
}

/// The indices of a step's batch and their epochs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// Training step the batch is for.
    pub step: u64,
    /// Its samples, in batch order.
    pub samples: Vec<Sample>,
}

/// How the loader runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Decoding threads (at least 1).
    pub threads: usize,
    /// Batches decoded ahead of the consumer (at least 1).
    pub prefetch: usize,
    /// Run seed of the augmentation.
    pub seed: u64,
}

/// A decoded, augmented batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Training step it is for.
    pub step: u64,
    /// The samples' file indices.
    pub indices: Vec<usize>,
    /// Output side in pixels.
    pub size: u32,
    /// `[n, 3, size, size]` normalised samples, row-major.
    pub pixels: Vec<f32>,
}

struct Job {
    seq: u64,
    slot: usize,
    sample: Sample,
}

enum Message {
    Begin {
        seq: u64,
        plan: BatchPlan,
    },
    Done {
        seq: u64,
        slot: usize,
        result: Result<Vec<f32>, DataError>,
    },
}

struct Partial {
    plan: BatchPlan,
    pixels: Vec<f32>,
    missing: usize,
}

/// Batches of augmented images from a pool of threads, in plan order.
pub struct Loader {
    messages: Receiver<Message>,
    permits: Option<SyncSender<()>>,
    partial: BTreeMap<u64, Partial>,
    next_seq: u64,
    size: u32,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("threads", &self.threads.len())
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl Loader {
    /// Starts loading the batches of `plans` from `paths` with `augment`.
    pub fn start(
        paths: Arc<[PathBuf]>,
        augment: MaeAugment,
        plans: impl IntoIterator<Item = BatchPlan> + Send + 'static,
        config: LoaderConfig,
    ) -> Self {
        let prefetch = config.prefetch.max(1);
        let (permit_tx, permit_rx) = mpsc::sync_channel::<()>(prefetch);
        for _ in 0..prefetch {
            permit_tx
                .send(())
                .expect("the channel holds `prefetch` permits");
        }
        let (message_tx, messages) = mpsc::channel::<Message>();
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for _ in 0..config.threads.max(1) {
            let jobs = Arc::clone(&job_rx);
            let out = message_tx.clone();
            let paths = Arc::clone(&paths);
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                work(&paths, augment, config.seed, &jobs, &out, &stop)
            }));
        }
        let feeder_stop = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            feed(plans, &permit_rx, &job_tx, &message_tx, &feeder_stop)
        }));
        Loader {
            messages,
            permits: Some(permit_tx),
            partial: BTreeMap::new(),
            next_seq: 0,
            size: augment.size,
            stop,
            threads,
        }
    }

    /// The next batch in plan order; None after the last; an error naming the file when a
    /// sample cannot be read (the loader is then spent).
    pub fn next_batch(&mut self) -> Option<Result<Batch, DataError>> {
        loop {
            if let Some(done) = self.partial.get(&self.next_seq) {
                if done.missing == 0 {
                    let done = self.partial.remove(&self.next_seq).expect("present");
                    self.next_seq += 1;
                    if let Some(permits) = &self.permits {
                        let _ = permits.send(());
                    }
                    return Some(Ok(Batch {
                        step: done.plan.step,
                        indices: done.plan.samples.iter().map(|s| s.index).collect(),
                        size: self.size,
                        pixels: done.pixels,
                    }));
                }
            }
            let plane = 3 * self.size as usize * self.size as usize;
            match self.messages.recv() {
                Err(_) => return None,
                Ok(Message::Begin { seq, plan }) => {
                    let n = plan.samples.len();
                    self.partial.insert(
                        seq,
                        Partial {
                            plan,
                            pixels: vec![0.0; n * plane],
                            missing: n,
                        },
                    );
                }
                Ok(Message::Done { seq, slot, result }) => match result {
                    Err(err) => {
                        self.shut_down();
                        return Some(Err(err));
                    }
                    Ok(sample) => {
                        let partial = self.partial.get_mut(&seq).expect("Begin precedes Done");
                        partial.pixels[slot * plane..(slot + 1) * plane].copy_from_slice(&sample);
                        partial.missing -= 1;
                    }
                },
            }
        }
    }

    /// Stops the threads: no new sample starts; samples in flight finish.
    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.permits = None;
        self.partial.clear();
        // Draining lets the feeder see the closed permit channel instead of blocking.
        while self.messages.try_recv().is_ok() {}
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Iterator for Loader {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The feeder: one batch's jobs per permit.
fn feed(
    plans: impl IntoIterator<Item = BatchPlan>,
    permits: &Receiver<()>,
    jobs: &Sender<Job>,
    out: &Sender<Message>,
    stop: &AtomicBool,
) {
    for (seq, plan) in (0u64..).zip(plans) {
        if permits.recv().is_err() || stop.load(Ordering::Relaxed) {
            return;
        }
        let samples = plan.samples.clone();
        if out.send(Message::Begin { seq, plan }).is_err() {
            return;
        }
        for (slot, sample) in samples.into_iter().enumerate() {
            if jobs.send(Job { seq, slot, sample }).is_err() {
                return;
            }
        }
    }
}

/// A pool thread: decode and augment until the job channel closes.
fn work(
    paths: &[PathBuf],
    augment: MaeAugment,
    seed: u64,
    jobs: &Mutex<Receiver<Job>>,
    out: &Sender<Message>,
    stop: &AtomicBool,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Sample { index, epoch } = job.sample;
        let result = read_image(&paths[index]).map(|image| {
            let mut rng = SplitMix64::new(seed, AUGMENT_STREAM, (epoch << 40) ^ index as u64);
            augment.apply(&image, &mut rng)
        });
        let message = Message::Done {
            seq: job.seq,
            slot: job.slot,
            result,
        };
        if out.send(message).is_err() {
            return;
        }
    }
}
