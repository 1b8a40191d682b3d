//! Bit- and byte-level primitives the column codecs are built on: an MSB-first bit writer and
//! reader, zig-zag and varints, a checked byte cursor, and the integer bit stream.

use super::{CodecError, R};

/// MSB-first bit writer.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    nacc: u32,
}

impl BitWriter {
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends the low `n` bits of `v` (n ≤ 64).
    #[inline]
    pub fn write(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        let mut n = n;
        while n > 0 {
            let k = n.min(56);
            n -= k;
            let part = (v >> n) & ((1u64 << k) - 1);
            self.acc = (self.acc << k) | part;
            self.nacc += k;
            while self.nacc >= 8 {
                self.nacc -= 8;
                self.buf.push((self.acc >> self.nacc) as u8);
            }
            self.acc &= (1u64 << self.nacc) - 1;
        }
    }
    /// The bytes written so far, the last one zero-padded.
    pub fn finish(mut self) -> Vec<u8> {
        if self.nacc > 0 {
            self.buf.push((self.acc << (8 - self.nacc)) as u8);
        }
        self.buf
    }
    /// Heap bytes held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// MSB-first bit reader.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize, // next byte to load
    acc: u64,
    nacc: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            nacc: 0,
        }
    }
    #[inline]
    fn refill(&mut self) {
        while self.nacc <= 56 && self.pos < self.data.len() {
            self.acc |= (self.data[self.pos] as u64) << (56 - self.nacc);
            self.pos += 1;
            self.nacc += 8;
        }
    }
    /// Reads `n` bits (n ≤ 64).
    #[inline]
    pub fn read(&mut self, n: u32) -> R<u64> {
        if n == 0 {
            return Ok(0);
        }
        if n > 56 {
            let hi = self.read(n - 32)?;
            let lo = self.read(32)?;
            return Ok((hi << 32) | lo);
        }
        if self.nacc < n {
            self.refill();
            if self.nacc < n {
                return Err(CodecError("bit stream truncated"));
            }
        }
        let v = self.acc >> (64 - n);
        self.acc <<= n;
        self.nacc -= n;
        Ok(v)
    }
}

// ---------------------------------------------------------------- bytes

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v))
}

/// A cursor over bytes with checked reads.
pub struct Cursor<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }
    pub fn uvarint(&mut self) -> R<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *self
                .data
                .get(self.pos)
                .ok_or(CodecError("varint truncated"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(CodecError("varint overflow"));
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(CodecError("varint overflow"));
            }
        }
    }
    pub fn ivarint(&mut self) -> R<i64> {
        Ok(unzigzag(self.uvarint()?))
    }
    /// A length that must not exceed the bytes left (guards allocations).
    pub fn len_prefix(&mut self) -> R<usize> {
        let n = self.uvarint()?;
        if n > (self.data.len() - self.pos) as u64 {
            return Err(CodecError("length beyond end"));
        }
        Ok(n as usize)
    }
    /// A count that is bounded by `max` (guards allocations).
    pub fn count(&mut self, max: usize) -> R<usize> {
        let n = self.uvarint()?;
        if n > max as u64 {
            return Err(CodecError("count too large"));
        }
        Ok(n as usize)
    }
    pub fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(CodecError("length overflow"))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(CodecError("bytes truncated"))?;
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> R<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u64_le(&mut self) -> R<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }
}

/// Upper bound on the number of values any single column may claim (guards allocations on
/// corrupt input; a raw chunk holds at most a few thousand, a wal block a few hundred thousand).
pub const MAX_COLUMN_LEN: usize = 1 << 26;

// ---------------------------------------------------------------- integer bit stream

const MAX_RUN: u64 = 257;

/// Encodes zig-zagged integers (see module docs).
pub struct IntStreamWriter {
    w: BitWriter,
    prev_width: u32,
    zeros: u64,
}

impl Default for IntStreamWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl IntStreamWriter {
    pub fn new() -> Self {
        IntStreamWriter {
            w: BitWriter::new(),
            prev_width: 0,
            zeros: 0,
        }
    }
    pub(super) fn flush_zeros(w: &mut BitWriter, mut zeros: u64) {
        while zeros > 0 {
            if zeros == 1 {
                w.write(0b00, 2);
                zeros = 0;
            } else {
                let k = zeros.min(MAX_RUN);
                w.write(0b01, 2);
                w.write(k - 2, 8);
                zeros -= k;
            }
        }
    }
    #[inline]
    pub fn push(&mut self, z: u64) {
        if z == 0 {
            self.zeros += 1;
            return;
        }
        if self.zeros > 0 {
            Self::flush_zeros(&mut self.w, self.zeros);
            self.zeros = 0;
        }
        let width = 64 - z.leading_zeros();
        if self.prev_width >= width && self.prev_width - width < 6 {
            self.w.write(0b11, 2);
            self.w.write(z, self.prev_width);
        } else {
            self.w.write(0b10, 2);
            self.w.write((width - 1) as u64, 6);
            self.w.write(z, width);
            self.prev_width = width;
        }
    }
    pub fn finish(mut self) -> Vec<u8> {
        Self::flush_zeros(&mut self.w, self.zeros);
        self.w.finish()
    }
}

/// Decodes `n` values of an integer bit stream.
pub fn read_int_stream(data: &[u8], n: usize, out: &mut Vec<u64>) -> R<()> {
    let mut r = BitReader::new(data);
    let mut width = 0u32;
    let mut left = n;
    out.reserve(n.min(MAX_COLUMN_LEN));
    while left > 0 {
        match r.read(2)? {
            0b00 => {
                out.push(0);
                left -= 1;
            }
            0b01 => {
                let k = r.read(8)? as usize + 2;
                if k > left {
                    return Err(CodecError("zero run beyond column length"));
                }
                out.extend(std::iter::repeat_n(0, k));
                left -= k;
            }
            0b11 => {
                if width == 0 {
                    return Err(CodecError("width reused before set"));
                }
                out.push(r.read(width)?);
                left -= 1;
            }
            _ => {
                width = r.read(6)? as u32 + 1;
                out.push(r.read(width)?);
                left -= 1;
            }
        }
    }
    Ok(())
}
