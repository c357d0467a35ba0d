//! Unit tests of the credential search in bodies and headers.
use super::*;
use http_body_util::{BodyExt, StreamBody};

const SECRET: &str = "MCP_SECRET_KEY_ABC/9+x";

fn needles() -> Needles {
    Needles::credential(&[SECRET.as_bytes()]).unwrap()
}

fn json_escaped(s: &str, every: bool) -> String {
    s.chars()
        .map(|c| match c {
            '/' => "\\/".to_string(),
            c if every => format!("\\u{:04x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

#[test]
fn secrets_are_found_as_written_and_escaped() {
    let n = needles();
    let percent: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
    let twice = percent.replace('%', "%25");
    let iis: String = SECRET.bytes().map(|b| format!("%u{b:04x}")).collect();
    for spelled in [
        SECRET.to_string(),
        json_escaped(SECRET, false),
        json_escaped(SECRET, true),
        percent,
        twice,
        iis,
        // JSON of a percent-encoded secret.
        SECRET.replace('/', "\\u0025\\u0032\\u0046"),
    ] {
        let body = format!(r#"{{"headers":{{"x-api-key":"{spelled}","n":1}}}}"#);
        let clean = n.replace(body.as_bytes()).expect(&spelled);
        let clean = String::from_utf8(clean).unwrap();
        let v: serde_json::Value = serde_json::from_str(&clean).expect(&clean);
        assert_eq!(v["headers"]["x-api-key"], CREDENTIAL_MARKER, "{spelled}");
        assert_eq!(v["headers"]["n"], 1);
    }
    assert_eq!(n.replace(b"{\"a\":\"MCP_SECRET_KEY_AB\"}"), None);
    // An escaped backslash is not an escape, unless read twice.
    let near = format!("\\\\u{:04x}{}", 'M' as u32, &SECRET[1..]);
    assert!(n.find(near.as_bytes(), 1, true, true).is_empty(), "{near}");
    assert!(n.holds(near.as_bytes()), "{near}");
    assert_eq!(
        n.replace_str(&format!("a {SECRET} b {SECRET}")).as_deref(),
        Some("a [sluice: upstream credential] b [sluice: upstream credential]")
    );
}

#[test]
fn base64_of_the_secret_is_found_at_any_alignment() {
    use base64::Engine as _;
    let n = needles();
    for prefix in ["", "a", "ab", "user:"] {
        let text = format!("{prefix}{SECRET}tail");
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ] {
            let encoded = engine.encode(&text);
            assert!(n.holds(encoded.as_bytes()), "{prefix:?} {encoded}");
        }
    }
    assert!(!n.holds(b"TUNQX1NFQ1JFVF9LRVlfQUI="));
}

#[test]
fn short_secrets_are_not_searched() {
    assert!(Needles::credential(&[b"pw"]).is_none());
    assert!(Needles::token("short").is_none());
}

#[test]
fn header_values_are_cleaned() {
    let n = needles();
    let mut h = HeaderMap::new();
    h.insert(
        "set-cookie",
        HeaderValue::from_str(&format!("k={SECRET}; Path=/")).unwrap(),
    );
    h.insert("x-kept", HeaderValue::from_static("plain"));
    assert!(n.replace_in_headers(&mut h));
    assert_eq!(h["set-cookie"], "k=[sluice: upstream credential]; Path=/");
    assert_eq!(h["x-kept"], "plain");
    assert!(!n.replace_in_headers(&mut h));
}

#[test]
fn a_header_named_with_the_secret_is_removed() {
    // A name cannot be rewritten: the header goes.
    let n = Needles::credential(&[b"0123456789abcdef"]).unwrap();
    let mut h = HeaderMap::new();
    h.insert("x-0123456789abcdef", HeaderValue::from_static("1"));
    h.insert("x-kept", HeaderValue::from_static("plain"));
    assert!(n.replace_in_headers(&mut h));
    assert_eq!(h.len(), 1, "{h:?}");
}

/// An upstream's error page quotes what it got escaped for HTML or XML
/// (OWASP's encoder writes every non-alphanumeric as a reference), or
/// folded to one case: still the credential.
#[test]
fn character_references_and_folded_case_are_the_secret() {
    let n = needles();
    let hex_refs: String = SECRET
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("&#x{:x};", c as u32)
            }
        })
        .collect();
    let decimal_refs: String = SECRET.bytes().map(|b| format!("&#{b};")).collect();
    let padded: String = SECRET.bytes().map(|b| format!("&#x0000{b:02X};")).collect();
    for spelled in [
        hex_refs,
        decimal_refs,
        padded,
        SECRET.to_ascii_lowercase(),
        SECRET.to_ascii_uppercase(),
    ] {
        let page = format!("<p>Invalid credentials: {spelled}</p>");
        let clean = n.replace(page.as_bytes()).expect(&spelled);
        assert_eq!(
            String::from_utf8(clean).unwrap(),
            format!("<p>Invalid credentials: {CREDENTIAL_MARKER}</p>"),
            "{spelled}"
        );
    }
    // As HTML5 reads text: numeric references without `;` (to the end of
    // the text too), the legacy names without `;` and in capitals.
    let no_semicolons: String = SECRET.bytes().map(|b| format!("&#{b}")).collect();
    assert!(n.holds(no_semicolons.as_bytes()), "{no_semicolons}");
    assert!(n.holds(format!("x {no_semicolons} y").as_bytes()));
    let decimal_no_semicolons = SECRET.replace('_', "&#95");
    assert!(
        n.holds(decimal_no_semicolons.as_bytes()),
        "{decimal_no_semicolons}"
    );
    // A digit after it is read as the reference's own (`&#479` is not
    // `/` then `9`), by HTML and here alike.
    assert!(!n.holds(SECRET.replace('/', "&#47").as_bytes()));
    let amp = Needles::credential(&[b"Up-Secret-7f3K&q-9qLz"]).unwrap();
    for spelled in [
        "Up-Secret-7f3K&AMP;q-9qLz",
        "Up-Secret-7f3K&ampq-9qLz",
        "Up-Secret-7f3K&amp",
    ] {
        let complete = spelled.len() > 20;
        assert_eq!(amp.holds(spelled.as_bytes()), complete, "{spelled}");
    }
    // `&amp;` read once more, as a double-escaping template writes it.
    let with_amp = Needles::credential(&[b"key&value-0123456789"]).unwrap();
    assert!(with_amp.holds(b"<b>key&amp;value&#45;0123456789</b>"));
    assert!(with_amp.holds(b"key&amp;amp;value-0123456789"));
    // References that decode to something else, or are not finished, are not it.
    assert!(!n.holds(b"MCP_SECRET_KEY_ABC&#x2e;9+x"));
    assert!(!n.holds(b"MCP_SECRET_KEY_ABC&#x2f9+x"));
    // A header named with the secret reaches the gateway in lower case.
    let mut h = HeaderMap::new();
    let name = format!("x-{}", "APIKEYvalue-0123456789abcdef".to_ascii_lowercase());
    h.insert(
        hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_static("1"),
    );
    let mixed = Needles::credential(&[b"APIKEYvalue-0123456789abcdef"]).unwrap();
    assert!(mixed.replace_in_headers(&mut h));
    assert!(h.is_empty(), "{h:?}");
}

/// A stream cut inside a character reference holds its start back.
#[tokio::test]
async fn a_reference_split_across_chunks_is_found() {
    let refs = SECRET.replace('/', "&#x2f;").replace('_', "&#95;");
    let text = format!("a {refs} b");
    for cut in 1..text.len() {
        let (out, failed, found) =
            streamed(&[&text.as_bytes()[..cut], &text.as_bytes()[cut..]]).await;
        assert!(failed && found, "cut at {cut}");
        assert!(
            out.len() <= 2,
            "cut at {cut}: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[test]
fn view_ranges_map_back_to_whole_escapes() {
    let useful = [true; 256];
    let view = decode(b"ab%41\\u0042c", &useful, true).unwrap();
    assert_eq!(view.text, b"abABc");
    assert_eq!(back(&view.anchors, 2..3), 2..5);
    assert_eq!(back(&view.anchors, 1..4), 1..11);
    assert_eq!(back(&view.anchors, 4..5), 11..12);
    assert_eq!(back(&view.anchors, 0..1), 0..1);
    assert!(decode(b"no escapes", &useful, true).is_none());
}

async fn streamed(chunks: &[&[u8]]) -> (Vec<u8>, bool, bool) {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let found = Arc::new(AtomicBool::new(false));
    let mut body = Guarded::new(
        StreamBody::new(futures_util::stream::iter(frames)),
        Arc::new(needles()),
        found.clone(),
        "found",
    );
    let mut out = Vec::new();
    let mut failed = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => out.extend_from_slice(&f.into_data().unwrap()),
            Err(_) => failed = true,
        }
    }
    (out, failed, found.load(Ordering::Relaxed))
}

#[tokio::test]
async fn a_stream_is_cut_before_any_part_of_a_match_is_passed_on() {
    let secret = SECRET.as_bytes();
    let escaped = json_escaped(SECRET, true);
    for text in [secret.to_vec(), escaped.into_bytes()] {
        let mut stream = b"data: {\"echo\":\"".to_vec();
        stream.extend_from_slice(&text);
        stream.extend_from_slice(b"\"}\n\n");
        // Every split of the match between two chunks.
        for cut in 15..15 + text.len() {
            let (out, failed, found) = streamed(&[&stream[..cut], &stream[cut..]]).await;
            assert!(failed && found, "cut at {cut}");
            assert!(
                out.len() <= 15,
                "passed on {:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }
    // What is no match passes whole, events without delay: the blank
    // line ending an event is never held back.
    let events: [&[u8]; 3] = [b"data: MCP_SECRET_KEY", b"_ABC/9 no\n\n", b"data: x\n\n"];
    let (out, failed, _) = streamed(&events).await;
    assert!(!failed);
    assert_eq!(out, events.concat());
    let n = needles();
    assert_eq!(n.open_end(b"data: 1\n\n"), 0);
    assert_eq!(n.open_end(b"xx MCP_SEC"), 7);
    assert_eq!(n.open_end(b"xx \\u004"), 5);
    assert_eq!(n.open_end(b"xx %4D%4"), 5);
    assert_eq!(n.open_end(b"xx %4Dz"), 0);
}

#[test]
fn utf16_spellings_are_found() {
    let n = needles();
    for text in [
        SECRET
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>(),
        SECRET.encode_utf16().flat_map(u16::to_be_bytes).collect(),
    ] {
        let mut body = vec![0xff, 0xfe, b'k', 0, b'=', 0];
        body.extend_from_slice(&text);
        assert!(n.holds(&body), "{body:?}");
        assert!(
            !n.replace(&body)
                .unwrap()
                .windows(text.len())
                .any(|w| w == text)
        );
    }
}
