//! Tile bodies in a memory file, so that a cache hit can be sent with `sendfile(2)`.
//!
//! A write of a body from ordinary memory makes the kernel copy it into the socket's
//! buffers: on a warm cache that copy was a quarter of the server's CPU per hit
//! (docs/benchmarks.md, "Bodies sent from the cache's memory file"). nginx serves files
//! with `sendfile`, which hands the socket references to the file's pages instead. The
//! [`BodyArena`] gives the cache the same: one `memfd` mapped into the process, in which
//! every cached body of at least [`MIN_BODY`] bytes is kept in a run of whole pages. The
//! connection's writer ([`crate::http::zero_copy`]) recognises a body slice lying in the
//! mapping and sends it from the file.
//!
//! A page the kernel still holds for a socket must not change. So a body's pages are
//! never rewritten in place: when its last reference goes, its run is punched out of the
//! file (`fallocate(PUNCH_HOLE)`), which detaches the old pages (a socket keeps them
//! alive until it is done) before the run can be given to another body, which gets fresh
//! pages. Only whole pages are punched, hence runs of whole pages.
//!
//! That holds only while the file's pages are single pages. A punch that covers part of
//! a large folio (a transparent huge page of shared memory) zeroes that part in place,
//! and the next body written there writes into the very pages a socket may still be
//! sending. So the arena is refused when the kernel may give shared memory large folios
//! (`transparent_hugepage/shmem_enabled`, or one of its per-size knobs, at `always`,
//! `within_size` or `force`), and bodies stay in ordinary memory. For the same reason the
//! file is a `memfd`, not a file on a disk filesystem: those keep their page cache in
//! large folios on current kernels (ext4 from 6.16, XFS), and a test of it here sent
//! pages changed after they were handed to the socket (docs/benchmarks.md, "The body
//! file on disk, measured and withdrawn").
//!
//! Memory: the file is sparse (its size is the cache's capacity, pages exist only under
//! live bodies) and counts as shared memory in the process's RSS. The cache weighs a
//! body by its [`footprint`], the whole pages it takes. When the file has no run free
//! for a body (a burst of inserts before evictions catch up, or fragmentation), the body
//! stays in ordinary memory and is written the ordinary way.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Bodies shorter than this stay in ordinary memory: the copy a write makes of them is
/// cheap, and a page per body would waste most of it.
pub const MIN_BODY: usize = 8 * 1024;

/// The memory page: the unit of the file's runs.
const PAGE: usize = 4096;

/// The bytes a body of `len` bytes takes: whole pages in the arena from [`MIN_BODY`] up,
/// its length below.
pub fn footprint(len: usize) -> usize {
    if len >= MIN_BODY {
        len.div_ceil(PAGE) * PAGE
    } else {
        len
    }
}

/// Where a slice lies in an arena's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// The memory file.
    pub fd: RawFd,
    /// Byte offset of the slice in the file.
    pub offset: u64,
}

/// A memory file of cached tile bodies (see the module's documentation).
#[derive(Clone)]
pub struct BodyArena {
    inner: Arc<Inner>,
}

struct Inner {
    file: OwnedFd,
    /// Start of the file's mapping.
    base: usize,
    /// Bytes mapped (the file's size, whole pages).
    len: usize,
    free: Mutex<FreeRuns>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `BodyArena::new`; every body
        // referring to it holds an `Arc<Inner>`, so none is left.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

impl BodyArena {
    /// A file of `capacity` bytes (rounded down to whole pages; sparse), mapped.
    ///
    /// # Errors
    /// When the kernel refuses the memory file or its mapping.
    pub fn new(capacity: usize) -> io::Result<Self> {
        let len = capacity / PAGE * PAGE;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no capacity"));
        }
        if shmem_may_use_large_folios() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "shared memory may use transparent huge pages \
                 (/sys/kernel/mm/transparent_hugepage/shmem_enabled)",
            ));
        }
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        let fd = unsafe { libc::memfd_create(c"planscape-tiles".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        let size = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "capacity too large"))?;
        // SAFETY: a valid descriptor.
        if unsafe { libc::ftruncate(file.as_raw_fd(), size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a shared mapping of the whole file, checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                file,
                base: base as usize,
                len,
                free: Mutex::new(FreeRuns::new(len / PAGE)),
            }),
        })
    }

    /// `bytes` kept in the file (one copy), or `None` when they are shorter than
    /// [`MIN_BODY`] or no run of pages is free for them.
    pub fn store(&self, bytes: &[u8]) -> Option<Bytes> {
        if bytes.len() < MIN_BODY {
            return None;
        }
        let pages = bytes.len().div_ceil(PAGE);
        let first = self.inner.free.lock().ok()?.take(pages)?;
        let slot = Slot {
            arena: Arc::clone(&self.inner),
            first,
            pages,
            len: bytes.len(),
        };
        // SAFETY: the run is this slot's alone until it is dropped (taken from the free
        // runs; punched, so its pages are fresh), and lies inside the mapping.
        let target = unsafe {
            std::slice::from_raw_parts_mut((self.inner.base + first * PAGE) as *mut u8, slot.len)
        };
        target.copy_from_slice(bytes);
        Some(Bytes::from_owner(slot))
    }

    /// `bytes` in the file if they are of a length kept there and a run is free; else
    /// themselves (no copy).
    pub fn adopt(&self, bytes: Bytes) -> Bytes {
        if self.contains(&bytes) {
            return bytes;
        }
        self.store(&bytes).unwrap_or(bytes)
    }

    /// Where `slice` lies in the file, if it lies wholly inside its mapping.
    pub fn locate(&self, slice: &[u8]) -> Option<FileRange> {
        let start = slice.as_ptr() as usize;
        let inner = &self.inner;
        let inside = start >= inner.base
            && start
                .checked_add(slice.len())
                .is_some_and(|end| end <= inner.base + inner.len);
        inside.then(|| FileRange {
            fd: inner.file.as_raw_fd(),
            offset: (start - inner.base) as u64,
        })
    }

    /// Whether `slice` lies in the file.
    pub fn contains(&self, slice: &[u8]) -> bool {
        self.locate(slice).is_some()
    }

    /// Bytes of the file under live bodies (whole pages): what it adds to the RSS.
    pub fn used_bytes(&self) -> usize {
        self.inner
            .free
            .lock()
            .map_or(0, |f| self.inner.len - f.free_pages * PAGE)
    }
}

/// A body's run of pages; gives the run back, emptied, when dropped.
struct Slot {
    arena: Arc<Inner>,
    first: usize,
    pages: usize,
    len: usize,
}

impl AsRef<[u8]> for Slot {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the run lies in the mapping, which lives as long as `arena`; its bytes
        // were written before the slot was shared and never change while it lives.
        unsafe {
            std::slice::from_raw_parts((self.arena.base + self.first * PAGE) as *const u8, self.len)
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (Ok(offset), Ok(len)) = (
            libc::off_t::try_from(self.first * PAGE),
            libc::off_t::try_from(self.pages * PAGE),
        ) else {
            return;
        };
        // Detach the pages (a socket may still be sending them) before the run can be
        // reused. If the kernel refuses, the run is not reused: it is lost to the arena
        // (later bodies go to ordinary memory), never overwritten under a socket.
        // SAFETY: a valid descriptor and a range inside the file.
        let punched = unsafe {
            libc::fallocate(
                self.arena.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset,
                len,
            )
        } == 0;
        if !punched {
            tracing::warn!(
                error = %io::Error::last_os_error(),
                "could not release a cached body's pages; the run is not reused"
            );
            return;
        }
        if let Ok(mut free) = self.arena.free.lock() {
            free.give(self.first, self.pages);
        }
    }
}

/// The free runs of pages: best fit, neighbours merged.
#[derive(Debug)]
struct FreeRuns {
    /// Free runs by first page → length.
    by_start: BTreeMap<usize, usize>,
    /// The same runs as (length, first page), for the smallest run that fits.
    by_len: BTreeSet<(usize, usize)>,
    free_pages: usize,
}

impl FreeRuns {
    fn new(pages: usize) -> Self {
        let mut runs = Self {
            by_start: BTreeMap::new(),
            by_len: BTreeSet::new(),
            free_pages: 0,
        };
        runs.insert(0, pages);
        runs
    }

    fn insert(&mut self, first: usize, pages: usize) {
        self.by_start.insert(first, pages);
        self.by_len.insert((pages, first));
        self.free_pages += pages;
    }

    fn remove(&mut self, first: usize, pages: usize) {
        self.by_start.remove(&first);
        self.by_len.remove(&(pages, first));
        self.free_pages -= pages;
    }

    /// The first page of a run of `pages` pages now taken, if one is free.
    fn take(&mut self, pages: usize) -> Option<usize> {
        let &(len, first) = self.by_len.range((pages, 0)..).next()?;
        self.remove(first, len);
        if len > pages {
            self.insert(first + pages, len - pages);
        }
        Some(first)
    }

    /// Gives back the run of `pages` pages at `first`, merged with free neighbours.
    fn give(&mut self, mut first: usize, mut pages: usize) {
        if let Some((&before, &len)) = self.by_start.range(..first).next_back()
            && before + len == first
        {
            self.remove(before, len);
            first = before;
            pages += len;
        }
        if let Some(&len) = self.by_start.get(&(first + pages)) {
            self.remove(first + pages, len);
            pages += len;
        }
        self.insert(first, pages);
    }
}

/// The kernel's settings of transparent huge pages for shared memory.
const THP: &str = "/sys/kernel/mm/transparent_hugepage";

/// Whether the kernel may keep a `memfd`'s pages in large folios (see the module's
/// documentation): its `shmem_enabled` settings, read now.
fn shmem_may_use_large_folios() -> bool {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).ok();
    let per_size: Vec<String> = std::fs::read_dir(THP)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| read(entry.path().join("shmem_enabled")))
        .collect();
    large_folios_allowed(
        read(std::path::Path::new(THP).join("shmem_enabled")).as_deref(),
        &per_size,
    )
}

/// From the contents of the global `shmem_enabled` (none: a kernel without transparent
/// huge pages) and the per-size ones: whether a `memfd` written with `write`, never
/// advised, may get large folios.
fn large_folios_allowed(global: Option<&str>, per_size: &[String]) -> bool {
    /// The value in brackets.
    fn selected(setting: &str) -> Option<&str> {
        let start = setting.find('[')? + 1;
        let end = start + setting[start..].find(']')?;
        Some(&setting[start..end])
    }
    let global = global.and_then(selected).unwrap_or("never");
    match global {
        "deny" => return false,
        "always" | "within_size" | "force" => return true,
        _ => {}
    }
    per_size
        .iter()
        .filter_map(|setting| selected(setting))
        .any(|size| matches!(size, "always" | "within_size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn body(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn shared_memory_huge_pages_are_read_from_the_kernels_settings() {
        let never = "always within_size advise [never] deny force";
        let inherit = "always [inherit] within_size advise never";
        let off = "always inherit within_size advise [never]";
        // This machine's kind: no huge pages for shared memory, the arena is allowed.
        assert!(!large_folios_allowed(
            Some(never),
            &[inherit.into(), off.into()]
        ));
        assert!(!large_folios_allowed(None, &[]));
        assert!(!large_folios_allowed(
            Some("always within_size [advise] never deny force"),
            &[]
        ));
        for on in [
            "[always] within_size advise never deny force",
            "always [within_size] advise never deny force",
            "always within_size advise never deny [force]",
        ] {
            assert!(large_folios_allowed(Some(on), &[]), "{on}");
        }
        // A per-size setting turns them on, unless the global one denies everything.
        let sized = "always inherit [within_size] advise never".to_owned();
        assert!(large_folios_allowed(
            Some(never),
            &[off.into(), sized.clone()]
        ));
        assert!(!large_folios_allowed(
            Some("always within_size advise never [deny] force"),
            &[sized]
        ));
        // Whatever this kernel says, the arena follows it.
        assert_eq!(
            BodyArena::new(16 * PAGE).is_err(),
            shmem_may_use_large_folios()
        );
    }

    #[test]
    fn runs_are_best_fit_and_merge_when_given_back() {
        let mut runs = FreeRuns::new(100);
        let a = runs.take(10).unwrap();
        let b = runs.take(20).unwrap();
        let c = runs.take(5).unwrap();
        assert_eq!((a, b, c), (0, 10, 30));
        assert_eq!(runs.free_pages, 65);
        runs.give(b, 20);
        // The 20-page hole is the best fit for 15 pages, not the 65-page tail.
        assert_eq!(runs.take(15), Some(10));
        runs.give(10, 15);
        runs.give(a, 10);
        runs.give(c, 5);
        // Everything merged back into one run.
        assert_eq!(runs.by_start.len(), 1);
        assert_eq!(runs.by_len.len(), 1);
        assert_eq!(runs.free_pages, 100);
        assert_eq!(runs.take(100), Some(0));
        assert_eq!(runs.take(1), None);
    }

    #[test]
    fn bodies_live_in_the_file_and_give_their_pages_back() {
        let arena = BodyArena::new(64 * PAGE).unwrap();
        assert_eq!(arena.used_bytes(), 0);
        // Short bodies stay out; long ones are kept, in whole pages.
        assert!(arena.store(&body(MIN_BODY - 1, 1)).is_none());
        let long = body(3 * PAGE + 5, 2);
        let kept = arena.store(&long).unwrap();
        assert_eq!(&kept[..], &long[..]);
        assert!(arena.contains(&kept));
        assert_eq!(arena.used_bytes(), 4 * PAGE);
        assert_eq!(footprint(long.len()), 4 * PAGE);
        assert_eq!(footprint(MIN_BODY - 1), MIN_BODY - 1);
        // A slice of a kept body is located at its offset in the file.
        let range = arena.locate(&kept[100..200]).unwrap();
        let whole = arena.locate(&kept).unwrap();
        assert_eq!(range.offset, whole.offset + 100);
        assert!(arena.locate(&long).is_none());
        // Clones share the slot; the last one gives the pages back.
        let clone = kept.clone();
        drop(kept);
        assert_eq!(arena.used_bytes(), 4 * PAGE);
        drop(clone);
        assert_eq!(arena.used_bytes(), 0);
        // Full: bodies that do not fit stay out (and adopt keeps them as they are).
        let big = Bytes::from(body(65 * PAGE, 3));
        let adopted = arena.adopt(big.clone());
        assert!(!arena.contains(&adopted));
        assert_eq!(adopted, big);
    }

    /// The property the punch-out is for: a body sent from the file and still in a
    /// socket's queue reaches the peer intact although its run was given back and
    /// refilled with other bytes meanwhile.
    #[test]
    fn bytes_queued_in_a_socket_survive_the_reuse_of_their_run() {
        let arena = BodyArena::new(16 * PAGE).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        let first = body(3 * PAGE, 7);
        let kept = arena.store(&first).unwrap();
        let range = arena.locate(&kept).unwrap();
        let mut offset = libc::off_t::try_from(range.offset).unwrap();
        // SAFETY: valid descriptors and offset; the result is checked.
        let sent = unsafe { libc::sendfile(sender.as_raw_fd(), range.fd, &mut offset, kept.len()) };
        assert_eq!(usize::try_from(sent).unwrap(), first.len());
        drop(kept);
        let second = body(3 * PAGE, 99);
        let reused = arena.store(&second).unwrap();
        assert_eq!(
            arena.locate(&reused).unwrap().offset,
            range.offset,
            "same run"
        );
        sender.write_all(b"end").unwrap();
        let mut received = vec![0; first.len() + 3];
        receiver.read_exact(&mut received).unwrap();
        assert_eq!(&received[..first.len()], &first[..]);
        assert_eq!(&received[first.len()..], b"end");
        assert_eq!(&reused[..], &second[..]);
    }
}
