//! The folder store: one file per tile under a root folder, written atomically (a
//! temporary file in the same folder, then a rename), so a crash or a full disk never
//! leaves a partial tile behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::StoreError;

/// Temporary files start with this (and are skipped when listing).
const TEMP_PREFIX: &str = ".tmp-";

/// A tile store in a local folder.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    counter: AtomicU64,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl FsStore {
    /// A store rooted at `root` (made on first write).
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            counter: AtomicU64::new(0),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        // Keys are built by the server, but never let one escape the root.
        if key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(io_error(&self.root, format!("invalid key `{key}`")));
        }
        Ok(self.root.join(key))
    }

    pub(super) async fn check(&self) -> Result<(), StoreError> {
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(|e| io_error(&self.root, e))?;
        let probe = self
            .root
            .join(format!("{TEMP_PREFIX}check-{}", std::process::id()));
        tokio::fs::write(&probe, b"")
            .await
            .map_err(|e| io_error(&self.root, format!("not writable: {e}")))?;
        let _ = tokio::fs::remove_file(&probe).await;
        Ok(())
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    pub(super) async fn put(&self, key: &str, body: &Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let body = body.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &body, n))
            .await
            .map_err(|e| StoreError::Io {
                path: key.to_owned(),
                message: e.to_string(),
            })?
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let start = root.join(prefix.trim_end_matches('/'));
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error(&dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| io_error(&dir, e))?;
                    let path = entry.path();
                    let file_type = entry.file_type().map_err(|e| io_error(&path, e))?;
                    if file_type.is_dir() {
                        stack.push(path);
                    } else if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                        && let Ok(rel) = path.strip_prefix(&root)
                    {
                        keys.push(rel.to_string_lossy().replace('\\', "/"));
                    }
                }
            }
            Ok(keys)
        })
        .await
        .map_err(|e| io_error(&self.root, e))?
    }

    pub(super) async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            let path = self.path(key)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        Ok(())
    }
}

/// Writes `body` to a temporary file beside `path`, syncs nothing (tiles can be
/// re-seeded) but renames only a complete file into place; the temporary file is
/// removed on any failure.
fn write_atomically(path: &Path, body: &[u8], n: u64) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .ok_or_else(|| io_error(path, "no parent folder"))?;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
    let result = std::fs::write(&temp, body).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("planscape-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn writes_reads_lists_and_deletes() {
        let root = scratch("rw");
        let store = FsStore::new(root.clone());
        store.check().await.expect("writable");
        let body = Bytes::from_static(b"tile");
        store.put("l/3/1/2.png", &body).await.expect("put");
        store.put("l/3/1/3.png", &body).await.expect("put");
        assert_eq!(store.get("l/3/1/2.png").await.expect("get"), Some(body));
        assert_eq!(store.get("l/3/9/9.png").await.expect("get"), None);
        let mut keys = store.list("l/3/").await.expect("list");
        keys.sort();
        assert_eq!(keys, ["l/3/1/2.png", "l/3/1/3.png"]);
        store.delete(&keys).await.expect("delete");
        assert!(store.list("l/").await.expect("list").is_empty());
        assert!(store.get("../etc/passwd").await.is_err());
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_no_file_behind() {
        let root = scratch("fail");
        let store = FsStore::new(root.clone());
        // The target is a folder: the rename fails after the temporary file is written.
        std::fs::create_dir_all(root.join("l/1/0/0.png/inner")).expect("mkdir");
        let err = store
            .put("l/1/0/0.png", &Bytes::from_static(b"tile"))
            .await
            .expect_err("cannot replace a folder");
        assert!(err.to_string().contains("0.png"), "{err}");
        let left: Vec<_> = std::fs::read_dir(root.join("l/1/0"))
            .expect("read")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, ["0.png"], "only the folder that was there");
        let _ = std::fs::remove_dir_all(root);
    }
}
