//! A handshake message carrying a low-order ephemeral key (valid mac1, so it reaches the
//! Diffie-Hellman) is refused and counted as `LowOrderKey`, in both roles; the handshake in
//! flight survives it.

use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rovy_control::handshake::cookie::{CookieJar, MacKeys};
use rovy_control::protocol::{EndpointConfig, HANDSHAKE_BUF_LEN, LinkEndpoint, Received};
use rovy_dataplane::DropReason;
use rovy_dataplane::link_addr::LinkAddr;

const A_ADDR: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    1,
));
const B_ADDR: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    2,
));
const NOW: Duration = Duration::from_secs(100);
const WALL: Duration = Duration::from_secs(1_700_000_000);
/// The all-zero key and the order-8 point `e0eb…b800`.
const LOW_ORDER: [[u8; 32]; 2] = [
    [0; 32],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
];

/// `msg` with its ephemeral (at `at`) replaced by `point` and mac1 restamped for `to`.
fn with_ephemeral(msg: &[u8], at: usize, point: &[u8; 32], to: &[u8; 32]) -> Vec<u8> {
    let mut forged = msg.to_vec();
    forged[at..at + 32].copy_from_slice(point);
    let mac1 = forged.len() - 32;
    CookieJar::new(MacKeys::new(to))
        .stamp(NOW, &mut forged, mac1)
        .unwrap();
    forged
}

fn handle(
    node: &mut LinkEndpoint,
    from: LinkAddr,
    msg: &[u8],
    rng: &mut StdRng,
) -> Result<(Received, Vec<u8>), DropReason> {
    let mut packet = msg.to_vec();
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    let r = node.handle_datagram(NOW, from, &mut packet, false, rng, &mut out)?;
    Ok((r, out.to_vec()))
}

#[test]
fn low_order_ephemeral_is_refused_as_low_order_key_in_both_roles() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut a = LinkEndpoint::new([0x11; 32], EndpointConfig::link(), Duration::ZERO, &mut rng);
    let mut b = LinkEndpoint::new([0x22; 32], EndpointConfig::link(), Duration::ZERO, &mut rng);
    let (a_public, b_public) = (*a.public_key(), *b.public_key());
    let a_peer = a.add_tunnel(b_public, None, Some(B_ADDR), None).unwrap();
    b.add_tunnel(a_public, None, None, None).unwrap();

    a.initiate(a_peer);
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    let t = a.poll_transmit(NOW, WALL, &mut rng, &mut out).unwrap();
    let init = out[..t.len].to_vec();
    for point in &LOW_ORDER {
        let forged = with_ephemeral(&init, 8, point, &b_public);
        assert_eq!(
            handle(&mut b, A_ADDR, &forged, &mut rng).unwrap_err(),
            DropReason::LowOrderKey
        );
    }

    let (r, out) = handle(&mut b, A_ADDR, &init, &mut rng).unwrap();
    let Received::HandshakeResponse { len, .. } = r else {
        panic!("{r:?}");
    };
    let response = &out[..len];
    for point in &LOW_ORDER {
        let forged = with_ephemeral(response, 12, point, &a_public);
        assert_eq!(
            handle(&mut a, B_ADDR, &forged, &mut rng).unwrap_err(),
            DropReason::LowOrderKey
        );
    }
    assert_eq!(
        handle(&mut a, B_ADDR, response, &mut rng).unwrap().0,
        Received::HandshakeComplete { tunnel: a_peer }
    );
}
