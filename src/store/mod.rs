//! Every byte format this crate persists: the snapshot container and its
//! section reader and writers, the text frame around stored values, and
//! the one protocol by which each domain ("part") syncs its section with
//! what other tabs stored and then commits.

pub(crate) mod container;
pub(crate) mod frame;
pub(crate) mod sync;

pub(crate) use container::{corrupt, put_f64, put_str, put_u16, put_u32, put_u64, Reader};
pub use container::{Snapshot, DEFAULT_MAX_BYTES, FORMAT_VERSION};
