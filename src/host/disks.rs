//! Storage: mounted filesystems with their space and inode use (the kept mount table of
//! [`super::mount_table`] and `statvfs`), and block devices (/sys/block).

use serde::Serialize;

use super::HostError;

/// Filesystem types that hold no storage (kernel interfaces, control files): left out
/// unless a caller asks for every mount.
const PSEUDO: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
];

/// One mounted filesystem.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Filesystem {
    /// Where it is mounted.
    pub mount_point: String,
    /// What is mounted (a device, `tmpfs`, `overlay`, a server's export).
    pub source: String,
    pub fs_type: String,
    /// Mount options as the kernel lists them.
    pub options: Vec<String>,
    pub read_only: bool,
    pub size_bytes: u64,
    pub used_bytes: u64,
    /// Available to unprivileged users (root may have more: reserved blocks).
    pub available_bytes: u64,
    /// Used as `df` counts it: used / (used + available), in percent.
    pub used_percent: f64,
    pub inodes_total: u64,
    pub inodes_used: u64,
    pub inodes_used_percent: f64,
}

/// Mounted filesystems, in mount order. Without `all`, pseudo filesystems and those of
/// size 0 are left out (as `df` does), and a mount point mounted over is shown once
/// (its last mount, the one visible).
pub fn filesystems(all: bool) -> Result<Vec<Filesystem>, HostError> {
    let mounts = super::mount_table::current()?;
    let mut shown: Vec<Filesystem> = Vec::new();
    for mount in mounts.iter() {
        if !all && PSEUDO.contains(&mount.fs_vfstype.as_str()) {
            continue;
        }
        let Ok(stat) = nix::sys::statvfs::statvfs(mount.fs_file.as_str()) else {
            continue; // gone, or not ours to stat (a FUSE mount of another user)
        };
        let fs = from_statvfs(mount, &stat);
        if !all && fs.size_bytes == 0 {
            continue;
        }
        if !all {
            shown.retain(|earlier| earlier.mount_point != fs.mount_point);
        }
        shown.push(fs);
    }
    Ok(shown)
}

/// The filesystem that holds `path`: the longest mount point above it (its last mount,
/// the one visible, where several share it) whose `statvfs` answers. Only that mount is
/// stat'ed: one slow or hung mount elsewhere (a network filesystem) cannot hold it up.
pub fn filesystem_of(path: &str) -> Result<Option<Filesystem>, HostError> {
    let mounts = super::mount_table::current()?;
    let mut candidates: Vec<(usize, &procfs::MountEntry)> = mounts
        .iter()
        .enumerate()
        .filter(|(_, mount)| is_under(path, &mount.fs_file))
        .collect();
    // Longest mount point first; of equal ones, the last mounted.
    candidates.sort_by_key(|(order, mount)| std::cmp::Reverse((mount.fs_file.len(), *order)));
    Ok(candidates.into_iter().find_map(|(_, mount)| {
        nix::sys::statvfs::statvfs(mount.fs_file.as_str())
            .ok()
            .map(|stat| from_statvfs(mount, &stat))
    }))
}

fn is_under(path: &str, mount_point: &str) -> bool {
    mount_point == "/"
        || path == mount_point
        || path
            .strip_prefix(mount_point)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn from_statvfs(mount: &procfs::MountEntry, stat: &nix::sys::statvfs::Statvfs) -> Filesystem {
    let unit = stat.fragment_size();
    let size = stat.blocks().saturating_mul(unit);
    let free = stat.blocks_free().saturating_mul(unit);
    let available = stat.blocks_available().saturating_mul(unit);
    let used = size.saturating_sub(free);
    let inodes_total = stat.files();
    let inodes_used = inodes_total.saturating_sub(stat.files_free());
    let mut options: Vec<String> = mount
        .fs_mntops
        .iter()
        .map(|(key, value)| match value {
            Some(value) => format!("{key}={value}"),
            None => key.clone(),
        })
        .collect();
    options.sort();
    Filesystem {
        mount_point: mount.fs_file.clone(),
        source: mount.fs_spec.clone(),
        fs_type: mount.fs_vfstype.clone(),
        read_only: mount.fs_mntops.contains_key("ro"),
        options,
        size_bytes: size,
        used_bytes: used,
        available_bytes: available,
        used_percent: round1(super::units::percent(used, used + available)),
        inodes_total,
        inodes_used,
        inodes_used_percent: round1(super::units::percent(inodes_used, inodes_total)),
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// One block device of /sys/block.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BlockDevice {
    /// Kernel name: `sda`, `nvme0n1`, `vda`, `loop0`.
    pub name: String,
    pub size_bytes: u64,
    /// The model the device reports, when it reports one.
    pub model: Option<String>,
    /// Spinning disk (`queue/rotational`).
    pub rotational: bool,
    pub removable: bool,
    pub read_only: bool,
    /// Partitions, e.g. `sda1`.
    pub partitions: Vec<String>,
}

/// Block devices with a size; loop and ram devices only when they hold something.
pub fn block_devices() -> Result<Vec<BlockDevice>, HostError> {
    let root = std::path::Path::new("/sys/block");
    let entries = std::fs::read_dir(root).map_err(HostError::io("/sys/block"))?;
    let mut devices = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .ok()
                .map(|text| text.trim().to_owned())
        };
        let flag = |file: &str| read(file).as_deref() == Some("1");
        let sectors: u64 = read("size").and_then(|s| s.parse().ok()).unwrap_or(0);
        if sectors == 0 {
            continue;
        }
        let mut partitions: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|part| part.path().join("partition").exists())
            .map(|part| part.file_name().to_string_lossy().into_owned())
            .collect();
        partitions.sort();
        devices.push(BlockDevice {
            size_bytes: sectors * 512,
            model: read("device/model").filter(|model| !model.is_empty()),
            rotational: flag("queue/rotational"),
            removable: flag("removable"),
            read_only: flag("ro"),
            partitions,
            name,
        });
    }
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_filesystem_matches_statvfs_and_df() {
        let root = filesystem_of("/").unwrap().unwrap();
        assert_eq!(root.mount_point, "/");
        let output = std::process::Command::new("df")
            .args(["-B1", "--output=size,used,avail,itotal,iused", "/"])
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let numbers: Vec<u64> = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(root.size_bytes, numbers[0]);
        assert_eq!(root.inodes_total, numbers[3]);
        // Used and available move with other writers: within 256 MiB and 10,000 inodes.
        assert!(root.used_bytes.abs_diff(numbers[1]) < 256 << 20);
        assert!(root.available_bytes.abs_diff(numbers[2]) < 256 << 20);
        assert!(root.inodes_used.abs_diff(numbers[4]) < 10_000);
    }

    #[test]
    fn pseudo_filesystems_are_shown_only_when_asked() {
        let some = filesystems(false).unwrap();
        assert!(some.iter().all(|fs| fs.fs_type != "proc"));
        assert!(some.iter().any(|fs| fs.mount_point == "/"));
        let all = filesystems(true).unwrap();
        assert!(all.iter().any(|fs| fs.fs_type == "proc"));
    }

    #[test]
    fn the_filesystem_of_a_path_is_the_visible_mount_above_it() {
        // What the former reading (every mount stat'ed, the longest, last one kept) gave.
        for path in ["/", "/proc/self", "/sys/kernel", "/dev/null", "/tmp"] {
            let every = filesystems(true).unwrap();
            let expected = every
                .into_iter()
                .filter(|fs| is_under(path, &fs.mount_point))
                .max_by_key(|fs| fs.mount_point.len())
                .map(|fs| (fs.mount_point, fs.fs_type, fs.source));
            let found = filesystem_of(path)
                .unwrap()
                .map(|fs| (fs.mount_point, fs.fs_type, fs.source));
            assert_eq!(found, expected, "{path}");
        }
    }

    #[test]
    fn a_path_is_under_a_mount_point_by_whole_components() {
        assert!(is_under("/srv/app", "/srv"));
        assert!(is_under("/srv", "/srv"));
        assert!(!is_under("/srv2/app", "/srv"));
        assert!(is_under("/anything", "/"));
    }

    #[test]
    fn block_devices_match_sys_block() {
        let devices = block_devices().unwrap();
        for device in &devices {
            let size: u64 = std::fs::read_to_string(format!("/sys/block/{}/size", device.name))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(device.size_bytes, size * 512);
        }
        let listed = std::fs::read_dir("/sys/block")
            .unwrap()
            .filter(|entry| {
                let path = entry.as_ref().unwrap().path().join("size");
                std::fs::read_to_string(path).unwrap().trim() != "0"
            })
            .count();
        assert_eq!(devices.len(), listed);
    }
}
