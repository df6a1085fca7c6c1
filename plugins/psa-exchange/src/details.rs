//! PSA fields Exchange has no field for, written as text: `Name: value` lines under the header
//! line [`HEADER`], after the item's own text and a blank line. The same fields give the same
//! bytes (the engine diffs bodies): lines come in the caller's fixed order, attributes sorted
//! by name and value, line breaks inside values become spaces, and nothing trails.

use syncbridge_sdk::types::Attribute;

/// The line that opens the block of PSA fields.
pub const HEADER: &str = "-- PSA fields --";

/// `Name: value` lines, in the order they are added.
#[derive(Debug, Default, Clone)]
pub struct Lines(Vec<(String, String)>);

/// A value on one line: line breaks and tabs as spaces, runs of spaces kept, ends trimmed.
fn one_line(value: &str) -> String {
    value
        .split(['\r', '\n', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Lines {
    /// Adds `name: value`, unless the value is blank.
    pub fn add(&mut self, name: &str, value: impl AsRef<str>) {
        let value = one_line(value.as_ref());
        if !value.is_empty() {
            self.0.push((one_line(name), value));
        }
    }

    /// Adds `name: v1, v2...` of a list, unless it is empty.
    pub fn add_list<S: AsRef<str>>(&mut self, name: &str, values: &[S]) {
        let values: Vec<String> = values
            .iter()
            .map(|v| one_line(v.as_ref()))
            .filter(|v| !v.is_empty())
            .collect();
        self.add(name, values.join(", "));
    }

    /// Adds attributes sorted by name and value (so their order in the item does not matter),
    /// each under the label `label(name)` gives.
    pub fn add_attributes(&mut self, attributes: &[Attribute], label: impl Fn(&str) -> String) {
        let mut sorted: Vec<&Attribute> = attributes.iter().collect();
        sorted.sort_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));
        for a in sorted {
            self.add(&label(&a.name), &a.value);
        }
    }

    /// Whether no line was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The block: the header, then one line per field; `None` when there are none.
    pub fn block(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut out = String::from(HEADER);
        for (name, value) in &self.0 {
            out.push('\n');
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
        }
        Some(out)
    }
}

/// The item's own text followed by the block; `None` when both are empty.
pub fn with_block(own: Option<&str>, lines: &Lines) -> Option<String> {
    let own = own.map(str::trim_end).filter(|s| !s.trim().is_empty());
    match (own, lines.block()) {
        (None, None) => None,
        (Some(own), None) => Some(own.to_owned()),
        (None, Some(block)) => Some(block),
        (Some(own), Some(block)) => Some(format!("{own}\n\n{block}")),
    }
}

/// The item's own text without the block [`with_block`] appended (line breaks may come back
/// as `\r\n`); `None` when nothing else is left.
pub fn without_block(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let at = lines
        .iter()
        .enumerate()
        .position(|(i, l)| l.trim() == HEADER && (i == 0 || lines[i - 1].trim().is_empty()));
    let own = match at {
        Some(i) => lines[..i].join("\n"),
        None => return Some(text.to_owned()).filter(|t| !t.trim().is_empty()),
    };
    let own = own.trim_end();
    (!own.trim().is_empty()).then(|| own.to_owned())
}
