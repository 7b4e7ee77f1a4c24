//! Progress reporting, implemented by the CLI (progress bars) or not at all.

/// Receives progress from long operations. Implementations must be cheap: `advance` is
/// called for every block.
pub trait Progress: Send + Sync {
    /// A new phase begins; `total` is in bytes when known.
    fn start(&self, label: &str, total: Option<u64>);
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
