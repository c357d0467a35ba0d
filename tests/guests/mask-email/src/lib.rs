//! Test guest: a masker that replaces email addresses in text-like result
//! cells and in text or JSON response bodies.
//!
//! Config: `{"replacement": "[EMAIL]"}` (optional).

use serde::Deserialize;
use sluice_plugin_sdk::types::{
    CellEdit, Column, Detection, HttpBody, MaskedBody, MaskedRows, Row, Session,
};
use sluice_plugin_sdk::{Masker, export_masker, metrics};

mod scan;

pub use scan::mask_emails;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    replacement: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            replacement: "[EMAIL]".into(),
        }
    }
}

pub struct MaskEmail {
    replacement: String,
    // The replacement as it must appear inside a JSON string.
    json_replacement: String,
}

impl Masker for MaskEmail {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let quoted = serde_json::to_string(&config.replacement).map_err(|e| e.to_string())?;
        let json_replacement = quoted[1..quoted.len() - 1].to_string();
        Ok(MaskEmail {
            replacement: config.replacement,
            json_replacement,
        })
    }

    fn masks_column(&self, _: &Session, column: &Column) -> bool {
        column.is_text_like()
    }

    fn mask_rows(
        &self,
        _: &Session,
        columns: &[Column],
        rows: &[Row],
    ) -> Result<MaskedRows, String> {
        let mut masked = MaskedRows::unchanged();
        let mut found = 0;
        for (r, row) in rows.iter().enumerate() {
            for (c, (column, cell)) in columns.iter().zip(row).enumerate() {
                let Some(text) = column.cell_text(cell).filter(|_| column.is_text_like()) else {
                    continue;
                };
                if let Some((replaced, count)) = mask_emails(text, &self.replacement) {
                    masked
                        .edits
                        .push(CellEdit::set(index(r)?, index(c)?, replaced));
                    found += count;
                }
            }
        }
        masked.detections = detections(found);
        Ok(masked)
    }

    fn mask_body(&self, _: &Session, body: &HttpBody) -> Result<MaskedBody, String> {
        let content_type = body.content_type.to_ascii_lowercase();
        let replacement = if content_type.contains("json") {
            &self.json_replacement
        } else if content_type.starts_with("text/") {
            &self.replacement
        } else {
            return Ok(MaskedBody::unchanged());
        };
        let Ok(text) = std::str::from_utf8(&body.body) else {
            return Ok(MaskedBody::unchanged());
        };
        Ok(match mask_emails(text, replacement) {
            Some((replaced, count)) => MaskedBody::replaced(replaced, detections(count)),
            None => MaskedBody::unchanged(),
        })
    }
}

fn detections(count: u32) -> Vec<Detection> {
    if count == 0 {
        return Vec::new();
    }
    metrics::counter_add("emails_masked", u64::from(count), &[]);
    vec![Detection::new("email", count)]
}

fn index(i: usize) -> Result<u32, String> {
    u32::try_from(i).map_err(|_| format!("batch too large: index {i}"))
}

export_masker!(MaskEmail);

// `testing` is native-only: these tests need the host target.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
