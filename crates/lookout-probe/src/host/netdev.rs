//! Network interface counters from `/proc/net/dev` and their rates.

use super::rate::per_second;
use crate::NetInterface;

/// One interface's counters since it appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDevCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Parses `/proc/net/dev`. The two header lines have no colon and are skipped; so is any line
/// whose counters do not parse, so one odd interface cannot hide the others.
pub fn parse_net_dev(text: &str) -> Vec<NetDevCounters> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<NetDevCounters> {
    // Old kernels print "eth0:123" with no space once the counter grows wide, so split on the
    // colon, not on whitespace. The last colon, because counters never contain one.
    let (name, counters) = line.rsplit_once(':')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop …
    let mut v = [0u64; 12];
    let mut fields = counters.split_ascii_whitespace();
    for slot in v.iter_mut() {
        *slot = fields.next()?.parse().ok()?;
    }
    Some(NetDevCounters {
        name: name.to_owned(),
        rx_bytes: v[0],
        rx_packets: v[1],
        rx_errors: v[2],
        rx_dropped: v[3],
        tx_bytes: v[8],
        tx_packets: v[9],
        tx_errors: v[10],
        tx_dropped: v[11],
    })
}

/// The reported figures for one interface; rates are 0 when there is no previous reading of
/// the same interface (first tick, or an interface that just appeared).
pub fn interface(
    cur: &NetDevCounters,
    prev: Option<&NetDevCounters>,
    elapsed_secs: f64,
) -> NetInterface {
    let rate = |f: fn(&NetDevCounters) -> u64| {
        prev.map_or(0.0, |p| per_second(f(p), f(cur), elapsed_secs))
    };
    NetInterface {
        name: cur.name.clone(),
        rx_bytes: cur.rx_bytes,
        tx_bytes: cur.tx_bytes,
        rx_packets: cur.rx_packets,
        tx_packets: cur.tx_packets,
        rx_errors: cur.rx_errors,
        tx_errors: cur.tx_errors,
        rx_dropped: cur.rx_dropped,
        tx_dropped: cur.tx_dropped,
        rx_bytes_per_sec: rate(|c| c.rx_bytes),
        tx_bytes_per_sec: rate(|c| c.tx_bytes),
        rx_packets_per_sec: rate(|c| c.rx_packets),
        tx_packets_per_sec: rate(|c| c.tx_packets),
    }
}

/// Finds the previous reading of `name`. Interfaces usually come in the same order every tick,
/// so the same position is tried first; hosts with hundreds of veth pairs stay linear.
pub fn find_prev<'a>(
    prev: &'a [NetDevCounters],
    index: usize,
    name: &str,
) -> Option<&'a NetDevCounters> {
    match prev.get(index) {
        Some(p) if p.name == name => Some(p),
        _ => prev.iter().find(|p| p.name == name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = include_str!("../../tests/fixtures/host/net_dev");

    #[test]
    fn parses_real_net_dev() {
        let all = parse_net_dev(REAL);
        assert_eq!(all.len(), REAL.lines().count() - 2);
        let lo = all.iter().find(|i| i.name == "lo").unwrap();
        let line = REAL
            .lines()
            .find(|l| l.trim_start().starts_with("lo:"))
            .unwrap();
        let nums: Vec<u64> = line
            .split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(lo.rx_bytes, nums[0]);
        assert_eq!(lo.rx_packets, nums[1]);
        assert_eq!(lo.tx_bytes, nums[8]);
        assert_eq!(lo.tx_packets, nums[9]);
        let docker0 = all.iter().find(|i| i.name == "docker0").unwrap();
        assert_eq!(docker0.tx_dropped, 2);
    }

    #[test]
    fn column_mapping() {
        let text = "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let e = &parse_net_dev(text)[0];
        assert_eq!(
            *e,
            NetDevCounters {
                name: "eth0".into(),
                rx_bytes: 1,
                rx_packets: 2,
                rx_errors: 3,
                rx_dropped: 4,
                tx_bytes: 9,
                tx_packets: 10,
                tx_errors: 11,
                tx_dropped: 12,
            }
        );
    }

    #[test]
    fn old_kernel_without_space_after_colon() {
        let e = parse_net_dev("eth0:123456789 2 0 0 0 0 0 0 5 6 0 0 0 0 0 0\n");
        assert_eq!(e[0].rx_bytes, 123_456_789);
        assert_eq!(e[0].tx_bytes, 5);
    }

    #[test]
    fn garbage_lines() {
        let text = "Inter-|   Receive\n face |bytes\n: 1 2 3 4 5 6 7 8 9 10 11 12\nx: 1 2 3\ny: a b c d e f g h i j k l\n\
                    ok: 1 2 3 4 5 6 7 8 9 10 11 12\n";
        let all = parse_net_dev(text);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "ok");
    }

    #[test]
    fn rates_and_resets() {
        let a = NetDevCounters {
            name: "eth0".into(),
            rx_bytes: 1000,
            tx_bytes: 500,
            rx_packets: 10,
            tx_packets: 5,
            ..Default::default()
        };
        let b = NetDevCounters {
            rx_bytes: 3000,
            tx_bytes: 400,
            rx_packets: 30,
            tx_packets: 7,
            ..a.clone()
        };
        let i = interface(&b, Some(&a), 2.0);
        assert_eq!(i.rx_bytes_per_sec, 1000.0);
        assert_eq!(i.rx_packets_per_sec, 10.0);
        assert_eq!(i.tx_packets_per_sec, 1.0);
        // tx_bytes went backwards: the interface was recreated, no invented spike.
        assert_eq!(i.tx_bytes_per_sec, 0.0);
        assert_eq!(i.tx_bytes, 400);
        let first = interface(&b, None, 2.0);
        assert_eq!(first.rx_bytes_per_sec, 0.0);
    }

    #[test]
    fn prev_lookup() {
        let mk = |n: &str| NetDevCounters {
            name: n.into(),
            ..Default::default()
        };
        let prev = vec![mk("lo"), mk("eth0"), mk("veth1")];
        assert_eq!(find_prev(&prev, 1, "eth0").unwrap().name, "eth0");
        assert_eq!(find_prev(&prev, 0, "veth1").unwrap().name, "veth1");
        assert_eq!(find_prev(&prev, 9, "lo").unwrap().name, "lo");
        assert!(find_prev(&prev, 0, "wlan0").is_none());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            for c in parse_net_dev(&s) {
                prop_assert!(!c.name.is_empty());
            }
        }

        #[test]
        fn rates_never_negative(a: [u64; 4], b: [u64; 4], secs in proptest::num::f64::ANY) {
            let mk = |v: [u64; 4]| NetDevCounters { name: "x".into(), rx_bytes: v[0], tx_bytes: v[1], rx_packets: v[2], tx_packets: v[3], ..Default::default() };
            let i = interface(&mk(b), Some(&mk(a)), secs);
            for r in [i.rx_bytes_per_sec, i.tx_bytes_per_sec, i.rx_packets_per_sec, i.tx_packets_per_sec] {
                prop_assert!(r.is_finite() && r >= 0.0);
            }
        }
    }
}
