//! The threads that do GDAL and PROJ work: raster tile renders, point values, zonal
//! statistics and the area check of a statistics request, scenario runs and exports, plan
//! uploads, and the raster layers' inspection at start-up. A fixed set
//! (`[memory] raster_threads`, two per core by default), fed by one queue, instead of
//! tokio's blocking pool (whose threads would each keep a PROJ context) or the async
//! threads (which must not block).
//!
//! GDAL and PROJ keep state per thread: each thread that reads a raster's CRS or
//! reprojects an area gets its own PROJ context, with its own handle on PROJ's database
//! and that database's page cache (about 2 MiB a thread). Tokio's blocking pool grows a
//! thread for every task that finds none idle (a statistics request alone asks for four
//! at once), so in a soak a dozen threads carried that state, 24 MiB of PROJ in a heap
//! profile. A fixed set bounds it, and queued work runs in order, as the render permits
//! before it did. Work whose requester has gone (a dropped request) is skipped rather
//! than run for nobody.

use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A unit of work for a raster thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Raster threads asked for by `[memory] raster_threads` (0: two per core).
static WANTED: AtomicUsize = AtomicUsize::new(0);

/// Jobs queued and not yet started (for `/metrics`).
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// The queue, with its threads started on first use.
static QUEUE: LazyLock<Queue> = LazyLock::new(|| Queue::start(threads()));

/// Two per core, read once: the standard library reads the cgroup's CPU quota files on
/// every call, and [`threads`] is asked on every statistics request and scrape.
static TWO_PER_CORE: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(4, |n| n.get() * 2));

/// Why raster work gave no result.
#[derive(Debug, thiserror::Error)]
pub enum RasterThreadError {
    /// The work panicked (the thread lives on).
    #[error("raster work panicked")]
    Panicked,
    /// No raster thread could take the work (they failed to start).
    #[error("no raster thread is running")]
    Stopped,
}

/// Sets how many raster threads run (0: two per core). Takes effect only before the
/// first raster work (the threads start then), so call it once at start-up.
pub fn configure(threads: usize) {
    WANTED.store(threads, Ordering::Relaxed);
}

/// The number of raster threads: as configured, or two per core.
pub fn threads() -> usize {
    match WANTED.load(Ordering::Relaxed) {
        0 => *TWO_PER_CORE,
        n => n,
    }
}

/// Jobs waiting for a raster thread.
pub fn queued() -> usize {
    QUEUED.load(Ordering::Relaxed)
}

/// Runs `work` on a raster thread and waits for its result without blocking the async
/// threads. Work queues while every raster thread is busy.
pub async fn run<T, F>(work: F) -> Result<T, RasterThreadError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    QUEUE.run(work).await
}

/// A queue of jobs and the threads taking them.
struct Queue {
    sender: crossbeam_channel::Sender<Job>,
}

impl Queue {
    /// Starts `threads` threads (at least one) on a new queue.
    fn start(threads: usize) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            let started = std::thread::Builder::new()
                .name(format!("planscape-raster-{i}"))
                .spawn(move || {
                    while let Ok(job) = receiver.recv() {
                        QUEUED.fetch_sub(1, Ordering::Relaxed);
                        job();
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, thread = i, "cannot start a raster thread");
            }
        }
        // With no thread started, the last receiver is dropped here and every send
        // fails: callers get `Stopped` instead of waiting forever.
        Self { sender }
    }

    async fn run<T, F>(&self, work: F) -> Result<T, RasterThreadError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(work));
            let _ = tx.send(outcome.map_err(|_| RasterThreadError::Panicked));
        });
        QUEUED.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(job).is_err() {
            QUEUED.fetch_sub(1, Ordering::Relaxed);
            return Err(RasterThreadError::Stopped);
        }
        rx.await.map_err(|_| RasterThreadError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_on_the_fixed_threads_and_a_panic_is_an_error() {
        let queue = Queue::start(2);
        let names = Arc::new(Mutex::new(HashSet::new()));
        let mut tasks = Vec::new();
        for i in 0..40u64 {
            let names = Arc::clone(&names);
            let queue = &queue;
            tasks.push(async move {
                queue
                    .run(move || {
                        let name = std::thread::current().name().map(str::to_owned);
                        names.lock().map(|mut n| n.insert(name)).ok();
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        i * 2
                    })
                    .await
            });
        }
        let results = futures_util::future::join_all(tasks).await;
        let doubled: Vec<u64> = results.into_iter().map(|r| r.expect("ran")).collect();
        assert_eq!(doubled, (0..40).map(|i| i * 2).collect::<Vec<_>>());
        let names = names.lock().expect("names").clone();
        assert!(
            names.len() <= 2 && !names.is_empty(),
            "work ran on {names:?}, not on the queue's two threads"
        );
        assert!(names.iter().all(|n| {
            n.as_deref()
                .is_some_and(|n| n.starts_with("planscape-raster-"))
        }));

        let panicked = queue.run(|| -> u8 { panic!("a render bug") }).await;
        assert!(matches!(panicked, Err(RasterThreadError::Panicked)));
        // The thread that caught the panic still takes work.
        for _ in 0..4 {
            assert_eq!(queue.run(|| 7).await.expect("after a panic"), 7);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_of_a_requester_that_has_gone_is_skipped() {
        let queue = Queue::start(1);
        let ran = Arc::new(AtomicUsize::new(0));
        // Hold the only thread so that the next job waits in the queue.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = queue.run(move || held.recv().is_ok());
        tokio::pin!(busy);
        // Polled until it has a thread (it waits there for `release`).
        let _ = tokio::time::timeout(std::time::Duration::from_millis(20), &mut busy).await;
        {
            let ran = Arc::clone(&ran);
            let dropped = queue.run(move || ran.fetch_add(1, Ordering::SeqCst));
            // Polled once (queued), then dropped, as a request whose client went away.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(5), dropped).await;
        }
        release.send(()).expect("release");
        assert!(busy.await.expect("ran"));
        // A job queued after the dropped one runs, so the dropped one was passed.
        assert_eq!(queue.run(|| 1).await.expect("after"), 1);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the dropped job ran");
    }
}
