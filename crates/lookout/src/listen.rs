//! Listen addresses as operators write them: `127.0.0.1:8443`, `[::1]:8443`, `localhost:8443`
//! (resolved once, at start) and `:8443` (every IPv4 interface, `0.0.0.0:8443`, as in Go and
//! nginx). The same rules apply to `--listen`, `listen =` in the file and `LOOKOUT_LISTEN`.

use std::net::{SocketAddr, ToSocketAddrs};

/// Parses and resolves a listen address; the error says what was expected.
pub fn parse(raw: &str) -> Result<SocketAddr, String> {
    let raw = raw.trim();
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = raw.strip_prefix(':') {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p)))
            .map_err(|_| format!("`{raw}`: `{port}` is not a port number (0-65535)"));
    }
    let Some((host, port)) = raw.rsplit_once(':') else {
        return Err(format!(
            "`{raw}`: expected HOST:PORT, e.g. 127.0.0.1:8443, localhost:8443 or :8443 (all interfaces)"
        ));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("`{raw}`: `{port}` is not a port number (0-65535)"));
    }
    let addrs: Vec<SocketAddr> = raw
        .to_socket_addrs()
        .map_err(|e| format!("`{raw}`: cannot resolve `{host}`: {e}"))?
        .collect();
    // A name with both families (localhost: 127.0.0.1 and ::1) binds its IPv4 address, the
    // one every client can reach whatever the resolver's order.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{raw}`: `{host}` resolves to no address"))
}

/// `#[serde(deserialize_with)]` for listen addresses in the configuration.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let raw = <String as serde::Deserialize>::deserialize(d)?;
    parse(&raw).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_forms() {
        assert_eq!(parse("127.0.0.1:9").unwrap().to_string(), "127.0.0.1:9");
        assert_eq!(parse("[::1]:9").unwrap().to_string(), "[::1]:9");
        assert_eq!(parse(":8443").unwrap().to_string(), "0.0.0.0:8443");
        assert_eq!(
            parse("localhost:8443").unwrap().to_string(),
            "127.0.0.1:8443"
        );
        assert_eq!(
            parse("localhost").unwrap_err(),
            "`localhost`: expected HOST:PORT, e.g. 127.0.0.1:8443, localhost:8443 or :8443 (all interfaces)"
        );
        assert_eq!(
            parse(":http").unwrap_err(),
            "`:http`: `http` is not a port number (0-65535)"
        );
        assert!(parse("no-such-host.invalid:80")
            .unwrap_err()
            .starts_with("`no-such-host.invalid:80`: cannot resolve `no-such-host.invalid`"));
    }
}
