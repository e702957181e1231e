//! Open GDAL datasets shared by the blocking threads that read rasters (tile renders,
//! point values, statistics), bounded per file: one pool, [`RASTERS`], for every reader,
//! so that a condition raster drawn as tiles and read for statistics keeps one set of
//! handles, not two.
//!
//! A GDAL dataset is not thread-safe but may move between threads, and opening one
//! costs a header read. Keeping one per thread and file made memory grow with the
//! number of blocking threads: each GeoTIFF handle holds a decoded block buffer
//! (256 KB for a 256 x 256 Float32 block), and a 10-minute soak with 55 condition
//! rasters and ~55 blocking threads held 3,100 handles, about 800 MB. Here a reader
//! takes an idle handle of its file (or opens one), uses it alone, and gives it back;
//! at most `per_file` idle handles are kept a file, and at most `[memory] raster_handles`
//! in all (the least recently used are closed first), however many threads and files
//! come and go. An idle handle is not free: a ZSTD-compressed GeoTIFF's holds its
//! decompression context (about 1 MiB), any GeoTIFF's its largest compressed tile; a
//! soak over 80 rasters held 360 handles, about 80 MiB, before the bound in all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use gdal::Dataset;

/// Idle handles kept by a pool unless `[memory] raster_handles` says otherwise.
pub const DEFAULT_MAX_IDLE: usize = 64;

/// The bound on idle handles of a pool (`[memory] raster_handles`; [`RASTERS`] is the
/// server's only pool).
static MAX_IDLE: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_IDLE);

/// Idle handles kept, over every pool (for `/metrics`).
static IDLE_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Sets the most idle handles each pool keeps (at least 1); surplus handles are closed
/// as readers give them back, least recently used first.
pub fn set_max_idle(handles: usize) {
    MAX_IDLE.store(handles.max(1), Ordering::Relaxed);
}

/// Idle handles kept over every pool.
pub fn idle_total() -> usize {
    IDLE_TOTAL.load(Ordering::Relaxed)
}

/// An open raster file and, once a reader needed it, a view made from it (tile
/// rendering's warped EPSG:3857 VRT of a file in another CRS).
pub struct OpenRaster {
    // Dropped before `file`, which it reads from (field order).
    view: Option<Dataset>,
    file: Dataset,
}

impl OpenRaster {
    /// A file without a view yet.
    pub fn new(file: Dataset) -> Self {
        Self { view: None, file }
    }

    /// The file as opened.
    pub fn file(&self) -> &Dataset {
        &self.file
    }

    /// The view, made by `make` from the file the first time it is asked for; `make`
    /// must return a dataset that reads from the file it is given (it is dropped first).
    pub fn view<E>(
        &mut self,
        make: impl FnOnce(&Dataset) -> Result<Dataset, E>,
    ) -> Result<&Dataset, E> {
        if self.view.is_none() {
            self.view = Some(make(&self.file)?);
        }
        Ok(self.view.as_ref().unwrap_or(&self.file))
    }
}

/// The open rasters of the process, shared by every reader: tile renders, point values
/// and statistics of one file take its handles from here.
pub static RASTERS: LazyLock<DatasetPool<OpenRaster>> =
    LazyLock::new(|| DatasetPool::new(default_per_file()));

/// Runs `f` on a handle of the raster at `path` from [`RASTERS`], opening the file with
/// `open` when no idle handle is left. Blocking.
pub fn with_raster<R, E>(
    path: &Path,
    open: impl FnOnce() -> Result<Dataset, E>,
    f: impl FnOnce(&mut OpenRaster) -> Result<R, E>,
) -> Result<R, E> {
    RASTERS.with(path, || open().map(OpenRaster::new), f)
}

/// An idle handle, the modification time of its file when it was opened, and when it
/// was last given back (the pool's clock).
struct Idle<T> {
    modified: Option<SystemTime>,
    handle: T,
    used: u64,
}

/// The idle handles by file (each list oldest first), their number and the clock.
struct State<T> {
    files: HashMap<PathBuf, Vec<Idle<T>>>,
    count: usize,
    clock: u64,
}

/// Idle handles of type `T` (a dataset, or a dataset with its warped view) by file.
pub struct DatasetPool<T> {
    idle: Mutex<State<T>>,
    per_file: usize,
    /// Its own bound in all, instead of [`set_max_idle`]'s.
    max_idle: Option<usize>,
}

impl<T: Send> DatasetPool<T> {
    /// A pool keeping at most `per_file` idle handles of each file, and at most
    /// [`set_max_idle`]'s bound in all.
    pub fn new(per_file: usize) -> Self {
        Self {
            idle: Mutex::new(State {
                files: HashMap::new(),
                count: 0,
                clock: 0,
            }),
            per_file: per_file.max(1),
            max_idle: None,
        }
    }

    /// A pool with its own bound in all (`max_idle`, at least 1).
    pub fn bounded(per_file: usize, max_idle: usize) -> Self {
        let mut pool = Self::new(per_file);
        pool.max_idle = Some(max_idle.max(1));
        pool
    }

    /// Runs `f` with a handle of `path`: an idle one when the file has not changed since
    /// it was opened (a rebuilt raster is reopened), else one made by `open`. Blocking.
    pub fn with<R, E>(
        &self,
        path: &Path,
        open: impl FnOnce() -> Result<T, E>,
        f: impl FnOnce(&mut T) -> Result<R, E>,
    ) -> Result<R, E> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let taken = self.idle.lock().ok().and_then(|mut state| {
            let list = state.files.get_mut(path)?;
            let taken = list.pop();
            if list.is_empty() {
                state.files.remove(path);
            }
            if taken.is_some() {
                state.count -= 1;
                IDLE_TOTAL.fetch_sub(1, Ordering::Relaxed);
            }
            taken
        });
        let mut handle = match taken {
            Some(idle) if idle.modified == modified => idle.handle,
            _ => open()?,
        };
        let result = f(&mut handle);
        self.put_back(path, modified, handle);
        result
    }

    /// Keeps a handle already open (e.g. the one a layer was inspected with).
    pub fn put(&self, path: &Path, handle: T) {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        self.put_back(path, modified, handle);
    }

    fn put_back(&self, path: &Path, modified: Option<SystemTime>, handle: T) {
        let max_idle = self
            .max_idle
            .unwrap_or_else(|| MAX_IDLE.load(Ordering::Relaxed));
        let mut surplus = Vec::new();
        match self.idle.lock() {
            Ok(mut state) => {
                state.clock += 1;
                let used = state.clock;
                let list = state.files.entry(path.to_path_buf()).or_default();
                if list.len() < self.per_file {
                    list.push(Idle {
                        modified,
                        handle,
                        used,
                    });
                    state.count += 1;
                    IDLE_TOTAL.fetch_add(1, Ordering::Relaxed);
                } else {
                    surplus.push(handle);
                }
                while state.count > max_idle {
                    // The least recently used: the oldest of the lists' first ones.
                    let Some(oldest) = state
                        .files
                        .iter()
                        .filter_map(|(file, list)| list.first().map(|i| (i.used, file)))
                        .min_by_key(|(used, _)| *used)
                        .map(|(_, file)| file.clone())
                    else {
                        break;
                    };
                    if let Some(list) = state.files.get_mut(&oldest) {
                        surplus.push(list.remove(0).handle);
                        if list.is_empty() {
                            state.files.remove(&oldest);
                        }
                    }
                    state.count -= 1;
                    IDLE_TOTAL.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(_) => surplus.push(handle),
        }
        // Closed outside the lock.
        drop(surplus);
    }

    /// Idle handles kept, over all files.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map_or(0, |state| state.count)
    }
}

impl<T> Drop for DatasetPool<T> {
    fn drop(&mut self) {
        let count = self.idle.get_mut().map_or(0, |state| state.count);
        IDLE_TOTAL.fetch_sub(count, Ordering::Relaxed);
    }
}

/// Idle handles kept a file by default: as many as readers run at once (the raster
/// threads, [`crate::raster_threads::threads`]).
pub fn default_per_file() -> usize {
    crate::raster_threads::threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_reused_bounded_and_reopened_when_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("planscape-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("a.tif");
        std::fs::write(&file, b"1").expect("write");
        let pool: DatasetPool<u32> = DatasetPool::new(2);
        let opened = std::sync::atomic::AtomicU32::new(0);
        let open = || -> Result<u32, String> {
            Ok(opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        };
        // Sequential readers share one handle.
        for _ in 0..5 {
            pool.with(&file, open, |_| Ok::<_, String>(()))
                .expect("read");
        }
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Readers at once each get their own; at most two are kept.
        pool.with(&file, open, |_| {
            pool.with(&file, open, |_| {
                pool.with(&file, open, |_| Ok::<_, String>(()))
            })
        })
        .expect("nested");
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(pool.idle_count(), 2);
        // A failed open is the reader's error and keeps nothing new.
        let failed = pool.with(
            &dir.join("missing.tif"),
            || Err::<u32, _>("cannot open".to_owned()),
            |_| Ok(()),
        );
        assert_eq!(failed, Err("cannot open".to_owned()));
        assert_eq!(pool.idle_count(), 2);
        // A replaced file is reopened.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, b"22").expect("rewrite");
        let filetime = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(filetime))
            .expect("touch");
        pool.with(&file, open, |_| Ok::<_, String>(()))
            .expect("read");
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 4);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn readers_of_one_raster_share_its_handle_and_a_view_is_made_once() {
        let dir = std::env::temp_dir().join(format!("planscape-pool-view-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("r.tif");
        {
            let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("driver");
            let mut ds = driver
                .create_with_band_type::<u8, _>(&path, 4, 4, 1)
                .expect("create");
            ds.set_geo_transform(&[0.0, 1.0, 0.0, 4.0, 0.0, -1.0])
                .expect("geotransform");
        }
        let opened = std::sync::atomic::AtomicU32::new(0);
        let views = std::sync::atomic::AtomicU32::new(0);
        let open = || {
            opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Dataset::open(&path)
        };
        // A statistics reader (the file), then two renderers (a view made from it).
        let size = with_raster(&path, open, |raster| Ok(raster.file().raster_size()));
        assert_eq!(size.expect("read"), (4, 4));
        for _ in 0..2 {
            with_raster(&path, open, |raster| {
                let view = raster.view(|file| {
                    views.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let driver = gdal::DriverManager::get_driver_by_name("MEM")?;
                    file.create_copy(&driver, "", &Default::default())
                })?;
                assert_eq!(view.raster_size(), (4, 4));
                Ok(())
            })
            .expect("render");
        }
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(views.load(std::sync::atomic::Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_least_recently_used_handles_are_closed_beyond_the_bound_in_all() {
        let dir = std::env::temp_dir().join(format!("planscape-pool-lru-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let files: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("{i}.tif"))).collect();
        for file in &files {
            std::fs::write(file, b"1").expect("write");
        }
        // Handles that count their closing.
        struct Handle<'a>(&'a std::sync::atomic::AtomicU32);
        impl Drop for Handle<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let closed = std::sync::atomic::AtomicU32::new(0);
        let opened = std::sync::atomic::AtomicU32::new(0);
        let pool: DatasetPool<Handle> = DatasetPool::bounded(2, 3);
        let read = |file: &Path| {
            pool.with(
                file,
                || {
                    opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, String>(Handle(&closed))
                },
                |_| Ok(()),
            )
            .expect("read");
        };
        // Files 0, 1, 2 fill the bound; file 3 closes file 0's handle (the oldest).
        for file in &files {
            read(file);
        }
        assert_eq!(pool.idle_count(), 3);
        assert_eq!(closed.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Files 1-3 are still open; file 0 is opened again and closes file 1's.
        for file in &files[1..] {
            read(file);
        }
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 4);
        read(&files[0]);
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 5);
        read(&files[2]);
        read(&files[3]);
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 5);
        read(&files[1]);
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 6);
        assert_eq!(pool.idle_count(), 3);
        assert_eq!(closed.load(std::sync::atomic::Ordering::SeqCst), 3);
        drop(pool);
        assert_eq!(closed.load(std::sync::atomic::Ordering::SeqCst), 6);
        std::fs::remove_dir_all(&dir).ok();
    }
}
