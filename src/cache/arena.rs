//! Tile bodies in a file, so that a cache hit can be sent with `sendfile(2)`.
//!
//! A write of a body from ordinary memory makes the kernel copy it into the socket's
//! buffers: on a warm cache that copy was a quarter of the server's CPU per hit
//! (docs/benchmarks.md, "Bodies sent from the cache's memory file"). nginx serves files
//! with `sendfile`, which hands the socket references to the file's pages instead. The
//! [`BodyArena`] gives the cache the same: one file mapped into the process, in which
//! every cached body of at least [`MIN_BODY`] bytes is kept in a run of whole pages. The
//! connection's writer ([`crate::http::zero_copy`]) recognises a body slice lying in the
//! mapping and sends it from the file.
//!
//! The file is an unlinked temporary file in a directory ([`BodyArena::new`]; the
//! server's is `cache.body_dir`, by default the system's temporary directory), else a
//! `memfd`. Which filesystem matters: `sendfile` from a disk filesystem's page cache
//! looks pages up in batches, from shared memory (a `memfd`, tmpfs) one page at a time:
//! 9.8 % of the server's CPU per hit against 3.6-5.9 % (docs/benchmarks.md, "The body
//! file on disk"). Bodies are written with `pwrite`, so that a full disk is an
//! error (the body then stays in ordinary memory), not a fault in the mapping.
//!
//! A page the kernel still holds for a socket must not change. So a body's pages are
//! never rewritten in place: when its last reference goes, its run is punched out of the
//! file (`fallocate(PUNCH_HOLE)`), which detaches the old pages (a socket keeps them
//! alive until it is done) before the run can be given to another body, which gets fresh
//! pages. Only whole pages are punched, hence runs of whole pages. Punching is work for
//! the filesystem (a journal entry on a disk), so it is done on a thread of the arena's
//! own: dropping a body's last reference (on a connection's thread, or in the cache's
//! housekeeping) only queues its run, which is free again once punched.
//!
//! Memory: the file is sparse (its size is the cache's capacity, pages exist only under
//! live bodies); its pages are page cache (a disk file's, written back and reclaimable)
//! or shared memory (a `memfd`'s), in the process's RSS where mapped. The cache weighs a
//! body by its [`footprint`], the whole pages it takes. When the file has no run free
//! for a body (a burst of inserts before evictions catch up, or fragmentation), the body
//! stays in ordinary memory and is written the ordinary way.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{Sender, channel};
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
    file: Arc<File>,
    /// Start of the file's mapping.
    base: usize,
    /// Bytes mapped (the file's size, whole pages).
    len: usize,
    /// To the thread that punches runs out and frees them (`None` if it could not be
    /// started: runs are then punched where their body is dropped).
    releases: Option<Sender<Run>>,
    /// What the file is, for the logs.
    described: String,
}

/// A run of pages: (first page, pages).
type Run = (usize, usize);

/// The file and its free runs, shared by the mapping's owner and the punching thread.
struct File {
    fd: OwnedFd,
    free: Mutex<FreeRuns>,
}

impl File {
    /// Punches `run` out of the file and frees it. If the kernel refuses, the run is not
    /// reused: it is lost to the arena (later bodies go to ordinary memory), never
    /// overwritten under a socket.
    fn release(&self, (first, pages): Run) {
        if let Err(e) = punch(&self.fd, first * PAGE, pages * PAGE) {
            tracing::warn!(error = %e, "could not release a cached body's pages; the run is not reused");
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            free.give(first, pages);
        }
    }
}

/// `fallocate(PUNCH_HOLE)` of `len` bytes at `offset`: detaches the pages.
fn punch(fd: &OwnedFd, offset: usize, len: usize) -> io::Result<()> {
    let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "range too large");
    let offset = libc::off_t::try_from(offset).map_err(|_| too_large())?;
    let len = libc::off_t::try_from(len).map_err(|_| too_large())?;
    // SAFETY: a valid descriptor; the kernel checks the range.
    let done = unsafe {
        libc::fallocate(
            fd.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An unlinked temporary file in `dir` (`O_TMPFILE`) whose filesystem can punch holes,
/// of `len` bytes; or, without `dir`, a `memfd`.
fn create_file(dir: Option<&Path>, len: usize) -> io::Result<OwnedFd> {
    let fd = match dir {
        Some(dir) => {
            let path = CString::new(dir.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the path"))?;
            // SAFETY: a NUL-terminated path and valid flags; the result is checked.
            unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                    0o600,
                )
            }
        }
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        None => unsafe { libc::memfd_create(c"planscape-tiles".as_ptr(), libc::MFD_CLOEXEC) },
    };
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
    // A filesystem that cannot punch holes could never reuse a run.
    punch(&file, 0, PAGE)?;
    Ok(file)
}

impl Drop for Inner {
    // The punching thread ends when the sender goes, after the runs queued before.
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `BodyArena::new`; every body
        // referring to it holds an `Arc<Inner>`, so none is left.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

impl BodyArena {
    /// A file of `capacity` bytes (rounded down to whole pages; sparse), mapped: an
    /// unlinked temporary file in `dir`, or without it a memory file (`memfd`).
    ///
    /// # Errors
    /// When the kernel refuses the file (e.g. a read-only directory, a filesystem
    /// without `O_TMPFILE` or hole punching) or its mapping.
    pub fn new(capacity: usize, dir: Option<&Path>) -> io::Result<Self> {
        let len = capacity / PAGE * PAGE;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no capacity"));
        }
        let file = create_file(dir, len)?;
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
        let file = Arc::new(File {
            fd: file,
            free: Mutex::new(FreeRuns::new(len / PAGE)),
        });
        let (sender, queued) = channel::<Run>();
        let punching = Arc::clone(&file);
        let releases = std::thread::Builder::new()
            .name("tile-body-release".into())
            .spawn(move || queued.iter().for_each(|run| punching.release(run)))
            .map_err(|e| tracing::warn!(error = %e, "no thread to release cached bodies"))
            .ok()
            .map(|_| sender);
        Ok(Self {
            inner: Arc::new(Inner {
                file,
                base: base as usize,
                len,
                releases,
                described: dir.map_or_else(
                    || "a memory file".to_owned(),
                    |dir| format!("a file in {}", dir.display()),
                ),
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
        let first = self.inner.file.free.lock().ok()?.take(pages)?;
        // The slot owns the run from here: dropped, it gives the run back.
        let slot = Slot {
            arena: Arc::clone(&self.inner),
            first,
            pages,
            len: bytes.len(),
        };
        // The run is this slot's alone (taken from the free runs; punched, so its pages
        // are fresh). Written through the file, not the mapping: no room on the disk is
        // an error here, where a store into the mapping would fault.
        write_all_at(&self.inner.file.fd, bytes, first * PAGE).ok()?;
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
            fd: inner.file.fd.as_raw_fd(),
            offset: (start - inner.base) as u64,
        })
    }

    /// What the file is: "a file in DIR" or "a memory file".
    pub fn describe(&self) -> &str {
        &self.inner.described
    }

    /// Whether `slice` lies in the file.
    pub fn contains(&self, slice: &[u8]) -> bool {
        self.locate(slice).is_some()
    }

    /// Bytes of the file under live bodies (whole pages): what it adds to the RSS.
    pub fn used_bytes(&self) -> usize {
        self.inner
            .file
            .free
            .lock()
            .map_or(0, |f| self.inner.len - f.free_pages * PAGE)
    }
}

/// `pwrite`s all of `bytes` at `offset` of `fd`.
fn write_all_at(fd: &OwnedFd, bytes: &[u8], offset: usize) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        let at = libc::off_t::try_from(offset + done)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        let rest = &bytes[done..];
        // SAFETY: a valid descriptor and a live buffer of the length given.
        let written = unsafe { libc::pwrite(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len(), at) };
        let written = match usize::try_from(written) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
        };
        done += written;
    }
    Ok(())
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
        // Queued for the punching thread; the run is free once punched out.
        let run = (self.first, self.pages);
        let queued = (self.arena.releases.as_ref()).is_some_and(|to| to.send(run).is_ok());
        if !queued {
            self.arena.file.release(run);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn body(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// The arenas the tests run on: a file in the temporary directory (a disk
    /// filesystem on the machines this runs on), and a memory file.
    fn arenas(capacity: usize) -> [BodyArena; 2] {
        [
            BodyArena::new(capacity, Some(&std::env::temp_dir())).unwrap(),
            BodyArena::new(capacity, None).unwrap(),
        ]
    }

    /// Waits for the arena's thread to release what was dropped, until `used` bytes are
    /// in use; whether they were.
    fn settles_at(arena: &BodyArena, used: usize) -> bool {
        for _ in 0..10_000 {
            if arena.used_bytes() == used {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn a_directory_that_cannot_hold_the_file_is_an_error() {
        let missing = std::env::temp_dir().join("planscape-no-such-directory");
        assert!(BodyArena::new(16 * PAGE, Some(&missing)).is_err());
        assert!(BodyArena::new(PAGE - 1, None).is_err(), "no whole page");
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
        for arena in arenas(64 * PAGE) {
            bodies_live_in(&arena);
        }
    }

    fn bodies_live_in(arena: &BodyArena) {
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
        assert!(settles_at(arena, 0));
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
        for arena in arenas(16 * PAGE) {
            bytes_survive_reuse_in(&arena);
        }
    }

    fn bytes_survive_reuse_in(arena: &BodyArena) {
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
        assert!(settles_at(arena, 0));
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
