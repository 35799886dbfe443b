//! How a fuzz input chooses its options and its read boundaries.
//!
//! A chunked input is laid out as
//!
//! ```text
//!  [flags] [n] [size_1 .. size_n] [data ...]
//! ```
//!
//! `flags` picks target options (role, limits); the `n % 16` size bytes are the lengths of the
//! reads that deliver `data`, used in turn and repeated (a size of 0 is an empty read). With no
//! sizes, or only zeros, `data` arrives in one read. So `[0, 0] ++ wire` is `wire` in one piece
//! and `[0, 1, 1] ++ wire` is `wire` a byte at a time: seeds stay readable.

/// A fuzz input split into its options, its read sizes and the bytes to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Target-specific option bits.
    pub flags: u8,
    sizes: &'a [u8],
    /// The bytes the peer sends.
    pub data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `raw`; `None` when it is too short to hold the header.
    pub fn parse(raw: &'a [u8]) -> Option<Input<'a>> {
        let (&flags, rest) = raw.split_first()?;
        let (&n, rest) = rest.split_first()?;
        let n = usize::from(n % 16).min(rest.len());
        let (sizes, data) = rest.split_at(n);
        Some(Input { flags, sizes, data })
    }

    /// The reads that deliver [`Input::data`], in order; together they are exactly `data`.
    pub fn chunks(&self) -> Chunks<'a> {
        let sizes = if self.sizes.iter().all(|&s| s == 0) {
            &[][..]
        } else {
            self.sizes
        };
        Chunks {
            sizes,
            next: 0,
            rest: self.data,
            done: false,
        }
    }

    /// `other` cut by this input's read sizes, as [`Input::chunks`] cuts [`Input::data`]: for
    /// targets that split bytes they made themselves (a compressed message into frames).
    pub fn chunks_of<'b>(&self, other: &'b [u8]) -> Chunks<'b>
    where
        'a: 'b,
    {
        Input {
            flags: self.flags,
            sizes: self.sizes,
            data: other,
        }
        .chunks()
    }
}

/// Iterator over the reads of an [`Input`].
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    sizes: &'a [u8],
    next: usize,
    rest: &'a [u8],
    done: bool,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        if self.sizes.is_empty() {
            self.done = true;
            return Some(std::mem::take(&mut self.rest));
        }
        if self.rest.is_empty() {
            self.done = true;
            return None;
        }
        let size = usize::from(self.sizes[self.next % self.sizes.len()]);
        self.next += 1;
        let (chunk, rest) = self.rest.split_at(size.min(self.rest.len()));
        self.rest = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(raw: &[u8]) -> Vec<Vec<u8>> {
        Input::parse(raw)
            .unwrap()
            .chunks()
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn chunk_layout() {
        assert_eq!(reads(&[0, 0, 1, 2, 3]), [vec![1, 2, 3]]);
        assert_eq!(reads(&[0, 1, 1, 7, 8]), [vec![7], vec![8]]);
        assert_eq!(
            reads(&[0, 2, 0, 2, 7, 8, 9]),
            [vec![], vec![7, 8], vec![], vec![9]]
        );
        assert_eq!(reads(&[0, 1, 0, 7, 8]), [vec![7, 8]]);
        assert_eq!(reads(&[0, 0]), [Vec::<u8>::new()]);
        assert!(Input::parse(&[0]).is_none());
        let input = Input::parse(&[0, 2, 1, 2, 9]).unwrap();
        let other: Vec<&[u8]> = input.chunks_of(&[1, 2, 3, 4]).collect();
        assert_eq!(other, [&[1][..], &[2, 3], &[4]]);
    }
}
