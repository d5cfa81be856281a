//! Which cgroups this host lets hostmcp make for its commands ([`Support`]): found once at
//! start ([`init`], else on first use, [`here`]) from the cgroup mount and the server's own
//! cgroup (`/proc/self/cgroup`), and proven by making and removing a probe cgroup.
//!
//! - cgroup v2 (unified: `cgroup.controllers` at the mount root): commands' cgroups go
//!   under `hostmcp/` in the configured parent (`[confinement] cgroup_parent`), else in the
//!   server's own cgroup, a delegated subtree (systemd `Delegate=yes`). A cgroup with
//!   processes may not enable controllers for its children, so when the server's own cgroup
//!   is the parent the server first moves itself into a `hostmcp-server` leaf beside them.
//! - cgroup v1 (one hierarchy per controller): for each of `memory`, `pids` and `cpu`, the
//!   `hostmcp/` directory in the server's own cgroup of that hierarchy (or at its root when
//!   the own cgroup is not visible, as in a container).
//!
//! A controller that is missing or not writable is left out; the rest still serve.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The directory every command's cgroup is made in, under each parent.
const BASE: &str = "hostmcp";
/// The v2 leaf the server moves itself into when its own cgroup is the parent.
const SERVER_LEAF: &str = "hostmcp-server";

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
}

impl Controller {
    pub const ALL: [Self; 3] = [Self::Memory, Self::Pids, Self::Cpu];

    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Cpu => "cpu",
        }
    }

    /// A file only this controller's v1 hierarchy has, to tell it from an empty directory.
    fn v1_marker(self) -> &'static str {
        match self {
            Self::Memory => "memory.limit_in_bytes",
            Self::Pids => "pids.max",
            Self::Cpu => "cpu.cfs_quota_us",
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

/// Find what this host supports, with commands' cgroups under `parent` (v2) when given.
/// Call once at start, before the first command; later calls return the first answer.
pub fn init(parent: Option<&Path>) -> &'static Support {
    SUPPORT.get_or_init(|| {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        detect(Path::new("/sys/fs/cgroup"), &own, parent)
    })
}

/// What [`init`] found (detecting with no configured parent if it was not called).
pub fn here() -> &'static Support {
    init(None)
}

/// What the cgroup mount at `root` lets this process make, given its `/proc/self/cgroup`
/// text `own` and a configured v2 `parent`. Makes the `hostmcp` directories it needs.
pub fn detect(root: &Path, own: &str, parent: Option<&Path>) -> Support {
    if root.join("cgroup.controllers").is_file() {
        return detect_v2(root, own, parent);
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
        match make_base(&parent.join(BASE)) {
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

fn detect_v2(root: &Path, own: &str, parent: Option<&Path>) -> Support {
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
        if !wanted.contains(&controller) {
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
    match prepare_v2(&parent, is_own, &wanted) {
        Ok(base) => {
            support.version = Some(Version::V2);
            support.bases = wanted.into_iter().map(|c| (c, base.clone())).collect();
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
