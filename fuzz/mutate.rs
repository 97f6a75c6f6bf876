//! Corpus-driven mutation for the property/fuzz tests (proptest on stable
//! Rust). Each fuzz target keeps its seeds in `fuzz/corpus/<target>/`: real
//! fixtures, hand-written edge cases and every input that once found a
//! defect. A generated case is one corpus entry with a few byte-level
//! mutations (flips, inserts of target-specific tokens, deletions,
//! duplications, splices from other entries); proptest shrinks a failing case
//! to fewer and smaller mutations. Included by each fuzz test file with
//! `#[path]`, so the three crates share it without a new crate.
//!
//! Cases per property: `PROPTEST_CASES` (default per target, sized so the
//! whole suite stays around a minute on a 2-core machine); regressions go to
//! `fuzz/proptest-regressions/<target>.txt` and are replayed first.

#![allow(dead_code)] // each including test file uses its own subset

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence};

/// The repository's `fuzz/` directory.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file of `fuzz/corpus/<target>/`, sorted by name, as `(name, bytes)`.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_name().expect("file name").to_string_lossy().into_owned(), bytes)
        })
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "{}: the corpus is empty", dir.display());
    entries
}

/// proptest settings for `target`: `default_cases` unless `PROPTEST_CASES`
/// is set; failures persisted under `fuzz/proptest-regressions/`.
pub fn config(target: &str, default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    // A leaked &'static str: one per property, for the life of the test binary.
    let file: &'static str = Box::leak(
        fuzz_dir()
            .join("proptest-regressions")
            .join(format!("{target}.txt"))
            .display()
            .to_string()
            .into_boxed_str(),
    );
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(file)));
    config
}

/// One edit of an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit of the byte at a position.
    Flip(Index, u8),
    /// Insert a token (from the target's dictionary) at a position.
    Token(Index, &'static str),
    /// Insert arbitrary bytes at a position.
    Bytes(Index, Vec<u8>),
    /// Delete up to `n` bytes at a position.
    Delete(Index, usize),
    /// Copy a range (position, length) to another position.
    Duplicate(Index, usize, Index),
    /// Insert a range of another corpus entry.
    Splice(Index, Index, usize, Index),
}

/// Mutations using `tokens` as the dictionary.
pub fn mutation(tokens: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<Index>(), 0_u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        4 => (any::<Index>(), prop::sample::select(tokens)).prop_map(|(at, t)| Mutation::Token(at, t)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Mutation::Bytes(at, b)),
        2 => (any::<Index>(), 1_usize..64).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (any::<Index>(), 1_usize..256, any::<Index>()).prop_map(|(a, n, b)| Mutation::Duplicate(a, n, b)),
        1 => (any::<Index>(), any::<Index>(), 1_usize..256, any::<Index>())
            .prop_map(|(e, a, n, b)| Mutation::Splice(e, a, n, b)),
    ]
}

/// `input` with `mutations` applied in order; `others` feeds splices.
pub fn apply(input: &[u8], mutations: &[Mutation], others: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = input.to_vec();
    // Positions index `len + 1` slots, so the end is a valid insertion point.
    let at = |index: &Index, len: usize| index.index(len + 1);
    for mutation in mutations {
        match mutation {
            Mutation::Flip(index, bit) => {
                if !out.is_empty() {
                    let i = index.index(out.len());
                    out[i] ^= 1 << bit;
                }
            }
            Mutation::Token(index, token) => {
                let i = at(index, out.len());
                out.splice(i..i, token.bytes());
            }
            Mutation::Bytes(index, bytes) => {
                let i = at(index, out.len());
                out.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(index, n) => {
                let i = at(index, out.len());
                let end = (i + n).min(out.len());
                out.drain(i..end);
            }
            Mutation::Duplicate(from, n, to) => {
                let i = at(from, out.len());
                let end = (i + n).min(out.len());
                let piece = out[i..end].to_vec();
                let j = at(to, out.len());
                out.splice(j..j, piece);
            }
            Mutation::Splice(entry, from, n, to) => {
                if others.is_empty() {
                    continue;
                }
                let other = &others[entry.index(others.len())].1;
                let i = at(from, other.len());
                let end = (i + n).min(other.len());
                let j = at(to, out.len());
                out.splice(j..j, other[i..end].iter().copied());
            }
        }
    }
    out
}

/// A corpus entry of `target` with 0 to `max_mutations` mutations: the
/// entry's name (for messages) and the mutated bytes.
pub fn mutated(
    entries: Vec<(String, Vec<u8>)>,
    tokens: &'static [&'static str],
    max_mutations: usize,
) -> impl Strategy<Value = (String, Vec<u8>)> {
    let entries = std::sync::Arc::new(entries);
    (any::<Index>(), prop::collection::vec(mutation(tokens), 0..=max_mutations)).prop_map(
        move |(which, mutations)| {
            let (name, bytes) = &entries[which.index(entries.len())];
            (name.clone(), apply(bytes, &mutations, &entries))
        },
    )
}

/// As [`mutated`], as (lossy) UTF-8 text: the parsers under test take `&str`.
pub fn mutated_text(
    entries: Vec<(String, Vec<u8>)>,
    tokens: &'static [&'static str],
    max_mutations: usize,
) -> impl Strategy<Value = (String, String)> {
    mutated(entries, tokens, max_mutations)
        .prop_map(|(name, bytes)| (name, String::from_utf8_lossy(&bytes).into_owned()))
}
