//! Scope strings: `name[:option=value[,option=value…]]`, e.g.
//! `contacts:company=42` or `contacts:company=10,conditions=a = "x, y"`.
//!
//! Options are separated by `,` or `;`; one option may be named the *tail*:
//! it takes the rest of the string, separators included.

use crate::types::PluginError;

/// A parsed scope string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope<'a> {
    name: String,
    options: Vec<(&'a str, &'a str)>,
}

impl<'a> Scope<'a> {
    /// Parses `scope`, accepting the options in `known` (`tail`, if any, takes
    /// the rest of the string). `usage` completes the error for any other
    /// option: "unknown scope option …; use {usage}".
    pub fn parse(
        scope: &'a str,
        known: &[&str],
        tail: Option<&'a str>,
        usage: &str,
    ) -> Result<Self, PluginError> {
        let (name, mut rest) = scope.split_once(':').unwrap_or((scope, ""));
        let mut options = Vec::new();
        loop {
            rest = rest.trim_start_matches([',', ';', ' ']);
            if rest.is_empty() {
                break;
            }
            if let Some(value) = tail.and_then(|t| rest.strip_prefix(t)?.strip_prefix('=')) {
                options.push((tail.unwrap_or_default(), value.trim()));
                break;
            }
            let end = rest.find([',', ';']).unwrap_or(rest.len());
            let (part, next) = rest.split_at(end);
            rest = next;
            match part.trim().split_once('=') {
                Some((key, value)) if known.contains(&key) => options.push((key, value.trim())),
                _ => {
                    return Err(PluginError::invalid_field(
                        "scope",
                        format!("unknown scope option {part:?}; use {usage}"),
                    ))
                }
            }
        }
        Ok(Scope {
            name: name.trim().to_ascii_lowercase().replace(['-', '_'], ""),
            options,
        })
    }

    /// The name: trimmed, lower case, without `-` and `_` (`Contact-Types` is `contacttypes`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of option `key` (the last one given); blank values count as absent.
    pub fn option(&self, key: &str) -> Option<&'a str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    }

    /// Option `key` as a whole number.
    pub fn number(&self, key: &str) -> Result<Option<i64>, PluginError> {
        self.option(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    PluginError::invalid_field("scope", format!("{key} {v:?} is not a number"))
                })
            })
            .transpose()
    }

    /// Option `key` as `true` or `false` (any case); `usage` completes the error for any
    /// other value.
    pub fn flag(&self, key: &str, usage: &str) -> Result<Option<bool>, PluginError> {
        self.option(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(PluginError::invalid_field(
                    "scope",
                    format!("{key}={v:?} is neither true nor false; use {usage}"),
                )),
            })
            .transpose()
    }
}

/// The error for a scope this connector does not serve: "unknown scope …; use {usage}".
pub fn unknown(name: &str, usage: &str) -> PluginError {
    PluginError::invalid_field("scope", format!("unknown scope {name:?}; use {usage}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let s = Scope::parse(
            "outbox:check=TRUE,dry=false,odd=yes",
            &["check", "dry", "odd"],
            None,
            "u",
        )
        .unwrap();
        assert_eq!(s.flag("check", "u").unwrap(), Some(true));
        assert_eq!(s.flag("dry", "u").unwrap(), Some(false));
        assert_eq!(s.flag("absent", "u").unwrap(), None);
        let e = s.flag("odd", "check=true").unwrap_err();
        assert_eq!(e.class(), "invalid");
        assert!(
            e.describe()
                .contains("odd=\"yes\" is neither true nor false; use check=true"),
            "{}",
            e.describe()
        );
    }

    #[test]
    fn names_and_options() {
        let s = Scope::parse(" Contact_Types ", &[], None, "nothing").unwrap();
        assert_eq!(s.name(), "contacttypes");
        let s = Scope::parse("contacts:company=42", &["company"], None, "company=<id>").unwrap();
        assert_eq!(
            (s.name(), s.number("company").unwrap()),
            ("contacts", Some(42))
        );
        let s = Scope::parse("contacts:;company= 7 ,", &["company"], None, "x").unwrap();
        assert_eq!(s.number("company").unwrap(), Some(7));
        assert_eq!(s.option("missing"), None);
    }

    #[test]
    fn the_tail_option_takes_the_rest() {
        let s = Scope::parse(
            "contacts:company=10,conditions=lastName = \"a,b\" and id in (1,2)",
            &["company"],
            Some("conditions"),
            "company=<id> or conditions=<conditions>",
        )
        .unwrap();
        assert_eq!(s.number("company").unwrap(), Some(10));
        assert_eq!(
            s.option("conditions"),
            Some("lastName = \"a,b\" and id in (1,2)")
        );
        let s = Scope::parse("contacts:conditions=", &[], Some("conditions"), "x").unwrap();
        assert_eq!(s.option("conditions"), None);
    }

    #[test]
    fn bad_options_are_invalid() {
        for bad in [
            "contacts:colour=red",
            "contacts:company",
            "contacts:company =1",
        ] {
            let e = Scope::parse(bad, &["company"], None, "company=<id>").unwrap_err();
            assert_eq!(e.class(), "invalid", "{bad}");
            assert!(e.describe().contains("use company=<id>"), "{bad}");
        }
        let s = Scope::parse("contacts:company=x", &["company"], None, "company=<id>").unwrap();
        assert!(s
            .number("company")
            .unwrap_err()
            .describe()
            .contains("not a number"));
        assert!(unknown("bogus", "contacts")
            .describe()
            .contains("\"bogus\""));
    }
}
