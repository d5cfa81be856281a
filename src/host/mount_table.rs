//! The server's mount table (/proc/thread-self/mounts: the reading thread's mount
//! namespace, which is every server thread's), parsed once and kept until the kernel says
//! it changed.
//!
//! An open mounts file polls `POLLPRI | POLLERR` after any mount, unmount or remount
//! in the server's mount namespace since the last poll of that file (proc(5); the kernel's
//! `mounts_poll` compares the namespace's event count with the one the file last saw and
//! takes the new one). So one `poll(2)` with a zero timeout tells whether the table kept
//! here is still the kernel's: the table is read and parsed only when it changed, and
//! `host_info` and `disk_usage` pay a poll instead of reading and parsing every mount on
//! every call. A change between the poll and the re-read is read with it; a change after
//! the re-read is seen by the next poll.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    sync::{Arc, Mutex, PoisonError},
};

use procfs::{FromBufRead, MountEntry};
use rustix::event::{PollFd, PollFlags, Timespec};

use super::HostError;

const PATH: &str = "/proc/thread-self/mounts";

/// The open file and the table last read from it.
struct Watched {
    file: File,
    entries: Arc<Vec<MountEntry>>,
}

static TABLE: Mutex<Option<Watched>> = Mutex::new(None);

/// The mounts in mount order, as the kernel lists them now.
pub fn current() -> Result<Arc<Vec<MountEntry>>, HostError> {
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(watched) = table.as_mut() {
        if !changed(&watched.file)? {
            return Ok(Arc::clone(&watched.entries));
        }
        watched.file.seek(SeekFrom::Start(0)).map_err(read_error)?;
        watched.entries = Arc::new(parse(&mut watched.file)?);
        return Ok(Arc::clone(&watched.entries));
    }
    let mut file = File::open(PATH).map_err(read_error)?;
    // The file remembers the namespace's event count from its opening: a change from
    // here on is reported by the next poll, so this first read is never kept stale.
    let entries = Arc::new(parse(&mut file)?);
    *table = Some(Watched {
        file,
        entries: Arc::clone(&entries),
    });
    Ok(entries)
}

/// Whether the mount table changed since this file's last poll.
fn changed(file: &File) -> Result<bool, HostError> {
    let mut fds = [PollFd::new(file, PollFlags::PRI)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut fds, Some(&now)).map_err(|errno| read_error(errno.into()))?;
    Ok(fds[0].revents().intersects(PollFlags::PRI | PollFlags::ERR))
}

fn parse(file: &mut File) -> Result<Vec<MountEntry>, HostError> {
    // One read of the whole table: the kernel renders it afresh from the start.
    let mut text = Vec::with_capacity(4096);
    file.read_to_end(&mut text).map_err(read_error)?;
    Vec::<MountEntry>::from_buf_read(text.as_slice()).map_err(HostError::proc("mounts"))
}

fn read_error(error: std::io::Error) -> HostError {
    HostError::io(PATH)(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount_points() -> Vec<String> {
        current()
            .unwrap()
            .iter()
            .map(|mount| mount.fs_file.clone())
            .collect()
    }

    #[test]
    fn the_table_kept_is_the_kernels() {
        let fresh: Vec<String> = procfs::mounts()
            .unwrap()
            .into_iter()
            .map(|mount| mount.fs_file)
            .collect();
        assert_eq!(mount_points(), fresh);
        // Unchanged: the same parsed table is handed out again.
        let first = current().unwrap();
        let second = current().unwrap();
        assert!(Arc::ptr_eq(&first, &second) || mount_points() == fresh);
    }

    #[test]
    fn a_mount_made_after_the_first_read_is_seen() {
        if !nix::unistd::geteuid().is_root() {
            return; // mounting needs root (CI runs as root)
        }
        // In a mount namespace of this test process's own, private: nothing the host sees.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .unwrap();
        let _ = current().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().to_str().unwrap().to_owned();
        nix::mount::mount(
            Some("hostmcp-test"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        let seen = mount_points().contains(&point);
        nix::mount::umount(dir.path()).unwrap();
        assert!(seen, "{point} not in the kept table after mounting it");
        // And its unmount is seen too: the near miss of a table that only grows.
        assert!(!mount_points().contains(&point));
    }
}
