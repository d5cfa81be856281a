//! systemd's units as its manager reports them over D-Bus (`org.freedesktop.systemd1`),
//! read with zbus, never by parsing `systemctl`: where the manager is ([`Target`]), a
//! connection bounded in time ([`Manager::connect`]), the units by state and name pattern
//! ([`Manager::list_units`]) and one unit's status ([`Manager::unit_status`]).
//!
//! The default target is the system manager on the system bus
//! (`/run/dbus/system_bus_socket`), where unprivileged callers may read units too. Not its
//! private socket `/run/systemd/private`: systemd signs its replies there with the sender
//! `org.freedesktop.systemd1`, which is not a unique connection name, and zbus refuses such
//! a reply ("Invalid unique name"; measured against systemd 252). Before connecting by
//! default, [`Target::check_running`] asks whether systemd runs at all
//! (`/run/systemd/system` exists only when it is PID 1), so a host or container without
//! systemd gets a plain answer at once instead of a time-out. Every connection and every
//! call is bounded by the configured timeout.

use std::{collections::HashMap, time::Duration};

use zbus::{Connection, OwnedObjectPath, OwnedVariant as OwnedValue};

/// systemd's well-known bus name, object and interfaces.
const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";
/// The directory systemd creates when it boots the host (sd_booted(3)).
const BOOTED_MARKER: &str = "/run/systemd/system";
const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
/// systemd's "no value" for a u64 property (memory, CPU, tasks not accounted).
const NOT_SET: u64 = u64::MAX;

/// Where the manager answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// The system manager, on the system bus.
    #[default]
    System,
    /// A D-Bus bus address (`unix:path=...`) on which `org.freedesktop.systemd1` is owned.
    Bus(String),
}

impl Target {
    /// `Err(NotRunning)` when the default target cannot exist: systemd did not boot this
    /// host. A configured target is always tried.
    pub fn check_running(&self) -> Result<(), SystemdError> {
        if *self != Self::System || std::path::Path::new(BOOTED_MARKER).is_dir() {
            return Ok(());
        }
        let pid1 = std::fs::read_to_string("/proc/1/comm")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Err(SystemdError::NotRunning {
            why: format!("PID 1 is {pid1:?}, not systemd ({BOOTED_MARKER} is absent)"),
        })
    }

    /// The D-Bus address connected to.
    pub fn address(&self) -> String {
        match self {
            Self::System => format!("unix:path={SYSTEM_BUS_SOCKET}"),
            Self::Bus(address) => address.clone(),
        }
    }
}

/// What went wrong asking systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("systemd is not running on this host: {why}")]
    NotRunning { why: String },
    #[error("cannot connect to systemd at {address}: no answer within {} ms", timeout.as_millis())]
    ConnectTimeout { address: String, timeout: Duration },
    #[error("cannot connect to systemd at {address}: {source}")]
    Connect {
        address: String,
        source: zbus::Error,
    },
    #[error("no systemd manager answers on the bus at {address}: {message}")]
    NoManager { address: String, message: String },
    #[error("systemd did not answer within {} ms", .0.as_millis())]
    CallTimeout(Duration),
    #[error("systemd refused: {message}")]
    Refused { name: String, message: String },
    #[error("unexpected answer from systemd: {0}")]
    Protocol(zbus::Error),
}

/// One row of the unit list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    pub name: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
}

/// One unit's status; `None` where the unit's type or the host does not expose it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitStatus {
    pub name: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// enabled, disabled, static, ... (the unit file's state).
    pub unit_file_state: Option<String>,
    pub fragment_path: Option<String>,
    /// When the unit last changed state, microseconds since the epoch.
    pub state_change_us: Option<u64>,
    /// When it last became active.
    pub active_enter_us: Option<u64>,
    pub main_pid: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub cpu_nsec: Option<u64>,
    pub tasks: Option<u64>,
    /// Automatic restarts since the unit was loaded (services only).
    pub restarts: Option<u32>,
    /// The result of the last run: success, exit-code, signal, timeout, ...
    pub result: Option<String>,
}

/// A connection to one manager.
#[derive(Debug)]
pub struct Manager {
    connection: Connection,
    timeout: Duration,
}

/// `(name, description, load, active, sub, followed, path, job id, job type, job path)`.
type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

impl Manager {
    /// Connect to `target`, within `timeout`; every later call has the same bound.
    pub async fn connect(target: &Target, timeout: Duration) -> Result<Self, SystemdError> {
        target.check_running()?;
        let address = target.address();
        let builder = zbus::connection::Builder::address(address.as_str()).method_timeout(timeout);
        let connection = tokio::time::timeout(timeout, builder.build())
            .await
            .map_err(|_| SystemdError::ConnectTimeout {
                address: address.clone(),
                timeout,
            })?
            .map_err(|source| SystemdError::Connect {
                address: address.clone(),
                source,
            })?;
        let manager = Self {
            connection,
            timeout,
        };
        // One cheap call, so "nobody owns the name" is told apart from a failing method.
        manager
            .property::<String>(MANAGER_PATH, MANAGER_INTERFACE, "Version")
            .await
            .map_err(|error| match error {
                // Nobody owns the name, or the bus failed to start one for it.
                SystemdError::Refused { name, message }
                    if name == "org.freedesktop.DBus.Error.ServiceUnknown"
                        || name == "org.freedesktop.DBus.Error.NameHasNoOwner"
                        || name.starts_with("org.freedesktop.DBus.Error.Spawn.") =>
                {
                    SystemdError::NoManager { address, message }
                }
                other => other,
            })?;
        Ok(manager)
    }

    /// The units the manager has loaded whose load, active or sub state is one of `states`
    /// (all when empty) and whose name matches one of the glob `patterns` (all when
    /// empty), sorted by name.
    pub async fn list_units(
        &self,
        states: &[String],
        patterns: &[String],
    ) -> Result<Vec<UnitRow>, SystemdError> {
        let reply = self
            .call(
                MANAGER_PATH,
                MANAGER_INTERFACE,
                "ListUnitsByPatterns",
                &(states, patterns),
            )
            .await?;
        let listed: Vec<ListedUnit> = reply.body().deserialize().map_err(SystemdError::Protocol)?;
        let mut rows: Vec<UnitRow> = listed
            .into_iter()
            .map(|unit| UnitRow {
                name: unit.0,
                description: unit.1,
                load_state: unit.2,
                active_state: unit.3,
                sub_state: unit.4,
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    /// The status of the unit `name` (loaded from disk when not in memory; a unit that
    /// does not exist has the load state `not-found`).
    pub async fn unit_status(&self, name: &str) -> Result<UnitStatus, SystemdError> {
        let reply = self
            .call(MANAGER_PATH, MANAGER_INTERFACE, "LoadUnit", &(name,))
            .await?;
        let path: OwnedObjectPath = reply.body().deserialize().map_err(SystemdError::Protocol)?;
        let mut unit = self.all_properties(path.as_str(), UNIT_INTERFACE).await?;
        let mut status = UnitStatus {
            name: take_string(&mut unit, "Id").unwrap_or_else(|| name.to_owned()),
            description: take_string(&mut unit, "Description").unwrap_or_default(),
            load_state: take_string(&mut unit, "LoadState").unwrap_or_default(),
            active_state: take_string(&mut unit, "ActiveState").unwrap_or_default(),
            sub_state: take_string(&mut unit, "SubState").unwrap_or_default(),
            unit_file_state: take_string(&mut unit, "UnitFileState"),
            fragment_path: take_string(&mut unit, "FragmentPath"),
            state_change_us: take_time(&mut unit, "StateChangeTimestamp"),
            active_enter_us: take_time(&mut unit, "ActiveEnterTimestamp"),
            ..UnitStatus::default()
        };
        if let Some(interface) = type_interface(&status.name) {
            let mut typed = self.all_properties(path.as_str(), interface).await?;
            status.main_pid = take::<u32>(&mut typed, "MainPID").filter(|pid| *pid != 0);
            status.memory_bytes = take_counter(&mut typed, "MemoryCurrent");
            status.cpu_nsec = take_counter(&mut typed, "CPUUsageNSec");
            status.tasks = take_counter(&mut typed, "TasksCurrent");
            status.restarts = take::<u32>(&mut typed, "NRestarts");
            status.result = take_string(&mut typed, "Result");
        }
        Ok(status)
    }

    async fn property<T>(&self, path: &str, interface: &str, name: &str) -> Result<T, SystemdError>
    where
        T: TryFrom<OwnedValue>,
    {
        let reply = self
            .call(path, PROPERTIES_INTERFACE, "Get", &(interface, name))
            .await?;
        let value: OwnedValue = reply.body().deserialize().map_err(SystemdError::Protocol)?;
        T::try_from(value).map_err(|_| {
            SystemdError::Protocol(zbus::Error::Failure(format!("{name}: wrong type")))
        })
    }

    async fn all_properties(
        &self,
        path: &str,
        interface: &str,
    ) -> Result<HashMap<String, OwnedValue>, SystemdError> {
        let reply = self
            .call(path, PROPERTIES_INTERFACE, "GetAll", &(interface,))
            .await?;
        reply.body().deserialize().map_err(SystemdError::Protocol)
    }

    async fn call<B>(
        &self,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<zbus::Message, SystemdError>
    where
        B: serde::Serialize + zbus::DynamicType,
    {
        let call =
            self.connection
                .call_method(Some(DESTINATION), path, Some(interface), method, body);
        // zbus bounds the reply by the method timeout; this also bounds the send.
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(SystemdError::CallTimeout(self.timeout)),
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(classify(error, self.timeout)),
        }
    }
}

/// A D-Bus error reply as [`SystemdError::Refused`] with its name; the rest as they are.
fn classify(error: zbus::Error, timeout: Duration) -> SystemdError {
    match error {
        zbus::Error::MethodError(name, message, _) => SystemdError::Refused {
            name: name.to_string(),
            message: message.unwrap_or_default(),
        },
        zbus::Error::FDO(fdo) => {
            let name = fdo_error_name(&fdo);
            if matches!(
                *fdo,
                zbus::fdo::Error::Timeout(_) | zbus::fdo::Error::NoReply(_)
            ) {
                return SystemdError::CallTimeout(timeout);
            }
            SystemdError::Refused {
                name,
                message: fdo.to_string(),
            }
        }
        other => SystemdError::Protocol(other),
    }
}

/// The D-Bus name of a standard error (`org.freedesktop.DBus.Error.ServiceUnknown`).
fn fdo_error_name(error: &zbus::fdo::Error) -> String {
    use zbus::DBusError;
    error.name().to_string()
}

/// The interface with a unit type's own properties (main PID, memory, restarts).
fn type_interface(name: &str) -> Option<&'static str> {
    match name.rsplit_once('.')?.1 {
        "service" => Some("org.freedesktop.systemd1.Service"),
        "socket" => Some("org.freedesktop.systemd1.Socket"),
        "mount" => Some("org.freedesktop.systemd1.Mount"),
        "swap" => Some("org.freedesktop.systemd1.Swap"),
        "scope" => Some("org.freedesktop.systemd1.Scope"),
        "slice" => Some("org.freedesktop.systemd1.Slice"),
        _ => None,
    }
}

fn take<T: TryFrom<OwnedValue>>(map: &mut HashMap<String, OwnedValue>, key: &str) -> Option<T> {
    map.remove(key).and_then(|value| T::try_from(value).ok())
}

fn take_string(map: &mut HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    take::<String>(map, key).filter(|value| !value.is_empty())
}

/// A timestamp property: 0 means "never".
fn take_time(map: &mut HashMap<String, OwnedValue>, key: &str) -> Option<u64> {
    take::<u64>(map, key).filter(|us| *us != 0)
}

/// A resource counter: `u64::MAX` means "not accounted".
fn take_counter(map: &mut HashMap<String, OwnedValue>, key: &str) -> Option<u64> {
    take::<u64>(map, key).filter(|value| *value != NOT_SET)
}

#[cfg(test)]
mod tests;
