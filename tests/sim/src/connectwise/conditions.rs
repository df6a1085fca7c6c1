//! The ConnectWise `conditions` / `childConditions` grammar:
//! `company/name = "Contoso" and (id > 5 or lastUpdated >= [2026-01-01T00:00:00Z])`,
//! operators `= != < <= > >= contains like in` (each negatable with `not`), `and`/`or`,
//! parentheses; strings in double quotes, numbers and booleans bare, dates in brackets.

use serde_json::Value;
use thiserror::Error;

/// A condition string that could not be parsed.
#[derive(Debug, Error, PartialEq)]
#[error("{0}")]
pub struct ConditionError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Date(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, ConditionError> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = vec![];
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '"' | '\'' => {
                let q = ch;
                let mut v = String::new();
                i += 1;
                loop {
                    if i >= c.len() {
                        return Err(ConditionError("Unterminated string in conditions".into()));
                    }
                    if c[i] == '\\' && i + 1 < c.len() {
                        v.push(c[i + 1]);
                        i += 2;
                        continue;
                    }
                    if c[i] == q {
                        i += 1;
                        break;
                    }
                    v.push(c[i]);
                    i += 1;
                }
                out.push(Tok::Str(v));
            }
            '[' => {
                let start = i + 1;
                while i < c.len() && c[i] != ']' {
                    i += 1;
                }
                if i >= c.len() {
                    return Err(ConditionError("Unterminated date in conditions".into()));
                }
                out.push(Tok::Date(c[start..i].iter().collect()));
                i += 1;
            }
            '=' => {
                out.push(Tok::Op("=".into()));
                i += 1
            }
            '!' | '<' | '>' => {
                if i + 1 < c.len() && c[i + 1] == '=' {
                    out.push(Tok::Op(format!("{ch}=")));
                    i += 2;
                } else if ch == '!' {
                    return Err(ConditionError("Unexpected '!' in conditions".into()));
                } else {
                    out.push(Tok::Op(ch.to_string()));
                    i += 1;
                }
            }
            _ => {
                let start = i;
                while i < c.len()
                    && !matches!(
                        c[i],
                        ' ' | '\t' | '(' | ')' | ',' | '=' | '!' | '<' | '>' | '"' | '\'' | '['
                    )
                {
                    i += 1;
                }
                out.push(Tok::Word(c[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

/// Parsed condition tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `a and b`
    And(Box<Cond>, Box<Cond>),
    /// `a or b`
    Or(Box<Cond>, Box<Cond>),
    /// `not (…)`
    Not(Box<Cond>),
    /// `field op value`; `negated` for `not like` etc.
    Cmp {
        /// Field path segments.
        field: Vec<String>,
        /// Operator (lowercase).
        op: String,
        /// Right-hand values (several for `in`).
        values: Vec<Value>,
        /// Negated operator.
        negated: bool,
    },
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn kw(&self, k: &str) -> bool {
        matches!(self.t.get(self.i), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }
    fn or(&mut self) -> Result<Cond, ConditionError> {
        let mut l = self.and()?;
        while self.kw("or") {
            self.i += 1;
            l = Cond::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Cond, ConditionError> {
        let mut l = self.unary()?;
        while self.kw("and") {
            self.i += 1;
            l = Cond::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Cond, ConditionError> {
        if self.kw("not") {
            self.i += 1;
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if self.t.get(self.i) == Some(&Tok::LParen) {
            self.i += 1;
            let e = self.or()?;
            if self.t.get(self.i) != Some(&Tok::RParen) {
                return Err(ConditionError("Missing ')' in conditions".into()));
            }
            self.i += 1;
            return Ok(e);
        }
        let field = match self.t.get(self.i) {
            Some(Tok::Word(w)) => w.clone(),
            other => {
                return Err(ConditionError(format!(
                    "Expected a field name, found {other:?}"
                )))
            }
        };
        self.i += 1;
        let mut negated = false;
        if self.kw("not") {
            negated = true;
            self.i += 1;
        }
        let op = match self.t.get(self.i) {
            Some(Tok::Op(o)) => o.clone(),
            Some(Tok::Word(w))
                if ["contains", "like", "in"].contains(&w.to_ascii_lowercase().as_str()) =>
            {
                w.to_ascii_lowercase()
            }
            other => {
                return Err(ConditionError(format!(
                    "Expected an operator after {field}, found {other:?}"
                )))
            }
        };
        self.i += 1;
        let values = if op == "in" {
            if self.t.get(self.i) != Some(&Tok::LParen) {
                return Err(ConditionError("Expected '(' after in".into()));
            }
            self.i += 1;
            let mut v = vec![self.value()?];
            while self.t.get(self.i) == Some(&Tok::Comma) {
                self.i += 1;
                v.push(self.value()?);
            }
            if self.t.get(self.i) != Some(&Tok::RParen) {
                return Err(ConditionError("Expected ')' to close in list".into()));
            }
            self.i += 1;
            v
        } else {
            vec![self.value()?]
        };
        Ok(Cond::Cmp {
            field: field.split('/').map(str::to_string).collect(),
            op,
            values,
            negated,
        })
    }
    fn value(&mut self) -> Result<Value, ConditionError> {
        let t = self.t.get(self.i).cloned();
        self.i += 1;
        match t {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Date(d)) => Ok(Value::String(d)),
            Some(Tok::Word(w)) => {
                if w.eq_ignore_ascii_case("true") {
                    Ok(Value::Bool(true))
                } else if w.eq_ignore_ascii_case("false") {
                    Ok(Value::Bool(false))
                } else if w.eq_ignore_ascii_case("null") {
                    Ok(Value::Null)
                } else if let Ok(n) = w.parse::<i64>() {
                    Ok(Value::from(n))
                } else if let Ok(f) = w.parse::<f64>() {
                    Ok(serde_json::Number::from_f64(f)
                        .map(Value::Number)
                        .unwrap_or(Value::Null))
                } else {
                    Err(ConditionError(format!(
                        "Unquoted text value '{w}': strings must be in double quotes"
                    )))
                }
            }
            other => Err(ConditionError(format!("Expected a value, found {other:?}"))),
        }
    }
}

/// Parses a conditions string.
pub fn parse(s: &str) -> Result<Cond, ConditionError> {
    let mut p = P {
        t: tokenize(s)?,
        i: 0,
    };
    let c = p.or()?;
    if p.i != p.t.len() {
        return Err(ConditionError(format!("Unexpected input at token {}", p.i)));
    }
    Ok(c)
}

fn resolve(v: &Value, path: &[String], child: Option<(&str, &Value)>) -> Vec<Value> {
    // `lastUpdated` (and `dateEntered`) name the record's `_info` stamps, as
    // ConnectWise's conditions documentation shows (`lastUpdated > [2016-08-20T18:04:26Z]`).
    if let [field] = path {
        if ["lastUpdated", "dateEntered"]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(field))
            && crate::odata::get_ci(v, field).is_none()
        {
            let info = ["_info".to_owned(), field.clone()];
            return resolve(v, &info, child);
        }
    }
    let mut cur: Vec<Value> = match child {
        Some((name, elem)) if path.first().is_some_and(|f| f.eq_ignore_ascii_case(name)) => {
            return resolve(elem, &path[1..], None);
        }
        _ => vec![v.clone()],
    };
    for seg in path {
        let mut next = vec![];
        for c in &cur {
            match crate::odata::get_ci(c, seg) {
                Some(Value::Array(a)) => next.extend(a.iter().cloned()),
                Some(x) => next.push(x.clone()),
                None => {}
            }
        }
        cur = next;
    }
    cur
}

fn like(text: &str, pat: &str) -> bool {
    let p = pat.to_lowercase().replace('%', "*");
    crate::faults::glob_match(&p, &text.to_lowercase())
}

fn test(actual: &Value, op: &str, values: &[Value]) -> bool {
    use std::cmp::Ordering::*;
    let c = |b: &Value| -> Option<std::cmp::Ordering> {
        if let (Some(x), Some(y)) = (
            actual.as_str().and_then(parse_date),
            b.as_str().and_then(parse_date),
        ) {
            return Some(x.cmp(&y));
        }
        crate::odata::compare(actual, b)
    };
    let v0 = values.first().cloned().unwrap_or(Value::Null);
    match op {
        "=" => c(&v0) == Some(Equal),
        "!=" => c(&v0) != Some(Equal),
        "<" => c(&v0) == Some(Less),
        "<=" => matches!(c(&v0), Some(Less | Equal)),
        ">" => c(&v0) == Some(Greater),
        ">=" => matches!(c(&v0), Some(Greater | Equal)),
        "contains" => actual
            .as_str()
            .zip(v0.as_str())
            .is_some_and(|(a, b)| a.to_lowercase().contains(&b.to_lowercase())),
        "like" => actual
            .as_str()
            .zip(v0.as_str())
            .is_some_and(|(a, b)| like(a, b)),
        "in" => values.iter().any(|v| c(v) == Some(Equal)),
        _ => false,
    }
}

fn parse_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn eval_with(c: &Cond, v: &Value, child: Option<(&str, &Value)>) -> bool {
    match c {
        Cond::And(a, b) => eval_with(a, v, child) && eval_with(b, v, child),
        Cond::Or(a, b) => eval_with(a, v, child) || eval_with(b, v, child),
        Cond::Not(a) => !eval_with(a, v, child),
        Cond::Cmp {
            field,
            op,
            values,
            negated,
        } => {
            let actuals = resolve(v, field, child);
            let hit = if actuals.is_empty() {
                test(&Value::Null, op, values)
            } else {
                actuals.iter().any(|a| test(a, op, values))
            };
            hit != *negated
        }
    }
}

/// Whether `v` satisfies the `conditions` expression.
pub fn eval(c: &Cond, v: &Value) -> bool {
    eval_with(c, v, None)
}

fn first_field(c: &Cond) -> Option<String> {
    match c {
        Cond::And(a, _) | Cond::Or(a, _) | Cond::Not(a) => first_field(a),
        Cond::Cmp { field, .. } => field.first().cloned(),
    }
}

/// Whether some element of the array the `childConditions` expression addresses satisfies
/// the whole expression (`communicationItems/value = "a@b.c" and communicationItems/communicationType = "Email"`).
pub fn eval_child(c: &Cond, v: &Value) -> bool {
    let Some(arr_name) = first_field(c) else {
        return true;
    };
    let Some(items) = crate::odata::get_ci(v, &arr_name).and_then(|a| a.as_array()) else {
        return false;
    };
    items.iter().any(|e| eval_with(c, v, Some((&arr_name, e))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grammar() {
        let v = json!({"id": 7, "name": "Contoso Ltd", "company": {"identifier": "Contoso"}, "inactiveFlag": false,
            "_info": {"lastUpdated": "2026-02-01T00:00:00Z"},
            "communicationItems": [{"value": "a@contoso.com", "communicationType": "Email"}, {"value": "555", "communicationType": "Phone"}]});
        let t = |s: &str| eval(&parse(s).unwrap(), &v);
        assert!(t(r#"company/identifier = "contoso""#));
        assert!(t(r#"id > 5 and id <= 7"#));
        assert!(t(r#"_info/lastUpdated >= [2026-01-01T00:00:00Z]"#));
        assert!(t(r#"lastUpdated >= [2026-01-01T00:00:00Z]"#));
        assert!(!t(r#"lastUpdated > [2026-02-01T00:00:00Z]"#));
        assert!(!t(r#"_info/lastUpdated < [2026-01-01T00:00:00Z]"#));
        assert!(t(r#"name like "Contoso%" and inactiveFlag = false"#));
        assert!(t(r#"name contains "toso" or id = 1"#));
        assert!(t(r#"id in (1, 7, 9)"#));
        assert!(t(r#"id not in (1, 2)"#));
        assert!(t(r#"not (id = 1) and (name != "x")"#));
        assert!(eval_child(&parse(r#"communicationItems/value = "a@contoso.com" and communicationItems/communicationType = "Email""#).unwrap(), &v));
        assert!(!eval_child(&parse(r#"communicationItems/value = "555" and communicationItems/communicationType = "Email""#).unwrap(), &v));
        assert!(parse("name = Contoso").is_err());
        assert!(parse(r#"(id = 1"#).is_err());
    }
}
