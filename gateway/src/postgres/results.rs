//! Result sets on their way to the client, through the maskers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::plugins::bindings::types::{Column, ValueFormat};
use crate::plugins::{Chain, Refusal, Selection};

use super::binary::{self, Check, Kind, Shown};
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

/// Rounds of catalog lookups for the types one batch's binary values hold
/// (a composite's fields may name more); past them, what is still unknown
/// is withheld.
const TYPE_LOOKUP_ROUNDS: usize = 4;

/// Columns, the maskers resolved when the result set began, and rows waiting
/// for them.
pub(super) struct ResultSet {
    /// The columns as the maskers see them: binary ones the gateway renders
    /// are in text format.
    pub(super) columns: Vec<Column>,
    /// How each column's binary values are shown to the maskers.
    pub(super) shown: Vec<Shown>,
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
    pub(super) fn new(mut columns: Vec<Column>, chain: Chain) -> Self {
        let shown: Vec<Shown> = columns
            .iter()
            .map(|c| match c.format {
                ValueFormat::Binary => Shown::for_type(c.type_oid),
                ValueFormat::Text => Shown::AsSent,
            })
            .collect();
        for (column, shown) in columns.iter_mut().zip(&shown) {
            if shown.rendered() {
                column.format = ValueFormat::Text;
            }
        }
        Self {
            columns,
            shown,
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
    let withheld = show_binary(ctx, set, selection, &mut batch).await;
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
    if !withheld.is_empty() {
        metrics::counter!(
            "sluice_pg_values_withheld_total",
            "connection" => ctx.session.connection.clone()
        )
        .increment(withheld.len() as u64);
    }
    let mut held = vec![Vec::new(); frames.len()];
    for (row, column) in withheld {
        if let Some(cols) = held.get_mut(row) {
            cols.push(column);
        }
    }
    for (((frame, masked), columns), held) in frames.into_iter().zip(batch).zip(changed).zip(held) {
        if columns.is_empty() && held.is_empty() {
            out.push(frame);
            continue;
        }
        // Unchanged cells go out exactly as they came in.
        let mut cells = rows::parse_data_row(&frame.body).map_err(RelayError::Server)?;
        for ((i, cell), ((after, column), shown)) in cells
            .iter_mut()
            .enumerate()
            .zip(masked.into_iter().zip(&set.columns).zip(&set.shown))
        {
            // A withheld value was shown to the maskers as NULL, and stays
            // NULL whatever they made of that.
            if held.contains(&i) {
                *cell = None;
            } else if columns.contains(&i) {
                *cell = rows::from_masker(column, *shown, after);
            }
        }
        out.push(Frame::new(b'D', rows::encode_data_row(&cells)));
    }
    Ok(())
}

/// Shows the maskers the batch's binary values as [`binary`] describes:
/// addresses rendered to text; values that hide what their text would show
/// withheld (NULL), in the columns a masker selected. Returns the withheld
/// cells, (row, column).
async fn show_binary(
    ctx: &RelayContext,
    set: &ResultSet,
    selection: &Selection,
    batch: &mut [Vec<Cell>],
) -> Vec<(usize, usize)> {
    let mut withheld = Vec::new();
    let mut checked = Vec::new();
    for (c, &shown) in set.shown.iter().enumerate() {
        let selected = u32::try_from(c).is_ok_and(|c| selection.selects(c));
        for (r, row) in batch.iter_mut().enumerate() {
            let Some(cell) = row.get_mut(c) else {
                continue;
            };
            let Some(value) = cell.as_deref() else {
                continue;
            };
            let text = match shown {
                Shown::AsSent => continue,
                Shown::Checked => {
                    if selected {
                        checked.push((r, c));
                    }
                    continue;
                }
                Shown::Address(a) => binary::address_text(a, value),
                Shown::Addresses(a) => binary::address_array_text(a, value),
            };
            // A value that does not render (the server never sends one) is
            // no value a masker could judge.
            *cell = text.map(String::into_bytes);
            if cell.is_none() && selected {
                withheld.push((r, c));
            }
        }
    }
    let mut known: HashMap<u32, Kind> = HashMap::new();
    for round in 0.. {
        let mut missing = Vec::new();
        let mut unresolved = Vec::new();
        let resolve = |oid: u32| binary::builtin(oid).or_else(|| known.get(&oid).copied());
        for (r, c) in checked {
            let (Some(column), Some(Some(value))) = (set.columns.get(c), batch[r].get(c)) else {
                continue;
            };
            match binary::check(column.type_oid, value, &resolve, &mut missing) {
                Check::Clear => {}
                Check::Hides => withheld.push((r, c)),
                Check::Unresolved => unresolved.push((r, c)),
            }
        }
        if unresolved.is_empty() {
            break;
        }
        missing.sort_unstable();
        missing.dedup();
        let found = match &ctx.catalog {
            Some(catalog) if round < TYPE_LOOKUP_ROUNDS => catalog.types(&missing).await,
            _ => HashMap::new(),
        };
        // Each round classifies every type it met, unknown ones as opaque,
        // so the walk ends.
        for oid in missing {
            known.insert(oid, found.get(&oid).copied().unwrap_or(Kind::Opaque));
        }
        checked = unresolved;
    }
    for &(r, c) in &withheld {
        if let Some(cell) = batch.get_mut(r).and_then(|row| row.get_mut(c)) {
            *cell = None;
        }
    }
    withheld
}
