//! Reading environment variables through a lookup function, collecting every problem met
//! instead of stopping at the first.

use std::time::Duration;

use super::{ConfigError, ConfigErrors};

/// Reads variables through a lookup function and collects every problem it meets.
pub(super) struct Env<F> {
    lookup: F,
    problems: Vec<ConfigError>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub(super) fn new(lookup: F) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    pub(super) fn problem(&mut self, variable: &'static str, problem: String) {
        self.problems.push(ConfigError { variable, problem });
    }

    pub(super) fn finish(self) -> Result<(), ConfigErrors> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.problems))
        }
    }

    /// The trimmed value; an empty one counts as unset, as `.env.example` leaves optional
    /// variables empty.
    pub(super) fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    pub(super) fn string_or(&self, name: &str, default: &str) -> String {
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
