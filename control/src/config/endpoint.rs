//! UDP addresses as users write them: multiaddrs (`/ip4/192.0.2.1/udp/1312`,
//! `/ip6/::/udp/1312`, `/dns/node.example/udp/1312`) or WireGuard's `host:port`
//! (`192.0.2.1:1312`, `[2001:db8::1]:1312`, `node.example:1312`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use super::AddressParseError;
use crate::keys::PublicKey;

/// Where to reach a peer. Host names are kept as written; resolving them is the daemon's job, at
/// start and again when a peer stops answering.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Addr(SocketAddr),
    Host { host: String, port: u16 },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(addr) => write!(f, "{addr}"),
            Endpoint::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

const ENDPOINT_FORMS: &str =
    "expected HOST:PORT, [IPV6]:PORT, /ip4/ADDR/udp/PORT, /ip6/ADDR/udp/PORT or /dns/HOST/udp/PORT";

const LISTEN_FORMS: &str =
    "expected ADDR:PORT, [IPV6]:PORT, /ip4/ADDR/udp/PORT or /ip6/ADDR/udp/PORT";

impl FromStr for Endpoint {
    type Err = AddressParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |why: &str| AddressParseError(format!("{text:?} is not an endpoint ({why})"));
        if text.starts_with('/') {
            return match parse_udp_multiaddr(text).map_err(|why| fail(&why))? {
                (MultiaddrHost::Ip(ip), port) => Ok(Endpoint::Addr(SocketAddr::new(ip, port))),
                (MultiaddrHost::Dns(host), port) => Ok(Endpoint::Host { host, port }),
            };
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return nonzero_port(addr.port())
                .map(|_| Endpoint::Addr(addr))
                .map_err(|why| fail(&why));
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(|| fail(ENDPOINT_FORMS))?;
        if host.contains(':') {
            return Err(fail("an IPv6 address needs brackets: [ADDR]:PORT"));
        }
        check_host_name(host).map_err(|why| fail(&why))?;
        let port = parse_port(port).map_err(|why| fail(&why))?;
        Ok(Endpoint::Host {
            host: host.to_owned(),
            port,
        })
    }
}

/// Parses a peer to dial as users write it: a multiaddr that names the peer,
/// `/ip4|ip6|dns/HOST/udp/PORT/rovy/PEERID`, or an endpoint alone (`HOST:PORT`, or the
/// multiaddr without `/rovy/…`), which leaves the peer to be named otherwise.
pub fn parse_dial(text: &str) -> Result<(Endpoint, Option<PublicKey>), AddressParseError> {
    // The address is always four components, so a host named `rovy` (`/dns/rovy/udp/PORT`)
    // is not taken for the start of the PeerID.
    let address_end = text
        .starts_with('/')
        .then(|| text.match_indices('/').nth(4))
        .flatten();
    let Some((address, peer_id)) = address_end.and_then(|(at, _)| {
        let (address, rest) = text.split_at(at);
        Some((address, rest.strip_prefix("/rovy/")?))
    }) else {
        return text.parse().map(|endpoint| (endpoint, None));
    };
    let endpoint = address.parse()?;
    let key = PublicKey::from_peer_id(peer_id).map_err(|error| {
        AddressParseError(format!("{text:?} names no peer ({peer_id:?}: {error})"))
    })?;
    Ok((endpoint, Some(key)))
}

/// Parses a local address to listen on: an IP address and port in either form; no host names.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, AddressParseError> {
    let fail = |why: &str| AddressParseError(format!("{text:?} is not a listen address ({why})"));
    if text.starts_with('/') {
        return match parse_udp_multiaddr(text).map_err(|why| fail(&why))? {
            (MultiaddrHost::Ip(ip), port) => Ok(SocketAddr::new(ip, port)),
            (MultiaddrHost::Dns(_), _) => Err(fail("a listen address must be an IP address")),
        };
    }
    let addr = text.parse::<SocketAddr>().map_err(|_| fail(LISTEN_FORMS))?;
    nonzero_port(addr.port()).map_err(|why| fail(&why))?;
    Ok(addr)
}

enum MultiaddrHost {
    Ip(IpAddr),
    Dns(String),
}

/// `/ip4/ADDR/udp/PORT`, `/ip6/ADDR/udp/PORT` or `/dns/HOST/udp/PORT`, nothing more.
fn parse_udp_multiaddr(text: &str) -> Result<(MultiaddrHost, u16), String> {
    let parts: Vec<&str> = text.split('/').collect();
    let ["", protocol, host, "udp", port] = parts.as_slice() else {
        return Err(ENDPOINT_FORMS.to_owned());
    };
    let host = match *protocol {
        "ip4" => host
            .parse::<Ipv4Addr>()
            .map(|ip| MultiaddrHost::Ip(ip.into()))
            .map_err(|_| format!("{host:?} is not an IPv4 address"))?,
        "ip6" => host
            .parse::<Ipv6Addr>()
            .map(|ip| MultiaddrHost::Ip(ip.into()))
            .map_err(|_| format!("{host:?} is not an IPv6 address"))?,
        "dns" => {
            check_host_name(host)?;
            MultiaddrHost::Dns((*host).to_owned())
        }
        other => return Err(format!("unsupported protocol /{other}; {ENDPOINT_FORMS}")),
    };
    Ok((host, parse_port(port)?))
}

fn parse_port(text: &str) -> Result<u16, String> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    let port = digits
        .then(|| text.parse::<u16>().ok())
        .flatten()
        .ok_or_else(|| format!("{text:?} is not a port number"))?;
    nonzero_port(port)?;
    Ok(port)
}

fn nonzero_port(port: u16) -> Result<(), String> {
    if port == 0 {
        Err("port 0 is not allowed".to_owned())
    } else {
        Ok(())
    }
}

/// A DNS name (RFC 1123 labels, optional trailing dot). A name whose last label is all digits is
/// refused: it is a mistyped IPv4 address, never a real host.
fn check_host_name(host: &str) -> Result<(), String> {
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let numeric_tail = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) || numeric_tail {
        return Err(format!("{host:?} is neither an IP address nor a host name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(text: &str) -> Endpoint {
        text.parse().unwrap()
    }

    fn endpoint_error(text: &str) -> String {
        text.parse::<Endpoint>().unwrap_err().to_string()
    }

    #[test]
    fn parses_every_endpoint_form() {
        let v4: SocketAddr = "192.0.2.1:1312".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:51820".parse().unwrap();
        assert_eq!(endpoint("192.0.2.1:1312"), Endpoint::Addr(v4));
        assert_eq!(endpoint("/ip4/192.0.2.1/udp/1312"), Endpoint::Addr(v4));
        assert_eq!(endpoint("[2001:db8::1]:51820"), Endpoint::Addr(v6));
        assert_eq!(endpoint("/ip6/2001:db8::1/udp/51820"), Endpoint::Addr(v6));
        let host = Endpoint::Host {
            host: "node-1.example.org".to_owned(),
            port: 443,
        };
        assert_eq!(endpoint("node-1.example.org:443"), host);
        assert_eq!(endpoint("/dns/node-1.example.org/udp/443"), host);
        assert_eq!(host.to_string(), "node-1.example.org:443");
        assert_eq!(
            endpoint("[2001:db8::1]:51820").to_string(),
            "[2001:db8::1]:51820"
        );
        assert_eq!(
            endpoint("localhost:9"),
            Endpoint::Host {
                host: "localhost".to_owned(),
                port: 9
            }
        );
    }

    #[test]
    fn rejects_malformed_endpoints_with_reasons() {
        assert_eq!(
            endpoint_error("10.0.0.300:1312"),
            r#""10.0.0.300:1312" is not an endpoint ("10.0.0.300" is neither an IP address nor a host name)"#
        );
        assert_eq!(
            endpoint_error("2001:db8::1:51820"),
            r#""2001:db8::1:51820" is not an endpoint (an IPv6 address needs brackets: [ADDR]:PORT)"#
        );
        assert_eq!(
            endpoint_error("192.0.2.1"),
            format!(r#""192.0.2.1" is not an endpoint ({ENDPOINT_FORMS})"#)
        );
        assert_eq!(
            endpoint_error("192.0.2.1:0"),
            r#""192.0.2.1:0" is not an endpoint (port 0 is not allowed)"#
        );
        assert_eq!(
            endpoint_error("host:65536"),
            r#""host:65536" is not an endpoint ("65536" is not a port number)"#
        );
        assert_eq!(
            endpoint_error("host:+80"),
            r#""host:+80" is not an endpoint ("+80" is not a port number)"#
        );
        assert_eq!(
            endpoint_error("/ip4/192.0.2.1/tcp/1312"),
            format!(r#""/ip4/192.0.2.1/tcp/1312" is not an endpoint ({ENDPOINT_FORMS})"#)
        );
        assert_eq!(
            endpoint_error("/ip4/2001:db8::1/udp/1312"),
            r#""/ip4/2001:db8::1/udp/1312" is not an endpoint ("2001:db8::1" is not an IPv4 address)"#
        );
        assert_eq!(
            endpoint_error("/ip6/192.0.2.1/udp/1312"),
            r#""/ip6/192.0.2.1/udp/1312" is not an endpoint ("192.0.2.1" is not an IPv6 address)"#
        );
        assert_eq!(
            endpoint_error("/unix/x/udp/1"),
            format!(
                r#""/unix/x/udp/1" is not an endpoint (unsupported protocol /unix; {ENDPOINT_FORMS})"#
            )
        );
        for bad in [
            ":1312",
            "-host:1",
            "host-:1",
            "ho st:1",
            "a..b:1",
            "/ip4/192.0.2.1/udp/1312/rovy/x",
            "/dns//udp/1",
            "",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
        let long_label = format!("{}.example:1", "a".repeat(64));
        assert!(long_label.parse::<Endpoint>().is_err());
        let long_name = format!("{}a:1", "a.".repeat(127));
        assert!(long_name.parse::<Endpoint>().is_err());
    }

    #[test]
    fn a_peer_to_dial_is_a_multiaddr_naming_it_or_an_endpoint() {
        let key = PublicKey([7; 32]);
        let v4: SocketAddr = "192.0.2.1:1312".parse().unwrap();
        let named = format!("/ip4/192.0.2.1/udp/1312/rovy/{}", key.peer_id());
        assert_eq!(parse_dial(&named), Ok((Endpoint::Addr(v4), Some(key))));
        let v6 = format!("/ip6/2001:db8::1/udp/9/rovy/{}", key.peer_id());
        assert_eq!(
            parse_dial(&v6).unwrap().0,
            Endpoint::Addr("[2001:db8::1]:9".parse().unwrap())
        );
        assert_eq!(parse_dial("192.0.2.1:1312"), Ok((Endpoint::Addr(v4), None)));
        assert_eq!(
            parse_dial("/ip4/192.0.2.1/udp/1312"),
            Ok((Endpoint::Addr(v4), None))
        );
        let error = parse_dial("/ip4/192.0.2.1/udp/1312/rovy/bafzqaixyz")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(r#""/ip4/192.0.2.1/udp/1312/rovy/bafzqaixyz" names no peer"#));
        assert!(parse_dial(&format!("/ip4/192.0.2.1/udp/0/rovy/{}", key.peer_id())).is_err());
    }

    #[test]
    fn a_host_named_rovy_is_a_host() {
        let key = PublicKey([7; 32]);
        let rovy = Endpoint::Host {
            host: "rovy".to_owned(),
            port: 51820,
        };
        assert_eq!(parse_dial("/dns/rovy/udp/51820"), Ok((rovy.clone(), None)));
        let named = format!("/dns/rovy/udp/51820/rovy/{}", key.peer_id());
        assert_eq!(parse_dial(&named), Ok((rovy, Some(key))));
        assert!(parse_dial("/dns/rovy/udp/51820/ip4").is_err());
    }

    #[test]
    fn listen_addresses_are_ip_only() {
        let v4: SocketAddr = "0.0.0.0:1312".parse().unwrap();
        let v6: SocketAddr = "[::]:1312".parse().unwrap();
        assert_eq!(parse_listen_address("/ip4/0.0.0.0/udp/1312"), Ok(v4));
        assert_eq!(parse_listen_address("0.0.0.0:1312"), Ok(v4));
        assert_eq!(parse_listen_address("/ip6/::/udp/1312"), Ok(v6));
        assert_eq!(parse_listen_address("[::]:1312"), Ok(v6));
        assert_eq!(
            parse_listen_address("/dns/example.org/udp/1")
                .unwrap_err()
                .to_string(),
            r#""/dns/example.org/udp/1" is not a listen address (a listen address must be an IP address)"#
        );
        assert_eq!(
            parse_listen_address("example.org:1")
                .unwrap_err()
                .to_string(),
            format!(r#""example.org:1" is not a listen address ({LISTEN_FORMS})"#)
        );
        assert_eq!(
            parse_listen_address("[::]:0").unwrap_err().to_string(),
            r#""[::]:0" is not a listen address (port 0 is not allowed)"#
        );
    }
}
