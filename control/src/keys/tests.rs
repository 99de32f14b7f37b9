use std::os::unix::fs::PermissionsExt;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

const GOLDEN_PRIVATE_MULTIBASE: &str = "mloUFLqeJND3KizotkvrQf8vA/i0DeLCfCylpBgpnpu0";
const GOLDEN_PUBLIC_HEX: &str = "7af4c4eed05dc6b4d38fd7a19750b109ee2fe4395f7e626c976cced9e6116b21";
const GOLDEN_PEER_ID: &str = "bafzqaid26tco5uc5y22nhd6xuglvbmij5yx6iok7pzrgzf3mz3m6mellee";
const GOLDEN_ADDRESS: &str = "fc89:54a1:b598:365f:357:d6a:b108:db7b";

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn golden_vector_matches_go_rovy() {
    let private = PrivateKey::from_multibase(GOLDEN_PRIVATE_MULTIBASE).unwrap();
    let public = private.public_key();
    assert_eq!(public.to_hex(), GOLDEN_PUBLIC_HEX);
    assert_eq!(public.peer_id(), GOLDEN_PEER_ID);
    assert_eq!(
        public.address(),
        Some(GOLDEN_ADDRESS.parse::<Ipv6Addr>().unwrap())
    );
    assert_eq!(PublicKey::from_peer_id(GOLDEN_PEER_ID), Ok(public));
}

#[test]
fn rfc7748_diffie_hellman_public_keys() {
    let vectors = [
        (
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        ),
        (
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        ),
    ];
    for (private, public) in vectors {
        let key = PrivateKey::from_bytes(hex32(private));
        assert_eq!(key.public_key().to_hex(), public);
    }
}

#[test]
fn generated_keys_are_clamped_and_own_an_fc_address() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..16 {
        let key = PrivateKey::generate(&mut rng);
        let bytes = key.as_bytes();
        assert_eq!(bytes[0] & 0b111, 0);
        assert_eq!(bytes[31] & 0b1100_0000, 0b0100_0000);
        let address = key.public_key().address().unwrap();
        assert_eq!(address.octets()[0], 0xfc);
    }
}

#[test]
fn base64_round_trips_and_matches_wireguard_form() {
    let key = PrivateKey::from_bytes(hex32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let text = key.to_base64();
    assert_eq!(
        text.as_str(),
        "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
    );
    assert_eq!(
        PrivateKey::from_base64(&text).unwrap().as_bytes(),
        key.as_bytes()
    );
    let public = key.public_key();
    assert_eq!(
        public.to_string(),
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
    );
    assert_eq!(public.to_string().parse::<PublicKey>(), Ok(public));
    let psk = PresharedKey::from_bytes([9; 32]);
    assert_eq!(
        PresharedKey::from_base64(&psk.to_base64())
            .unwrap()
            .as_bytes(),
        &[9; 32]
    );
}

#[test]
fn malformed_base64_keys_are_rejected_with_reasons() {
    assert_eq!(
        PrivateKey::from_base64("").unwrap_err(),
        KeyParseError::Empty
    );
    // Unpadded: 43 characters.
    assert_eq!(
        PrivateKey::from_base64("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo").unwrap_err(),
        KeyParseError::NotBase64 { chars: 43 }
    );
    // Non-zero unused trailing bits ('p' instead of 'o'), which `wg` refuses too.
    assert_eq!(
        PrivateKey::from_base64("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=").unwrap_err(),
        KeyParseError::NotBase64 { chars: 44 }
    );
    assert_eq!(
        "not a key!".parse::<PublicKey>(),
        Err(KeyParseError::NotBase64 { chars: 10 })
    );
    assert_eq!(
        "AAAA".parse::<PublicKey>(),
        Err(KeyParseError::WrongLength { bytes: 3 })
    );
    assert_eq!(
        PresharedKey::from_base64(&STANDARD.encode([0u8; 33])).unwrap_err(),
        KeyParseError::WrongLength { bytes: 33 }
    );
    assert_eq!(
        PrivateKey::from_multibase("loUFLqeJND3KizotkvrQf8vA/i0DeLCfCylpBgpnpu0").unwrap_err(),
        KeyParseError::NotMultibase
    );
    assert_eq!(
        PrivateKey::from_multibase("mAAAA").unwrap_err(),
        KeyParseError::WrongLength { bytes: 3 }
    );
    assert_eq!(
        KeyParseError::NotBase64 { chars: 3 }.to_string(),
        "key is not base64 (a WireGuard key is 44 characters of standard base64 ending in '='; \
         input length 3)"
    );
}

#[test]
fn peer_id_parsing_is_strict() {
    let reason = |text: &str| match PublicKey::from_peer_id(text) {
        Err(KeyParseError::NotPeerId(echo, reason)) => {
            assert_eq!(echo, text);
            reason
        }
        other => panic!("{text}: {other:?}"),
    };
    let (head, last) = GOLDEN_PEER_ID.split_at(GOLDEN_PEER_ID.len() - 1);
    assert_eq!(
        reason(&GOLDEN_PEER_ID.replacen('b', "B", 1)),
        "it does not start with 'b' (multibase base32)"
    );
    assert_eq!(reason(head), "it is not 59 characters long");
    assert_eq!(
        reason(&format!("{GOLDEN_PEER_ID}a")),
        "it is not 59 characters long"
    );
    assert_eq!(
        reason(&GOLDEN_PEER_ID.to_uppercase().replacen('B', "b", 1)),
        "it is not lowercase unpadded base32"
    );
    // The last character carries two unused bits: 'e' sets none, 'f' sets one.
    assert_eq!(last, "e");
    assert_eq!(
        reason(&format!("{head}f")),
        "it is not lowercase unpadded base32"
    );
    // A CIDv1 with another codec (0x72) in front of the same key.
    let mut other_codec = String::from("b");
    let mut cid = vec![0x01, 0x72, 0x00, 0x20];
    cid.extend_from_slice(&hex32(GOLDEN_PUBLIC_HEX));
    encode_base32(&cid, &mut other_codec);
    assert_eq!(reason(&other_codec), "its CID header is not 01 73 00 20");
}

#[test]
fn peer_ids_round_trip_and_start_bafzqai() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..64 {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = PublicKey(bytes);
        let id = key.peer_id();
        assert!(id.starts_with("bafzqai"), "{id}");
        assert_eq!(id.len(), 59);
        assert_eq!(PublicKey::from_peer_id(&id), Ok(key));
    }
}

#[test]
fn address_requires_fc_prefix() {
    // The RFC 7748 Alice key derives an address that does not start with 0xfc.
    let key = PrivateKey::from_bytes(hex32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ))
    .public_key();
    assert_ne!(key.overlay_address_unchecked().octets()[0], 0xfc);
    assert_eq!(key.address(), None);
}

#[test]
fn debug_output_never_shows_secrets() {
    let key = PrivateKey::from_multibase(GOLDEN_PRIVATE_MULTIBASE).unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains(key.to_base64().as_str()));
    assert!(shown.contains(&key.public_key().to_string()));
    let psk = PresharedKey::from_bytes([0x41; 32]);
    assert_eq!(format!("{psk:?}"), "PresharedKey(<secret>)");
}

#[test]
fn low_order_peer_keys_do_not_agree() {
    let key = PrivateKey::from_multibase(GOLDEN_PRIVATE_MULTIBASE).unwrap();
    assert!(!key.agrees_with(&PublicKey([0; 32])));
    let mut one = [0u8; 32];
    one[0] = 1;
    assert!(!key.agrees_with(&PublicKey(one)));
    assert!(key.agrees_with(&PrivateKey::from_bytes([3; 32]).public_key()));
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("rovy-keys-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    fn file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn key_files_are_read_and_checked() {
    let dir = TempDir::new("files");
    let key = PrivateKey::generate(&mut StdRng::seed_from_u64(3));
    let line = format!("{}\n", key.to_base64().as_str());

    let good = dir.file("good.key", line.as_bytes(), 0o600);
    assert_eq!(
        read_private_key_file(&good).unwrap().as_bytes(),
        key.as_bytes()
    );
    let crlf = dir.file(
        "crlf.key",
        format!("{}\r\n", key.to_base64().as_str()).as_bytes(),
        0o400,
    );
    assert!(read_private_key_file(&crlf).is_ok());
    let psk = dir.file("psk", line.as_bytes(), 0o600);
    assert_eq!(
        read_preshared_key_file(&psk).unwrap().as_bytes(),
        key.as_bytes()
    );

    let open = dir.file("open.key", line.as_bytes(), 0o644);
    let message = read_private_key_file(&open).unwrap_err().to_string();
    let shown = open.display();
    assert_eq!(
        message,
        format!(
            "key file {shown} is accessible by group or others (mode 0644); run `chmod 600 {shown}`"
        )
    );
    let group_write = dir.file("gw.key", line.as_bytes(), 0o620);
    assert!(matches!(
        read_preshared_key_file(&group_write),
        Err(KeyError::OpenPermissions { mode: 0o620, .. })
    ));

    let empty = dir.file("empty.key", b"", 0o600);
    assert_eq!(
        read_private_key_file(&empty).unwrap_err().to_string(),
        format!("key file {}: key is empty", empty.display())
    );
    let newline_only = dir.file("nl.key", b"\n", 0o600);
    assert!(matches!(
        read_private_key_file(&newline_only),
        Err(KeyError::Malformed {
            source: KeyParseError::Empty,
            ..
        })
    ));
    let short = dir.file("short.key", b"AAAA\n", 0o600);
    assert!(matches!(
        read_private_key_file(&short),
        Err(KeyError::Malformed {
            source: KeyParseError::WrongLength { bytes: 3 },
            ..
        })
    ));
    let binary = dir.file("binary.key", &[0xff, 0xfe, 0x00, 0x80], 0o600);
    assert!(matches!(
        read_private_key_file(&binary),
        Err(KeyError::Malformed {
            source: KeyParseError::NotBase64 { chars: 4 },
            ..
        })
    ));
    let large = dir.file("large.key", &[b'A'; 2000], 0o600);
    assert!(matches!(
        read_private_key_file(&large),
        Err(KeyError::TooLarge { len: 2000, .. })
    ));
    assert!(matches!(
        read_private_key_file(&dir.0.join("missing.key")),
        Err(KeyError::Io { .. })
    ));
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        read_private_key_file(&dir.0),
        Err(KeyError::NotAFile { .. })
    ));
}

#[test]
fn chmod_hint_quotes_paths_a_shell_would_split() {
    assert_eq!(
        shell_quote(Path::new("/etc/rovy/private.key")),
        "/etc/rovy/private.key"
    );
    assert_eq!(shell_quote(Path::new("my key")), "'my key'");
    assert_eq!(shell_quote(Path::new("it's")), r"'it'\''s'");
}

#[test]
fn private_key_bytes_live_in_a_page_of_their_own_that_stays_put_as_the_key_moves() {
    let keys: Vec<PrivateKey> = (0..3)
        .map(|_| PrivateKey::generate(&mut rand_core::OsRng))
        .collect();
    let before: Vec<usize> = keys
        .iter()
        .map(|k| k.as_bytes().as_ptr() as usize)
        .collect();
    assert!(before.iter().all(|addr| addr % 4096 == 0), "{before:x?}");
    let moved: Vec<PrivateKey> = keys.into_iter().rev().collect();
    let after: Vec<usize> = moved
        .iter()
        .rev()
        .map(|k| k.as_bytes().as_ptr() as usize)
        .collect();
    assert_eq!(before, after, "moving a key does not copy its bytes");
}

/// Hands out its input a few bytes per `read`, as a pipe may.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(3);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn secret_input_is_read_into_one_buffer_that_never_grows() {
    let line = [b'A'; 45];
    let bytes = read_secret_bytes(Trickle(&line), 45, 4096).unwrap();
    assert_eq!(&bytes[..], &line[..]);
    assert_eq!(
        bytes.capacity(),
        46,
        "sized once, for the input and the end probe"
    );

    let long = vec![b'A'; 5000];
    let bytes = read_secret_bytes(Trickle(&long), 45, 4096).unwrap();
    assert_eq!(bytes.len(), 4097, "cut off one past the limit");
    let bytes = read_secret_bytes(Trickle(&long), 1 << 20, 4096).unwrap();
    assert_eq!(
        bytes.capacity(),
        4097,
        "the expected size is capped by the limit"
    );
}
