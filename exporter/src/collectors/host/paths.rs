//! Where the host collector finds the host: node_exporter's `--path.procfs`,
//! `--path.sysfs` and `--path.rootfs`. In a container the host's /proc, /sys
//! and / are mounted somewhere else (`/host/proc`, …); every host file the
//! collector reads goes through here, so one flag moves all of them.

use std::path::{Component, Path, PathBuf};

/// The host's proc, sys and root filesystems as this process sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// The host's procfs (`/proc`).
    pub procfs: PathBuf,
    /// The host's sysfs (`/sys`).
    pub sysfs: PathBuf,
    /// The host's root filesystem (`/`); mount points are statfs'ed under it.
    pub rootfs: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self { procfs: "/proc".into(), sysfs: "/sys".into(), rootfs: "/".into() }
    }
}

impl HostPaths {
    /// `relative` under the host's procfs (`stat` → `/proc/stat`).
    pub fn proc(&self, relative: &str) -> PathBuf {
        self.procfs.join(relative)
    }

    /// `relative` under the host's sysfs (`class/net` → `/sys/class/net`).
    pub fn sys(&self, relative: &str) -> PathBuf {
        self.sysfs.join(relative)
    }

    /// The mount point as the host names it: the rootfs prefix removed, as
    /// node_exporter does for the `mountpoint` label, so `/host/boot` read
    /// from the container's own mount table is `/boot`. Only whole path
    /// components are removed (`/hostdata` keeps its name under `/host`).
    pub fn host_mount_point(&self, mount_point: &str) -> String {
        if self.is_default_rootfs() {
            return mount_point.to_owned();
        }
        match Path::new(mount_point).strip_prefix(&self.rootfs) {
            Ok(rest) if rest.as_os_str().is_empty() => "/".to_owned(),
            Ok(rest) => format!("/{}", rest.display()),
            Err(_) => mount_point.to_owned(),
        }
    }

    /// Where this process reaches the host's `mount_point` (a label value):
    /// under the rootfs.
    pub fn reachable(&self, mount_point: &str) -> PathBuf {
        let relative: PathBuf =
            Path::new(mount_point).components().filter(|c| matches!(c, Component::Normal(_))).collect();
        self.rootfs.join(relative)
    }

    fn is_default_rootfs(&self) -> bool {
        self.rootfs.components().all(|c| c == Component::RootDir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_node_exporters() {
        let paths = HostPaths::default();
        assert_eq!(paths.proc("stat"), Path::new("/proc/stat"));
        assert_eq!(paths.sys("class/net"), Path::new("/sys/class/net"));
        assert_eq!(paths.reachable("/boot"), Path::new("/boot"));
        assert_eq!(paths.reachable("/"), Path::new("/"));
        assert_eq!(
            paths.host_mount_point("/host/boot"),
            "/host/boot",
            "nothing stripped without --path.rootfs"
        );
    }

    #[test]
    fn a_mounted_host() {
        let paths =
            HostPaths { procfs: "/host/proc".into(), sysfs: "/host/sys".into(), rootfs: "/host".into() };
        assert_eq!(paths.proc("1/mounts"), Path::new("/host/proc/1/mounts"));
        assert_eq!(paths.reachable("/boot/efi"), Path::new("/host/boot/efi"));
        assert_eq!(paths.reachable("/"), Path::new("/host"));
        assert_eq!(paths.host_mount_point("/host/boot"), "/boot");
        assert_eq!(paths.host_mount_point("/host"), "/");
        assert_eq!(paths.host_mount_point("/hostdata"), "/hostdata", "whole components only");
        assert_eq!(paths.host_mount_point("/var/lib"), "/var/lib", "the host's own view is kept");
    }
}
