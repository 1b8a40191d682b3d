//! The mount table (`/proc/<pid>/mountinfo`), the choice of which mounts are real filesystems
//! worth reporting, and `df`'s arithmetic over `statvfs`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// One line of mountinfo, with the kernel's octal escapes (`\040` for a space) decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub major: u32,
    pub minor: u32,
    pub mount_point: String,
    pub fs_type: String,
    /// The "mount source" (e.g. `/dev/vda`), what `df` prints as "Filesystem".
    pub source: String,
}

/// Parses mountinfo; lines that do not have the documented shape are skipped.
///
/// Format (proc(5)): `id parent major:minor root mount_point options [optional…] - fstype source superopts`.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let mut f = line.split(' ');
    let _id = f.next()?;
    let _parent = f.next()?;
    let (major, minor) = f.next()?.split_once(':')?;
    let major = major.parse().ok()?;
    let minor = minor.parse().ok()?;
    let _root = f.next()?;
    let mount_point = f.next()?;
    let _options = f.next()?;
    // Optional fields ("shared:1", "master:2", …) run up to a lone "-".
    f.by_ref().find(|x| *x == "-")?;
    let fs_type = f.next().filter(|t| !t.is_empty())?;
    let source = f.next().unwrap_or("");
    if !mount_point.starts_with('/') {
        return None;
    }
    Some(MountEntry {
        major,
        minor,
        mount_point: decode_escapes(mount_point),
        fs_type: decode_escapes(fs_type),
        source: decode_escapes(source),
    })
}

/// Undoes the kernel's `\ooo` escaping of space, tab, newline and backslash. A backslash not
/// followed by three octal digits is kept literally. Bytes that are not UTF-8 are replaced,
/// which only costs the `statvfs` of such a mount (its path will not resolve).
pub fn decode_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && is_octal_triplet(&b[i + 1..i + 4]) {
            let v = (b[i + 1] - b'0') as u16 * 64
                + (b[i + 2] - b'0') as u16 * 8
                + (b[i + 3] - b'0') as u16;
            // \400 and above do not fit a byte; the kernel never writes them, keep them literally.
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_octal_triplet(t: &[u8]) -> bool {
    t.len() == 3 && t.iter().all(|c| (b'0'..=b'7').contains(c))
}

/// Filesystems that hold no user data, or only mirror others (overlay roots of containers,
/// read-only squashfs images of snaps, which are always 100 % full): reporting them would drown
/// the real disks and trigger "disk full" alerts on images.
pub fn is_pseudo_fs(fs_type: &str) -> bool {
    const PSEUDO: &[&str] = &[
        "anon_inodefs",
        "autofs",
        "binder",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "cpuset",
        "debugfs",
        "devfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nfsd",
        "nsfs",
        "overlay",
        "overlayfs",
        "aufs",
        "pipefs",
        "proc",
        "pstore",
        "ramfs",
        "rootfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sockfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "usbfs",
        "xenfs",
        "fuse.lxcfs",
        "fuse.gvfsd-fuse",
        "fuse.portal",
        "fuse.snapfuse",
    ];
    PSEUDO.contains(&fs_type) || (fs_type.starts_with("fuse.") && fs_type.ends_with("-overlayfs"))
}

/// The mounts to report, in mount-table order.
///
/// A mount point mounted over again is only visible through its last mount, so earlier ones
/// are dropped (statvfs would report the top one under their name). Of several mounts of the
/// same device (bind mounts, a container's `/etc/hosts`), the shortest mount point is kept:
/// it is the one a person recognises, and they all report the same space.
pub fn select_real(entries: Vec<MountEntry>) -> Vec<MountEntry> {
    let mut last_at: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        last_at.insert(e.mount_point.as_str(), i);
    }
    let mut best: HashMap<(u32, u32), usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if last_at.get(e.mount_point.as_str()) != Some(&i) || is_pseudo_fs(&e.fs_type) {
            continue;
        }
        match best.entry((e.major, e.minor)) {
            Entry::Vacant(v) => {
                v.insert(i);
            }
            Entry::Occupied(mut o) => {
                if e.mount_point.len() < entries[*o.get()].mount_point.len() {
                    o.insert(i);
                }
            }
        }
    }
    let mut keep = vec![false; entries.len()];
    for &i in best.values() {
        keep[i] = true;
    }
    entries
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect()
}

/// Space figures of one filesystem, computed as `df` does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpaceUsage {
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub used_percent: f64,
}

/// From statvfs block counts. "Used" is blocks − free; "available" is what an unprivileged user
/// can still write (excludes the root reserve), so used + available < size on ext4, and
/// Use% = used / (used + available) as `df` computes it. A `frsize` of 0 (some old network
/// filesystems) falls back to `bsize`.
pub fn space_usage(blocks: u64, bfree: u64, bavail: u64, frsize: u64, bsize: u64) -> SpaceUsage {
    let unit = if frsize > 0 { frsize } else { bsize };
    let used_bytes = blocks.saturating_sub(bfree).saturating_mul(unit);
    let available_bytes = bavail.saturating_mul(unit);
    let denom = used_bytes as f64 + available_bytes as f64;
    let used_percent = if denom > 0.0 {
        (used_bytes as f64 * 100.0 / denom).clamp(0.0, 100.0)
    } else {
        0.0
    };
    SpaceUsage {
        size_bytes: blocks.saturating_mul(unit),
        used_bytes,
        available_bytes,
        used_percent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = include_str!("../../tests/fixtures/host/mountinfo");

    #[test]
    fn parses_every_real_line() {
        let all = parse_mountinfo(REAL);
        assert_eq!(all.len(), REAL.lines().count());
        let root = all.iter().find(|e| e.mount_point == "/").unwrap();
        assert_eq!(root.fs_type, "ext4");
        assert_eq!(root.source, "/dev/vda");
        assert_eq!((root.major, root.minor), (254, 0));
        // "shared:1" optional field before the separator.
        let docker = all
            .iter()
            .find(|e| e.mount_point == "/var/lib/docker")
            .unwrap();
        assert_eq!(docker.fs_type, "ext4");
    }

    #[test]
    fn real_table_keeps_only_the_root_disk() {
        let real = select_real(parse_mountinfo(REAL));
        let points: Vec<_> = real.iter().map(|e| e.mount_point.as_str()).collect();
        // /var/lib/docker is a bind mount of the same device, everything else is pseudo.
        assert_eq!(points, vec!["/"]);
    }

    #[test]
    fn decodes_escapes() {
        let line =
            r"36 35 8:1 / /mnt/my\040disk\011x\134y rw,noatime master:1 - ext3 /dev/my\040dev rw";
        let e = parse_mountinfo(line);
        assert_eq!(e[0].mount_point, "/mnt/my disk\tx\\y");
        assert_eq!(e[0].source, "/dev/my dev");
        assert_eq!(decode_escapes(r"a\04"), r"a\04");
        assert_eq!(decode_escapes(r"a\999b"), r"a\999b");
        assert_eq!(decode_escapes(r"a\777b"), r"a\777b");
        assert_eq!(decode_escapes("\\"), "\\");
        assert_eq!(decode_escapes(r"\101\102"), "AB");
    }

    #[test]
    fn several_optional_fields_and_no_optional_fields() {
        let text = "1 0 8:1 / / rw shared:1 master:2 propagate_from:3 - xfs /dev/sda1 rw\n\
                    2 1 8:2 / /home rw - btrfs /dev/sda2 rw\n";
        let e = parse_mountinfo(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].fs_type, "xfs");
        assert_eq!(e[1].source, "/dev/sda2");
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let text = "\nnonsense\n1 0 8:1 / / rw\n1 0 x:1 / / rw - ext4 /dev/a rw\n1 0 8:1 / relative rw - ext4 /dev/a rw\n\
                    1 0 8:1 / / rw - \n1 0 8:1 / /ok rw - ext4\n";
        let e = parse_mountinfo(text);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].mount_point, "/ok");
        assert_eq!(e[0].source, "");
    }

    #[test]
    fn selection_rules() {
        let text = "\
1 0 8:1 / / rw - ext4 /dev/sda1 rw
2 1 0:5 / /proc rw - proc proc rw
3 1 8:1 /srv /srv/bind rw - ext4 /dev/sda1 rw
4 1 8:2 / /data rw - xfs /dev/sdb rw
5 1 0:40 / /data rw - tmpfs tmpfs rw
6 1 8:3 / /mnt/a rw - xfs /dev/sdc rw
7 1 8:4 / /mnt/a rw - xfs /dev/sdd rw
8 1 0:41 / /var/lib/x rw - fuse.fuse-overlayfs fuse rw
9 1 0:42 / /snap/core/1 rw - squashfs /dev/loop0 rw
10 1 0:43 / /mnt/share rw - nfs4 srv:/export rw
11 1 0:44 / /mnt/sshfs rw - fuse.sshfs me@host: rw
12 1 8:5 / /very/long/first rw - ext4 /dev/sde rw
13 1 8:5 / /short rw - ext4 /dev/sde rw
";
        let real = select_real(parse_mountinfo(text));
        let points: Vec<_> = real.iter().map(|e| e.mount_point.as_str()).collect();
        // /data is shadowed by a tmpfs; /mnt/a shows only its last mount; sde keeps /short.
        assert_eq!(
            points,
            vec!["/", "/mnt/a", "/mnt/share", "/mnt/sshfs", "/short"]
        );
        assert_eq!(real[1].source, "/dev/sdd");
    }

    #[test]
    fn pseudo_types() {
        for t in [
            "proc",
            "sysfs",
            "cgroup",
            "cgroup2",
            "tmpfs",
            "devtmpfs",
            "devpts",
            "overlay",
            "fuse.fuse-overlayfs",
            "squashfs",
            "nsfs",
            "tracefs",
            "debugfs",
            "securityfs",
            "pstore",
            "bpf",
            "autofs",
            "mqueue",
            "hugetlbfs",
            "configfs",
            "fusectl",
            "binfmt_misc",
            "ramfs",
            "rpc_pipefs",
            "nfsd",
            "efivarfs",
        ] {
            assert!(is_pseudo_fs(t), "{t}");
        }
        for t in [
            "ext4",
            "xfs",
            "btrfs",
            "zfs",
            "nfs",
            "nfs4",
            "cifs",
            "vfat",
            "fuse.sshfs",
            "f2fs",
        ] {
            assert!(!is_pseudo_fs(t), "{t}");
        }
    }

    #[test]
    fn df_arithmetic() {
        // ext4 with a 5 % root reserve: used + avail < size.
        let u = space_usage(1000, 400, 350, 4096, 4096);
        assert_eq!(u.size_bytes, 4_096_000);
        assert_eq!(u.used_bytes, 600 * 4096);
        assert_eq!(u.available_bytes, 350 * 4096);
        assert!((u.used_percent - 600.0 / 950.0 * 100.0).abs() < 1e-9);
        assert_eq!(space_usage(0, 0, 0, 4096, 4096).used_percent, 0.0);
        assert_eq!(space_usage(10, 0, 0, 0, 512).size_bytes, 5120);
        // Free above total (a racing or lying filesystem) does not underflow.
        assert_eq!(space_usage(10, 20, 5, 1, 1).used_bytes, 0);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = select_real(parse_mountinfo(&s));
        }

        #[test]
        fn parser_never_panics_on_mountinfo_like_text(s in "([0-9]{1,3} [0-9]{1,3} [0-9]{1,3}:[0-9]{1,3} /[a-z\\\\0-9]{0,6} /[a-z\\\\0-7]{0,8} rw( shared:1)? - (ext4|tmpfs|xfs) /dev/[a-z]{0,3}\\\\?[0-7]{0,3} rw\n){0,6}") {
            let all = parse_mountinfo(&s);
            let real = select_real(all.clone());
            prop_assert!(real.len() <= all.len());
            // At most one entry per device survives.
            let mut devs: Vec<_> = real.iter().map(|e| (e.major, e.minor)).collect();
            devs.sort();
            devs.dedup();
            prop_assert_eq!(devs.len(), real.len());
        }

        #[test]
        fn space_usage_is_sane(blocks: u64, bfree: u64, bavail: u64, frsize: u64, bsize: u64) {
            let u = space_usage(blocks, bfree, bavail, frsize, bsize);
            prop_assert!(u.used_percent.is_finite() && (0.0..=100.0).contains(&u.used_percent));
        }
    }
}
