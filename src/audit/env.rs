//! Environment variables given to a command, as the audit log keeps them ([`AuditEnv`]):
//! names always, values withheld until the writer settles them, then written as
//! [`REDACTED`] or, only when the log was opened with `redact_env_values = false`, as given.
//! A withheld or redacted value never prints, serializes or reaches a hash.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::bounded::{self, AuditText, TextBudget};

/// What an environment value is written as unless the log discloses values.
pub const REDACTED: &str = "[redacted]";

/// Environment variables given to a command, as the audit log keeps them: names always,
/// values only if the log was opened to disclose them. Written as
/// `[{"name": "...", "value": "..."}]`, in the order given (later entries win in exec). A
/// list too long for the record ends with one [`AuditText::Omitted`] entry standing for the
/// rest, whose hash covers their names only: a value the log redacts is never hashed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuditEnv(Vec<EnvEntry>);

/// A variable, or the entry standing for the variables a record did not keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum EnvEntry {
    Var(EnvVar),
    Omitted(AuditText),
}

impl AuditEnv {
    /// Variables as a request gave them. Their values are withheld: they print and serialize
    /// as [`REDACTED`] until the writer settles them (disclosing them only if configured).
    pub fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            vars.into_iter()
                .map(|(name, value)| {
                    EnvEntry::Var(EnvVar {
                        name: AuditText::Whole(name.into()),
                        value: EnvValue::Withheld(value.into()),
                    })
                })
                .collect(),
        )
    }

    /// The variables kept (not those an [`AuditText::Omitted`] entry stands for).
    pub fn iter(&self) -> impl Iterator<Item = &EnvVar> {
        self.0.iter().filter_map(|entry| match entry {
            EnvEntry::Var(var) => Some(var),
            EnvEntry::Omitted(_) => None,
        })
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn settle(&mut self, disclose: bool) {
        for var in self.0.iter_mut().filter_map(|entry| match entry {
            EnvEntry::Var(var) => Some(var),
            EnvEntry::Omitted(_) => None,
        }) {
            if let EnvValue::Withheld(value) = &mut var.value {
                var.value = if disclose {
                    EnvValue::Disclosed(AuditText::Whole(std::mem::take(value)))
                } else {
                    EnvValue::Redacted
                };
            }
        }
    }

    /// Bound names and disclosed values to `budget`; the variables past it become one entry.
    pub(super) fn bound_text(&mut self, budget: &mut TextBudget) {
        let kept = budget.bound_each(&mut self.0, |budget, entry| match entry {
            EnvEntry::Var(var) => {
                budget.bound(&mut var.name);
                if let EnvValue::Disclosed(value) = &mut var.value {
                    budget.bound(value);
                }
            }
            EnvEntry::Omitted(summary) => budget.bound(summary),
        });
        if kept < self.0.len() {
            let rest = self.0.split_off(kept);
            let names = rest.iter().map(|entry| match entry {
                EnvEntry::Var(var) => &var.name,
                EnvEntry::Omitted(summary) => summary,
            });
            self.0.push(EnvEntry::Omitted(bounded::omitted(names)));
        }
    }
}

/// `NAME=value NAME=[redacted] ...`, for logs.
impl fmt::Display for AuditEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            match entry {
                EnvEntry::Var(var) => write!(f, "{}={}", var.name, var.value.as_logged())?,
                EnvEntry::Omitted(summary) => write!(f, "{summary}")?,
            }
        }
        Ok(())
    }
}

/// One variable: its name and what the log may say of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    name: AuditText,
    value: EnvValue,
}

impl EnvVar {
    pub fn name(&self) -> &AuditText {
        &self.name
    }

    /// The value, only if the log discloses it; `None` while withheld or once redacted.
    #[cfg(test)]
    pub(super) fn disclosed_value(&self) -> Option<&AuditText> {
        match &self.value {
            EnvValue::Disclosed(value) => Some(value),
            EnvValue::Withheld(_) | EnvValue::Redacted => None,
        }
    }
}

/// A value in one of three states. Only `Disclosed` ever prints or serializes the value.
#[derive(Clone, PartialEq, Eq)]
enum EnvValue {
    /// As the request gave it, not yet settled by the writer.
    Withheld(String),
    /// Dropped; the log says [`REDACTED`].
    Redacted,
    /// Cleared for the log by configuration.
    Disclosed(AuditText),
}

impl EnvValue {
    fn as_logged(&self) -> &dyn fmt::Display {
        match self {
            Self::Withheld(_) | Self::Redacted => &REDACTED,
            Self::Disclosed(value) => value,
        }
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Withheld(_) | Self::Redacted => f.write_str(REDACTED),
            Self::Disclosed(value) => fmt::Debug::fmt(value, f),
        }
    }
}

impl Serialize for EnvValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Withheld(_) | Self::Redacted => serializer.serialize_str(REDACTED),
            Self::Disclosed(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for EnvValue {
    /// Reading a log back: [`REDACTED`] is a redacted value, anything else a disclosed one.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = AuditText::deserialize(deserializer)?;
        Ok(if value == REDACTED {
            Self::Redacted
        } else {
            Self::Disclosed(value)
        })
    }
}
