//! Node identity: X25519 keys in WireGuard's text form, the fc00::/8 overlay address and the
//! PeerID derived from a public key, and the key files that hold secrets on disk.
//!
//! The derivations match go-rovy so its golden vectors apply (DESIGN §1):
//! - address = bytes 16..32 of BLAKE2s-256(BLAKE2s-256(public key)), valid only when the first
//!   byte is 0xfc;
//! - PeerID = multibase base32 (`b`, lowercase, no padding) of the CIDv1 bytes
//!   `0x01 0x73 0x00 0x20 ‖ public key`.
//!
//! Keys travel as WireGuard's base64 (44 characters, padded) so `wg pubkey` and `rovy-fast pubkey`
//! agree byte for byte. Secret bytes are zeroized on drop, including every intermediate buffer
//! a parse goes through.

use std::fmt;
use std::io::{self, Read};
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use rand_core::{CryptoRng, RngCore};
use rovy_dataplane::overlay_address;
use rovy_dataplane::sys::SecretPage;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length in bytes of every key here (X25519 private, public and the preshared key).
pub const KEY_LEN: usize = 32;

/// Length of a key in WireGuard's base64 form.
pub const KEY_BASE64_LEN: usize = 44;

/// CIDv1 header in front of the key in a PeerID: version 1, multicodec 0x73, identity multihash
/// (0x00) of length 0x20. Fixed by go-rovy.
const PEER_ID_CID_PREFIX: [u8; 4] = [0x01, 0x73, 0x00, 0x20];

/// Multibase prefix of lowercase, unpadded RFC 4648 base32.
const PEER_ID_MULTIBASE: char = 'b';

/// Characters of a PeerID after its multibase prefix: 36 bytes at 5 bits per character.
const PEER_ID_BASE32_LEN: usize = (PEER_ID_CID_PREFIX.len() + KEY_LEN) * 8 / 5 + 1;

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Largest key file we read; a key with a newline is 45 bytes, anything far past that is not a key.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// Why a piece of text is not a key. The messages start with "key" so callers prefix where the
/// text came from (`stdin: key is empty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("key is empty")]
    Empty,
    #[error(
        "key is not base64 (a WireGuard key is {KEY_BASE64_LEN} characters of standard base64 \
         ending in '='; input length {chars})"
    )]
    NotBase64 { chars: usize },
    #[error("key is {bytes} bytes long, not {KEY_LEN}")]
    WrongLength { bytes: usize },
    #[error("key is not a multibase base64 key (expected 'm' and 43 characters of base64)")]
    NotMultibase,
    #[error("{0:?} is not a PeerID: {1}")]
    NotPeerId(String, &'static str),
}

/// Why a key file could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {} is not a regular file", .path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "key file {} is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
        .path.display(),
        shell_quote(.path)
    )]
    OpenPermissions { path: PathBuf, mode: u32 },
    #[error("key file {} is too large to hold a key ({len} bytes)", .path.display())]
    TooLarge { path: PathBuf, len: u64 },
    #[error("key file {}: {source}", .path.display())]
    Malformed {
        path: PathBuf,
        source: KeyParseError,
    },
}

/// An X25519 static private key, in a page of its own that core dumps leave out, never copied
/// as the key moves and wiped on drop; `Debug` never shows it.
pub struct PrivateKey(SecretPage<KEY_LEN>);

/// An X25519 public key. Any 32 bytes are a valid encoding; low-order points are caught where a
/// Diffie-Hellman result is used.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

/// WireGuard's optional symmetric preshared key, mixed into the handshake. Zeroized on drop
/// (every copy: a running node keeps one per peer, and compares them when its config changes).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PresharedKey([u8; KEY_LEN]);

impl PrivateKey {
    /// Wraps raw bytes as given; X25519 clamps them when the key is used, as `wg` does.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(SecretPage::new(&bytes))
    }

    /// The raw bytes, for the handshake.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        self.0.expose()
    }

    /// A fresh key whose overlay address is valid. Draws clamped keys (as `wg genkey` prints
    /// them) until the address starts with 0xfc, which takes about 256 tries.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        loop {
            let mut key = Self(SecretPage::new(&[0; KEY_LEN]));
            let bytes = key.0.expose_mut();
            rng.fill_bytes(bytes);
            bytes[0] &= 0b1111_1000;
            bytes[31] &= 0b0111_1111;
            bytes[31] |= 0b0100_0000;
            if key.public_key().address().is_some() {
                return key;
            }
        }
    }

    pub fn public_key(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(*self.as_bytes());
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }

    /// Whether a Diffie-Hellman with `peer` gives a usable shared secret, i.e. `peer` is not a
    /// low-order point (WireGuard refuses such peers).
    pub fn agrees_with(&self, peer: &PublicKey) -> bool {
        let secret = x25519_dalek::StaticSecret::from(*self.as_bytes());
        secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer.0))
            .was_contributory()
    }

    /// WireGuard's form: 44 characters of padded standard base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyParseError> {
        decode_key_base64(text).map(|bytes| Self(SecretPage::new(&bytes)))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.as_bytes()))
    }

    /// go-rovy's multibase form: `m` followed by unpadded standard base64.
    pub fn from_multibase(text: &str) -> Result<Self, KeyParseError> {
        let body = text.strip_prefix('m').ok_or(KeyParseError::NotMultibase)?;
        let bytes = Zeroizing::new(
            STANDARD_NO_PAD
                .decode(body)
                .map_err(|_| KeyParseError::NotMultibase)?,
        );
        let array: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyParseError::WrongLength { bytes: bytes.len() })?,
        );
        Ok(Self(SecretPage::new(&array)))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<secret for {}>)", self.public_key())
    }
}

impl PublicKey {
    /// The overlay address this key would own, whether or not it starts with 0xfc.
    pub fn overlay_address_unchecked(&self) -> Ipv6Addr {
        overlay_address::derive_unchecked(&self.0)
    }

    /// The fc00::/8 overlay address of this key, or `None` if its derivation does not start with
    /// 0xfc (such a key can only be a plain WireGuard peer).
    pub fn address(&self) -> Option<Ipv6Addr> {
        overlay_address::derive(&self.0)
    }

    /// The PeerID: multibase base32 of the CIDv1 bytes; always starts `bafzqai`.
    pub fn peer_id(&self) -> String {
        let mut cid = [0u8; PEER_ID_CID_PREFIX.len() + KEY_LEN];
        cid[..PEER_ID_CID_PREFIX.len()].copy_from_slice(&PEER_ID_CID_PREFIX);
        cid[PEER_ID_CID_PREFIX.len()..].copy_from_slice(&self.0);
        let mut text = String::with_capacity(1 + PEER_ID_BASE32_LEN);
        text.push(PEER_ID_MULTIBASE);
        encode_base32(&cid, &mut text);
        text
    }

    /// Parses a PeerID strictly: lowercase, no padding, canonical trailing bits, the exact CID
    /// header.
    pub fn from_peer_id(text: &str) -> Result<Self, KeyParseError> {
        let fail = |reason| KeyParseError::NotPeerId(text.to_owned(), reason);
        let body = text
            .strip_prefix(PEER_ID_MULTIBASE)
            .ok_or_else(|| fail("it does not start with 'b' (multibase base32)"))?;
        if body.len() != PEER_ID_BASE32_LEN {
            return Err(fail("it is not 59 characters long"));
        }
        let cid = decode_base32(body).ok_or_else(|| fail("it is not lowercase unpadded base32"))?;
        let key = cid
            .strip_prefix(&PEER_ID_CID_PREFIX[..])
            .ok_or_else(|| fail("its CID header is not 01 73 00 20"))?;
        let key: [u8; KEY_LEN] = key
            .try_into()
            .map_err(|_| fail("it does not hold a 32-byte key"))?;
        Ok(Self(key))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        decode_key_base64(text).map(|bytes| Self(*bytes))
    }
}

impl PresharedKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn from_base64(text: &str) -> Result<Self, KeyParseError> {
        decode_key_base64(text).map(|bytes| Self(*bytes))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<secret>)")
    }
}

/// Decodes WireGuard's base64 key form: exactly 44 characters of padded standard base64 whose
/// unused trailing bits are zero (as `wg` requires).
fn decode_key_base64(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyParseError> {
    if text.is_empty() {
        return Err(KeyParseError::Empty);
    }
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text)
            .map_err(|_| KeyParseError::NotBase64 {
                chars: text.chars().count(),
            })?,
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(KeyParseError::WrongLength { bytes: bytes.len() });
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

fn encode_base32(bytes: &[u8], out: &mut String) {
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
}

/// Strict inverse of [`encode_base32`]: `None` on any character outside the alphabet or on
/// non-zero leftover bits (which a canonical encoder never writes).
fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for character in text.bytes() {
        let value = BASE32_ALPHABET.iter().position(|&c| c == character)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (buffer == 0).then_some(out)
}

/// Strips the whitespace `wg` tolerates after a key (space, tab, newline, CR, vertical tab,
/// form feed); anything else around a key is an error.
pub fn trim_key_line(text: &str) -> &str {
    text.trim_end_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
}

/// Reads a WireGuard-form private key from a file that only its owner may access.
pub fn read_private_key_file(path: &Path) -> Result<PrivateKey, KeyError> {
    let text = read_secret_file(path)?;
    PrivateKey::from_base64(trim_key_line(&text)).map_err(|source| KeyError::Malformed {
        path: path.to_owned(),
        source,
    })
}

/// Reads a WireGuard-form preshared key from a file that only its owner may access.
pub fn read_preshared_key_file(path: &Path) -> Result<PresharedKey, KeyError> {
    let text = read_secret_file(path)?;
    PresharedKey::from_base64(trim_key_line(&text)).map_err(|source| KeyError::Malformed {
        path: path.to_owned(),
        source,
    })
}

/// The permission bits a secret file must not have: any access for group or others.
pub const GROUP_OR_OTHER_BITS: u32 = 0o077;

/// Reads a small secret file after checking, on the opened file itself, that it is a regular
/// file no one but its owner can access.
fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let io_error = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & GROUP_OR_OTHER_BITS != 0 {
        return Err(KeyError::OpenPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    if metadata.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
            len: metadata.len(),
        });
    }
    let bytes = read_secret_bytes(file, MAX_KEY_FILE_LEN as usize, MAX_KEY_FILE_LEN as usize)
        .map_err(io_error)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::Malformed {
        path: path.to_owned(),
        source: KeyParseError::NotBase64 { chars: bytes.len() },
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Reads secret input of at most `max` bytes (more is cut off at `max + 1`; the caller tells
/// by the length) into one buffer allocated up front for `expected` bytes (capped at `max`)
/// and wiped on drop. A `Vec` that grows frees its old allocation without wiping it, leaving
/// a copy of what was read so far; sized up front, it grows only if the input is larger than
/// expected (a file that grew after it was measured).
pub fn read_secret_bytes(
    reader: impl Read,
    expected: usize,
    max: usize,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(expected.min(max) + 1));
    reader.take(max as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Quotes a path for the `chmod` hint when it holds characters a shell would interpret.
pub(crate) fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests;
