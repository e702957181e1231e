//! Serving the socket from single-threaded runtimes, one per I/O thread (`[http]
//! io_threads`), instead of the work-stealing runtime's workers.
//!
//! One task accepts connections and deals them to the threads in turn, so that their
//! numbers differ by one at most (threads all waiting on the socket would be woken in
//! the kernel's order, which can leave six of eight connections on one thread and the
//! other core idle). Each thread runs its own event loop over its connections: a request
//! is read, answered and written by the thread its connection was dealt to, with no
//! hand-over between workers (a cache hit costs less than the wake-ups work stealing
//! does for it). Work a request hands off still leaves the thread: GDAL reads and CPU
//! rendering go to a blocking pool (each I/O runtime has its own; together they are
//! bounded by `PLANSCAPE_BLOCKING_THREADS`, besides the main runtime's), and the tasks
//! the server starts with (accepting, change listener, upkeep, trim) stay on the main
//! runtime; tasks a request spawns run on its thread's runtime. Connections are not
//! moved between threads once dealt; with keep-alive clients behind a proxy that is
//! what balances them anyway.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::cache::arena::BodyArena;
use crate::http::App;
use crate::http::connection_timeouts::{
    Handed, MakeTracked, TimedListener, Timeouts, accept_error,
};

/// I/O threads serving one socket until told to stop.
pub struct IoThreads {
    stop: watch::Sender<bool>,
    done: tokio::sync::mpsc::Receiver<std::io::Result<()>>,
    threads: usize,
    dealer: tokio::task::JoinHandle<()>,
}

impl IoThreads {
    /// Starts `threads` threads (at least 1), each serving `app` on the connections of
    /// `listener` dealt to it, from its own single-threaded runtime; the dealing task
    /// runs on the caller's runtime. `blocking` is the bound on blocking threads, shared
    /// out between them.
    pub fn start(
        listener: TcpListener,
        app: App,
        timeouts: Timeouts,
        arena: Option<BodyArena>,
        threads: usize,
        blocking: usize,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let local = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let (finished, done) = tokio::sync::mpsc::channel(threads);
        let mut dealt = Vec::with_capacity(threads);
        for index in 0..threads {
            let (give, connections) = mpsc::unbounded_channel();
            dealt.push(give);
            let app = app.clone();
            let arena = arena.clone();
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
                        let serve = axum::serve(
                            TimedListener::handed(connections, local, timeouts).sending_from(arena),
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
        let dealer = tokio::spawn(deal(listener, dealt, stop.subscribe()));
        Ok(Self {
            stop,
            done,
            threads,
            dealer,
        })
    }

    /// Stops accepting (the socket is closed) and every thread; requests under way go on
    /// until they finish.
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

impl Drop for IoThreads {
    fn drop(&mut self) {
        self.dealer.abort();
    }
}

/// Accepts connections from `listener` until `stopped`, handing each to the next of
/// `threads` in turn (a thread that has ended is skipped). Ends by dropping the socket:
/// new connections are refused from then on.
async fn deal(
    listener: TcpListener,
    threads: Vec<mpsc::UnboundedSender<Handed>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_error(e).await;
                continue;
            }
        };
        // Off this runtime's reactor: the thread registers it with its own.
        let mut connection = match stream.into_std() {
            Ok(stream) => (stream, peer),
            Err(e) => {
                tracing::warn!(error = %e, "could not hand a connection over");
                continue;
            }
        };
        for _ in 0..threads.len() {
            let thread = &threads[next % threads.len()];
            next = next.wrapping_add(1);
            match thread.send(connection) {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => connection = back,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_are_dealt_to_the_threads_in_turn() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (first, mut to_first) = mpsc::unbounded_channel();
        let (second, mut to_second) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let dealer = tokio::spawn(deal(listener, vec![first, second], stopped));
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        let mut dealt = [0, 0];
        for _ in 0..6 {
            tokio::select! {
                Some(_) = to_first.recv() => dealt[0] += 1,
                Some(_) = to_second.recv() => dealt[1] += 1,
            }
        }
        assert_eq!(dealt, [3, 3]);
        // A thread that has ended is skipped: the next connections all go to the other.
        drop(to_first);
        for _ in 0..2 {
            clients.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
            to_second.recv().await.expect("dealt to the thread left");
        }
        // Stopped, the dealer ends and closes the socket.
        stop.send(true).expect("stop");
        dealer.await.expect("the dealer ends");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
