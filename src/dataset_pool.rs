//! Open GDAL datasets shared by the blocking threads that read rasters (tile renders,
//! point values, statistics), bounded per file.
//!
//! A GDAL dataset is not thread-safe but may move between threads, and opening one
//! costs a header read. Keeping one per thread and file made memory grow with the
//! number of blocking threads: each GeoTIFF handle holds a decoded block buffer
//! (256 KB for a 256 x 256 Float32 block), and a 10-minute soak with 55 condition
//! rasters and ~55 blocking threads held 3,100 handles, about 800 MB. Here a reader
//! takes an idle handle of its file (or opens one), uses it alone, and gives it back;
//! at most `per_file` idle handles are kept a file, so the handles kept are bounded by
//! files x `per_file` however many threads come and go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// An idle handle and the modification time of its file when it was opened.
type Idle<T> = (Option<SystemTime>, T);

/// Idle handles of type `T` (a dataset, or a dataset with its warped view) by file.
pub struct DatasetPool<T> {
    idle: Mutex<HashMap<PathBuf, Vec<Idle<T>>>>,
    per_file: usize,
}

impl<T: Send> DatasetPool<T> {
    /// A pool keeping at most `per_file` idle handles of each file.
    pub fn new(per_file: usize) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            per_file: per_file.max(1),
        }
    }

    /// Runs `f` with a handle of `path`: an idle one when the file has not changed since
    /// it was opened (a rebuilt raster is reopened), else one made by `open`. Blocking.
    pub fn with<R, E>(
        &self,
        path: &Path,
        open: impl FnOnce() -> Result<T, E>,
        f: impl FnOnce(&T) -> Result<R, E>,
    ) -> Result<R, E> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let taken = self
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.get_mut(path).and_then(Vec::pop));
        let handle = match taken {
            Some((m, handle)) if m == modified => handle,
            _ => open()?,
        };
        let result = f(&handle);
        self.put_back(path, modified, handle);
        result
    }

    /// Keeps a handle already open (e.g. the one a layer was inspected with).
    pub fn put(&self, path: &Path, handle: T) {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        self.put_back(path, modified, handle);
    }

    fn put_back(&self, path: &Path, modified: Option<SystemTime>, handle: T) {
        let surplus = match self.idle.lock() {
            Ok(mut idle) => {
                let list = idle.entry(path.to_path_buf()).or_default();
                if list.len() < self.per_file {
                    list.push((modified, handle));
                    None
                } else {
                    Some(handle)
                }
            }
            Err(_) => Some(handle),
        };
        // Closed outside the lock.
        drop(surplus);
    }

    /// Idle handles kept, over all files.
    pub fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .map_or(0, |idle| idle.values().map(Vec::len).sum())
    }
}

/// Idle handles kept a file by default: as many as readers run at once (two per core).
pub fn default_per_file() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
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
}
