//! Test guest: denies every request. Paired with `allow-all` in hot-reload
//! tests, where one file replaces the other.

use serde::de::IgnoredAny;
use sluice_plugin_sdk::types::{Request, Session, Verdict};
use sluice_plugin_sdk::{Guardrail, export_guardrail};

pub struct DenyAll;

impl Guardrail for DenyAll {
    // Any config: a reload test may keep the config of the plugin it replaces.
    type Config = IgnoredAny;

    fn new(_: IgnoredAny) -> Result<Self, String> {
        Ok(DenyAll)
    }

    fn check(&self, _: &Session, _: &Request) -> Result<Verdict, String> {
        Ok(Verdict::deny("deny-all", "denied by deny-all"))
    }
}

export_guardrail!(DenyAll);
