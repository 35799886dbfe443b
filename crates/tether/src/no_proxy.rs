//! `NO_PROXY`: the servers reached directly, matched as curl matches them.

use std::net::IpAddr;

/// A list of servers reached directly instead of through a proxy, in curl's `NO_PROXY`
/// grammar: entries separated by commas or spaces; `*` alone means every server; a name
/// matches itself and its subdomains (`example.com` and `.example.com` both match
/// `example.com` and `www.example.com`, never `notexample.com`); an IP address matches
/// itself, an address with `/bits` a CIDR range. Case is ignored, a trailing dot too.
///
/// Ports are not part of the grammar (as in curl): an entry with a port (`host:8080`)
/// matches no server.
///
/// ```
/// use tether::NoProxy;
///
/// let list = NoProxy::parse("localhost, .corp.example 10.0.0.0/8");
/// assert!(list.matches("LOCALHOST", 80));
/// assert!(list.matches("git.corp.example", 443));
/// assert!(list.matches("10.1.2.3", 443));
/// assert!(!list.matches("example.org", 443));
/// assert!(NoProxy::parse("*").matches("anything", 1));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<String>,
    everything: bool,
}

impl NoProxy {
    /// Reads a `NO_PROXY` value. Nothing in it is an error: entries that can match nothing
    /// are kept and match nothing.
    pub fn parse(list: &str) -> NoProxy {
        let entries: Vec<String> = list
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let everything = entries.len() == 1 && entries[0] == "*";
        NoProxy {
            entries,
            everything,
        }
    }

    /// The value of `no_proxy`, else `NO_PROXY`, from the process environment (empty when
    /// neither is set).
    pub fn from_env() -> NoProxy {
        NoProxy::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> NoProxy {
        lookup("no_proxy")
            .or_else(|| lookup("NO_PROXY"))
            .map(|list| NoProxy::parse(&list))
            .unwrap_or_default()
    }

    /// Whether `host` (a name, an IPv4 address or an IPv6 address with or without brackets)
    /// is reached directly. `port` is not compared (curl's rule).
    pub fn matches(&self, host: &str, _port: u16) -> bool {
        if self.everything {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        match host.parse::<IpAddr>() {
            Ok(ip) => self.entries.iter().any(|entry| ip_matches(ip, entry)),
            Err(_) => self.entries.iter().any(|entry| name_matches(&host, entry)),
        }
    }
}

/// `example.com` or `.example.com` matches `example.com` and `*.example.com`.
fn name_matches(host: &str, entry: &str) -> bool {
    let entry = entry.strip_suffix('.').unwrap_or(entry);
    let entry = entry.strip_prefix('.').unwrap_or(entry);
    if entry.is_empty() {
        return false;
    }
    host == entry
        || host
            .strip_suffix(entry)
            .is_some_and(|head| head.ends_with('.'))
}

/// An address or `address/bits`; no bits (or 0, as curl reads it) means the whole address.
fn ip_matches(ip: IpAddr, entry: &str) -> bool {
    let entry = entry.trim_start_matches('[');
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (addr, bits),
            Err(_) => return false,
        },
        None => (entry, 0),
    };
    let addr = addr.trim_end_matches(']');
    match (ip, addr.parse::<IpAddr>()) {
        (IpAddr::V4(ip), Ok(IpAddr::V4(net))) => {
            prefix_eq(&ip.octets(), &net.octets(), bits_or_all(bits, 32))
        }
        (IpAddr::V6(ip), Ok(IpAddr::V6(net))) => {
            prefix_eq(&ip.octets(), &net.octets(), bits_or_all(bits, 128))
        }
        _ => false,
    }
}

fn bits_or_all(bits: u32, all: u32) -> Option<u32> {
    match bits {
        0 => Some(all),
        bits if bits <= all => Some(bits),
        _ => None,
    }
}

/// Whether the first `bits` bits of `a` and `b` are equal (`None`: an impossible prefix).
fn prefix_eq(a: &[u8], b: &[u8], bits: Option<u32>) -> bool {
    let Some(bits) = bits else { return false };
    let whole = (bits / 8) as usize;
    let rest = bits % 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_themselves_and_their_subdomains() {
        let list = NoProxy::parse("example.com,.dot.org  Trailing.net.");
        for host in [
            "example.com",
            "www.example.com",
            "EXAMPLE.COM.",
            "dot.org",
            "a.b.dot.org",
            "trailing.net",
        ] {
            assert!(list.matches(host, 443), "{host}");
        }
        for host in ["notexample.com", "example.com.evil", "org", "127.0.0.1"] {
            assert!(!list.matches(host, 443), "{host}");
        }
    }

    #[test]
    fn star_alone_matches_everything_and_inside_a_list_nothing() {
        assert!(NoProxy::parse(" * ").matches("x", 1));
        let list = NoProxy::parse("*, example.com");
        assert!(!list.matches("other.org", 1));
        assert!(list.matches("example.com", 1));
        assert!(!NoProxy::parse("").matches("x", 1));
        assert!(!NoProxy::parse(".").matches("x", 1));
    }

    #[test]
    fn addresses_match_exactly_or_by_cidr() {
        let list = NoProxy::parse("127.0.0.1 10.0.0.0/8 192.168.1.0/33 [::1] fd00::/8");
        assert!(list.matches("127.0.0.1", 80));
        assert!(!list.matches("127.0.0.2", 80));
        assert!(list.matches("10.255.0.1", 80));
        assert!(!list.matches("11.0.0.1", 80));
        // An impossible prefix length matches nothing.
        assert!(!list.matches("192.168.1.1", 80));
        assert!(list.matches("[::1]", 80));
        assert!(list.matches("::1", 80));
        assert!(list.matches("fdab::1", 80));
        assert!(!list.matches("fe80::1", 80));
        // A name entry never matches an address and the other way round.
        assert!(!NoProxy::parse("localhost").matches("127.0.0.1", 80));
        assert!(!NoProxy::parse("127.0.0.1").matches("localhost", 80));
        assert!(NoProxy::parse("10.1.0.0/15").matches("10.0.0.1", 80));
        assert!(!NoProxy::parse("10.1.0.0/16").matches("10.0.0.1", 80));
    }

    #[test]
    fn ports_are_not_part_of_the_grammar_as_in_curl() {
        let list = NoProxy::parse("localhost:8080, 127.0.0.1:8080");
        assert!(!list.matches("localhost", 8080));
        assert!(!list.matches("127.0.0.1", 8080));
        // Without a port the entry matches every port.
        assert!(NoProxy::parse("localhost").matches("localhost", 8080));
    }

    #[test]
    fn lowercase_no_proxy_wins_over_uppercase() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let both = NoProxy::from_lookup(lookup(&[("no_proxy", "a"), ("NO_PROXY", "b")]));
        assert!(both.matches("a", 1) && !both.matches("b", 1));
        let upper = NoProxy::from_lookup(lookup(&[("NO_PROXY", "b")]));
        assert!(upper.matches("b", 1));
        assert_eq!(NoProxy::from_lookup(lookup(&[])), NoProxy::default());
    }
}
