//! Serving the socket from single-threaded runtimes, one per I/O thread (`[http]
//! io_threads`), instead of the work-stealing runtime's workers.
//!
//! Each thread owns a handle of the listening socket, its own event loop and its
//! connections: a request is read, answered and written by the thread that accepted
//! it, with no hand-over between workers (a cache hit costs less than the wake-ups
//! work stealing does for it). Work a request hands off still leaves the thread:
//! GDAL reads and CPU rendering go to a blocking pool (each I/O runtime has its own;
//! together they are bounded by `PLANSCAPE_BLOCKING_THREADS`, besides the main
//! runtime's), and the tasks the server starts with (change listener, upkeep, trim)
//! stay on the main runtime; tasks a request spawns run on its thread's runtime. Connections are not moved between threads once accepted; with keep-
//! alive clients behind a proxy that is what balances them anyway.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::App;
use crate::http::connection_timeouts::{MakeTracked, TimedListener, Timeouts};

/// I/O threads serving one socket until told to stop.
pub struct IoThreads {
    stop: watch::Sender<bool>,
    done: tokio::sync::mpsc::Receiver<std::io::Result<()>>,
    threads: usize,
}

impl IoThreads {
    /// Starts `threads` threads (at least 1), each serving `app` on a handle of
    /// `listener` from its own single-threaded runtime. `blocking` is the bound on
    /// blocking threads, shared out between them.
    pub fn start(
        listener: TcpListener,
        app: App,
        timeouts: Timeouts,
        threads: usize,
        blocking: usize,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let socket = listener.into_std()?;
        let (stop, stopped) = watch::channel(false);
        let (finished, done) = tokio::sync::mpsc::channel(threads);
        for index in 0..threads {
            let socket = socket.try_clone()?;
            let app = app.clone();
            let mut stopped = stopped.clone();
            let finished = finished.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads((blocking / threads).max(1))
                .thread_name(format!("planscape-io-{index}-blocking"))
                .build()?;
            std::thread::Builder::new()
                .name(format!("planscape-io-{index}"))
                .spawn(move || {
                    let result = runtime.block_on(async move {
                        let listener = TcpListener::from_std(socket)?;
                        let serve = axum::serve(
                            TimedListener::new(listener, timeouts),
                            MakeTracked::new(app),
                        )
                        .with_graceful_shutdown(async move {
                            let _ = stopped.wait_for(|stop| *stop).await;
                        });
                        serve.await
                    });
                    // Blocking work of a request dropped at the end of the grace must
                    // not hold the thread: wait briefly, not forever.
                    runtime.shutdown_timeout(Duration::from_millis(500));
                    let _ = finished.blocking_send(result);
                })?;
        }
        Ok(Self {
            stop,
            done,
            threads,
        })
    }

    /// Stops accepting on every thread; requests under way go on until they finish.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until every thread has finished serving (after [`IoThreads::stop`], when
    /// their requests under way are done); the first error, if any.
    pub async fn finished(&mut self) -> std::io::Result<()> {
        let mut result = Ok(());
        for _ in 0..self.threads {
            match self.done.recv().await {
                Some(Err(e)) if result.is_ok() => result = Err(e),
                Some(_) => {}
                None => break,
            }
        }
        result
    }
}
