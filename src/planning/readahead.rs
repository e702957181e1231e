//! Telling the kernel, before a scan reads a raster, which bytes of the file it will
//! read: the compressed blocks under the scan's window, all at once
//! (`posix_fadvise(POSIX_FADV_WILLNEED)`), so that a raster not in the page cache is read
//! from the disk with many requests in flight instead of one block at a time as GDAL
//! asks for them, and only those bytes: GDAL's reads then find their blocks cached and
//! start none of the kernel's own read-ahead, which after each miss reads up to the
//! disk's `read_ahead_kb` beyond it (8 MiB on the machine of docs/benchmarks.md, where
//! that tripled the bytes a cold request read). Blocks already cached cost a lookup in
//! the page cache; advice the kernel cannot take is ignored (the scan reads the same
//! bytes either way).
//!
//! Only GeoTIFFs read from a local file are advised: GDAL gives each block's offset and
//! size in the file (`BLOCK_OFFSET_x_y`, `BLOCK_SIZE_x_y` of the `TIFF` domain).

use std::path::Path;

use gdal::raster::RasterBand;
use gdal::{Dataset, Metadata};

/// Adjacent blocks closer than this in the file are advised as one range.
const MERGE_GAP: u64 = 64 * 1024;

/// Less to read than this is left to the reads themselves (a window of a block or two:
/// the advice would save no waiting and cost a file opening).
const MIN_ADVICE: u64 = 512 * 1024;

/// The columns `first..=last` a scan reads in block row `block_row`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSpan {
    /// The block row.
    pub block_row: usize,
    /// First column read.
    pub first: usize,
    /// Last column read.
    pub last: usize,
}

/// Advises the kernel of the blocks of `band` (of `dataset`) under `spans` (block rows
/// and the columns read in each). Does nothing unless the dataset is a GeoTIFF in a
/// local file. Blocking (GDAL, a system call per range).
pub fn advise(dataset: &Dataset, band: &RasterBand, spans: &[RowSpan]) {
    if spans.is_empty() || dataset.driver().short_name() != "GTiff" {
        return;
    }
    let description = dataset.description().unwrap_or_default();
    if description.is_empty() || description.starts_with("/vsi") {
        return;
    }
    let path = Path::new(&description);
    let (block_width, _) = band.block_size();
    if block_width == 0 {
        return;
    }
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for span in spans {
        for block_col in span.first / block_width..=span.last / block_width {
            let key = |what: &str| format!("BLOCK_{what}_{block_col}_{}", span.block_row);
            let number = |what: &str| {
                band.metadata_item(&key(what), "TIFF")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            // A block never written (sparse) has no offset: nothing to read.
            if let (Some(offset), Some(size)) = (number("OFFSET"), number("SIZE"))
                && offset > 0
                && size > 0
            {
                ranges.push((offset, size));
            }
        }
    }
    if ranges.iter().fold(0_u64, |sum, r| sum.saturating_add(r.1)) >= MIN_ADVICE {
        advise_ranges(path, &merge(ranges));
    }
}

/// Sorts byte ranges `(offset, length)` and joins those less than [`MERGE_GAP`] apart.
fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (offset, length) in ranges {
        match merged.last_mut() {
            // Saturating: the offsets and sizes come from the file.
            Some((start, len))
                if offset <= start.saturating_add(*len).saturating_add(MERGE_GAP) =>
            {
                *len = (*len).max(offset.saturating_add(length) - *start);
            }
            _ => merged.push((offset, length)),
        }
    }
    merged
}

#[cfg(target_os = "linux")]
fn advise_ranges(path: &Path, ranges: &[(u64, u64)]) {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(path) else {
        return;
    };
    for &(offset, length) in ranges {
        let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
            continue;
        };
        // SAFETY: a valid open descriptor; the call only reads its arguments.
        let result = unsafe {
            libc::posix_fadvise(file.as_raw_fd(), offset, length, libc::POSIX_FADV_WILLNEED)
        };
        if result != 0 {
            tracing::debug!(path = %path.display(), errno = result, "read-ahead advice refused");
            return;
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_ranges(_path: &Path, _ranges: &[(u64, u64)]) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// Pages of `file` in `offset..offset + length` in the page cache, and all of them.
    fn resident(file: &std::fs::File, offset: u64, length: u64) -> (usize, usize) {
        let page = 4096_u64;
        let start = offset / page * page;
        let len = (offset + length - start) as usize;
        let pages = len.div_ceil(page as usize);
        let mut vec = vec![0_u8; pages];
        // SAFETY: a read-only shared mapping of an open file, unmapped below; mincore
        // writes one byte per page of it into `vec`, which has that many.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                start as libc::off_t,
            );
            assert_ne!(map, libc::MAP_FAILED, "mmap");
            assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0, "mincore");
            libc::munmap(map, len);
        }
        (vec.iter().filter(|&&v| v & 1 == 1).count(), pages)
    }

    #[test]
    fn the_blocks_under_a_window_are_read_into_the_page_cache_and_no_others() {
        use gdal::raster::{Buffer, RasterCreationOptions};
        // On a disk-backed file system (the target folder), where pages can be dropped.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("readahead-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("r.tif");
        {
            let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("driver");
            let options = RasterCreationOptions::from_iter([
                "TILED=YES",
                "BLOCKXSIZE=256",
                "BLOCKYSIZE=256",
                "COMPRESS=DEFLATE",
            ]);
            let ds = driver
                .create_with_band_type_with_options::<f32, _>(&path, 1024, 1024, 1, &options)
                .expect("create");
            // Values that do not compress away: each block about 256 KiB in the file.
            let mut state = 0x2545_f491_u32;
            let values: Vec<f32> = (0..1024 * 1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as f32
                })
                .collect();
            let mut buffer = Buffer::new((1024, 1024), values);
            ds.rasterband(1)
                .expect("band")
                .write((0, 0), (1024, 1024), &mut buffer)
                .expect("write");
        }
        let file = std::fs::File::open(&path).expect("open");
        file.sync_all().expect("sync");
        // SAFETY: a valid descriptor; the call only reads its arguments.
        let dropped =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(dropped, 0);
        let dataset = Dataset::open(&path).expect("open");
        let band = dataset.rasterband(1).expect("band");
        let block = |x: usize, y: usize| {
            let item = |what: &str| {
                band.metadata_item(&format!("BLOCK_{what}_{x}_{y}"), "TIFF")
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("block offset and size")
            };
            (item("OFFSET"), item("SIZE"))
        };
        // Blocks 0-2 of block row 2 (together more than MIN_ADVICE), and one elsewhere.
        let wanted = [block(0, 2), block(1, 2), block(2, 2)];
        let other = block(3, 3);
        let (start, end) = (wanted[0].0, wanted[2].0 + wanted[2].1);
        assert!(
            end - start >= MIN_ADVICE && other.1 > 100_000,
            "{wanted:?} {other:?}"
        );
        assert_eq!(
            resident(&file, start, end - start).0,
            0,
            "the file system kept the blocks' pages after they were dropped"
        );
        assert_eq!(resident(&file, other.0, other.1).0, 0);

        // Block row 2, columns 0-767.
        advise(
            &dataset,
            &band,
            &[RowSpan {
                block_row: 2,
                first: 0,
                last: 767,
            }],
        );
        // Read-ahead is asynchronous: wait for it (a bound for a hang, not a timing).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (cached, pages) = resident(&file, start, end - start);
            if cached == pages {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{cached} of {pages} pages read"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            resident(&file, other.0, other.1).0,
            0,
            "a block not asked for"
        );
        drop(dataset);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn close_ranges_are_joined_and_far_ones_kept_apart() {
        let ranges = vec![
            (1_000_000, 100),
            (0, 1_000),
            (1_000, 500),
            (1_500 + MERGE_GAP, 10),
            (1_000_050, 20),
        ];
        assert_eq!(
            merge(ranges),
            vec![(0, 1_510 + MERGE_GAP), (1_000_000, 100)],
        );
        // Sizes a damaged file could give do not overflow.
        assert_eq!(
            merge(vec![(u64::MAX - 10, 100), (10, u64::MAX)]),
            vec![(10, u64::MAX)],
        );
    }
}
