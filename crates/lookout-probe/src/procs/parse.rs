//! Pure parsers for the per-process files of procfs: `/proc/<pid>/stat`, `/proc/<pid>/io`,
//! `/proc/<pid>/cmdline`, and `/etc/passwd` for user names. Text in, plain values out.

use std::collections::HashMap;

/// The fields of `/proc/<pid>/stat` the process table shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PidStat {
    pub pid: u32,
    /// The command name (`comm`, at most 15 bytes, may hold spaces and parentheses).
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    /// utime + stime, clock ticks (USER_HZ).
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Start time after boot, clock ticks: with the pid, names one process for its life
    /// (pids are reused).
    pub start_ticks: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name is field 2 between parentheses and may hold
/// anything, `)` included, so fields are counted from after its *last* `)`.
pub fn parse_stat(text: &str) -> Option<PidStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let mut f = text[close + 1..].split_ascii_whitespace();
    // Field 3 onwards; `nth` consumes, so each index is relative to the last one taken.
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?; // 4
    let utime: u64 = f.nth(9)?.parse().ok()?; // 14
    let stime: u64 = f.next()?.parse().ok()?; // 15
    let threads = f.nth(4)?.parse().ok()?; // 20
    let start_ticks = f.nth(1)?.parse().ok()?; // 22
    let rss_pages = f.nth(1)?.parse::<i64>().ok()?.max(0) as u64; // 24
    Some(PidStat {
        pid,
        comm,
        state,
        ppid,
        cpu_ticks: utime.saturating_add(stime),
        threads,
        start_ticks,
        rss_pages,
    })
}

/// Bytes a process made the storage layer fetch and send (`read_bytes`, `write_bytes` of
/// `/proc/<pid>/io`): what iotop and psutil call disk I/O, page-cache hits excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoCounters {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

pub fn parse_io(text: &str) -> Option<IoCounters> {
    let mut read = None;
    let mut write = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("read_bytes:") {
            read = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("write_bytes:") {
            write = v.trim().parse().ok();
        }
    }
    Some(IoCounters {
        read_bytes: read?,
        write_bytes: write?,
    })
}

/// The command line as a shell would show it: arguments (NUL-separated in the file) joined
/// by spaces, trailing NULs dropped, invalid UTF-8 replaced, cut at `max_chars` characters.
/// Empty for kernel threads and zombies.
pub fn parse_cmdline(raw: &[u8], max_chars: usize) -> String {
    let trimmed = match raw.iter().rposition(|&b| b != 0) {
        Some(end) => &raw[..=end],
        None => return String::new(),
    };
    let text = String::from_utf8_lossy(trimmed);
    text.chars()
        .map(|c| if c == '\0' { ' ' } else { c })
        .take(max_chars)
        .collect()
}

/// User names by uid from the text of `/etc/passwd` (the first entry for a uid wins, as
/// `getpwuid` answers).
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if let Ok(uid) = uid.parse::<u32>() {
            out.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    out
}

/// The state letter of `/proc/<pid>/stat` as a word, as `ps` documents them.
pub fn state_name(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk-sleep",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "tracing-stop",
        'X' | 'x' => "dead",
        'I' => "idle",
        'K' => "wakekill",
        'W' => "waking",
        'P' => "parked",
        _ => "unknown",
    }
}

/// CPU use between two readings as `top` shows it: percent of one core (a process busy on
/// four cores shows 400). 0 for a non-positive interval or a counter that went backwards.
pub fn cpu_percent(prev_ticks: u64, cur_ticks: u64, elapsed_secs: f64, user_hz: f64) -> f64 {
    crate::host::rate::per_second(prev_ticks, cur_ticks, elapsed_secs) / user_hz * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `/proc/1/stat` of the development machine (kernel 6.18), captured as is.
    const INIT_STAT: &str = "1 (process_api) S 0 0 0 0 -1 4194560 24539 16172499 0 1616 146 793 48831 12605 10 -10 15 0 31 49217536 3291 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn stat_of_a_real_process() {
        let s = parse_stat(INIT_STAT).unwrap();
        assert_eq!(s.pid, 1);
        assert_eq!(s.comm, "process_api");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 0);
        assert_eq!(s.cpu_ticks, 146 + 793);
        assert_eq!(s.threads, 15);
        assert_eq!(s.start_ticks, 31);
        assert_eq!(s.rss_pages, 3291);
    }

    #[test]
    fn comm_with_spaces_and_parentheses() {
        let line = INIT_STAT.replace("(process_api)", "(a) b (c))");
        let s = parse_stat(&line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.threads, 15);
        assert_eq!(s.rss_pages, 3291);
    }

    #[test]
    fn this_process_parses() {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let s = parse_stat(&text).unwrap();
        assert_eq!(s.pid, std::process::id());
        assert!(s.threads >= 1);
        assert!(s.rss_pages > 0);
    }

    #[test]
    fn io_file() {
        let text = "rchar: 323934931\nwchar: 323929600\nsyscr: 632687\nsyscw: 632675\nread_bytes: 4096\nwrite_bytes: 323932160\ncancelled_write_bytes: 0\n";
        assert_eq!(
            parse_io(text),
            Some(IoCounters {
                read_bytes: 4096,
                write_bytes: 323932160
            })
        );
        assert_eq!(parse_io("rchar: 1\n"), None);
    }

    #[test]
    fn cmdline_joined_and_cut() {
        assert_eq!(
            parse_cmdline(b"/usr/bin/python3\0-m\0http.server\0", 200),
            "/usr/bin/python3 -m http.server"
        );
        assert_eq!(parse_cmdline(b"", 200), "");
        assert_eq!(parse_cmdline(b"\0\0", 200), "");
        assert_eq!(parse_cmdline(b"abcdef\0", 3), "abc");
    }

    #[test]
    fn passwd_first_entry_wins() {
        let users = parse_passwd("root:x:0:0:root:/root:/bin/bash\n# comment\ntoor:x:0:0::/:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nbroken\n");
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&33).map(String::as_str), Some("www-data"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn cpu_percent_of_one_core() {
        assert_eq!(cpu_percent(100, 200, 1.0, 100.0), 100.0);
        assert_eq!(cpu_percent(100, 150, 2.0, 100.0), 25.0);
        assert_eq!(cpu_percent(200, 100, 1.0, 100.0), 0.0);
        assert_eq!(cpu_percent(100, 200, 0.0, 100.0), 0.0);
    }

    proptest! {
        #[test]
        fn stat_never_panics(s in ".{0,300}") {
            let _ = parse_stat(&s);
        }

        #[test]
        fn any_comm_round_trips(comm in "[^\\n]{0,15}", utime in 0u64..1u64 << 40, rss in 0u64..1u64 << 30) {
            let line = format!("42 ({comm}) R 1 42 42 0 -1 0 0 0 0 0 {utime} 5 0 0 20 0 3 0 777 1000 {rss} 0\n");
            let s = parse_stat(&line).unwrap();
            prop_assert_eq!(s.comm, comm);
            prop_assert_eq!(s.cpu_ticks, utime + 5);
            prop_assert_eq!(s.threads, 3);
            prop_assert_eq!(s.start_ticks, 777);
            prop_assert_eq!(s.rss_pages, rss);
        }

        #[test]
        fn cmdline_is_bounded(raw in proptest::collection::vec(any::<u8>(), 0..600), max in 0usize..300) {
            let s = parse_cmdline(&raw, max);
            prop_assert!(s.chars().count() <= max);
            prop_assert!(!s.contains('\0'));
        }

        #[test]
        fn passwd_never_panics(s in ".{0,400}") {
            let _ = parse_passwd(&s);
        }

        #[test]
        fn cpu_percent_is_finite_and_non_negative(a in any::<u64>(), b in any::<u64>(), e in any::<f64>()) {
            let p = cpu_percent(a, b, e, 100.0);
            prop_assert!(p.is_finite() && p >= 0.0);
        }
    }
}
