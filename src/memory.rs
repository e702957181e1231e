//! Process memory: applies `[memory]` at start-up (GDAL's raster block cache, the C
//! allocator's arenas and mmap threshold) and reports what the process holds to `/metrics`
//! (`process_resident_memory_bytes` and its anonymous and file-backed parts,
//! `allocator_in_use_bytes`, `allocator_free_bytes`, `gdal_cache_bytes`,
//! `gdal_cache_max_bytes`, `raster_handles_idle`).

use crate::config::MemoryConfig;

/// Sets GDAL's block cache size, the raster handles kept open, the allocator's arena
/// limit and its mmap threshold. Call once, early (the arena limit applies to arenas
/// made after it).
pub fn apply(cfg: &MemoryConfig) {
    crate::dataset_pool::set_max_idle(cfg.raster_handles);
    crate::raster_threads::configure(cfg.raster_threads);
    let bytes = i64::try_from(cfg.gdal_cache_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    // SAFETY: GDALSetCacheMax64 only stores the limit (and flushes blocks above it).
    unsafe { gdal_sys::GDALSetCacheMax64(bytes) };
    if cfg.malloc_arenas > 0 {
        set_allocator_option(AllocatorOption::ArenaMax, cfg.malloc_arenas);
    }
    if cfg.mmap_threshold_kb > 0 {
        set_allocator_option(
            AllocatorOption::MmapThreshold,
            cfg.mmap_threshold_kb.saturating_mul(1024),
        );
    }
}

/// The glibc `mallopt` parameters `[memory]` sets.
#[derive(Debug, Clone, Copy)]
enum AllocatorOption {
    /// `M_ARENA_MAX`: most arenas.
    ArenaMax,
    /// `M_MMAP_THRESHOLD`: bytes from which an allocation is mapped on its own (fixed,
    /// which also stops glibc's sliding threshold).
    MmapThreshold,
}

/// Sets one of glibc's allocator parameters; false (and a warning) when glibc refuses it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_allocator_option(option: AllocatorOption, value: u32) -> bool {
    let param = match option {
        AllocatorOption::ArenaMax => libc::M_ARENA_MAX,
        AllocatorOption::MmapThreshold => libc::M_MMAP_THRESHOLD,
    };
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes one of glibc's allocator parameters.
    let ok = unsafe { libc::mallopt(param, value) };
    if ok != 1 {
        tracing::warn!(?option, value, "the C allocator refused the setting");
    }
    ok == 1
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_allocator_option(_option: AllocatorOption, _value: u32) -> bool {
    false
}

/// Gives the C allocator's free pages back to the system every `interval_s` seconds
/// (`[memory] trim_interval_s`; `None` when 0), on a blocking thread: glibc keeps freed
/// memory in its arenas, and a server whose cache evicts and whose renders come and go
/// would otherwise hold its high-water mark for good. Runs until aborted.
pub fn spawn_trim(interval_s: u64) -> Option<tokio::task::JoinHandle<()>> {
    if interval_s == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(interval_s));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            if tokio::task::spawn_blocking(trim).await.is_ok() {
                tracing::debug!(
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "allocator trimmed"
                );
            }
        }
    }))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns free pages of glibc's arenas to the kernel.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// Most threads the runtime keeps for blocking work (vector tile encoding, gzip,
/// password hashing, file I/O; GDAL work has the raster threads), unless set otherwise.
pub const DEFAULT_BLOCKING_THREADS: usize = 64;

/// The blocking-thread bound of this process: [`blocking_threads`] of the environment's
/// `PLANSCAPE_BLOCKING_THREADS` (read by `main` for the runtime, and by the I/O threads
/// to share it out).
pub fn blocking_threads_from_env() -> Result<usize, String> {
    blocking_threads(std::env::var("PLANSCAPE_BLOCKING_THREADS").ok().as_deref())
}

/// The blocking-thread bound from `PLANSCAPE_BLOCKING_THREADS` (read before the runtime
/// and the configuration exist, hence an environment variable only). Tokio's own default
/// is 512 threads, each with its stack and allocator cache; beyond the bound, blocking
/// work queues.
pub fn blocking_threads(value: Option<&str>) -> Result<usize, String> {
    let Some(raw) = value else {
        return Ok(DEFAULT_BLOCKING_THREADS);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!(
            "PLANSCAPE_BLOCKING_THREADS must be a whole number from 1 to 1024, not `{raw}`"
        )),
    }
}

/// Bytes of the process's resident set (Linux: `/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

/// The resident set's parts from `/proc/self/status`, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct ResidentParts {
    /// Anonymous memory: the heap, stacks, GDAL's block cache.
    pub anonymous: u64,
    /// Mapped files: the binary and shared libraries.
    pub file: u64,
    /// Shared memory: the tile cache's memory file of bodies ([`crate::cache::arena`]).
    pub shared: u64,
}

/// The resident set's parts (see [`ResidentParts`]).
pub fn resident_parts() -> Option<ResidentParts> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib.saturating_mul(1024))
    };
    Some(ResidentParts {
        anonymous: field("RssAnon:")?,
        file: field("RssFile:")?,
        shared: field("RssShmem:")?,
    })
}

/// What the C allocator holds, in bytes: in use by the program (small chunks and mapped
/// large ones), and free but kept in its arenas (given back by `malloc_trim`, or not
/// when fragmented between chunks in use).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn allocator_bytes() -> Option<(u64, u64)> {
    // SAFETY: mallinfo2 only reads glibc's arena counters (it takes each arena's lock).
    let info = unsafe { libc::mallinfo2() };
    Some((
        (info.uordblks as u64).saturating_add(info.hblkhd as u64),
        info.fordblks as u64,
    ))
}

/// What the C allocator holds (not known off glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn allocator_bytes() -> Option<(u64, u64)> {
    None
}

/// Refreshes the memory gauges (called at each scrape).
pub fn record_gauges() {
    if let Some(rss) = resident_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    if let Some(parts) = resident_parts() {
        metrics::gauge!("process_resident_anonymous_bytes").set(parts.anonymous as f64);
        metrics::gauge!("process_resident_file_bytes").set(parts.file as f64);
        metrics::gauge!("process_resident_shared_bytes").set(parts.shared as f64);
    }
    if let Some((in_use, free)) = allocator_bytes() {
        metrics::gauge!("allocator_in_use_bytes").set(in_use as f64);
        metrics::gauge!("allocator_free_bytes").set(free as f64);
    }
    // SAFETY: both only read GDAL's cache counters.
    let (used, max) = unsafe {
        (
            gdal_sys::GDALGetCacheUsed64(),
            gdal_sys::GDALGetCacheMax64(),
        )
    };
    metrics::gauge!("gdal_cache_bytes").set(used as f64);
    metrics::gauge!("raster_handles_idle").set(crate::dataset_pool::idle_total() as f64);
    metrics::gauge!("gdal_cache_max_bytes").set(max as f64);
    metrics::gauge!("raster_threads").set(crate::raster_threads::threads() as f64);
    metrics::gauge!("raster_queue_depth").set(crate::raster_threads::queued() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_threads_default_and_bounds() {
        assert_eq!(blocking_threads(None), Ok(DEFAULT_BLOCKING_THREADS));
        assert_eq!(blocking_threads(Some(" 16 ")), Ok(16));
        for bad in ["0", "-1", "1025", "many", ""] {
            let err = blocking_threads(Some(bad)).expect_err(bad);
            assert!(err.contains("PLANSCAPE_BLOCKING_THREADS"), "{err}");
        }
    }

    #[test]
    fn the_gdal_cache_takes_the_configured_size_and_rss_is_read() {
        apply(&MemoryConfig {
            gdal_cache_mb: 48,
            malloc_arenas: 2,
            trim_interval_s: 0,
            raster_handles: crate::dataset_pool::DEFAULT_MAX_IDLE,
            mmap_threshold_kb: 128,
            raster_threads: 0,
        });
        // SAFETY: reads GDAL's cache limit.
        let max = unsafe { gdal_sys::GDALGetCacheMax64() };
        assert_eq!(max, 48 * 1024 * 1024);
        let rss = resident_bytes().expect("statm readable on Linux");
        assert!(rss > 1024 * 1024, "{rss}");
        // The parts add up to the whole, give or take what changed between two reads.
        let parts = resident_parts().expect("status readable on Linux");
        let (anon, file, shared) = (parts.anonymous, parts.file, parts.shared);
        assert!(anon > 0 && file > 0, "{anon} {file}");
        assert!(
            anon + file + shared <= rss + 64 * 1024 * 1024,
            "{anon} + {file} + {shared} vs {rss}"
        );
        // A live megabyte is counted as in use by the allocator.
        let block = vec![1u8; 1 << 20];
        let (in_use, _free) = allocator_bytes().expect("glibc");
        assert!(in_use >= block.len() as u64, "{in_use}");
        drop(block);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_mmap_threshold_and_the_arena_limit() {
        // Whether a given block is then mapped depends on the free space of its arena
        // (glibc maps only what the heap cannot hold), so the setting itself is checked.
        assert!(set_allocator_option(
            AllocatorOption::MmapThreshold,
            128 * 1024
        ));
        assert!(set_allocator_option(AllocatorOption::ArenaMax, 2));
    }
}
