use serde_json::{Value, json};
use sluice_plugin_sdk::types::{Detection, HttpBody, MaskedBody};
use sluice_plugin_sdk::{Masker, testing};

use super::{body, masker};

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text}: {e}"))
}

#[test]
fn json_bodies_stay_valid_with_nested_values_masked() {
    let m = masker(json!({ "entities": { "card": "partial" } }));
    let doc = r#"{
      "id": 7, "price": 12.50, "big": 12345678901234567890,
      "customer": {"name": "Ann", "email": "ann@example.com",
                   "phones": ["+44 20 7946 0958", {"work": "(415) 555-2671"}]},
      "note": "escaped \u0040 sign: bob\u0040example.com \"quoted\" \\ tab\t",
      "ann@example.com": "a key",
      "card": 4242424242424242, "amount": -4242424242424242, "ok": true, "nothing": null
    }"#;
    let (masked, detections) = body(&m, "application/json; charset=utf-8", doc);
    let value = parse(&masked);
    assert_eq!(value["customer"]["email"], "[EMAIL]");
    assert_eq!(
        value["customer"]["phones"],
        json!(["[PHONE]", {"work": "[PHONE]"}])
    );
    assert_eq!(value["note"], "escaped @ sign: [EMAIL] \"quoted\" \\ tab\t");
    assert_eq!(value["[EMAIL]"], "a key");
    assert_eq!(value["card"], "************4242");
    assert_eq!(
        value["amount"], "************4242",
        "the sign hides nothing"
    );
    // Untouched parts are byte for byte the same.
    assert!(
        masked.contains(r#""price": 12.50, "big": 12345678901234567890"#),
        "{masked}"
    );
    assert_eq!(value["ok"], true);
    assert_eq!(
        detections,
        vec![
            Detection::new("email", 3),
            Detection::new("phone", 2),
            Detection::new("card", 2),
        ]
    );
}

/// A card number is a card number however a serialiser spells the JSON
/// number: Python writes floats as `….0`, others use exponents.
#[test]
fn card_numbers_in_every_json_number_form() {
    let m = masker(json!({}));
    let doc = r#"{"card":4242424242424242,"c2":4.242424242424242e15,"c3":-4242424242424242,"c4":4242424242424242.0}"#;
    let (masked, detections) = body(&m, "application/json", doc);
    assert_eq!(
        masked,
        r#"{"card":"[CARD]","c2":"[CARD]","c3":"[CARD]","c4":"[CARD]"}"#
    );
    assert_eq!(detections, vec![Detection::new("card", 4)]);
    for number in [
        "4242424242424242.00",
        "-4242424242424242.000000000000000000000000",
        "4.242424242424242E+15",
        "42424242424242420e-1",
        "0.4242424242424242e16",
        "-0.04242424242424242E17",
        "424242424242424.2e1",
        "4222222222222",
        "4222222222222.0",
        "378282246310005.0",
    ] {
        let doc = format!("[1, {number}, 2.5]");
        assert_eq!(
            body(&m, "application/json", &doc).0,
            r#"[1, "[CARD]", 2.5]"#,
            "{number}"
        );
    }
    // Not integers, not cards, or far too long: byte for byte as they were.
    let clean = "[4242424242424242.5, 4.242424242424242e14, 4242424242424241.0, \
                 424242424242424.25e1, 4.242424242424242e-15, 42424242424242420e-2, \
                 1e300, -1E-300, 0.0, -0, 12.50, 1e19, \
                 4242424242424242e10, 42424242424242424242.0]";
    assert!(parse(clean).is_array(), "scanned as JSON, not as text");
    assert_eq!(body(&m, "application/json", clean).0, clean);

    // Each spelling is masked as its plain integer would be.
    let partial = masker(json!({ "entities": { "card": "partial" } }));
    let (masked, _) = body(
        &partial,
        "application/json",
        "[-4242424242424242, 4242424242424242.0, 4.242424242424242e15]",
    );
    assert_eq!(
        parse(&masked),
        json!(["************4242", "************4242", "************4242"])
    );
    let hashed = masker(json!({ "strategy": "hash", "hash_key": super::KEY }));
    let (masked, _) = body(
        &hashed,
        "application/json",
        "[4242424242424242, 4242424242424242.0, 4.242424242424242e15, -4242424242424242]",
    );
    let pseudonyms: Vec<String> = serde_json::from_str(&masked).unwrap();
    assert!(pseudonyms[0].starts_with("card_"), "{masked}");
    assert!(pseudonyms.iter().all(|p| *p == pseudonyms[0]), "{masked}");
    let nulled = masker(json!({ "strategy": "null" }));
    assert_eq!(
        body(
            &nulled,
            "application/json",
            r#"{"c": 4.242424242424242e15}"#
        )
        .0,
        r#"{"c": null}"#
    );
}

/// Valid JSON syntax, as the masker checks it (numbers of any size).
fn valid_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// Zeros pad a JSON number without changing it: a card number padded
/// with any number of them, before or after its digits and compensated by
/// the exponent, is still the card. Huge numbers are read in linear time.
#[test]
fn card_numbers_padded_with_any_number_of_zeros() {
    let m = masker(json!({}));
    let zeros = "0".repeat(1_500);
    for number in [
        format!("0.{zeros}4242424242424242e1516"),
        format!("4242424242424242{zeros}e-1500"),
        format!("-4242424242424242{zeros}.{zeros}E-1500"),
        format!("4242424242424242.{zeros}"),
        format!("0.{zeros}4242424242424242{zeros}e+1516"),
        format!("0.{zeros}42424242424242420e1516"),
        format!("42424242424242.42{zeros}e2"),
    ] {
        let doc = format!("[1, {number}, 2.5]");
        assert!(valid_json(&doc), "{doc}");
        assert_eq!(
            body(&m, "application/json", &doc).0,
            r#"[1, "[CARD]", 2.5]"#,
            "{number}"
        );
    }
    for number in [
        // One too far either way, a digit after the point, too many digits.
        format!("0.{zeros}4242424242424242e1515"),
        format!("0.{zeros}4242424242424242e1517"),
        format!("4242424242424242{zeros}e-1501"),
        format!("4242424242424242{zeros}e-1499"),
        format!("4242424242424242{zeros}1e-1501"),
        format!("0.{zeros}4242424242424242e99999999999999999999999999"),
        "4242424242424242e-99999999999999999999999999".to_string(),
        format!("0.{zeros}"),
    ] {
        let doc = format!("[1, {number}, 2.5]");
        assert!(valid_json(&doc), "{doc}");
        assert_eq!(body(&m, "application/json", &doc).0, doc, "{number}");
    }

    // Ten megabytes of digits, in the significand or the exponent.
    let huge = 10_000_000;
    let many = "0".repeat(huge);
    let start = std::time::Instant::now();
    for (doc, card) in [
        (format!("[4242424242424242{many}e-{huge}]"), true),
        (format!("[0.{many}4242424242424242e{}]", huge + 16), true),
        (format!("[0.{many}1e{}]", huge + 1), false),
        (format!("[4242424242424242e-{many}1]"), false),
        (format!("[1{many}]"), false),
    ] {
        let (masked, d) = body(&m, "application/json", &doc);
        if card {
            assert_eq!(masked, r#"["[CARD]"]"#);
            assert_eq!(d, vec![Detection::new("card", 1)]);
        } else {
            assert_eq!(masked.len(), doc.len());
            assert!(d.is_empty());
        }
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "huge numbers took {:?}",
        start.elapsed()
    );
}

#[test]
fn json_null_strategy_writes_null() {
    let m = masker(json!({ "strategy": "null" }));
    let (masked, _) = body(
        &m,
        "application/vnd.api+json",
        r#"[{"email": "ann@example.com"}, "call +31612345678", 4242424242424242]"#,
    );
    assert_eq!(parse(&masked), json!([{"email": null}, null, null]));
}

#[test]
fn ndjson_and_invalid_json() {
    let m = masker(json!({}));
    let (masked, _) = body(
        &m,
        "application/x-ndjson",
        "{\"e\":\"a@example.com\"}\n{\"e\":\"b@example.com\"}\n",
    );
    assert_eq!(masked, "{\"e\":\"[EMAIL]\"}\n{\"e\":\"[EMAIL]\"}\n");
    // Claims to be JSON, is not: masked as text rather than passed on.
    let (masked, _) = body(&m, "application/json", "oops ann@example.com {");
    assert_eq!(masked, "oops [EMAIL] {");
}

#[test]
fn text_form_and_other_bodies() {
    let m = masker(json!({}));
    let (masked, d) = body(
        &m,
        "text/plain",
        "Hi ann@example.com, your IBAN DE89370400440532013000.",
    );
    assert_eq!(masked, "Hi [EMAIL], your IBAN [IBAN].");
    assert_eq!(
        d,
        vec![Detection::new("email", 1), Detection::new("iban", 1)]
    );

    let (masked, _) = body(
        &m,
        "text/csv",
        "name,phone\nAnn,0612345678\nBob,+31612345679\n",
    );
    assert_eq!(masked, "name,phone\nAnn,[PHONE]\nBob,[PHONE]\n");

    let (masked, _) = body(
        &m,
        "application/x-www-form-urlencoded",
        "user=ann%40example.com&note=call+%2B1+415+555+2671&plain=ok&card=4242424242424242",
    );
    assert_eq!(
        masked,
        "user=%5BEMAIL%5D&note=call+%5BPHONE%5D&plain=ok&card=%5BCARD%5D"
    );

    // An unknown type that is text is still scanned; binary passes unchanged.
    let (masked, _) = body(&m, "application/x-custom", "ann@example.com");
    assert_eq!(masked, "[EMAIL]");
    let binary = HttpBody {
        content_type: "application/octet-stream".into(),
        body: b"\xff\x00ann@example.com".to_vec(),
    };
    assert_eq!(
        m.mask_body(&testing::session("a", &[]), &binary).unwrap(),
        MaskedBody::unchanged()
    );
    // Nothing to mask: no new body at all.
    let clean = testing::http_body("application/json", r#"{"name": "Ann", "n": 5}"#);
    assert_eq!(
        m.mask_body(&testing::session("a", &[]), &clean).unwrap(),
        MaskedBody::unchanged()
    );
}

#[test]
fn exempt_groups_see_bodies_in_clear() {
    let m = masker(json!({ "exempt": [{ "groups": ["pii-readers"] }] }));
    let b = testing::http_body("text/plain", "ann@example.com");
    let session = testing::session("reader", &["pii-readers"]);
    assert_eq!(m.mask_body(&session, &b).unwrap(), MaskedBody::unchanged());
}

/// The gateway hands a server message's fields and a response's header
/// values to maskers as one JSON array of strings and reads back exactly as
/// many strings: `null` writes the redact form there.
#[test]
fn message_and_header_arrays_stay_strings_under_null() {
    let error = json!([
        "ERROR",
        "22P02",
        "invalid input syntax for type integer: \"ann@example.com\"",
        "",
        "call +31612345678 or use card 4242 4242 4242 4242",
    ])
    .to_string();
    for config in [
        json!({ "entities": { "email": "null" } }),
        json!({ "strategy": "null" }),
        json!({ "entities": { "email": "null", "phone": "null", "card": "null" } }),
    ] {
        let m = masker(config.clone());
        let (masked, detections) = body(&m, "application/json", &error);
        let texts: Vec<String> = serde_json::from_str(&masked)
            .unwrap_or_else(|e| panic!("{config}: not an array of strings {masked}: {e}"));
        assert_eq!(texts.len(), 5, "{config}");
        assert_eq!(
            texts[2], "invalid input syntax for type integer: \"[EMAIL]\"",
            "{config}"
        );
        assert_eq!(texts[..2], ["ERROR", "22P02"]);
        assert_eq!(texts[3], "");
        assert!(detections.contains(&Detection::new("email", 1)), "{config}");
    }
    let m = masker(json!({ "strategy": "null" }));
    let (masked, _) = body(&m, "application/json", &error);
    let texts: Vec<String> = serde_json::from_str(&masked).unwrap();
    assert_eq!(texts[4], "call [PHONE] or use card [CARD]");

    // Header values: one string per header, even with whitespace and escapes.
    let m = masker(json!({ "entities": { "email": "null", "ip": "null", "secret": "null" } }));
    let headers = " [ \"ann@example.com\" ,\"10.1.2.3\", \"Bearer abc123def456ghi789\",\n\"no \\\"pii\\\"\" ] ";
    let (masked, _) = body(&m, "application/json", headers);
    let texts: Vec<String> = serde_json::from_str(&masked).unwrap();
    assert_eq!(
        texts,
        ["[EMAIL]", "[IP]", "Bearer [SECRET]", "no \"pii\""],
        "{masked}"
    );

    // Any other shape is a document: its strings still become null.
    for (doc, expected) in [
        (r#"["ann@example.com", 1]"#, json!([null, 1])),
        (r#"[["ann@example.com"]]"#, json!([[null]])),
        (r#"{"a": ["ann@example.com"]}"#, json!({"a": [null]})),
        (r#""ann@example.com""#, json!(null)),
    ] {
        let m = masker(json!({ "entities": { "email": "null" } }));
        assert_eq!(
            parse(&body(&m, "application/json", doc).0),
            expected,
            "{doc}"
        );
    }
}

/// HTML5 numeric character references (decimal or hex, any leading zeros,
/// `;` optional) and the named ones for the characters detectors read hide
/// nothing, in HTML, XML and any other text.
#[test]
fn character_references_are_decoded_before_scanning() {
    let m = masker(json!({}));
    for text in [
        "ann&#64;example.com",
        "ann&#064;example.com",
        "ann&#0000064;example.com",
        "ann&#x0040;example.com",
        "ann&#X40;example.com",
        "ann&#64example.com",
        "ann@example&#46;com",
        "ann@example&#x2E;com",
        "ann@example&#46com",
        "&#97;&#110;&#110;&#64;&#101;&#120;&#97;&#109;&#112;&#108;&#101;&#46;&#99;&#111;&#109;",
        "ann&commat;example&period;com",
        "ann&COMMAT;example&Period;com",
        "ann&amp;#64;example.com",
        "ann@<![CDATA[]]>example.com",
        "ann@<!-- -->example.com",
        "ann<!---->@example<![CDATA[.]]>com",
        "ann@<!-- --!>example.com",
        // Invisible characters, raw or as references.
        "ann&shy;@example.com",
        "ann&SHY;@example.com",
        "ann&shy@example.com",
        "ann&#173;@example.com",
        "ann&#xAD;@example.com",
        "ann\u{ad}@example.com",
        "a\u{200b}nn@exa\u{200c}mple\u{200d}.com",
        "an\u{feff}n@example\u{2060}.com",
        "ann&zwnj;@example&ZeroWidthSpace;.com",
        "ann@exam&zwj;ple&#x200B;.com",
        // Apostrophes and quoted local parts, also as references.
        "o'neil@example.com",
        "o&#39;neil@example.com",
        "o&apos;neil@example.com",
        "\"ann smith\"@example.com",
        "&quot;ann smith&quot;@example.com",
    ] {
        for content_type in ["text/html", "application/xml", "text/plain"] {
            let (masked, d) = body(&m, content_type, &format!("<p>mail {text} now</p>"));
            assert_eq!(masked, "<p>mail [EMAIL] now</p>", "{content_type}: {text}");
            assert_eq!(d, vec![Detection::new("email", 1)], "{text}");
        }
    }
    // Other entities too; the text around a match keeps its references.
    let (masked, _) = body(
        &m,
        "application/xml",
        "<n a=\"&#x26;\">call &#43;1 415 555 2671 &amp; pay 4242&#32;4242&#32;4242&#32;4242</n>",
    );
    assert_eq!(masked, "<n a=\"&#x26;\">call [PHONE] &amp; pay [CARD]</n>");
    // Partial and hash forms are written from the decoded value.
    let partial = masker(json!({ "entities": { "email": "partial" } }));
    assert_eq!(
        body(&partial, "text/html", "<b>ann&#064;example&#46;com</b>").0,
        "<b>a***@example.com</b>"
    );
    let hashed = masker(json!({ "strategy": "hash", "hash_key": super::KEY }));
    assert_eq!(
        body(&hashed, "text/html", "ann&#x0040;example&#46;com").0,
        body(&hashed, "text/html", "ann@example.com").0
    );
    // Not references, or not an address once decoded: unchanged.
    for text in [
        "ann&#;example.com",
        "ann&#x;example.com",
        "ann&#6400;example.com",
        "ann&#0;example.com",
        // Hex digits run on, as in a browser: U+040E, then `xample.com`.
        "ann&#x40example.com",
        "AT&amp;T &lt;b&gt; 5 &#62; 4",
        "ann@<!-- unclosed example.com",
    ] {
        assert_eq!(body(&m, "text/html", text).0, text, "{text}");
    }
    // Many unclosed comments: each opening is read once.
    let openings = format!("{}ann@example.com", "<!--".repeat(200_000));
    let (masked, _) = body(&m, "text/html", &openings);
    assert!(masked.ends_with("[EMAIL]"));
    // What a comment holds is text the agent reads in the raw body.
    for (content_type, text, want) in [
        (
            "text/html",
            "<p>x</p><!-- ann@example.com -->",
            "<p>x</p><!-- [EMAIL] -->",
        ),
        (
            "text/plain",
            "note <!--ann@example.com--> end",
            "note <!--[EMAIL]--> end",
        ),
        (
            "text/html",
            "<!-- 4242 4242 4242 4242 --!>",
            "<!-- [CARD] --!>",
        ),
        (
            "application/json",
            r#"{"e":"<!-- ann@example.com -->"}"#,
            r#"{"e":"<!-- [EMAIL] -->"}"#,
        ),
    ] {
        assert_eq!(body(&m, content_type, text).0, want, "{text}");
    }
    // JSON strings and form values are decoded too.
    let (masked, _) = body(
        &m,
        "application/json",
        r#"{"html": "<i>ann&#64example&#46;com</i>"}"#,
    );
    assert_eq!(masked, r#"{"html": "<i>[EMAIL]</i>"}"#);
}

/// A partial form is written from the decoded value, but where that value
/// was decoded from character references it never gives back a `"`, `'`,
/// `<`, `>` or `&` the text did not hold: a quoted local part shows its
/// first character inside the quotes, and any markup-significant character
/// left is written as a reference. Attributes stay closed where they were.
#[test]
fn partial_forms_add_no_markup_to_decoded_text() {
    let partial = masker(json!({ "entities": { "email": "partial" } }));
    let redact = masker(json!({}));
    for content_type in ["text/html", "application/xml"] {
        for (text, want_partial, want_redact) in [
            // The reported case: an attribute ended early.
            (
                r#"<input value="&quot;ann smith&quot;@example.com">"#,
                r#"<input value="a***@example.com">"#,
                r#"<input value="[EMAIL]">"#,
            ),
            (
                r#"<p title="x">to &quot;ann smith&quot;@example.com now</p>"#,
                r#"<p title="x">to a***@example.com now</p>"#,
                r#"<p title="x">to [EMAIL] now</p>"#,
            ),
            // Single-quoted attribute, apostrophe as a reference.
            (
                "<a title='&quot;&#39;ann&quot;@example.com'>x</a>",
                "<a title='&#39;***@example.com'>x</a>",
                "<a title='[EMAIL]'>x</a>",
            ),
            // A tag or a reference inside the quotes stays text.
            (
                r#"<input value="&quot;&lt;b&gt;&quot;@example.com">"#,
                r#"<input value="&lt;***@example.com">"#,
                r#"<input value="[EMAIL]">"#,
            ),
            (
                "<p>&quot;&amp;x&quot;@example.com</p>",
                "<p>&amp;***@example.com</p>",
                "<p>[EMAIL]</p>",
            ),
            // `&amp;#64;` reads `&#64;`: the `&` stays a literal one.
            (
                r#"<input value="ann&amp;#64;example.com">"#,
                r#"<input value="a***&amp;#64;example.com">"#,
                r#"<input value="[EMAIL]">"#,
            ),
            // Quoted and escaped quotes written literally.
            (
                r#"<p>"ann smith"@example.com</p>"#,
                r#"<p>a***@example.com</p>"#,
                r#"<p>[EMAIL]</p>"#,
            ),
            (
                r#"<p>&amp; "\"ann\""@example.com</p>"#,
                r#"<p>&amp; &quot;***@example.com</p>"#,
                r#"<p>&amp; [EMAIL]</p>"#,
            ),
        ] {
            let (masked, d) = body(&partial, content_type, text);
            assert_eq!(masked, want_partial, "{content_type}: {text}");
            assert_eq!(d, vec![Detection::new("email", 1)], "{text}");
            assert_eq!(
                masked.matches('"').count() % 2,
                0,
                "unbalanced quotes in {masked}"
            );
            assert_eq!(masked.matches('<').count(), text.matches('<').count());
            let (masked, _) = body(&redact, content_type, text);
            assert_eq!(masked, want_redact, "{content_type}: {text}");
        }
    }
    // Plain text with nothing decoded keeps the partial form as it is;
    // JSON re-escapes what it writes.
    assert_eq!(
        body(&partial, "text/plain", "\"ann smith\"@example.com").0,
        "a***@example.com"
    );
    let (masked, _) = body(
        &partial,
        "application/json",
        r#"{"html": "<input value=\"&quot;ann smith&quot;@example.com\">"}"#,
    );
    assert_eq!(
        parse(&masked),
        json!({"html": "<input value=\"a***@example.com\">"})
    );
}

/// `text` opens and closes its CDATA sections and comments in turn and
/// ends outside them.
#[track_caller]
fn assert_balanced(text: &str) {
    let mut rest = text;
    let mut inside: Option<&str> = None;
    loop {
        let next = match inside {
            Some(close) => rest.find(close).map(|p| (p, close.len(), None)),
            None => [("<![CDATA[", "]]>"), ("<!--", "-->")]
                .iter()
                .filter_map(|(open, close)| rest.find(open).map(|p| (p, open.len(), Some(*close))))
                .min_by_key(|(p, _, _)| *p),
        };
        let Some((p, len, closer)) = next else {
            assert!(inside.is_none(), "unclosed section in {text}");
            assert!(!rest.contains("]]>"), "stray ]]> in {text}");
            return;
        };
        assert!(
            inside.is_some() || !rest[..p].contains("]]>"),
            "stray ]]> in {text}"
        );
        inside = closer;
        rest = &rest[p + len..];
    }
}

/// An address split by CDATA or comment delimiters is masked whole, and
/// the delimiters it does not open and close itself are kept, so the
/// document stays well-formed.
#[test]
fn masks_across_cdata_and_comments_keep_markup_balanced() {
    let m = masker(json!({}));
    for (text, want) in [
        (
            "<b><![CDATA[bob@]]>example.org</b>",
            "<b><![CDATA[[EMAIL]]]></b>",
        ),
        (
            "<a>ann<![CDATA[@example.com]]></a>",
            "<a>[EMAIL]<![CDATA[]]></a>",
        ),
        (
            "<a><![CDATA[ann@]]>x<![CDATA[example.com]]></a>",
            "<a><![CDATA[[EMAIL]]]></a>",
        ),
        (
            "<a><![CDATA[ann@ex]]>ample<![CDATA[.com and more]]></a>",
            "<a><![CDATA[[EMAIL] and more]]></a>",
        ),
        ("<a>ann@<![CDATA[ex]]>ample.com</a>", "<a>[EMAIL]</a>"),
        (
            "<a><![CDATA[ann@example.com]]></a>",
            "<a><![CDATA[[EMAIL]]]></a>",
        ),
        ("<p>ann<!--@example.com--></p>", "<p>[EMAIL]<!----></p>"),
        ("<p><!--ann@-->example.com</p>", "<p><!--[EMAIL]--></p>"),
        (
            "<a>o'neil<![CDATA[@exa]]>mple.com, bob@<![CDATA[example.org]]></a>",
            "<a>[EMAIL], [EMAIL]<![CDATA[]]></a>",
        ),
    ] {
        for content_type in ["application/xml", "text/html"] {
            let (masked, d) = body(&m, content_type, text);
            assert_eq!(masked, want, "{content_type}: {text}");
            assert!(!d.is_empty(), "{text}");
            assert_balanced(&masked);
            for part in ["ann", "bob", "neil", "example", "ample.", ".com", ".org"] {
                assert!(!masked.contains(part), "{part} left in {masked}");
            }
        }
    }
    // Partial and hash forms too; a JSON string holding XML stays JSON.
    let partial = masker(json!({ "entities": { "email": "partial" } }));
    assert_eq!(
        body(
            &partial,
            "application/xml",
            "<b><![CDATA[bob@]]>example.org</b>"
        )
        .0,
        "<b><![CDATA[b***@example.org]]></b>"
    );
    let (masked, _) = body(
        &m,
        "application/json",
        r#"{"xml": "<a>ann<![CDATA[@example.com]]></a>"}"#,
    );
    assert_eq!(parse(&masked), json!({"xml": "<a>[EMAIL]<![CDATA[]]></a>"}));
}
