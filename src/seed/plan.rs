//! The tile list of a seed: which tiles, grouped how (metatiles for rasters), and which
//! of them belong to this shard.

use crate::coverage::Coverage;
use crate::tile::TileId;

/// Raster tiles are rendered in blocks of `METATILE` x `METATILE` tiles (one read each).
pub const METATILE: u32 = 4;

/// `--shard i/n`: this process seeds the `i`-th of `n` disjoint parts (0-based, as
/// Kubernetes' `JOB_COMPLETION_INDEX` and AWS Batch's `AWS_BATCH_JOB_ARRAY_INDEX` are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This part.
    pub index: u32,
    /// Number of parts.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Parses `i/n` with `0 <= i < n`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not i/n"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("`{i}` is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard index must be in 0..{count} (0-based), got {index}"
            ));
        }
        Ok(Self { index, count })
    }

    /// Whether the block at `(z, bx, by)` belongs to this shard: a hash of the block, so
    /// every machine derives the same split from the same arguments, and neighbouring
    /// blocks spread evenly over the shards.
    pub fn owns(&self, z: u8, bx: u32, by: u32) -> bool {
        if self.count == 1 {
            return true;
        }
        let mut key = [0u8; 9];
        key[0] = z;
        key[1..5].copy_from_slice(&bx.to_le_bytes());
        key[5..9].copy_from_slice(&by.to_le_bytes());
        xxhash_rust::xxh3::xxh3_64(&key) % u64::from(self.count) == u64::from(self.index)
    }
}

/// Tiles of one zoom rendered together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Index of the layer in the seed's layer list.
    pub layer: usize,
    /// The tiles, all of one zoom.
    pub tiles: Vec<TileId>,
}

/// The blocks of `tiles` (one zoom) for a layer: `block` x `block` groups aligned on the
/// tile grid, kept only when this shard owns them. Blocks of size 1 are single tiles.
pub fn blocks(layer: usize, tiles: &[TileId], block: u32, shard: Shard) -> Vec<Block> {
    let mut groups: std::collections::BTreeMap<(u32, u32), Vec<TileId>> = Default::default();
    for t in tiles {
        groups
            .entry((t.y / block, t.x / block))
            .or_default()
            .push(*t);
    }
    groups
        .into_iter()
        .filter(|((by, bx), tiles)| shard.owns(tiles[0].z, *bx, *by))
        .map(|(_, tiles)| Block { layer, tiles })
        .collect()
}

/// All blocks of a layer over `zooms` and `coverage` (before resume filtering).
pub fn layer_blocks(
    layer: usize,
    zooms: std::ops::RangeInclusive<u8>,
    coverage: &Coverage,
    filter: impl Fn(TileId) -> bool,
    block: u32,
    shard: Shard,
) -> Vec<Block> {
    zooms
        .flat_map(|z| {
            let tiles: Vec<TileId> = coverage
                .tiles(z)
                .into_iter()
                .filter(|t| filter(*t))
                .collect();
            blocks(layer, &tiles, block, shard)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parsing() {
        assert_eq!(Shard::parse("0/3"), Ok(Shard { index: 0, count: 3 }));
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("1/0").is_err());
        assert!(Shard::parse("1").is_err());
        assert!(Shard::parse("a/2").is_err());
    }

    #[test]
    fn shards_partition_the_blocks() {
        let coverage = Coverage::parse_bbox("-122,36,-118,40").expect("bbox");
        let all = layer_blocks(0, 5..=10, &coverage, |_| true, METATILE, Shard::default());
        let total: usize = all.iter().map(|b| b.tiles.len()).sum();
        let mut seen = std::collections::HashSet::new();
        let mut sizes = Vec::new();
        for index in 0..3 {
            let part = layer_blocks(
                0,
                5..=10,
                &coverage,
                |_| true,
                METATILE,
                Shard { index, count: 3 },
            );
            let tiles: Vec<TileId> = part.into_iter().flat_map(|b| b.tiles).collect();
            sizes.push(tiles.len());
            for t in tiles {
                assert!(seen.insert(t), "{t} in two shards");
            }
        }
        assert_eq!(seen.len(), total);
        assert!(
            sizes.iter().all(|&n| n * 3 > total / 2),
            "balanced enough: {sizes:?}"
        );
    }

    #[test]
    fn blocks_group_neighbours_of_one_zoom() {
        let tiles: Vec<TileId> = (0..8)
            .flat_map(|y| (0..8).map(move |x| TileId { z: 4, x, y }))
            .collect();
        let b = blocks(1, &tiles, 4, Shard::default());
        assert_eq!(b.len(), 4);
        assert!(b.iter().all(|b| b.tiles.len() == 16 && b.layer == 1));
    }
}
