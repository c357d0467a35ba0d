//! A session's memory of which columns its maskers select, by result shape.
//!
//! Most sessions run the same few queries over and over; asking the column
//! maskers once per shape instead of once per result keeps their call off
//! the per-statement path. The key is the columns as the maskers see them,
//! table names included, so a schema change the catalog picks up is a new
//! shape; a reloaded masker invalidates what its previous generation said.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;

use crate::plugins::bindings::types::{Column, Session};
use crate::plugins::{Chain, Refusal, Selection};

/// Distinct result shapes remembered per session; past this the memory
/// starts over rather than grow with a client that never repeats itself.
const MAX_SHAPES: usize = 256;

/// The result shapes with one fingerprint, each with its selection.
type Shapes = Vec<(Vec<Column>, Arc<Selection>)>;

#[derive(Default)]
pub struct Selections {
    hasher: RandomState,
    /// Shape fingerprint → the shapes with it and their selections.
    by_shape: HashMap<u64, Shapes>,
    len: usize,
}

impl Selections {
    /// The maskers' selection for `columns`, asked of them only when this
    /// session has not seen the shape with the chain's plugin generations.
    pub async fn get(
        &mut self,
        chain: &Chain,
        session: &Session,
        columns: &[Column],
    ) -> Result<Arc<Selection>, Refusal> {
        if !chain.has_column_maskers() {
            return chain.select_columns(session, columns).await.map(Arc::new);
        }
        let key = self.fingerprint(columns);
        let known = self.by_shape.get(&key).and_then(|shapes| {
            shapes
                .iter()
                .find(|(shape, selection)| shape == columns && selection.made_by(chain))
        });
        if let Some((_, selection)) = known {
            return Ok(selection.clone());
        }
        let selection = Arc::new(chain.select_columns(session, columns).await?);
        if self.len >= MAX_SHAPES {
            self.by_shape.clear();
            self.len = 0;
        }
        let shapes = self.by_shape.entry(key).or_default();
        // A shape seen with an earlier plugin generation is replaced.
        let before = shapes.len();
        shapes.retain(|(shape, _)| shape != columns);
        self.len -= before - shapes.len();
        shapes.push((columns.to_vec(), selection.clone()));
        self.len += 1;
        Ok(selection)
    }

    fn fingerprint(&self, columns: &[Column]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for c in columns {
            (&c.name, c.table_oid, &c.table, c.column_id, c.type_oid).hash(&mut h);
            (c.format as u8).hash(&mut h);
        }
        h.finish()
    }
}
