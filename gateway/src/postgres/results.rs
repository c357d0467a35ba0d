//! Result sets on their way to the client, through the maskers.

use std::sync::Arc;

use crate::plugins::bindings::types::Column;
use crate::plugins::{Chain, Refusal, Selection};

use super::frame::Frame;
use super::relay::{RelayContext, RelayError};
use super::rows::{self, Cell};
use super::selections::Selections;

/// Rows handed to the maskers per call …
pub(super) const MASK_BATCH: usize = 256;
/// … and bytes of them: each call must finish within the plugin deadline,
/// on a busy machine too, whether the rows are many small ones or fewer
/// wide ones (a row is never split).
pub(super) const MASK_BATCH_BYTES: usize = 256 * 1024;

/// The result set being streamed, as far as masking is concerned.
pub(super) enum Results {
    /// Between result sets: the next one decides.
    Idle,
    /// No masker applies to this result set: rows pass as they are.
    Plain,
    Masked(ResultSet),
}

/// Columns, the maskers resolved when the result set began, and rows waiting
/// for them.
pub(super) struct ResultSet {
    pub(super) columns: Vec<Column>,
    pub(super) chain: Chain,
    /// What each masker may change, known (and the columns' tables named)
    /// from the first row on.
    pub(super) selection: Option<Arc<Selection>>,
    /// Rows waiting for the maskers, as they see them …
    pub(super) pending: Vec<Vec<Cell>>,
    /// … and as they arrived, sent as they are unless a masker changed them.
    pub(super) frames: Vec<Frame>,
    /// The size of those rows as they arrived.
    pub(super) pending_bytes: usize,
}

impl ResultSet {
    /// Whether the rows waiting make a batch for the maskers.
    pub(super) fn batch_full(&self) -> bool {
        self.pending.len() >= MASK_BATCH || self.pending_bytes >= MASK_BATCH_BYTES
    }
}

impl ResultSet {
    pub(super) fn new(columns: Vec<Column>, chain: Chain) -> Self {
        Self {
            columns,
            chain,
            selection: None,
            pending: Vec::new(),
            frames: Vec::new(),
            pending_bytes: 0,
        }
    }
}

/// The maskers for a result set starting now. Resolved per result set, so a
/// reload applies from the next one; a configured plugin that is missing
/// withholds the rows, since it could be a masker.
pub(super) fn masking_chain(ctx: &RelayContext) -> Result<Option<Chain>, String> {
    match ctx.host.chain(&ctx.plugins) {
        Ok(chain) => Ok(chain.has_maskers().then_some(chain)),
        Err(refusal) => Err(refusal.to_string()),
    }
}

/// Names the result's tables and learns which columns the maskers may
/// change, before its first row.
pub(super) async fn select_columns(
    ctx: &RelayContext,
    set: &mut ResultSet,
    selections: &mut Selections,
) -> Result<Arc<Selection>, String> {
    if let Some(catalog) = &ctx.catalog {
        catalog.name_tables(&mut set.columns).await;
    }
    selections
        .get(&set.chain, &ctx.session, &set.columns)
        .await
        .map_err(|r| r.to_string())
}

/// Masks the pending rows of the current result set and queues them.
pub(super) async fn flush_rows(
    ctx: &RelayContext,
    results: &mut Results,
    out: &mut Vec<Frame>,
) -> Result<(), RelayError> {
    let Results::Masked(set) = results else {
        return Ok(());
    };
    if set.pending.is_empty() {
        return Ok(());
    }
    let Some(selection) = &set.selection else {
        return Err(RelayError::Unmaskable(
            "result rows were queued before the maskers chose their columns".into(),
        ));
    };
    set.pending_bytes = 0;
    let mut batch = std::mem::take(&mut set.pending);
    let frames = std::mem::take(&mut set.frames);
    let report = set
        .chain
        .mask_rows(&ctx.session, &set.columns, selection, &mut batch)
        .await
        .map_err(|r: Refusal| RelayError::Unmaskable(r.to_string()))?;
    ctx.audit.masked(&report.detections);
    let mut changed = vec![Vec::new(); frames.len()];
    for (row, column) in report.changed {
        if let Some(cols) = changed.get_mut(row as usize) {
            cols.push(column as usize);
        }
    }
    for ((frame, masked), columns) in frames.into_iter().zip(batch).zip(changed) {
        if columns.is_empty() {
            out.push(frame);
            continue;
        }
        // Unchanged cells go out exactly as they came in.
        let mut cells = rows::parse_data_row(&frame.body).map_err(RelayError::Server)?;
        for ((i, cell), (after, column)) in cells
            .iter_mut()
            .enumerate()
            .zip(masked.into_iter().zip(&set.columns))
        {
            if columns.contains(&i) {
                *cell = rows::from_masker(column, after);
            }
        }
        out.push(Frame::new(b'D', rows::encode_data_row(&cells)));
    }
    Ok(())
}
