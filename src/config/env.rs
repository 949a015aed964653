//! Reading environment variables through a lookup function, collecting every problem met
//! instead of stopping at the first.

use std::cell::RefCell;
use std::time::Duration;

use super::{ConfigError, ConfigErrors, template};

/// What a value that still holds one of `.env.example`'s placeholders means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placeholders {
    /// A problem to report: `serve` and `check-config`.
    Refuse,
    /// As good as unset: `demo`, which makes up what the template leaves to the operator.
    Ignore,
}

/// Reads variables through a lookup function and collects every problem it meets.
pub(super) struct Env<F> {
    lookup: F,
    problems: Vec<ConfigError>,
    placeholders: Placeholders,
    /// Variables found holding a placeholder, and which one; reported by [`Env::finish`]. Read
    /// through `&self`, so recorded apart from `problems`.
    placeholders_met: RefCell<Vec<(&'static str, &'static str)>>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub(super) fn new(lookup: F, placeholders: Placeholders) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
            placeholders,
            placeholders_met: RefCell::new(Vec::new()),
        }
    }

    pub(super) fn problem(&mut self, variable: &'static str, problem: String) {
        self.problems.push(ConfigError { variable, problem });
    }

    pub(super) fn finish(mut self) -> Result<(), ConfigErrors> {
        for (variable, placeholder) in self.placeholders_met.take() {
            self.problem(
                variable,
                format!(
                    "is still the placeholder {placeholder:?} from .env.example: {}",
                    template::what_to_set(variable)
                ),
            );
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.problems))
        }
    }

    /// The trimmed value; an empty one counts as unset, as `.env.example` leaves optional
    /// variables empty. A value holding one of the template's placeholders is returned as it is
    /// and reported at [`Env::finish`] (so it is reported once, not also as malformed or
    /// missing), or, in demo mode, counts as unset.
    pub(super) fn optional(&self, name: &'static str) -> Option<String> {
        let value = (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())?;
        if let Some(placeholder) = template::placeholder_in(&value) {
            match self.placeholders {
                Placeholders::Refuse => {
                    let mut met = self.placeholders_met.borrow_mut();
                    if !met.iter().any(|(variable, _)| *variable == name) {
                        met.push((name, placeholder));
                    }
                }
                Placeholders::Ignore => return None,
            }
        }
        Some(value)
    }

    pub(super) fn string_or(&self, name: &'static str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn required_with<T>(
        &mut self,
        name: &'static str,
        missing: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let Some(value) = self.optional(name) else {
            self.problem(name, missing.to_owned());
            return None;
        };
        self.parse_value(name, &value, parse)
    }

    /// `None` when unset; the parsed value, or a recorded problem, when set.
    pub(super) fn optional_with<T>(
        &mut self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.optional(name)?;
        self.parse_value(name, &value, parse)
    }

    pub(super) fn parsed_or<T>(
        &mut self,
        name: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.string_or(name, default);
        self.parse_value(name, &value, parse)
    }

    /// Parses `value`, recording the problem under `name` when it does not parse.
    fn parse_value<T>(
        &mut self,
        name: &'static str,
        value: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(value)
            .map_err(|problem| self.problem(name, problem))
            .ok()
    }

    pub(super) fn number_or(
        &mut self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        let Some(value) = self.optional(name) else {
            return default;
        };
        match value.parse::<u64>() {
            Ok(number) if range.contains(&number) => number,
            _ => {
                self.problem(
                    name,
                    format!(
                        "is {value:?}: set it to a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    /// A whole number of seconds within `range`.
    pub(super) fn seconds_or(
        &mut self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Duration {
        Duration::from_secs(self.number_or(name, default, range))
    }

    pub(super) fn flag_or(&mut self, name: &'static str, default: bool) -> bool {
        match self
            .optional(name)
            .map(|value| value.to_ascii_lowercase())
            .as_deref()
        {
            None => default,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                self.problem(name, format!("is {other:?}: set it to true or false"));
                default
            }
        }
    }

    /// A comma-separated list; empty items are skipped.
    pub(super) fn list(
        &mut self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<String, String>,
    ) -> Vec<String> {
        let Some(value) = self.optional(name) else {
            return Vec::new();
        };
        let mut items = Vec::new();
        for item in value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            match parse(item) {
                Ok(parsed) => items.push(parsed),
                Err(problem) => self.problem(name, problem),
            }
        }
        items
    }

    pub(super) fn ice_urls(
        &mut self,
        name: &'static str,
        default: &[&str],
        schemes: &[&str],
    ) -> Vec<String> {
        if self.optional(name).is_none() {
            return default.iter().map(|url| (*url).to_owned()).collect();
        }
        self.list(name, |url| {
            if schemes.iter().any(|scheme| url.starts_with(scheme)) {
                Ok(url.to_owned())
            } else {
                Err(format!(
                    "contains {url:?}: each URL must start with {}",
                    schemes.join(" or ")
                ))
            }
        })
    }
}
