use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::*;

const BOUND: Duration = Duration::from_millis(500);

#[tokio::test]
async fn the_default_target_says_when_systemd_is_not_running() {
    let booted = Path::new(BOOTED_MARKER).is_dir();
    let started = Instant::now();
    let result = Manager::connect(&Target::System, BOUND).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    if booted {
        // Near miss: on a host booted with systemd the default target is tried.
        assert!(!matches!(result, Err(SystemdError::NotRunning { .. })));
    } else {
        let error = result.unwrap_err();
        assert!(matches!(error, SystemdError::NotRunning { .. }), "{error}");
        assert!(error.to_string().contains("/run/systemd/system is absent"));
    }
    // A configured target is always tried, systemd booted or not.
    assert!(
        Target::Bus("unix:path=/nonexistent".into())
            .check_running()
            .is_ok()
    );
}

#[tokio::test]
async fn a_missing_socket_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Bus(format!("unix:path={}", dir.path().join("bus").display()));
    let error = Manager::connect(&target, BOUND).await.unwrap_err();
    assert!(matches!(error, SystemdError::Connect { .. }), "{error}");
}

#[tokio::test]
async fn a_socket_that_never_answers_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus");
    // Accepts connections (the kernel queues them) and never says a word.
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let started = Instant::now();
    let error = Manager::connect(&Target::Bus(format!("unix:path={}", path.display())), BOUND)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SystemdError::ConnectTimeout { .. }),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A session bus of our own, hosting nothing; killed on drop.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bus with no service directories: nothing can be activated on it.
const EMPTY_BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>LISTEN</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

fn empty_bus() -> Option<Bus> {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus");
    let address = format!("unix:path={}", socket.display());
    let config = dir.path().join("bus.conf");
    std::fs::write(&config, EMPTY_BUS_CONFIG.replace("LISTEN", &address)).unwrap();
    let child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let bus = Bus {
        child,
        address,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        socket.exists(),
        "dbus-daemon did not listen on {}",
        bus.address
    );
    Some(bus)
}

#[tokio::test]
async fn a_bus_without_systemd_says_nobody_answers() {
    let Some(bus) = empty_bus() else {
        eprintln!("SKIP: dbus-daemon is not installed (Debian package dbus)");
        return;
    };
    let error = Manager::connect(&Target::Bus(bus.address.clone()), Duration::from_secs(5))
        .await
        .unwrap_err();
    match &error {
        SystemdError::NoManager { address, message } => {
            assert_eq!(address, &bus.address);
            assert!(message.contains("org.freedesktop.systemd1"), "{message}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn unit_types_with_their_own_properties() {
    assert_eq!(
        type_interface("nginx.service"),
        Some("org.freedesktop.systemd1.Service")
    );
    assert_eq!(
        type_interface("a.b.socket"),
        Some("org.freedesktop.systemd1.Socket")
    );
    assert_eq!(type_interface("multi-user.target"), None);
    assert_eq!(type_interface("noextension"), None);
}
