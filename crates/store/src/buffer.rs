//! The in-memory buffer of acknowledged events not yet in a part.
//!
//! It is a list of immutable chunks, one per appended batch, so that a reader
//! can take a snapshot by cloning a few `Arc`s while the ingest thread keeps
//! appending. A buffer is sealed whole when it is flushed.

use events::{Event, ProjectId};
use std::sync::Arc;

/// An event with its project-local user key (see [`crate::users`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) user_key: u32,
    pub(crate) event: Event,
}

#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) project: ProjectId,
    pub(crate) rows: Vec<Row>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Buffer {
    pub(crate) chunks: Vec<Arc<Chunk>>,
    pub(crate) n_rows: usize,
}

impl Buffer {
    pub(crate) fn push(&mut self, chunk: Chunk) {
        self.n_rows += chunk.rows.len();
        self.chunks.push(Arc::new(chunk));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.n_rows == 0
    }
}
