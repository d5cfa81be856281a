//! Which hosts a call reaches: a selector is words separated by spaces or commas, each a
//! host name, a glob over names (`web-*`, `db[12]`) or a label (`env=prod`). A host
//! matches when it matches any of the names (or there are none) and every label. Empty, or
//! `*`, selects every host.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// A selector that cannot be parsed; the message quotes the word.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("selector: {word:?} is not a valid name glob: {reason}")]
    BadGlob { word: String, reason: String },
    #[error("selector: label {word:?} needs a key and a value (key=value)")]
    BadLabel { word: String },
}

/// A parsed selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// `None`: any name.
    names: Option<GlobSet>,
    labels: Vec<(String, String)>,
}

impl Selector {
    /// Every host.
    pub fn all() -> Self {
        Self {
            names: None,
            labels: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut names = GlobSetBuilder::new();
        let mut any_name = false;
        let mut labels = Vec::new();
        for word in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|word| !word.is_empty())
        {
            if let Some((key, value)) = word.split_once('=') {
                if key.is_empty() || value.is_empty() {
                    return Err(SelectorError::BadLabel {
                        word: word.to_owned(),
                    });
                }
                labels.push((key.to_owned(), value.to_owned()));
                continue;
            }
            let glob = Glob::new(word).map_err(|error| SelectorError::BadGlob {
                word: word.to_owned(),
                reason: error.kind().to_string(),
            })?;
            names.add(glob);
            any_name = true;
        }
        let names = if any_name {
            Some(names.build().map_err(|error| SelectorError::BadGlob {
                word: text.to_owned(),
                reason: error.kind().to_string(),
            })?)
        } else {
            None
        };
        Ok(Self { names, labels })
    }

    /// Does the host `name` with `labels` match?
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.names.as_ref().is_none_or(|names| names.is_match(name))
            && self
                .labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_and_star_select_every_host() {
        let none = labels(&[]);
        assert!(Selector::parse("").unwrap().matches("web1", &none));
        assert!(Selector::parse("*").unwrap().matches("db-2", &none));
        assert!(Selector::all().matches("x", &none));
    }

    #[test]
    fn a_name_selects_that_host_only() {
        let selector = Selector::parse("web1").unwrap();
        assert!(selector.matches("web1", &labels(&[])));
        assert!(!selector.matches("web10", &labels(&[])));
        assert!(!selector.matches("web", &labels(&[])));
    }

    #[test]
    fn names_and_globs_are_alternatives() {
        let selector = Selector::parse("web-*, db1").unwrap();
        assert!(selector.matches("web-a", &labels(&[])));
        assert!(selector.matches("db1", &labels(&[])));
        assert!(!selector.matches("db2", &labels(&[])));
        assert!(!selector.matches("cache-web-a", &labels(&[])));
    }

    #[test]
    fn every_label_must_match() {
        let selector = Selector::parse("env=prod role=db").unwrap();
        assert!(selector.matches("a", &labels(&[("env", "prod"), ("role", "db")])));
        assert!(!selector.matches("a", &labels(&[("env", "prod"), ("role", "web")])));
        assert!(!selector.matches("a", &labels(&[("env", "prod")])));
        assert!(!selector.matches("a", &labels(&[("env", "production"), ("role", "db")])));
    }

    #[test]
    fn names_and_labels_together_both_apply() {
        let selector = Selector::parse("web* env=prod").unwrap();
        assert!(selector.matches("web1", &labels(&[("env", "prod")])));
        assert!(!selector.matches("web1", &labels(&[("env", "dev")])));
        assert!(!selector.matches("db1", &labels(&[("env", "prod")])));
    }

    #[test]
    fn malformed_words_are_refused_and_well_formed_twins_parse() {
        assert_eq!(
            Selector::parse("=prod").unwrap_err(),
            SelectorError::BadLabel {
                word: "=prod".to_owned()
            }
        );
        assert!(matches!(
            Selector::parse("env=").unwrap_err(),
            SelectorError::BadLabel { .. }
        ));
        assert!(matches!(
            Selector::parse("web[").unwrap_err(),
            SelectorError::BadGlob { .. }
        ));
        assert!(Selector::parse("web[12] env=prod").is_ok());
    }
}
