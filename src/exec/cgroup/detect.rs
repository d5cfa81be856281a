//! Which cgroups this host lets hostmcp make for its commands ([`Support`]): found once at
//! start ([`init`], else on first use, [`here`]) from the cgroup mount and the server's own
//! cgroup (`/proc/self/cgroup`), and proven by making and removing a probe cgroup.
//!
//! - cgroup v2 (unified: `cgroup.controllers` at the mount root): commands' cgroups go
//!   under `hostmcp/` in the configured parent (`[confinement] cgroup_parent`), else in the
//!   server's own cgroup, a delegated subtree (systemd `Delegate=yes`). A cgroup with
//!   processes may not enable controllers for its children, so when the server's own cgroup
//!   is the parent the server first moves itself into a `hostmcp-server` leaf beside them.
//! - cgroup v1 (one hierarchy per controller): for each of `memory`, `pids`, `cpu` and
//!   `cpuacct`, the `hostmcp/` directory in the server's own cgroup of that hierarchy (or at
//!   its root when the own cgroup is not visible, as in a container). Co-mounted hierarchies
//!   (`cpu,cpuacct`) share one directory. On v2 the CPU time needs no controller
//!   (`cpu.stat` is in every cgroup), so `cpuacct` is wherever the others are.
//!
//! A controller that is missing or not writable is left out; the rest still serve.
//!
//! [`init`] prepares what it finds (makes the `hostmcp/` directories, enables v2
//! controllers, may move the server into a leaf); [`look`] only looks, for `hostmcp check`
//! and `policy explain`: it proves it could make a cgroup by making and removing one probe
//! directory and leaves the hierarchy as it found it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The directory every command's cgroup is made in, under each parent.
const BASE: &str = "hostmcp";
/// The v2 leaf the server moves itself into when its own cgroup is the parent.
const SERVER_LEAF: &str = "hostmcp-server";

/// Whether detection may change the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Make what commands' cgroups need ([`init`], for `serve`).
    Prepare,
    /// Only look: make nothing that stays ([`look`], for `check` and `policy explain`).
    Look,
}

/// The cgroup version the host mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A controller hostmcp uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
    /// CPU time accounting only (v1 `cpuacct`; v2's `cpu.stat` needs no controller).
    Cpuacct,
}

impl Controller {
    pub const ALL: [Self; 4] = [Self::Memory, Self::Pids, Self::Cpu, Self::Cpuacct];

    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
        }
    }

    /// A file only this controller's v1 hierarchy has, to tell it from an empty directory.
    fn v1_marker(self) -> &'static str {
        match self {
            Self::Memory => "memory.limit_in_bytes",
            Self::Pids => "pids.max",
            Self::Cpu => "cpu.cfs_quota_us",
            Self::Cpuacct => "cpuacct.usage",
        }
    }
}

/// Where this host lets hostmcp make command cgroups, per controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Support {
    /// `None` when no controller is usable.
    pub version: Option<Version>,
    /// For each usable controller, the directory its commands' cgroups are made in.
    pub(super) bases: Vec<(Controller, PathBuf)>,
    /// Why a controller is missing, for the start-up log.
    pub(super) missing: Vec<String>,
}

impl Support {
    /// The directory commands' cgroups of `controller` are made in, if it is usable.
    pub fn base(&self, controller: Controller) -> Option<&Path> {
        self.bases
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, dir)| dir.as_path())
    }

    pub fn has(&self, controller: Controller) -> bool {
        self.base(controller).is_some()
    }

    /// One line for the log, `hostmcp check` and `policy explain`, e.g.
    /// `cgroup v1: memory, pids, cpu under /sys/fs/cgroup/{controller}/…/hostmcp`.
    pub fn describe(&self) -> String {
        let Some(version) = self.version else {
            let why = if self.missing.is_empty() {
                "no cgroup mount".to_owned()
            } else {
                self.missing.join("; ")
            };
            return format!(
                "cgroups: none usable ({why}); memory and processes are per-process rlimits only"
            );
        };
        let version = match version {
            Version::V1 => "v1",
            Version::V2 => "v2",
        };
        let mut text = format!("cgroup {version}:");
        for (controller, dir) in &self.bases {
            text.push_str(&format!(" {} ({}),", controller.name(), dir.display()));
        }
        text.pop();
        if !self.missing.is_empty() {
            text.push_str(&format!("; not usable: {}", self.missing.join("; ")));
        }
        text
    }
}

static SUPPORT: OnceLock<Support> = OnceLock::new();

/// Find what this host supports, with commands' cgroups under `parent` (v2) when given,
/// and prepare it. Call once at start, before the first command; later calls return the
/// first answer.
pub fn init(parent: Option<&Path>) -> &'static Support {
    SUPPORT.get_or_init(|| {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        detect(Path::new("/sys/fs/cgroup"), &own, parent, Mode::Prepare)
    })
}

/// What [`init`] would find, found without changing the hierarchy (the server's first
/// answer if it already prepared one).
pub fn look(parent: Option<&Path>) -> Support {
    if let Some(found) = SUPPORT.get() {
        return found.clone();
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    detect(Path::new("/sys/fs/cgroup"), &own, parent, Mode::Look)
}

/// What [`init`] found (detecting with no configured parent if it was not called).
pub fn here() -> &'static Support {
    init(None)
}

/// What the cgroup mount at `root` lets this process make, given its `/proc/self/cgroup`
/// text `own` and a configured v2 `parent`. With [`Mode::Prepare`] it makes the `hostmcp`
/// directories it needs; with [`Mode::Look`] it leaves nothing behind.
pub fn detect(root: &Path, own: &str, parent: Option<&Path>, mode: Mode) -> Support {
    if root.join("cgroup.controllers").is_file() {
        return detect_v2(root, own, parent, mode);
    }
    let mut support = Support::default();
    for controller in Controller::ALL {
        let mount = root.join(controller.name());
        let parent = own_path(own, controller.name())
            .map(|path| mount.join(path.trim_start_matches('/')))
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(|| mount.clone());
        // The root cgroup of a hierarchy lacks some of its files (pids.max): look in both.
        if ![&parent, &mount]
            .iter()
            .any(|dir| dir.join(controller.v1_marker()).is_file())
        {
            support
                .missing
                .push(format!("{}: no v1 hierarchy", controller.name()));
            continue;
        }
        // Co-mounted hierarchies (`cpu` and `cpuacct` links to `cpu,cpuacct`) are one
        // directory, under one name.
        let parent = fs::canonicalize(&parent).unwrap_or(parent);
        let made = match mode {
            Mode::Prepare => make_base(&parent.join(BASE)),
            Mode::Look => probe_base(&parent),
        };
        match made {
            Ok(base) => support.bases.push((controller, base)),
            Err(error) => support.missing.push(format!(
                "{}: {} not writable ({error})",
                controller.name(),
                parent.display()
            )),
        }
    }
    if !support.bases.is_empty() {
        support.version = Some(Version::V1);
    }
    support
}

fn detect_v2(root: &Path, own: &str, parent: Option<&Path>, mode: Mode) -> Support {
    let mut support = Support::default();
    let (parent, is_own) = match parent {
        Some(parent) => (parent.to_owned(), false),
        None => match own_path(own, "") {
            Some(path) => (root.join(path.trim_start_matches('/')), true),
            None => {
                support.missing.push("v2: no own cgroup".to_owned());
                return support;
            }
        },
    };
    let available = fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<Controller> = Controller::ALL
        .into_iter()
        .filter(|c| available.split_whitespace().any(|name| name == c.name()))
        .collect();
    for controller in Controller::ALL {
        if !wanted.contains(&controller) && controller != Controller::Cpuacct {
            support.missing.push(format!(
                "{}: not delegated to {}",
                controller.name(),
                parent.display()
            ));
        }
    }
    if wanted.is_empty() {
        return support;
    }
    let prepared = match mode {
        Mode::Prepare => prepare_v2(&parent, is_own, &wanted),
        Mode::Look => probe_base(&parent),
    };
    match prepared {
        Ok(base) => {
            support.version = Some(Version::V2);
            support.bases = wanted
                .into_iter()
                .chain([Controller::Cpuacct])
                .map(|c| (c, base.clone()))
                .collect();
        }
        Err(error) => {
            support.missing = vec![format!("v2: {} not writable ({error})", parent.display())];
        }
    }
    support
}

/// Enable `wanted` for `parent`'s children and for `parent/hostmcp`'s, moving the server
/// into a leaf first when `parent` is its own cgroup and still holds it.
fn prepare_v2(parent: &Path, is_own: bool, wanted: &[Controller]) -> io::Result<PathBuf> {
    let enable = wanted
        .iter()
        .map(|c| format!("+{}", c.name()))
        .collect::<Vec<_>>()
        .join(" ");
    let control = |dir: &Path| fs::write(dir.join("cgroup.subtree_control"), &enable);
    if let Err(error) = control(parent) {
        // EBUSY: the parent holds processes (the server), which a cgroup with controllers
        // enabled for its children may not.
        if !is_own || error.raw_os_error() != Some(nix::libc::EBUSY) {
            return Err(error);
        }
        let leaf = parent.join(SERVER_LEAF);
        make_dir(&leaf)?;
        fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())?;
        control(parent)?;
    }
    let base = make_base(&parent.join(BASE))?;
    control(&base)?;
    Ok(base)
}

/// Make `base` (if missing) and prove a command cgroup can be made in it.
fn make_base(base: &Path) -> io::Result<PathBuf> {
    make_dir(base)?;
    let probe = base.join(format!("probe-{}", std::process::id()));
    make_dir(&probe)?;
    fs::remove_dir(&probe)?;
    Ok(base.to_owned())
}

/// The `hostmcp` base under `parent` that [`make_base`] would make, proven by making and
/// removing one probe cgroup: in the base when it is there, else beside where it would be
/// (so that nothing is made, even for a moment, where a server looks for its base).
fn probe_base(parent: &Path) -> io::Result<PathBuf> {
    let base = parent.join(BASE);
    let probe = if base.is_dir() {
        base.join(format!("probe-{}", std::process::id()))
    } else {
        parent.join(format!("{BASE}-check-{}", std::process::id()))
    };
    fs::create_dir(&probe)?;
    fs::remove_dir(&probe)?;
    Ok(base)
}

fn make_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// The path of this process's cgroup in the hierarchy of `controller` (`""`: the v2 line
/// `0::/path`) in `/proc/self/cgroup` text: lines `id:controllers:path`.
pub(super) fn own_path<'a>(own: &'a str, controller: &str) -> Option<&'a str> {
    own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|name| name == controller)
        };
        matches.then_some(path)
    })
}
