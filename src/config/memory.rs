//! `[memory]`: bounds on the memory the server holds besides the tile cache.

use serde::{Deserialize, Serialize};

/// Memory bounds besides the tile cache (`[cache] size_mb`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// GDAL's raster block cache, in MiB (process-wide, shared by every raster layer).
    /// GDAL's own default is 5 % of the machine's RAM, which in a container sized for the
    /// server is either too much or, read from the host, far too much. 8 (the default)
    /// rather than 16 took 6 MiB off a soak's RSS and cost ~4 % of cold raster tile
    /// throughput (the tile cache in front takes the repeats); raise it where memory is
    /// plentiful and raster layers are read cold.
    #[serde(default = "default_gdal_cache_mb")]
    pub gdal_cache_mb: u64,
    /// Most C allocator (glibc malloc) arenas; 0 keeps glibc's default of 8 per core.
    /// Each blocking thread that renders or hashes can otherwise grow an arena of its
    /// own that is rarely given back.
    #[serde(default = "default_malloc_arenas")]
    pub malloc_arenas: u32,
    /// Seconds between two `malloc_trim` calls that give the allocator's free pages back
    /// to the system (0: never). Freed tiles and render buffers otherwise stay in the
    /// arenas as resident memory the process no longer uses. Every 5 s rather than 30
    /// took 16 MiB off the largest RSS of a 10-minute soak, every second (the default)
    /// rather than 5 s about 4 MiB more (docs/loadtest.md).
    #[serde(default = "default_trim_interval_s")]
    pub trim_interval_s: u64,
    /// Most idle raster handles (open GDAL datasets) kept, shared by tile rendering,
    /// point values and statistics; the least recently used are closed beyond it. A handle
    /// costs up to about 1 MiB (a ZSTD GeoTIFF's decompression context); reopening one
    /// costs about 1.5 ms. Keep it above the rasters a statistics request reads (the
    /// catalog's conditions), or every request reopens them.
    #[serde(default = "default_raster_handles")]
    pub raster_handles: usize,
    /// Allocations from this size (KiB) up that the heap's free space cannot hold get
    /// pages of their own from the kernel (glibc's `M_MMAP_THRESHOLD`, fixed), given back
    /// as soon as they are freed. 0 (the default) keeps glibc's sliding threshold, which
    /// rises to 32 MiB after the first large free: render buffers and ZSTD contexts then
    /// come from the heap, where some of their pages stay resident. Fixed at 128 KiB it
    /// saved 13 MiB of RSS in a soak and cost a fifth of the cold raster throughput
    /// (every render maps and faults in its buffers), so it is for memory-tight
    /// deployments only.
    #[serde(default = "default_mmap_threshold_kb")]
    pub mmap_threshold_kb: u32,
    /// Threads that do GDAL and PROJ work (raster tile renders, point values, statistics,
    /// scenario runs and exports, plan uploads); 0 (the default) is two per core. Work beyond them
    /// queues. Each thread that has read a raster keeps GDAL's and PROJ's per-thread
    /// state (PROJ's database cache, about 2 MiB), so the count bounds that memory.
    #[serde(default)]
    pub raster_threads: usize,
}

fn default_gdal_cache_mb() -> u64 {
    8
}
fn default_malloc_arenas() -> u32 {
    2
}
fn default_trim_interval_s() -> u64 {
    1
}
fn default_mmap_threshold_kb() -> u32 {
    0
}
fn default_raster_handles() -> usize {
    crate::dataset_pool::DEFAULT_MAX_IDLE
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            gdal_cache_mb: default_gdal_cache_mb(),
            malloc_arenas: default_malloc_arenas(),
            trim_interval_s: default_trim_interval_s(),
            raster_handles: default_raster_handles(),
            mmap_threshold_kb: default_mmap_threshold_kb(),
            raster_threads: 0,
        }
    }
}
