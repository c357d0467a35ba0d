//! The kinds of data the plugin recognises, and the labels it counts.
//!
//! Every label (a built-in entity or the `entity` of a column rule) gets a
//! bit in a `u64`, so that "which labels are active for this session" is one
//! integer computed per call instead of a lookup per value.

/// Built-in entities, in the order of their label ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entity {
    Email,
    Phone,
    Card,
    Ssn,
    Iban,
    Ip,
    Jwt,
    Secret,
}

impl Entity {
    pub const ALL: [Entity; 8] = [
        Entity::Email,
        Entity::Phone,
        Entity::Card,
        Entity::Ssn,
        Entity::Iban,
        Entity::Ip,
        Entity::Jwt,
        Entity::Secret,
    ];

    /// The name used in config, detections and pseudonyms.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Email => "email",
            Entity::Phone => "phone",
            Entity::Card => "card",
            Entity::Ssn => "ssn",
            Entity::Iban => "iban",
            Entity::Ip => "ip",
            Entity::Jwt => "jwt",
            Entity::Secret => "secret",
        }
    }

    /// What `redact` writes in place of a value.
    pub fn token(self) -> &'static str {
        match self {
            Entity::Email => "[EMAIL]",
            Entity::Phone => "[PHONE]",
            Entity::Card => "[CARD]",
            Entity::Ssn => "[SSN]",
            Entity::Iban => "[IBAN]",
            Entity::Ip => "[IP]",
            Entity::Jwt => "[JWT]",
            Entity::Secret => "[SECRET]",
        }
    }

    pub fn from_name(name: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The entity's label id (its bit is `1 << id`).
    pub fn id(self) -> usize {
        self as usize
    }

    pub fn bit(self) -> u64 {
        1 << self.id()
    }
}

/// Label ids: the built-in entities first, then the custom labels of column
/// rules in order of first use.
pub const MAX_LABELS: usize = 64;

/// The names of all labels, indexed by id.
#[derive(Debug, Clone)]
pub struct Labels {
    names: Vec<String>,
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            names: Entity::ALL.iter().map(|e| e.name().to_string()).collect(),
        }
    }
}

impl Labels {
    /// The id of `name`, adding it if new; `None` once all ids are taken.
    pub fn intern(&mut self, name: &str) -> Option<usize> {
        if let Some(id) = self.id(name) {
            return Some(id);
        }
        if self.names.len() >= MAX_LABELS {
            return None;
        }
        self.names.push(name.to_string());
        Some(self.names.len() - 1)
    }

    pub fn id(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn name(&self, id: usize) -> &str {
        self.names.get(id).map_or("", String::as_str)
    }

    /// The built-in entity behind a label id, if it is one.
    pub fn entity(id: usize) -> Option<Entity> {
        Entity::ALL.get(id).copied()
    }
}

/// Per-label counts of masked values for one call.
#[derive(Debug, Clone)]
pub struct Counts([u32; MAX_LABELS]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; MAX_LABELS])
    }
}

impl Counts {
    pub fn add(&mut self, id: usize) {
        if let Some(c) = self.0.get_mut(id) {
            *c = c.saturating_add(1);
        }
    }

    /// `(label id, count)` for every label that was seen.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i, *c))
    }
}
