//! Host readers: structured facts about this Linux host read straight from kernel and
//! system interfaces (`/proc`, `/sys`, `/etc/os-release`, utmp, `statvfs`, `getifaddrs`),
//! never by running a program. One file per subject; no MCP types here: the tools in
//! `crate::tools` (and the resources that show the same facts) shape these values for a
//! model.
//!
//! The public API, for any caller that wants the host's state:
//!
//! - [`snapshot::load()`]: one [`snapshot::Snapshot`] with what `host_info` reports (OS,
//!   CPU, load, pressure, memory, root disk, virtualisation hints, users, process count).
//! - [`processes::read_all()`] and [`processes::CpuSampler`]: every process with its CPU
//!   share; [`processes::details()`] adds command line and I/O for the ones shown.
//! - [`disks::filesystems()`], [`disks::block_devices()`], [`du::largest_directories()`].
//! - [`network::interfaces()`], [`network::routes()`], [`sockets::sockets()`].
//! - [`systemd`] (units over D-Bus) and [`logs`] (the journal and configured log files),
//!   read by `service_status` and `log_query`.
//! - [`units`]: human units ("22.3 GiB", "3 days 4 h") for the text a model reads.
//!
//! Every reader returns [`HostError`] for what it could not read at all; a fact that one
//! host lacks (PSI on an old kernel, utmp in a container) is an `Option` or an empty list,
//! never an error.

pub mod cpu;
pub mod disks;
pub mod du;
mod error;
pub mod ipv6_routes;
pub mod logs;
pub mod memory;
pub mod mount_table;
pub mod network;
pub mod os;
pub mod proc_dir;
pub mod process_count;
pub mod processes;
pub mod snapshot;
pub mod sockets;
pub mod systemd;
pub mod units;
pub mod users;
pub mod virt;

pub use error::HostError;
