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
use std::path::PathBuf;
use std::sync::Mutex;

use crate::collectors::collector::{CollectError, lock, read_from_start};

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
    /// kept file when there is one; the error names the path.
    pub fn read(&self, relative: &'static str) -> Result<String, CollectError> {
        self.read_io(relative)
            .map_err(|e| CollectError::io(self.procfs.join(relative).display().to_string(), e))
    }

    fn read_io(&self, relative: &'static str) -> std::io::Result<String> {
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

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

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
        // Removed: the kept file still reads its inode (a kernel file is never
        // replaced so); a path that is not there is an error that names it.
        std::fs::remove_file(dir.path().join("loadavg")).expect("remove");
        assert_eq!(files.read("loadavg").expect("kept"), "1.5 1 1 2/9 7\n");
        let error = KernelFiles::new(dir.path().to_path_buf()).read("loadavg").expect_err("missing");
        assert!(error.to_string().contains("loadavg"), "{error}");
    }

    #[test]
    fn a_file_longer_than_the_first_buffer_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        assert!(text.len() > 16_384, "two buffers and more");
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
        let error = KernelFiles::new(dir.path().to_path_buf()).read_io("bad").expect_err("invalid");
        assert_eq!(error.kind(), ErrorKind::InvalidData);
    }
}
