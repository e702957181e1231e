//! The bytes of a tile in the shared cache level: both encodings the server sends (plain
//! and gzip), checked on the way back so that a truncated or corrupt entry is never
//! served (it reads as a miss).
//!
//! Layout (little endian): `PST1`, a flags byte (bit 0: gzip present), the plain length
//! (u32), the gzip length (u32), an xxh3-64 checksum of everything after the header
//! (u64), the plain bytes, the gzip bytes. The ETag is recomputed from the plain bytes
//! exactly as at render time, so it is the same on every server.

use bytes::Bytes;

use crate::tile::EncodedTile;

const MAGIC: &[u8; 4] = b"PST1";
const HEADER: usize = 4 + 1 + 4 + 4 + 8;

/// Why stored bytes are not a tile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Not written by this format (or cut inside the header).
    #[error("not a tile entry")]
    NotAnEntry,
    /// The lengths do not add up (truncated or padded).
    #[error("the entry's length is wrong")]
    Length,
    /// The bytes changed.
    #[error("the entry's checksum does not match")]
    Checksum,
}

/// The entry's bytes for a tile's plain bytes `raw` and its `gzip` bytes, if any.
pub fn encode(raw: &[u8], gzip: Option<&[u8]>) -> Vec<u8> {
    let zipped = gzip.unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + raw.len() + zipped.len());
    out.extend_from_slice(MAGIC);
    out.push(u8::from(gzip.is_some()));
    out.extend_from_slice(&len_u32(raw.len()).to_le_bytes());
    out.extend_from_slice(&len_u32(zipped.len()).to_le_bytes());
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(raw);
    hasher.update(zipped);
    out.extend_from_slice(&hasher.digest().to_le_bytes());
    out.extend_from_slice(raw);
    out.extend_from_slice(zipped);
    out
}

/// How many bytes the entry of `tile` takes.
pub fn encoded_len(tile: &EncodedTile) -> usize {
    HEADER + tile.raw.len() + tile.gzip.as_ref().map_or(0, Bytes::len)
}

/// The tile in `bytes` (sharing them: no copy), or why not.
pub fn decode(bytes: Bytes) -> Result<EncodedTile, EntryError> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(EntryError::NotAnEntry);
    }
    let flags = bytes[4];
    let raw_len = read_u32(&bytes[5..9]);
    let gzip_len = read_u32(&bytes[9..13]);
    let checksum = u64::from_le_bytes(bytes[13..21].try_into().map_err(|_| EntryError::Length)?);
    if flags > 1 || (flags == 0 && gzip_len != 0) {
        return Err(EntryError::NotAnEntry);
    }
    if bytes.len() != HEADER + raw_len + gzip_len {
        return Err(EntryError::Length);
    }
    if xxhash_rust::xxh3::xxh3_64(&bytes[HEADER..]) != checksum {
        return Err(EntryError::Checksum);
    }
    let raw = bytes.slice(HEADER..HEADER + raw_len);
    let gzip = (flags == 1).then(|| bytes.slice(HEADER + raw_len..));
    Ok(EncodedTile::from_parts(raw, gzip))
}

fn len_u32(len: usize) -> u32 {
    // Entries are capped far below 4 GiB (`max_entry_kb`) before they are encoded.
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn read_u32(bytes: &[u8]) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_le_bytes(word) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileFormat;

    #[test]
    fn round_trips_both_encodings_and_the_etag() {
        for tile in [
            EncodedTile::new(b"vector tile bytes ".repeat(300), TileFormat::Mvt),
            EncodedTile::new(vec![137, 80, 78, 71, 1, 2, 3], TileFormat::Png),
            EncodedTile::new(Vec::new(), TileFormat::Mvt),
        ] {
            let bytes = encode(&tile.raw, tile.gzip.as_deref());
            assert_eq!(bytes.len(), encoded_len(&tile));
            let back = decode(Bytes::from(bytes)).expect("decodes");
            assert_eq!(back.raw, tile.raw);
            assert_eq!(back.gzip, tile.gzip);
            assert_eq!(back.etag, tile.etag);
        }
    }

    #[test]
    fn truncated_padded_and_flipped_entries_are_refused() {
        let tile = EncodedTile::new(b"some features ".repeat(100), TileFormat::Mvt);
        let bytes = encode(&tile.raw, tile.gzip.as_deref());
        for cut in [0, 3, HEADER - 1, HEADER, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode(Bytes::copy_from_slice(&bytes[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(decode(Bytes::from(padded)).err(), Some(EntryError::Length));
        for at in [HEADER, HEADER + 10, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert_eq!(
                decode(Bytes::from(flipped)).err(),
                Some(EntryError::Checksum)
            );
        }
        assert_eq!(
            decode(Bytes::from_static(b"a string someone SET by hand")).err(),
            Some(EntryError::NotAnEntry)
        );
    }
}
