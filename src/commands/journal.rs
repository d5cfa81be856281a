//! Whether this process's stderr is the systemd journal: systemd sets `JOURNAL_STREAM` to
//! the `DEVICE:INODE` of the stream it connected stderr to (systemd.exec(5)). What is
//! printed for a person at a terminal (the generated token) must not be written into the
//! journal, which members of the `adm` and `systemd-journal` groups read.

use std::os::fd::AsFd;

use crate::env_vars;

/// True when `JOURNAL_STREAM` names the file stderr is open on.
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os(env_vars::JOURNAL_STREAM) else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr().as_fd()) else {
        return false;
    };
    names_stream(&value.to_string_lossy(), stat.st_dev, stat.st_ino)
}

/// `journal_stream` (`DEVICE:INODE`, decimal) names the file with `device` and `inode`.
fn names_stream(journal_stream: &str, device: u64, inode: u64) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    dev.parse() == Ok(device) && ino.parse() == Ok(inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderrs_device_and_inode() {
        assert!(names_stream("8:1234", 8, 1234));
        // Near misses: another file (stderr redirected after systemd set the variable), a
        // malformed value.
        assert!(!names_stream("8:1234", 8, 1235));
        assert!(!names_stream("9:1234", 8, 1234));
        assert!(!names_stream("8", 8, 1234));
        assert!(!names_stream("", 8, 1234));
    }

    #[test]
    fn this_test_process_stderr_is_not_the_journal_unless_named() {
        let stat = nix::sys::stat::fstat(std::io::stderr().as_fd()).unwrap();
        let named = format!("{}:{}", stat.st_dev, stat.st_ino);
        assert!(names_stream(&named, stat.st_dev, stat.st_ino));
        assert_eq!(
            stderr_is_journal(),
            std::env::var(env_vars::JOURNAL_STREAM).as_deref() == Ok(named.as_str())
        );
    }
}
