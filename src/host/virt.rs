//! Whether the host is a container or a virtual machine, from the signs
//! systemd-detect-virt reads: `/.dockerenv`, `/run/.containerenv`, the `container=`
//! variable of pid 1 (readable by root), the container managers' names in
//! /proc/1/cgroup, the DMI vendor and product, and the CPU's `hypervisor` flag.
//! None of them changes while the server runs, so `host_info` looks once per server
//! ([`detected`]).

use serde::Serialize;

/// What the host looks like it runs in.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Virtualisation {
    /// A container manager: `docker`, `podman`, `lxc`, `kubernetes`, `systemd-nspawn`,
    /// or `container` when only the kind is known.
    pub container: Option<String>,
    /// A hypervisor: `kvm`, `qemu`, `vmware`, `microsoft`, `xen`, `virtualbox`,
    /// `amazon`, `google`, or `vm` when the CPU says so but nothing names it.
    pub vm: Option<String>,
    /// The signs seen, e.g. `/.dockerenv`, `cpuinfo hypervisor flag`.
    pub evidence: Vec<String>,
}

/// The signs as first seen by this server.
pub fn detected() -> &'static Virtualisation {
    static FOUND: std::sync::OnceLock<Virtualisation> = std::sync::OnceLock::new();
    FOUND.get_or_init(detect)
}

/// Look for the signs.
pub fn detect() -> Virtualisation {
    let mut found = Virtualisation::default();
    let read = |path: &str| std::fs::read_to_string(path).ok();
    if std::path::Path::new("/.dockerenv").exists() {
        found.container = Some("docker".to_owned());
        found.evidence.push("/.dockerenv".to_owned());
    }
    if std::path::Path::new("/run/.containerenv").exists() {
        found.container.get_or_insert_with(|| "podman".to_owned());
        found.evidence.push("/run/.containerenv".to_owned());
    }
    if let Ok(environ) = std::fs::read("/proc/1/environ") {
        let named = environ
            .split(|byte| *byte == 0)
            .find_map(|var| var.strip_prefix(b"container="))
            .map(|name| String::from_utf8_lossy(name).into_owned());
        if let Some(name) = named {
            found
                .evidence
                .push(format!("container={name} in pid 1's environment"));
            found.container.get_or_insert(name);
        }
    }
    if let Some(name) = read("/proc/1/cgroup").and_then(|text| container_in_cgroup(&text)) {
        found.evidence.push(format!("{name} in /proc/1/cgroup"));
        found.container.get_or_insert_with(|| name.to_owned());
    }
    let dmi = [
        read("/sys/class/dmi/id/sys_vendor"),
        read("/sys/class/dmi/id/product_name"),
        read("/sys/class/dmi/id/bios_vendor"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    if let Some(name) = vm_in_dmi(&dmi) {
        found.vm = Some(name.to_owned());
        found.evidence.push(format!("DMI: {}", dmi.trim()));
    }
    if super::cpu::hypervisor_flag() {
        found.vm.get_or_insert_with(|| "vm".to_owned());
        found.evidence.push("cpuinfo hypervisor flag".to_owned());
    }
    found
}

/// A container manager named in a /proc/1/cgroup text.
pub fn container_in_cgroup(cgroup: &str) -> Option<&'static str> {
    [
        ("kubepods", "kubernetes"),
        ("docker", "docker"),
        ("libpod", "podman"),
        ("lxc", "lxc"),
        ("machine.slice/machine-", "systemd-nspawn"),
    ]
    .into_iter()
    .find(|(needle, _)| cgroup.contains(needle))
    .map(|(_, name)| name)
}

/// A hypervisor named by the DMI vendor, product and BIOS strings.
pub fn vm_in_dmi(dmi: &str) -> Option<&'static str> {
    let dmi = dmi.to_ascii_lowercase();
    [
        ("kvm", "kvm"),
        ("qemu", "qemu"),
        ("vmware", "vmware"),
        ("virtualbox", "virtualbox"),
        ("innotek", "virtualbox"),
        ("xen", "xen"),
        ("microsoft corporation", "microsoft"),
        ("amazon ec2", "amazon"),
        ("google compute engine", "google"),
        ("bochs", "bochs"),
    ]
    .into_iter()
    .find(|(needle, _)| dmi.contains(needle))
    .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_names_a_container_manager_and_a_plain_host_none() {
        assert_eq!(
            container_in_cgroup("0::/system.slice/docker-0123abcd.scope\n"),
            Some("docker")
        );
        assert_eq!(
            container_in_cgroup("12:pids:/kubepods/burstable/pod1/abc\n"),
            Some("kubernetes")
        );
        assert_eq!(container_in_cgroup("0::/init.scope\n"), None);
    }

    #[test]
    fn dmi_names_a_hypervisor_and_bare_metal_none() {
        assert_eq!(
            vm_in_dmi("QEMU Standard PC (Q35 + ICH9, 2009)"),
            Some("qemu")
        );
        assert_eq!(
            vm_in_dmi("Microsoft Corporation Virtual Machine"),
            Some("microsoft")
        );
        assert_eq!(vm_in_dmi("Dell Inc. PowerEdge R640"), None);
    }

    #[test]
    fn the_signs_of_this_machine_are_seen() {
        let found = detect();
        let dockerenv = std::path::Path::new("/.dockerenv").exists();
        assert_eq!(found.evidence.iter().any(|e| e == "/.dockerenv"), dockerenv);
        if dockerenv {
            assert_eq!(found.container.as_deref(), Some("docker"));
        }
        let flag = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap()
            .contains(" hypervisor");
        assert!(found.vm.is_some() || !flag);
    }
}
