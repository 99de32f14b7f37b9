//! The Internet checksum (RFC 1071): a ones'-complement sum of 16-bit big-endian words.
//!
//! Splitting a 64 KB super-packet means checksumming every byte of it once, so the sum is
//! taken 8 bytes at a time: each native-endian 64-bit word is added as two 32-bit halves into a
//! 64-bit accumulator, which cannot overflow below 2^32 words (32 GB) and which the compiler
//! turns into vector adds. The sum is folded to 16 bits at the end. Ones'-complement addition
//! does not care about byte order as long as it is the same throughout (RFC 1071 §2(B)), so the
//! native-order sum of a piece is byte-swapped once into big-endian terms before it is added to
//! a running [`Checksum`].

/// A running checksum over pieces of a packet (pseudo-header, headers, payload).
///
/// Pieces are summed as if they were one byte string, so every piece but the last must have an
/// even length (IP, TCP and UDP headers and the pseudo-headers always do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Sum of 16-bit big-endian words, not yet folded.
    sum: u64,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum { sum: 0 }
    }

    /// Adds `bytes` as big-endian 16-bit words; an odd last byte counts as its word's high byte.
    pub fn add_bytes(&mut self, bytes: &[u8]) {
        self.sum += u64::from(u16::from_be(fold_to_u16(native_sum(bytes))));
    }

    /// Adds one 16-bit word.
    pub fn add_u16(&mut self, word: u16) {
        self.sum += u64::from(word);
    }

    /// Adds a 32-bit value as its two 16-bit words (the IPv6 pseudo-header's length).
    pub fn add_u32(&mut self, value: u32) {
        self.sum += u64::from(value >> 16) + u64::from(value & 0xffff);
    }

    /// The sum folded to 16 bits, not complemented: what a partial checksum field holds
    /// (`CHECKSUM_PARTIAL`: the pseudo-header sum, completed later from `csum_start`).
    pub fn fold(self) -> u16 {
        fold_to_u16(self.sum)
    }

    /// The value for a checksum field: the complement of the folded sum. A packet whose
    /// checksum field already holds it sums to `0xffff`, i.e. finishes to 0.
    pub fn finish(self) -> u16 {
        !self.fold()
    }
}

/// The Internet checksum of `bytes` alone, as stored in a header (complemented).
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_bytes(bytes);
    sum.finish()
}

/// Ones'-complement sum of `bytes` read as native-endian 16-bit words, in a 64-bit accumulator.
fn native_sum(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut sum: u64 = 0;
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        sum += (word & 0xffff_ffff) + (word >> 32);
    }
    // The tail (up to 7 bytes) padded with zeros keeps every byte at its place in a word.
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    let word = u64::from_ne_bytes(tail);
    sum + (word & 0xffff_ffff) + (word >> 32)
}

/// Folds a 64-bit ones'-complement sum to 16 bits with end-around carries.
fn fold_to_u16(sum: u64) -> u16 {
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    // After two 32-bit and three 16-bit folds the value is at most 0xffff.
    (sum & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 written out: big-endian words, end-around carry after each add.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // The example of RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut sum = Checksum::new();
        sum.add_bytes(&bytes);
        assert_eq!(sum.fold(), 0xddf2);
        assert_eq!(checksum(&bytes), !0xddf2);
    }

    #[test]
    fn matches_the_reference_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..9 {
            for len in (0..300).chain([1399, 1400, 1401, 65_535]) {
                let bytes = &data[start..start + len];
                assert_eq!(checksum(bytes), reference(bytes), "start {start} len {len}");
            }
        }
        // All ones: the sum that most needs its carries folded back in.
        let ones = vec![0xff; 65_536];
        assert_eq!(checksum(&ones), reference(&ones));
        assert_eq!(checksum(&ones), 0);
    }

    #[test]
    fn pieces_sum_like_the_whole_when_all_but_the_last_are_even() {
        let data: Vec<u8> = (0..1501u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut sum = Checksum::new();
        sum.add_bytes(&data[..20]);
        sum.add_bytes(&data[20..60]);
        sum.add_bytes(&data[60..]);
        assert_eq!(sum.finish(), reference(&data));

        let mut words = Checksum::new();
        words.add_u32(0x0102_0304);
        words.add_u16(0xfffe);
        assert_eq!(words.finish(), reference(&[1, 2, 3, 4, 0xff, 0xfe]));
    }

    #[test]
    fn a_packet_with_its_checksum_in_place_sums_to_all_ones() {
        let mut packet: Vec<u8> = (0..101u32).map(|i| (i * 31) as u8).collect();
        packet[10..12].fill(0);
        let value = checksum(&packet);
        packet[10..12].copy_from_slice(&value.to_be_bytes());
        let mut sum = Checksum::new();
        sum.add_bytes(&packet);
        assert_eq!(sum.fold(), 0xffff);
        assert_eq!(sum.finish(), 0);
    }
}
