//! The sync protocol (see the module above).
