//! Endpoints and listen addresses as users write them: any text, no panic; an accepted value
//! never has port 0 and prints as text that parses back to the same value; a listen address is
//! the endpoint of the same text. A peer to dial (`peer connect`'s multiaddr) names its peer by
//! the canonical PeerID at its end, after the endpoint of the text before it; written back out
//! as a multiaddr (with or without the peer) or as `HOST:PORT` it parses to the same.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rovy_control::config::{Endpoint, parse_dial, parse_listen_address};

fuzz_target!(|text: &str| {
    let endpoint = text.parse::<Endpoint>();
    if let Ok(endpoint) = &endpoint {
        let printed = endpoint.to_string();
        assert_eq!(
            printed.parse::<Endpoint>().as_ref(),
            Ok(endpoint),
            "printed as {printed:?}"
        );
        let port = match endpoint {
            Endpoint::Addr(addr) => addr.port(),
            Endpoint::Host { host, port } => {
                assert!(!host.is_empty() && host.len() <= 254, "host {host:?}");
                *port
            }
        };
        assert_ne!(port, 0);
    }
    if let Ok(addr) = parse_listen_address(text) {
        assert_ne!(addr.port(), 0);
        assert_eq!(parse_listen_address(&addr.to_string()), Ok(addr));
        assert_eq!(
            endpoint,
            Ok(Endpoint::Addr(addr)),
            "listen address is not an endpoint"
        );
    }
    if let Ok((endpoint, key)) = parse_dial(text) {
        let printed = endpoint.to_string();
        assert_eq!(parse_dial(&printed), Ok((endpoint.clone(), None)));
        match key {
            None => assert_eq!(text.parse::<Endpoint>().as_ref(), Ok(&endpoint)),
            Some(key) => {
                let named = format!("/rovy/{}", key.peer_id());
                let address = text
                    .strip_suffix(&named)
                    .expect("not the PeerID at the end");
                assert_eq!(address.parse::<Endpoint>().as_ref(), Ok(&endpoint));
            }
        }
        if let Some(multiaddr) = multiaddr(&endpoint) {
            assert_eq!(parse_dial(&multiaddr), Ok((endpoint.clone(), None)));
            if let Some(key) = key {
                let named = format!("{multiaddr}/rovy/{}", key.peer_id());
                assert_eq!(parse_dial(&named), Ok((endpoint, Some(key))));
            }
        }
    }
});

/// `endpoint` as a multiaddr: `None` for an IPv6 address with a scope, which has none.
fn multiaddr(endpoint: &Endpoint) -> Option<String> {
    Some(match endpoint {
        Endpoint::Addr(SocketAddr::V4(addr)) => format!("/ip4/{}/udp/{}", addr.ip(), addr.port()),
        Endpoint::Addr(SocketAddr::V6(addr)) if addr.scope_id() != 0 => return None,
        Endpoint::Addr(SocketAddr::V6(addr)) => format!("/ip6/{}/udp/{}", addr.ip(), addr.port()),
        Endpoint::Host { host, port } => format!("/dns/{host}/udp/{port}"),
    })
}
