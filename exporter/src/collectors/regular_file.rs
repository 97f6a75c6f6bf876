//! Opening files named by configuration without ever blocking: only regular
//! files are opened. A FIFO's `open` waits for a writer forever and a device's
//! may have side effects (a tape rewinds), so both are refused by name.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a non-regular file is, for the error message.
pub fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, file_type: &std::fs::FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is {}; only regular files are read", path.display(), kind_of(file_type)),
    )
}

/// Opens `path` for reading if it is a regular file; anything else is an
/// error naming the path. Never blocks on a FIFO, even one swapped in
/// between the check and the open.
pub fn open(path: &Path) -> io::Result<File> {
    let before = std::fs::metadata(path)?;
    if !before.file_type().is_file() {
        return Err(not_regular(path, &before.file_type()));
    }
    // O_NONBLOCK: if a FIFO replaced the file since the stat, open returns at
    // once instead of waiting for a writer; the fstat below then refuses it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let opened = file.metadata()?;
    if !opened.file_type().is_file() {
        return Err(not_regular(path, &opened.file_type()));
    }
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_open_and_fifos_and_devices_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let regular = dir.path().join("access.log");
        std::fs::write(&regular, "line\n").expect("write");
        assert!(open(&regular).is_ok());

        let fifo = dir.path().join("fifo.log");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from(0o600),
            0,
        )
        .expect("mkfifo");
        let error = open(&fifo).expect_err("a FIFO is refused");
        assert!(error.to_string().contains("fifo.log is a FIFO"), "{error}");

        let error = open(Path::new("/dev/zero")).expect_err("a device is refused");
        assert!(error.to_string().contains("/dev/zero is a character device"), "{error}");
        let error = open(dir.path()).expect_err("a directory is refused");
        assert!(error.to_string().contains("is a directory"), "{error}");
        assert_eq!(open(&dir.path().join("missing")).expect_err("missing").kind(), io::ErrorKind::NotFound);
    }
}
