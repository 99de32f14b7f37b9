//! Key text: WireGuard base64 for public, private and preshared keys, go-rovy's multibase
//! private keys and PeerIDs. Any text, no panic; what is accepted is the canonical form, so it
//! is exactly what the key prints as; a public key's PeerID parses back to it; and trimming a
//! key line only ever removes trailing whitespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_control::keys::{PresharedKey, PrivateKey, PublicKey, trim_key_line};

fuzz_target!(|text: &str| {
    if let Ok(key) = text.parse::<PublicKey>() {
        assert_eq!(key.to_string(), text, "accepted a non-canonical public key");
        let id = key.peer_id();
        assert!(id.starts_with("bafzqai") && id.len() == 59, "{id}");
        assert_eq!(PublicKey::from_peer_id(&id), Ok(key));
        assert_eq!(key.to_hex().len(), 64);
    }
    if let Ok(key) = PublicKey::from_peer_id(text) {
        assert_eq!(key.peer_id(), text, "accepted a non-canonical PeerID");
    }
    if let Ok(key) = PrivateKey::from_base64(text) {
        assert_eq!(
            *key.to_base64(),
            text,
            "accepted a non-canonical private key"
        );
        let public = key.public_key();
        assert_eq!(public.to_string().parse::<PublicKey>(), Ok(public));
    }
    if let Ok(key) = PrivateKey::from_multibase(text) {
        // Multibase is `m` and the padded form without its padding.
        let canonical = format!("m{}", key.to_base64().trim_end_matches('='));
        assert_eq!(canonical, text, "accepted a non-canonical multibase key");
    }
    if let Ok(key) = PresharedKey::from_base64(text) {
        assert_eq!(
            *key.to_base64(),
            text,
            "accepted a non-canonical preshared key"
        );
    }
    let trimmed = trim_key_line(text);
    assert!(text.starts_with(trimmed));
    assert!(
        text[trimmed.len()..]
            .chars()
            .all(|c| " \t\n\r\x0b\x0c".contains(c))
    );
    assert_eq!(trim_key_line(trimmed), trimmed);
});
