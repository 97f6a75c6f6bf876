//! Secrets by reference: passwords and DSNs come from an environment variable
//! or a file, live in a type whose Debug and Display never show them, and any
//! text that may echo them (a driver's error message) is scrubbed before it is
//! logged, served or printed.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret value. Debug and Display print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`; surrounding whitespace (a file's trailing newline) is dropped.
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        Secret(value.trim().to_owned())
    }

    /// The value, for handing to a driver. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of this secret in `text` with `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, [self])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Replaces every occurrence of each secret (and of its percent-encoded form,
/// as it appears inside URLs) in `text` with `<redacted>`.
pub fn scrub<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.0.len() < 3 {
            // Too short to replace without mangling unrelated text; such a
            // password is also never echoed by the drivers we use.
            continue;
        }
        out = out.replace(&secret.0, "<redacted>");
        let encoded = percent_encode(&secret.0);
        if encoded != secret.0 {
            out = out.replace(&encoded, "<redacted>");
        }
    }
    out
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a secret comes from, as written in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable's name.
    Env(String),
    /// A file's path; its content, trimmed, is the secret.
    File(PathBuf),
}

/// Why a secret could not be read. Names the variable or file, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    /// The environment variable is set but empty.
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    /// The file holds only whitespace.
    #[error("secret file {} is empty", .0.display())]
    FileEmpty(PathBuf),
    /// The file cannot be read.
    #[error("cannot read secret file {}: {reason}", path.display())]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
}

impl SecretSource {
    /// Reads the secret. Errors name the variable or file, never the value.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value)),
                Ok(_) => Err(SecretError::EnvEmpty(name.clone())),
                Err(_) => Err(SecretError::EnvUnset(name.clone())),
            },
            SecretSource::File(path) => read_secret_file(path),
        }
    }
}

/// An optional password from an environment variable or a file (at most
/// one of them). Errors name the variable or file, never the value.
pub fn optional_password(env: Option<&String>, file: Option<&PathBuf>) -> Result<Option<Secret>, String> {
    let source = match (env, file) {
        (Some(env), None) => SecretSource::Env(env.clone()),
        (None, Some(file)) => SecretSource::File(file.clone()),
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => return Err("set only one of password_env and password_file".into()),
    };
    source.resolve().map(Some).map_err(|e| e.to_string())
}

/// A secret file holds one password or DSN; anything longer is a wrong path.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads a regular file of at most [`MAX_SECRET_FILE_BYTES`]: a FIFO would
/// block `--config.check` and start-up forever and `/dev/zero` would fill
/// memory (both found by fuzzing the config).
fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

    let unreadable = |reason: String| SecretError::FileUnreadable { path: path.to_owned(), reason };
    let not_regular = |file_type: std::fs::FileType| {
        let kind = match file_type {
            t if t.is_fifo() => "a FIFO",
            t if t.is_char_device() || t.is_block_device() => "a device",
            t if t.is_dir() => "a directory",
            _ => "not a regular file",
        };
        unreadable(format!("{} is {kind}; only regular files are read", path.display()))
    };
    let metadata = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !metadata.is_file() {
        return Err(not_regular(metadata.file_type()));
    }
    // O_NONBLOCK: a FIFO swapped in since the check cannot block the open;
    // the check on the opened file refuses it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| unreadable(e.to_string()))?;
    let opened = file.metadata().map_err(|e| unreadable(e.to_string()))?;
    if !opened.is_file() {
        return Err(not_regular(opened.file_type()));
    }
    let mut text = String::new();
    file.take(MAX_SECRET_FILE_BYTES + 1).read_to_string(&mut text).map_err(|e| unreadable(e.to_string()))?;
    if text.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(unreadable(format!(
            "it is larger than {} KiB; a secret file holds one password or DSN",
            MAX_SECRET_FILE_BYTES / 1024
        )));
    }
    if text.trim().is_empty() {
        return Err(SecretError::FileEmpty(path.to_owned()));
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("hunter2-very-secret\n");
        assert_eq!(secret.expose(), "hunter2-very-secret");
        assert_eq!(
            format!("{secret} {secret:?} {:?}", Some(&secret)),
            "<redacted> <redacted> Some(<redacted>)"
        );
    }

    #[test]
    fn scrubs_plain_and_url_encoded_forms() {
        let secret = Secret::new("p@ss word");
        let text = "connect postgresql://u:p%40ss%20word@h/db failed; password p@ss word rejected";
        assert_eq!(
            scrub(text, [&secret]),
            "connect postgresql://u:<redacted>@h/db failed; password <redacted> rejected"
        );
    }

    #[test]
    fn sources_name_the_variable_or_file_not_the_value() {
        let missing =
            SecretSource::Env("OPSMON_TEST_SURELY_UNSET_VARIABLE".into()).resolve().expect_err("unset");
        assert_eq!(missing.to_string(), "environment variable OPSMON_TEST_SURELY_UNSET_VARIABLE is not set");
        let dir = std::env::temp_dir().join(format!("opsmon-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\n").expect("write");
        assert_eq!(SecretSource::File(file).resolve().expect("reads").expose(), "from-file");
        let error = SecretSource::File(dir.join("nope")).resolve().expect_err("missing").to_string();
        assert!(
            error.starts_with(&format!("cannot read secret file {}", dir.join("nope").display())),
            "{error}"
        );
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
