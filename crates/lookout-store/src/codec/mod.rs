//! Lossless codecs for sample columns (pure, no I/O).
//!
//! * Tick timestamps: delta-of-delta, zig-zag, then the integer bit stream below.
//! * Values: the encoder tries the candidates that apply and keeps the smallest, tagged:
//!   - `CONST`   every value has the same bit pattern (8 bytes for the whole column);
//!   - `INT`     every value is an integer-valued `f64` within ±2^53 (counters, bytes, pids):
//!     delta or delta-of-delta (whichever is smaller), zig-zag, integer bit stream;
//!   - `DEC`     every value is a decimal with 1..=6 fractional digits that round-trips
//!     bit-exactly through `n / 10^d` (e.g. percentages already rounded to 0.01);
//!   - `XOR`     Gorilla-style XOR of consecutive bit patterns with leading/trailing-zero windows,
//!     exact for every bit pattern (NaN, ±0, ±inf, subnormals included);
//!   - `PCO`     pcodec 1.x (`pco::standalone`), tried for columns of at least [`PCO_MIN_LEN`]
//!     values: on realistic host/container data it is ~40 % smaller than the best of the
//!     above (its float-multiplier/quantisation modes and entropy coding), at ~45 ns/value to
//!     encode — so sealed chunks use it whenever it is smaller (measured in `bench/store.sh`).
//!
//! Integer bit stream (zig-zag values): `00` one zero, `01`+8 bits a run of 2..=257 zeros,
//! `11`+w bits a value that fits the previous width w (wasting fewer than 6 bits), `10`+6 bits
//! (width−1)+width bits a value with a new width. XOR stream: the same run coding for repeats,
//! `11` reuses the previous meaningful-bit window, `10`+6 bits leading zeros+6 bits (length−1).
//!
//! Every decoder checks its input and returns [`CodecError`] instead of panicking.

use std::fmt;

/// A column could not be decoded (corrupted or truncated bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub &'static str);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt chunk: {}", self.0)
    }
}
impl std::error::Error for CodecError {}

type R<T> = Result<T, CodecError>;

mod bits;
mod columns;

pub(crate) use bits::{put_uvarint, Cursor, MAX_COLUMN_LEN};
pub use columns::{
    decode_ticks, decode_values, encode_ticks, encode_values, encode_values_without_pco,
    encode_values_xor_only, read_xor, XorWriter, PCO_MIN_LEN,
};
