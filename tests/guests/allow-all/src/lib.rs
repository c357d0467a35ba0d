//! Test guest: allows every request. Paired with `deny-all` in hot-reload
//! tests, where one file replaces the other.

use serde::de::IgnoredAny;
use sluice_plugin_sdk::types::{Request, Session, Verdict};
use sluice_plugin_sdk::{Guardrail, export_guardrail};

pub struct AllowAll;

impl Guardrail for AllowAll {
    // Any config: a reload test may keep the config of the plugin it replaces.
    type Config = IgnoredAny;

    fn new(_: IgnoredAny) -> Result<Self, String> {
        Ok(AllowAll)
    }

    fn check(&self, _: &Session, _: &Request) -> Result<Verdict, String> {
        Ok(Verdict::allow())
    }
}

export_guardrail!(AllowAll);
