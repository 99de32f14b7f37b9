//! The Internet checksum against RFC 1071 written out (`rovy_fuzz::sum`): `checksum` of any
//! bytes, and a running `Checksum` fed pieces (all but the last even, as its contract asks),
//! 16-bit and 32-bit words, fold and finish alike.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::offload::{Checksum, checksum};
use rovy_fuzz::sum::ones_sum;

#[derive(Debug, Arbitrary)]
enum Piece {
    Bytes(Vec<u8>),
    Word(u16),
    Long(u32),
}

#[derive(Debug, Arbitrary)]
struct Input {
    whole: Vec<u8>,
    /// Offset of `whole` in a buffer: the sum reads 8 bytes at a time, whatever the alignment.
    shift: u8,
    pieces: Vec<Piece>,
}

fuzz_target!(|input: Input| {
    let mut shifted = vec![0xa5u8; usize::from(input.shift % 8)];
    shifted.extend_from_slice(&input.whole);
    let whole = &shifted[usize::from(input.shift % 8)..];
    assert_eq!(checksum(whole), !ones_sum(whole));

    let mut running = Checksum::new();
    let mut reference = Vec::new();
    let count = input.pieces.len();
    for (i, piece) in input.pieces.iter().enumerate() {
        match piece {
            Piece::Bytes(bytes) => {
                // Every piece but the last is made even, as the API requires.
                let even = if i + 1 == count {
                    bytes.len()
                } else {
                    bytes.len() & !1
                };
                running.add_bytes(&bytes[..even]);
                reference.extend_from_slice(&bytes[..even]);
            }
            Piece::Word(word) => {
                running.add_u16(*word);
                reference.extend_from_slice(&word.to_be_bytes());
            }
            Piece::Long(long) => {
                running.add_u32(*long);
                reference.extend_from_slice(&long.to_be_bytes());
            }
        }
    }
    assert_eq!(running.fold(), ones_sum(&reference));
    assert_eq!(running.finish(), !running.fold());
});
