//! Cutting a streamed response into the units maskers see one at a time:
//! server-sent events (a blank line ends an event; lines end with CRLF, LF
//! or CR) and newline-delimited JSON (one value per line).
//!
//! Each unit is bounded: a partial event or line longer than the limit is an
//! error, so a stream that never ends an event cannot make the gateway
//! buffer without bound.

#[derive(Debug, thiserror::Error)]
#[error("an event or line of the stream is longer than {0} bytes")]
pub struct TooLong(pub usize);

/// One server-sent event: its lines, without line terminators.
pub type Event = Vec<Vec<u8>>;

#[derive(Debug)]
pub struct SseSplitter {
    /// The current incomplete line.
    partial: Vec<u8>,
    /// Complete lines of the current event.
    lines: Event,
    pending: usize,
    /// The last byte seen was a CR: a following LF belongs to it.
    after_cr: bool,
    /// How much of a leading byte order mark has been read, which the
    /// format says to skip (read as text, it would make the first field
    /// name unknown and its event empty); `None` past the stream's start.
    bom: Option<usize>,
    limit: usize,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl SseSplitter {
    pub fn new(limit: usize) -> Self {
        Self {
            partial: Vec::new(),
            lines: Vec::new(),
            pending: 0,
            after_cr: false,
            bom: Some(0),
            limit,
        }
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Event>, TooLong> {
        let mut events = Vec::new();
        for &b in data {
            if let Some(seen) = self.bom {
                if b == BOM[seen] {
                    self.bom = (seen + 1 < BOM.len()).then_some(seen + 1);
                    continue;
                }
                self.bom = None;
                // Not a mark after all: what matched of it is text.
                self.partial.extend_from_slice(&BOM[..seen]);
                self.pending += seen;
            }
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    if self.partial.is_empty() {
                        // A blank line dispatches the event (an empty one
                        // is still passed on: it keeps the stream alive).
                        events.push(std::mem::take(&mut self.lines));
                        self.pending = 0;
                    } else {
                        self.lines.push(std::mem::take(&mut self.partial));
                    }
                }
                _ => {
                    self.partial.push(b);
                    self.pending += 1;
                    if self.pending > self.limit {
                        return Err(TooLong(self.limit));
                    }
                }
            }
        }
        Ok(events)
    }
}

/// Newline-delimited JSON: one unit per line.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    limit: usize,
}

impl LineSplitter {
    pub fn new(limit: usize) -> Self {
        Self {
            partial: Vec::new(),
            limit,
        }
    }

    /// Feeds bytes; returns the complete lines, without their `\n` (a
    /// trailing `\r` stays: it is whitespace to JSON).
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Vec<u8>>, TooLong> {
        let mut lines = Vec::new();
        for &b in data {
            if b == b'\n' {
                lines.push(std::mem::take(&mut self.partial));
            } else {
                self.partial.push(b);
                if self.partial.len() > self.limit {
                    return Err(TooLong(self.limit));
                }
            }
        }
        Ok(lines)
    }

    /// The last line when the stream did not end with a newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
    }
}

/// The parts of an event: the joined `data`, and its lines in order.
pub struct Parsed {
    pub data: Option<Vec<u8>>,
    pub lines: Vec<Line>,
}

/// A line of an event as it is written back.
pub enum Line {
    /// Where the data lines go.
    Data,
    /// `id` or `event`, whose values clients read.
    Field { name: &'static str, value: Vec<u8> },
    /// A comment (reduced to `:`) or a `retry`, as is.
    Kept(Vec<u8>),
}

/// Splits an event into its data and the rest. Comments are reduced to a
/// bare `:` (they keep connections alive; what they say is not passed on
/// unmasked). Of the other fields, `id` and `event` are kept (their values
/// go to the maskers too, see [`Parsed::values`]), `retry` only when it is
/// digits, as clients read it; fields clients ignore are dropped rather
/// than passed on unmasked.
pub fn parse_event(event: Event) -> Parsed {
    let mut data: Option<Vec<u8>> = None;
    let mut lines = Vec::with_capacity(event.len());
    for line in event {
        if line.first() == Some(&b':') {
            lines.push(Line::Kept(b":".to_vec()));
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (&line[..], &b""[..]),
        };
        match field {
            b"data" => match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => {
                    data = Some(value.to_vec());
                    lines.push(Line::Data);
                }
            },
            b"id" | b"event" => lines.push(Line::Field {
                name: if field == b"id" { "id" } else { "event" },
                value: value.to_vec(),
            }),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                lines.push(Line::Kept(line))
            }
            _ => {}
        }
    }
    Parsed { data, lines }
}

impl Parsed {
    /// The values of the `id` and `event` lines, in order.
    pub fn values(&self) -> Vec<&[u8]> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Field { value, .. } => Some(&value[..]),
                _ => None,
            })
            .collect()
    }

    /// Replaces the values [`Parsed::values`] returned, in the same order;
    /// `false` (and nothing changed) when the count differs or a value holds
    /// a line break.
    pub fn set_values(&mut self, values: &[&[u8]]) -> bool {
        if values.len() != self.values().len()
            || values
                .iter()
                .any(|v| v.contains(&b'\n') || v.contains(&b'\r'))
        {
            return false;
        }
        let fields = self.lines.iter_mut().filter_map(|l| match l {
            Line::Field { value, .. } => Some(value),
            _ => None,
        });
        for (value, new) in fields.zip(values) {
            *value = new.to_vec();
        }
        true
    }
}

/// Writes an event back, with `data` (already masked) in place of the
/// original data lines. Line breaks inside `data` become separate `data:`
/// lines, whichever convention the masker used.
pub fn write_event(parsed: &Parsed, data: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in &parsed.lines {
        match line {
            Line::Kept(l) => out.extend_from_slice(l),
            Line::Field { name, value } => {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
            }
            Line::Data => {
                for part in split_lines(data.unwrap_or_default()) {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(part);
                    out.push(b'\n');
                }
                continue;
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Lines of `data` split at CRLF, LF or CR.
fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                lines.push(&data[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&data[start..i]);
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(&data[start..]);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_any_line_ending_across_chunks() {
        let mut s = SseSplitter::new(1024);
        let mut events = Vec::new();
        let stream = b"event: a\r\ndata: 1\r\n\r\ndata: 2\n\n: ping\r\rdata: x\ndata: y\n";
        for piece in stream.chunks(3) {
            events.extend(s.push(piece).unwrap());
        }
        assert_eq!(events.len(), 3, "the last event is not finished yet");
        assert_eq!(events[0], vec![b"event: a".to_vec(), b"data: 1".to_vec()]);
        assert_eq!(events[1], vec![b"data: 2".to_vec()]);
        assert_eq!(events[2], vec![b": ping".to_vec()]);
        assert_eq!(s.push(b"\n").unwrap()[0].len(), 2);
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let mut s = SseSplitter::new(1024);
        let mut events = Vec::new();
        for piece in b"\xEF\xBB\xBFdata: x\n\n\xEF\xBB\xBFdata: y\n\n".chunks(2) {
            events.extend(s.push(piece).unwrap());
        }
        assert_eq!(events[0], vec![b"data: x".to_vec()]);
        // Only at the start of the stream.
        assert_eq!(events[1], vec![b"\xEF\xBB\xBFdata: y".to_vec()]);
        let mut s = SseSplitter::new(1024);
        assert_eq!(
            s.push(b"\xEF\xBBdata\n\n").unwrap()[0],
            vec![b"\xEF\xBBdata".to_vec()]
        );
    }

    #[test]
    fn events_are_bounded() {
        let mut s = SseSplitter::new(8);
        assert!(s.push(b"data: 12").is_ok());
        assert!(s.push(b"3").is_err());
        let mut l = LineSplitter::new(4);
        assert_eq!(l.push(b"ab\ncd").unwrap(), vec![b"ab".to_vec()]);
        assert_eq!(l.finish(), Some(b"cd".to_vec()));
        assert!(l.push(b"12345").is_err());
    }

    #[test]
    fn data_is_joined_and_written_back_in_place() {
        let event = vec![
            b"id: 7".to_vec(),
            b"data: {\"a\":".to_vec(),
            b": secret comment".to_vec(),
            b"data:1}".to_vec(),
            b"retry: 10".to_vec(),
            b"retry: soon".to_vec(),
            b"owner: ann@example.com".to_vec(),
            b"event:update".to_vec(),
        ];
        let mut parsed = parse_event(event);
        assert_eq!(parsed.data.as_deref(), Some(&b"{\"a\":\n1}"[..]));
        let out = write_event(&parsed, Some(b"{\"a\":\r\n2}"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 7\ndata: {\"a\":\ndata: 2}\n:\nretry: 10\nevent: update\n\n"
        );
        assert_eq!(parsed.values(), [&b"7"[..], b"update"]);
        assert!(!parsed.set_values(&[b"8"]));
        assert!(!parsed.set_values(&[b"8", b"a\nb"]));
        assert!(parsed.set_values(&[b"8", b"[EMAIL]"]));
        assert_eq!(
            String::from_utf8(write_event(&parsed, None)).unwrap(),
            "id: 8\ndata: \n:\nretry: 10\nevent: [EMAIL]\n\n"
        );
    }
}
