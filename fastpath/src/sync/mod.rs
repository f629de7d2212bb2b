//! Connection sync between directors: Linux IPVS's sync protocol, version 1.
//!
//! [`wire`] is the codec (message builder and decoder), pure over byte buffers so that the
//! sync thread, the tests and the fuzz target share it. What to send when (the master's
//! rules) and what a backup does with a received connection are the sync thread's and the
//! connection table's business, not this module's.

pub mod wire;

pub use wire::{
    decode, Entries, EntryError, Full, FullNatSync, MessageBuilder, MessageError, SeqData, SeqPart,
    SyncConn, MESSAGE_HEADER_LEN, SYNC_GROUP, SYNC_PORT, V4_CONN_LEN,
};
