//! The diagnostics rulegen reports, from the shared `opsmon-diagnostics`
//! crate (the exporter's config errors speak the same way): a position, a
//! field path and a message with the likely fix (did-you-mean). `Problems`
//! collects them while a tree is decoded, so every problem is reported at once.

pub use opsmon_diagnostics::{
    Position as Pos, Problem as Diagnostic, did_you_mean, hint, render, strip_position,
};

/// Collects diagnostics while a tree is decoded.
#[derive(Debug, Default)]
pub struct Problems {
    /// Everything found so far.
    pub list: Vec<Diagnostic>,
}

impl Problems {
    /// Records a problem.
    pub fn at(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.list.push(Diagnostic::new(pos, path, message));
    }
}
