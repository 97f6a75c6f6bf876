//! The host's fixed /proc files (`stat`, `meminfo`, `net/dev`, …), kept open
//! between scrapes and read again from offset 0.
//!
//! Opening a procfs file is a path walk through procfs that costs more than
//! reading it: on the shipped config, `openat` and `close` of these files were
//! 4 % of the exporter's CPU. A kernel file read again from offset 0 is
//! generated afresh, so a kept file reads exactly what a new one would. A
//! file is taken out of the set while it is read, so two scrapes never read
//! one file's parts interleaved; the second opens a file of its own. A kept
//! file that fails to read (its kernel entry went away) is closed and the
//! path opened again, once.

use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::collectors::collector::lock;

/// Room reserved for a file's text: a page or two covers every file read
/// here on a small host, and a longer file grows the buffer.
const INITIAL_CAPACITY: usize = 8192;

/// Fixed files under one procfs, open between scrapes.
#[derive(Debug)]
pub struct KernelFiles {
    procfs: PathBuf,
    kept: Mutex<HashMap<&'static str, File>>,
}

impl KernelFiles {
    /// Files under `procfs` (the host's /proc), none open yet.
    pub fn new(procfs: PathBuf) -> Self {
        Self { procfs, kept: Mutex::default() }
    }

    /// The text of `relative` (`"stat"`, `"net/dev"`) under procfs, through the
    /// kept file when there is one. The error is opening's or reading's.
    pub fn read(&self, relative: &'static str) -> std::io::Result<String> {
        let kept = lock(&self.kept).remove(relative);
        let (file, text) = match kept.map(|file| read_from_start(&file).map(|text| (file, text))) {
            Some(Ok(read)) => read,
            // Never kept, or gone since: open the path afresh.
            Some(Err(_)) | None => {
                let file = File::open(self.procfs.join(relative))?;
                let text = read_from_start(&file)?;
                (file, text)
            }
        };
        lock(&self.kept).entry(relative).or_insert(file);
        Ok(text)
    }
}

/// `file`'s whole text from offset 0, by positional reads (a kernel file
/// regenerates its text when read from 0 again).
pub fn read_from_start(file: &File) -> std::io::Result<String> {
    let mut bytes = Vec::with_capacity(INITIAL_CAPACITY);
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity());
        }
        let filled = bytes.len();
        bytes.resize(bytes.capacity(), 0);
        let read = file.read_at(&mut bytes[filled..], filled as u64);
        match read {
            Ok(0) => {
                bytes.truncate(filled);
                break;
            }
            Ok(length) => bytes.truncate(filled + length),
            Err(e) if e.kind() == ErrorKind::Interrupted => bytes.truncate(filled),
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_reads_what_is_there_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = KernelFiles::new(dir.path().to_path_buf());
        std::fs::write(dir.path().join("loadavg"), "0.10 0.20 0.30 1/100 42\n").expect("write");
        assert_eq!(files.read("loadavg").expect("first read"), "0.10 0.20 0.30 1/100 42\n");
        // Rewritten in place (same inode), shorter: the kept file sees exactly
        // the new text, nothing of the old left over.
        std::fs::write(dir.path().join("loadavg"), "1.5 1 1 2/9 7\n").expect("rewrite");
        assert_eq!(files.read("loadavg").expect("second read"), "1.5 1 1 2/9 7\n");
        // Replaced by a new file: the kept one still reads the old inode, as
        // a kernel file never is; a missing path is an error.
        std::fs::remove_file(dir.path().join("loadavg")).expect("remove");
        assert!(KernelFiles::new(dir.path().to_path_buf()).read("loadavg").is_err());
    }

    #[test]
    fn a_file_longer_than_the_first_buffer_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        assert!(text.len() > 2 * INITIAL_CAPACITY);
        std::fs::write(dir.path().join("big"), &text).expect("write");
        let files = KernelFiles::new(dir.path().to_path_buf());
        assert_eq!(files.read("big").expect("read"), text);
        assert_eq!(files.read("big").expect("again"), text);
    }

    #[test]
    fn real_procfs_files_read_again_from_the_start() {
        let files = KernelFiles::new(PathBuf::from("/proc"));
        for _ in 0..3 {
            let stat = files.read("stat").expect("/proc/stat");
            assert!(stat.starts_with("cpu "), "{stat:.40}");
            assert!(stat.contains("\nbtime "), "whole file");
            let meminfo = files.read("meminfo").expect("/proc/meminfo");
            assert!(meminfo.starts_with("MemTotal:"), "{meminfo:.40}");
        }
        assert_eq!(lock(&files.kept).len(), 2, "both kept open");
    }

    #[test]
    fn text_that_is_not_utf8_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad"), [0xff, 0xfe]).expect("write");
        let error = KernelFiles::new(dir.path().to_path_buf()).read("bad").expect_err("invalid");
        assert_eq!(error.kind(), ErrorKind::InvalidData);
    }
}
