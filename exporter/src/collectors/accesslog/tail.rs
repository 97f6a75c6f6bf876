//! Following one log file by path, like `tail -F`: byte offset plus the
//! open file's (device, inode) identity, safe across both kinds of rotation.
//!
//! - **Rename** (logrotate's default, then nginx reopens on USR1): when the
//!   path names another inode, the old file is kept open and drained before
//!   and for a grace period after the switch, because nginx keeps writing to
//!   it until it reopens; the new file is read from offset 0.
//! - **copytruncate**: the file shrinks below our offset, or the bytes just
//!   before the offset changed (truncated and already refilled past it):
//!   read again from offset 0.
//!
//! A missing file is not an error: it is waited for and, being new, read
//! from its beginning when it appears. Lines longer than [`MAX_LINE`] are cut
//! there, so memory stays bounded whatever the file holds.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest line kept whole; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 * 1024;

/// How long a rotated-away file is still drained: nginx writes to it until
/// logrotate's postrotate signal makes it reopen the path.
pub const ROTATED_GRACE: Duration = Duration::from_secs(10);

/// At most this many rotated-away files are kept open at once.
const MAX_RETIRED: usize = 4;

/// Bytes before the offset compared on every poll to notice a copytruncate
/// that was refilled past the old offset before we looked.
const WINDOW: usize = 64;

const CHUNK: usize = 64 * 1024;

/// Where to start in a file that exists when tailing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Only lines written from now on (like `tail -f`).
    #[default]
    End,
    /// Everything already in the file, then new lines.
    Beginning,
}

/// How the file was rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Another file now has the path.
    Rename,
    /// The file was truncated in place.
    Truncate,
}

/// Receives what the tailer reads.
pub trait Sink {
    /// One complete line without its `\n`; `cut` when it was longer than [`MAX_LINE`].
    fn line(&mut self, line: &[u8], cut: bool);
    /// A rotation was noticed.
    fn rotated(&mut self, kind: Rotation);
}

/// One open file and where we are in it.
#[derive(Debug)]
struct Open {
    file: File,
    identity: (u64, u64),
    offset: u64,
    /// Start of a line whose `\n` has not been written yet.
    partial: Vec<u8>,
    /// The partial line exceeded [`MAX_LINE`]; skip to the next `\n`.
    cutting: bool,
    /// The last bytes read, ending at `offset`.
    window: Vec<u8>,
}

impl Open {
    fn new(file: File, start_at_end: bool) -> io::Result<Open> {
        let meta = file.metadata()?;
        let mut open = Open {
            file,
            identity: (meta.dev(), meta.ino()),
            offset: 0,
            partial: Vec::new(),
            cutting: false,
            window: Vec::new(),
        };
        if start_at_end && meta.len() > 0 {
            open.offset = open.file.seek(SeekFrom::End(0))?;
            let from = open.offset.saturating_sub(WINDOW as u64);
            let mut window = vec![0; (open.offset - from) as usize];
            // Truncated in between: no window, the size check still works.
            if open.file.read_exact_at(&mut window, from).is_ok() {
                open.window = window;
            }
        }
        Ok(open)
    }

    /// Whether the file was truncated (and possibly refilled) under us.
    fn truncated(&self) -> io::Result<bool> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            return Ok(true);
        }
        if self.window.is_empty() {
            return Ok(false);
        }
        let mut now = [0; WINDOW];
        let now = &mut now[..self.window.len()];
        match self.file.read_exact_at(now, self.offset - self.window.len() as u64) {
            Ok(()) => Ok(*now != *self.window),
            // It shrank between the two calls.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.offset = 0;
        self.partial.clear();
        self.cutting = false;
        self.window.clear();
        Ok(())
    }

    /// Reads at most `limit` bytes; returns whether EOF was reached.
    fn read(&mut self, buf: &mut [u8], limit: usize, sink: &mut dyn Sink) -> io::Result<bool> {
        let mut left = limit;
        loop {
            let want = buf.len().min(left.max(1));
            let n = match self.file.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(true);
            }
            self.offset += n as u64;
            let data = &buf[..n];
            self.remember(data);
            self.split(data, sink);
            left = left.saturating_sub(n);
            if left == 0 {
                return Ok(false);
            }
        }
    }

    fn remember(&mut self, data: &[u8]) {
        if data.len() >= WINDOW {
            self.window.clear();
            self.window.extend_from_slice(&data[data.len() - WINDOW..]);
        } else {
            self.window.extend_from_slice(data);
            let excess = self.window.len().saturating_sub(WINDOW);
            self.window.drain(..excess);
        }
    }

    fn split(&mut self, mut data: &[u8], sink: &mut dyn Sink) {
        while let Some(newline) = data.iter().position(|b| *b == b'\n') {
            let (line, rest) = (&data[..newline], &data[newline + 1..]);
            data = rest;
            if self.cutting {
                self.cutting = false;
                continue;
            }
            if self.partial.is_empty() {
                if line.len() > MAX_LINE {
                    sink.line(&line[..MAX_LINE], true);
                } else {
                    sink.line(line, false);
                }
            } else {
                let room = MAX_LINE - self.partial.len();
                let cut = line.len() > room;
                self.partial.extend_from_slice(&line[..line.len().min(room)]);
                sink.line(&self.partial, cut);
                self.partial.clear();
            }
        }
        if self.cutting || data.is_empty() {
            return;
        }
        let room = MAX_LINE - self.partial.len();
        if data.len() > room {
            self.partial.extend_from_slice(&data[..room]);
            sink.line(&self.partial, true);
            self.partial.clear();
            self.cutting = true;
        } else {
            self.partial.extend_from_slice(data);
        }
    }

    /// A file that will never grow again ends its last line here.
    fn finish(&mut self, sink: &mut dyn Sink) {
        if !self.partial.is_empty() {
            sink.line(&self.partial, false);
            self.partial.clear();
        }
    }
}

/// Follows one path across rotations.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    /// Where the first open starts; later files (after a rotation) start at 0.
    initial: StartAt,
    current: Option<Open>,
    retired: Vec<(Open, Instant)>,
    buf: Vec<u8>,
}

impl Tailer {
    /// Starts following `path`. If it exists it is opened now, at its end
    /// for [`StartAt::End`]; if it does not, it is read from its beginning
    /// once it appears. Other errors (permissions) are reported by
    /// [`Tailer::poll`], which retries the open, still honouring `start_at`.
    pub fn new(path: impl Into<PathBuf>, start_at: StartAt) -> Tailer {
        let path = path.into();
        let mut tailer =
            Tailer { path, initial: start_at, current: None, retired: Vec::new(), buf: vec![0; CHUNK] };
        match crate::collectors::regular_file::open(&tailer.path) {
            Ok(file) => tailer.current = Open::new(file, start_at == StartAt::End).ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => tailer.initial = StartAt::Beginning,
            Err(_) => {}
        }
        tailer
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a file is open at the path.
    pub fn is_open(&self) -> bool {
        self.current.is_some()
    }

    /// Reads what was appended since the last poll, at most about `limit`
    /// bytes; returns whether everything available was read.
    pub fn poll(&mut self, limit: usize, sink: &mut dyn Sink) -> io::Result<bool> {
        let mut left = limit;
        self.check_path(sink)?;

        // Rotated-away files first: their lines were written before the new file's.
        let mut caught_up = true;
        let now = Instant::now();
        let mut index = 0;
        while index < self.retired.len() {
            let before = self.retired[index].0.offset;
            let at_eof = self.retired[index].0.read(&mut self.buf, left, sink)?;
            left = left.saturating_sub((self.retired[index].0.offset - before) as usize);
            if !at_eof {
                return Ok(false);
            }
            if now.duration_since(self.retired[index].1) >= ROTATED_GRACE
                || index + MAX_RETIRED < self.retired.len()
            {
                let (mut done, _) = self.retired.remove(index);
                done.finish(sink);
            } else {
                index += 1;
            }
        }

        if let Some(open) = self.current.as_mut() {
            if open.truncated()? {
                open.rewind()?;
                sink.rotated(Rotation::Truncate);
            }
            caught_up = open.read(&mut self.buf, left, sink)?;
        }
        Ok(caught_up)
    }

    /// Opens the path when it appeared, or switches to the file that now has it.
    fn check_path(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            // Between logrotate's rename and nginx's reopen the path is gone;
            // keep reading the file we have, which nginx still writes to.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.current.is_none() {
                    self.initial = StartAt::Beginning;
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let identity = (meta.dev(), meta.ino());
        if self.current.as_ref().is_some_and(|open| open.identity == identity) {
            return Ok(());
        }
        let file = match crate::collectors::regular_file::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.initial = StartAt::Beginning;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let at_end = self.current.is_none() && self.initial == StartAt::End;
        let new = Open::new(file, at_end)?;
        if let Some(old) = self.current.replace(new) {
            self.retired.push((old, Instant::now()));
            sink.rotated(Rotation::Rename);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Lines {
        lines: Vec<String>,
        cut: usize,
        rotations: Vec<Rotation>,
    }

    impl Sink for Lines {
        fn line(&mut self, line: &[u8], cut: bool) {
            self.lines.push(String::from_utf8_lossy(line).into_owned());
            self.cut += usize::from(cut);
        }
        fn rotated(&mut self, kind: Rotation) {
            self.rotations.push(kind);
        }
    }

    use crate::collectors::accesslog::tests::append;

    fn poll(tailer: &mut Tailer, sink: &mut Lines) {
        assert!(tailer.poll(usize::MAX, sink).expect("poll"), "caught up");
    }

    #[test]
    fn starts_at_end_or_beginning_and_waits_for_missing_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("access.log");
        append(&log, "old 1\nold 2\n");
        let mut at_end = Tailer::new(&log, StartAt::End);
        let mut from_start = Tailer::new(&log, StartAt::Beginning);
        let missing = dir.path().join("later.log");
        let mut later = Tailer::new(&missing, StartAt::End);
        assert!(!later.is_open());
        append(&log, "new 1\n");
        append(&missing, "first\n");
        let (mut a, mut b, mut c) = (Lines::default(), Lines::default(), Lines::default());
        poll(&mut at_end, &mut a);
        poll(&mut from_start, &mut b);
        poll(&mut later, &mut c);
        assert_eq!(a.lines, ["new 1"]);
        assert_eq!(b.lines, ["old 1", "old 2", "new 1"]);
        assert_eq!(c.lines, ["first"], "a file that appears later is new: read from its beginning");
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("access.log");
        let mut tailer = Tailer::new(&log, StartAt::End);
        let mut sink = Lines::default();
        append(&log, "one\ntw");
        poll(&mut tailer, &mut sink);
        assert_eq!(sink.lines, ["one"]);
        append(&log, "o\nthree\n");
        poll(&mut tailer, &mut sink);
        assert_eq!(sink.lines, ["one", "two", "three"]);
    }

    #[test]
    fn rename_rotation_drains_the_old_file_then_reads_the_new_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("access.log");
        append(&log, "");
        let mut tailer = Tailer::new(&log, StartAt::End);
        let mut sink = Lines::default();
        append(&log, "a1\na2\n");
        poll(&mut tailer, &mut sink);
        append(&log, "a3\n");
        std::fs::rename(&log, dir.path().join("access.log.1")).expect("mv");
        // nginx still writes to the renamed file until it reopens.
        append(&dir.path().join("access.log.1"), "a4\n");
        poll(&mut tailer, &mut sink);
        append(&dir.path().join("access.log.1"), "a5\n");
        append(&log, "b1\nb2\n");
        poll(&mut tailer, &mut sink);
        append(&dir.path().join("access.log.1"), "a6 late\n");
        append(&log, "b3\n");
        poll(&mut tailer, &mut sink);
        assert_eq!(sink.lines, ["a1", "a2", "a3", "a4", "a5", "b1", "b2", "a6 late", "b3"]);
        assert_eq!(sink.rotations, [Rotation::Rename]);
    }

    #[test]
    fn copytruncate_is_noticed_by_size_and_by_content() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("access.log");
        append(&log, "");
        let mut tailer = Tailer::new(&log, StartAt::End);
        let mut sink = Lines::default();
        append(&log, "first line that is long\nsecond line that is long\n");
        poll(&mut tailer, &mut sink);
        std::fs::copy(&log, dir.path().join("access.log.1")).expect("cp");
        std::fs::OpenOptions::new().write(true).open(&log).expect("open").set_len(0).expect("truncate");
        append(&log, "short\n");
        poll(&mut tailer, &mut sink);
        assert_eq!(sink.lines[2..], ["short"]);

        // Truncated and refilled beyond the old offset before the next poll.
        std::fs::OpenOptions::new().write(true).open(&log).expect("open").set_len(0).expect("truncate");
        append(&log, "x1 a rather longer line than before\nx2 another one\n");
        poll(&mut tailer, &mut sink);
        assert_eq!(sink.lines[3..], ["x1 a rather longer line than before", "x2 another one"]);
        assert_eq!(sink.rotations, [Rotation::Truncate, Rotation::Truncate]);
    }

    #[test]
    fn overlong_lines_are_cut_and_limits_resume() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("access.log");
        append(&log, "");
        let mut tailer = Tailer::new(&log, StartAt::End);
        let mut sink = Lines::default();
        let long = "y".repeat(MAX_LINE * 2 + 10);
        append(&log, &format!("short\n{long}\nafter\n"));
        // A small limit reads in steps; nothing is lost between them.
        let mut steps = 0;
        while !tailer.poll(10_000, &mut sink).expect("poll") {
            steps += 1;
        }
        assert!(steps >= 10, "{steps}");
        assert_eq!(sink.lines.len(), 3);
        assert_eq!(sink.lines[1].len(), MAX_LINE);
        assert_eq!(sink.cut, 1);
        assert_eq!(sink.lines[2], "after");
    }

    #[test]
    fn unreadable_files_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A directory cannot be read as a file; this works for root too.
        let path = dir.path().join("a-directory");
        std::fs::create_dir(&path).expect("mkdir");
        let mut tailer = Tailer::new(&path, StartAt::End);
        assert!(tailer.poll(usize::MAX, &mut Lines::default()).is_err());
    }
}
