//! Endpoints and listen addresses as users write them: any text, no panic; an accepted value
//! never has port 0 and prints as text that parses back to the same value; a listen address is
//! the endpoint of the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_control::config::{Endpoint, parse_listen_address};

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
});
