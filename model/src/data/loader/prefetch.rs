//! The threaded loader: a pool of threads turns each planned sample into an item with one
//! `produce` function (decode and augment an MAE image, crop a detection or segmentation
//! sample), batches come back in plan order, and at most `prefetch` batches are in flight
//! ahead of the consumer.
//!
//! A sample carries everything its item depends on (its file index and the key of its random
//! stream), so the batches are the same whatever the number of threads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One MAE sample of a batch: which file, and the epoch it is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Index into the loader's file list.
    pub index: usize,
    /// Epoch of the draw; the augmentation differs between epochs.
    pub epoch: u64,
}

/// The samples of a step's batch, in batch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan<S = Sample> {
    /// Training step the batch is for.
    pub step: u64,
    /// Its samples, in batch order.
    pub samples: Vec<S>,
}

/// How the loader runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Producing threads (at least 1).
    pub threads: usize,
    /// Batches produced ahead of the consumer (at least 1).
    pub prefetch: usize,
}

/// A produced batch: one item per planned sample, in plan order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    /// Training step it is for.
    pub step: u64,
    /// The samples' items, in plan order.
    pub items: Vec<T>,
}

/// A sample bound to the produce function, run by whichever pool thread takes it.
type Work<T, E> = Box<dyn FnOnce() -> Result<T, E> + Send>;

struct Job<T, E> {
    seq: u64,
    slot: usize,
    work: Work<T, E>,
}

enum Message<T, E> {
    Begin {
        seq: u64,
        step: u64,
        len: usize,
    },
    Done {
        seq: u64,
        slot: usize,
        result: Result<T, E>,
    },
}

struct Partial<T> {
    step: u64,
    items: Vec<Option<T>>,
    missing: usize,
}

/// Batches of produced items from a pool of threads, in plan order; `E` is the error a
/// sample that cannot be produced gives.
pub struct Loader<T, E> {
    messages: Receiver<Message<T, E>>,
    permits: Option<SyncSender<()>>,
    partial: BTreeMap<u64, Partial<T>>,
    next_seq: u64,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl<T, E> std::fmt::Debug for Loader<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("threads", &self.threads.len())
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl<T: Send + 'static, E: Send + 'static> Loader<T, E> {
    /// Starts producing the batches of `plans`, each sample's item by `produce`.
    pub fn start<S, P>(
        produce: P,
        plans: impl IntoIterator<Item = BatchPlan<S>> + Send + 'static,
        config: LoaderConfig,
    ) -> Self
    where
        S: Send + 'static,
        P: Fn(S) -> Result<T, E> + Send + Sync + 'static,
    {
        let prefetch = config.prefetch.max(1);
        let (permit_tx, permit_rx) = mpsc::sync_channel::<()>(prefetch);
        for _ in 0..prefetch {
            permit_tx
                .send(())
                .expect("the channel holds `prefetch` permits");
        }
        let (message_tx, messages) = mpsc::channel::<Message<T, E>>();
        let (job_tx, job_rx) = mpsc::channel::<Job<T, E>>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for _ in 0..config.threads.max(1) {
            let jobs = Arc::clone(&job_rx);
            let out = message_tx.clone();
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || work(&jobs, &out, &stop)));
        }
        let feeder_stop = Arc::clone(&stop);
        let produce = Arc::new(produce);
        threads.push(std::thread::spawn(move || {
            feed(
                plans,
                produce,
                &permit_rx,
                &job_tx,
                &message_tx,
                &feeder_stop,
            )
        }));
        Loader {
            messages,
            permits: Some(permit_tx),
            partial: BTreeMap::new(),
            next_seq: 0,
            stop,
            threads,
        }
    }

    /// The next batch in plan order; None after the last; the sample's error when one cannot
    /// be produced (the loader is then spent).
    pub fn next_batch(&mut self) -> Option<Result<Batch<T>, E>> {
        loop {
            if let Some(done) = self.partial.get(&self.next_seq) {
                if done.missing == 0 {
                    let done = self.partial.remove(&self.next_seq).expect("present");
                    self.next_seq += 1;
                    if let Some(permits) = &self.permits {
                        let _ = permits.send(());
                    }
                    return Some(Ok(Batch {
                        step: done.step,
                        items: done.items.into_iter().flatten().collect(),
                    }));
                }
            }
            match self.messages.recv() {
                Err(_) => return None,
                Ok(Message::Begin { seq, step, len }) => {
                    self.partial.insert(
                        seq,
                        Partial {
                            step,
                            items: (0..len).map(|_| None).collect(),
                            missing: len,
                        },
                    );
                }
                Ok(Message::Done { seq, slot, result }) => match result {
                    Err(err) => {
                        self.shut_down();
                        return Some(Err(err));
                    }
                    Ok(item) => {
                        let partial = self.partial.get_mut(&seq).expect("Begin precedes Done");
                        partial.items[slot] = Some(item);
                        partial.missing -= 1;
                    }
                },
            }
        }
    }
}

impl<T, E> Loader<T, E> {
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

impl<T: Send + 'static, E: Send + 'static> Iterator for Loader<T, E> {
    type Item = Result<Batch<T>, E>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
    }
}

impl<T, E> Drop for Loader<T, E> {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The feeder: one batch's jobs per permit.
fn feed<S, T, E, P>(
    plans: impl IntoIterator<Item = BatchPlan<S>>,
    produce: Arc<P>,
    permits: &Receiver<()>,
    jobs: &Sender<Job<T, E>>,
    out: &Sender<Message<T, E>>,
    stop: &AtomicBool,
) where
    S: Send + 'static,
    P: Fn(S) -> Result<T, E> + Send + Sync + 'static,
{
    for (seq, plan) in (0u64..).zip(plans) {
        if permits.recv().is_err() || stop.load(Ordering::Relaxed) {
            return;
        }
        let begin = Message::Begin {
            seq,
            step: plan.step,
            len: plan.samples.len(),
        };
        if out.send(begin).is_err() {
            return;
        }
        for (slot, sample) in plan.samples.into_iter().enumerate() {
            let produce = Arc::clone(&produce);
            let work: Work<T, E> = Box::new(move || produce(sample));
            if jobs.send(Job { seq, slot, work }).is_err() {
                return;
            }
        }
    }
}

/// A pool thread: produce items until the job channel closes.
fn work<T, E>(jobs: &Mutex<Receiver<Job<T, E>>>, out: &Sender<Message<T, E>>, stop: &AtomicBool) {
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
        let message = Message::Done {
            seq: job.seq,
            slot: job.slot,
            result: (job.work)(),
        };
        if out.send(message).is_err() {
            return;
        }
    }
}
