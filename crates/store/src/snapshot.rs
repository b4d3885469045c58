//! A consistent view for readers: the parts and buffered chunks visible at
//! one moment. Holding a snapshot keeps its part files on disk.

use crate::buffer::{Chunk, StoredEvent};
use crate::manifest::PartMeta;
use crate::store::PartRef;
use events::ProjectId;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) parts: Vec<Arc<PartRef>>,
    pub(crate) chunks: Vec<Arc<Chunk>>,
}

impl Snapshot {
    pub(crate) fn new(parts: Vec<Arc<PartRef>>, chunks: Vec<Arc<Chunk>>) -> Snapshot {
        Snapshot { parts, chunks }
    }

    /// The parts of a project, with the path of each file.
    pub fn parts_of(&self, project: ProjectId) -> impl Iterator<Item = (&PartMeta, &std::path::Path)> {
        self.parts.iter().filter(move |p| p.meta.project == project).map(|p| (&p.meta, p.path.as_path()))
    }

    /// The buffered (not yet flushed) events of every project, in the order
    /// they were acknowledged: after a restart, those replayed from the WAL.
    pub fn buffered_events(&self) -> impl Iterator<Item = (ProjectId, &StoredEvent)> {
        self.chunks.iter().flat_map(|chunk| chunk.rows.iter().map(move |row| (chunk.project, row)))
    }

    /// Number of buffered (not yet flushed) events of a project.
    pub fn n_buffered(&self, project: ProjectId) -> usize {
        self.chunks.iter().filter(|c| c.project == project).map(|c| c.rows.len()).sum()
    }
}
