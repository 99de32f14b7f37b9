//! The Internet checksum (RFC 1071) as the RFC writes it: big-endian 16-bit words, an odd last
//! byte as the high byte of a word, the carry folded back after every addition.

/// Ones'-complement sum of `bytes`, folded, not complemented, added to `start`.
pub fn ones_sum_from(start: u16, bytes: &[u8]) -> u16 {
    let mut sum = u32::from(start);
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Ones'-complement sum of `bytes`, folded, not complemented.
pub fn ones_sum(bytes: &[u8]) -> u16 {
    ones_sum_from(0, bytes)
}

/// Whether `bytes`, checksum field included, sum (from `start`, a pseudo-header's sum) to all
/// ones: what a correct checksum field makes them do.
pub fn verifies(start: u16, bytes: &[u8]) -> bool {
    ones_sum_from(start, bytes) == 0xffff
}
