//! Turning the gateway's JSON config into a plugin's `Config`.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Parses the config the host passes to `init`.
///
/// The host sends `{}` when the gateway config has no table for the plugin,
/// but an empty string is treated the same so that a config type whose fields
/// all have defaults never fails for lack of a config.
pub(crate) fn parse<C: DeserializeOwned>(config_json: &str) -> Result<C, String> {
    let json = match config_json.trim() {
        "" => "{}",
        other => other,
    };
    serde_json::from_str(json).map_err(|e| format!("invalid plugin config: {e}"))
}

/// The `Config` of a plugin that takes no settings.
///
/// Accepts only an empty object: a plugin without settings that is given some
/// is more likely misconfigured than not, and refusing to activate says so.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default)]
    struct WithDefaults {
        words: Vec<String>,
        limit: u32,
    }

    impl Default for WithDefaults {
        fn default() -> Self {
            WithDefaults {
                words: vec!["x".into()],
                limit: 7,
            }
        }
    }

    #[test]
    fn empty_and_blank_configs_use_defaults() {
        for json in ["", "  ", "{}"] {
            assert_eq!(parse::<WithDefaults>(json), Ok(WithDefaults::default()));
        }
        assert_eq!(parse::<NoConfig>(""), Ok(NoConfig {}));
    }

    #[test]
    fn bad_configs_report_serde_errors() {
        let err = parse::<WithDefaults>(r#"{"limit": "many"}"#).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        let err = parse::<NoConfig>(r#"{"surprise": 1}"#).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        assert!(parse::<WithDefaults>("not json").is_err());
    }
}
