//! A small OData v4 `$filter` parser and evaluator over JSON objects, covering the forms
//! Graph and Dataverse clients send: `eq ne gt ge lt le`, `and or not`, parentheses,
//! `startswith/endswith/contains(prop,'x')`, `in (…)`, `tolower()`, lambda `any/all`
//! (`assignedLicenses/any(x:x/skuId eq 1b2c…)`) and `prop/$count`.

use serde_json::Value;
use thiserror::Error;

/// A `$filter` that could not be parsed.
#[derive(Debug, Error, PartialEq)]
#[error("Invalid filter clause: {0}")]
pub struct FilterError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
    Colon,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, FilterError> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if ch == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if ch == ':' && !matches!(out.last(), Some(Tok::Num(_))) {
            out.push(Tok::Colon);
            i += 1;
        } else if ch == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                if i >= c.len() {
                    return Err(FilterError("unterminated string".into()));
                }
                if c[i] == '\'' {
                    if i + 1 < c.len() && c[i + 1] == '\'' {
                        v.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                v.push(c[i]);
                i += 1;
            }
            out.push(Tok::Str(v));
        } else {
            let start = i;
            while i < c.len() && !c[i].is_whitespace() && !matches!(c[i], '(' | ')' | ',' | '\'') {
                // a lambda variable ends at ':' ("x:x/skuId"); dates keep theirs (digits around)
                if c[i] == ':' && !(i > start && c[i - 1].is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let is_number = word
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == '-')
                && word.chars().any(|ch| ch.is_ascii_digit())
                && word.matches('-').count() <= 1;
            match word.parse::<f64>() {
                Ok(n) if is_number => out.push(Tok::Num(n)),
                _ => out.push(Tok::Ident(word)),
            }
        }
    }
    Ok(out)
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `lhs op rhs`
    Cmp(String, Operand, Operand),
    /// `lhs in (a, b)`
    In(Operand, Vec<Operand>),
    /// A boolean function call such as `startswith(displayName,'A')`.
    Call(String, Vec<Operand>),
    /// `path/any(v: body)` or `path/all(v: body)`.
    Lambda {
        /// `any` or `all`.
        kind: String,
        /// Collection property path.
        path: Vec<String>,
        /// Range variable.
        var: String,
        /// Body (None for `any()`).
        body: Option<Box<Expr>>,
    },
    /// A bare operand used as a boolean (`accountEnabled`).
    Bool(Operand),
}

/// An operand of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// Property path (`a/b`).
    Path(Vec<String>),
    /// Literal value.
    Lit(Value),
    /// Function call (`tolower(mail)`).
    Call(String, Vec<Operand>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

const CMP_OPS: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn expect(&mut self, t: Tok) -> Result<(), FilterError> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(FilterError(format!("expected {t:?}, found {other:?}"))),
        }
    }
    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut l = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut l = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(e);
        }
        // lambda: path/any(
        if let Some(Tok::Ident(w)) = self.peek().cloned() {
            let lw = w.to_ascii_lowercase();
            for kind in ["any", "all"] {
                let suffix = format!("/{kind}");
                if lw.ends_with(&suffix) && self.toks.get(self.pos + 1) == Some(&Tok::LParen) {
                    self.pos += 2;
                    let path: Vec<String> = w[..w.len() - suffix.len()]
                        .split('/')
                        .map(str::to_string)
                        .collect();
                    if self.peek() == Some(&Tok::RParen) {
                        self.pos += 1;
                        return Ok(Expr::Lambda {
                            kind: kind.into(),
                            path,
                            var: String::new(),
                            body: None,
                        });
                    }
                    let var = match self.next() {
                        Some(Tok::Ident(v)) => v,
                        t => return Err(FilterError(format!("bad lambda variable {t:?}"))),
                    };
                    self.expect(Tok::Colon)?;
                    let body = self.or()?;
                    self.expect(Tok::RParen)?;
                    return Ok(Expr::Lambda {
                        kind: kind.into(),
                        path,
                        var,
                        body: Some(Box::new(body)),
                    });
                }
            }
        }
        let lhs = self.operand()?;
        if let Some(Tok::Ident(op)) = self.peek().cloned() {
            let op = op.to_ascii_lowercase();
            if CMP_OPS.contains(&op.as_str()) {
                self.pos += 1;
                let rhs = self.operand()?;
                return Ok(Expr::Cmp(op, lhs, rhs));
            }
            if op == "in" {
                self.pos += 1;
                self.expect(Tok::LParen)?;
                let mut items = vec![self.operand()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    items.push(self.operand()?);
                }
                self.expect(Tok::RParen)?;
                return Ok(Expr::In(lhs, items));
            }
        }
        Ok(match lhs {
            Operand::Call(n, a) => Expr::Call(n, a),
            other => Expr::Bool(other),
        })
    }
    fn operand(&mut self) -> Result<Operand, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Operand::Lit(Value::String(s))),
            Some(Tok::Num(n)) => Ok(Operand::Lit(
                serde_json::Number::from_f64(n)
                    .map(|x| {
                        if n.fract() == 0.0 && n.abs() < 1e15 {
                            Value::from(n as i64)
                        } else {
                            Value::Number(x)
                        }
                    })
                    .unwrap_or(Value::Null),
            )),
            Some(Tok::Ident(w)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        args.push(self.operand()?);
                        while self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                            args.push(self.operand()?);
                        }
                    }
                    self.expect(Tok::RParen)?;
                    return Ok(Operand::Call(w.to_ascii_lowercase(), args));
                }
                match w.as_str() {
                    "true" => Ok(Operand::Lit(Value::Bool(true))),
                    "false" => Ok(Operand::Lit(Value::Bool(false))),
                    "null" => Ok(Operand::Lit(Value::Null)),
                    _ if looks_like_literal(&w) => Ok(Operand::Lit(Value::String(w))),
                    _ => Ok(Operand::Path(w.split('/').map(str::to_string).collect())),
                }
            }
            t => Err(FilterError(format!("unexpected token {t:?}"))),
        }
    }
}

/// GUIDs and date-times are written bare in OData.
fn looks_like_literal(w: &str) -> bool {
    let b = w.as_bytes();
    (w.len() == 36 && w.matches('-').count() == 4)
        || (b.len() >= 10 && b[0].is_ascii_digit() && b[4] == b'-' && b[7] == b'-')
}

/// Parses a `$filter` expression.
pub fn parse(s: &str) -> Result<Expr, FilterError> {
    let mut p = Parser {
        toks: tokenize(s)?,
        pos: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(FilterError(format!(
            "unexpected trailing input at token {}",
            p.pos
        )));
    }
    Ok(e)
}

struct Env<'a> {
    root: &'a Value,
    var: Option<(&'a str, &'a Value)>,
}

fn resolve(env: &Env, path: &[String]) -> Value {
    let (mut cur, rest) = match (&env.var, path.first()) {
        (Some((name, v)), Some(first)) if first == name => (Some(*v), &path[1..]),
        _ => (Some(env.root), path),
    };
    for seg in rest {
        if seg == "$count" {
            return Value::from(cur.and_then(|c| c.as_array()).map_or(0, |a| a.len()));
        }
        cur = cur.and_then(|c| get_ci(c, seg));
    }
    cur.cloned().unwrap_or(Value::Null)
}

/// Object member lookup: exact name first, then case-insensitive.
pub fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn eval_operand(env: &Env, o: &Operand) -> Value {
    match o {
        Operand::Lit(v) => v.clone(),
        Operand::Path(p) => resolve(env, p),
        Operand::Call(name, args) => {
            let a: Vec<Value> = args.iter().map(|x| eval_operand(env, x)).collect();
            let s = |i: usize| a.get(i).and_then(|v| v.as_str()).unwrap_or("").to_string();
            match name.as_str() {
                "tolower" => Value::String(s(0).to_lowercase()),
                "toupper" => Value::String(s(0).to_uppercase()),
                "trim" => Value::String(s(0).trim().to_string()),
                "length" => Value::from(s(0).chars().count()),
                _ => Value::Bool(call_bool(name, &a)),
            }
        }
    }
}

fn call_bool(name: &str, a: &[Value]) -> bool {
    let s = |i: usize| a.get(i).and_then(|v| v.as_str()).map(|x| x.to_lowercase());
    match (name, s(0), s(1)) {
        ("startswith", Some(x), Some(y)) => x.starts_with(&y),
        ("endswith", Some(x), Some(y)) => x.ends_with(&y),
        ("contains", Some(x), Some(y)) => x.contains(&y),
        _ => false,
    }
}

/// Compares two JSON values the way OData does for the simple types: strings
/// case-insensitively, numbers numerically, booleans, GUIDs as strings.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::String(x), Value::Number(y)) | (Value::Number(y), Value::String(x)) => {
            let xf: f64 = x.parse().ok()?;
            let r = xf.partial_cmp(&y.as_f64()?)?;
            Some(if matches!(a, Value::String(_)) {
                r
            } else {
                r.reverse()
            })
        }
        _ => None,
    }
}

fn eval(env: &Env, e: &Expr) -> bool {
    use std::cmp::Ordering::*;
    match e {
        Expr::Or(a, b) => eval(env, a) || eval(env, b),
        Expr::And(a, b) => eval(env, a) && eval(env, b),
        Expr::Not(a) => !eval(env, a),
        Expr::Bool(o) => eval_operand(env, o) == Value::Bool(true),
        Expr::Call(n, args) => {
            let a: Vec<Value> = args.iter().map(|x| eval_operand(env, x)).collect();
            call_bool(n, &a)
        }
        Expr::In(l, items) => {
            let lv = eval_operand(env, l);
            items
                .iter()
                .any(|i| compare(&lv, &eval_operand(env, i)) == Some(Equal))
        }
        Expr::Cmp(op, l, r) => {
            let lv = eval_operand(env, l);
            let rv = eval_operand(env, r);
            let c = compare(&lv, &rv);
            match op.as_str() {
                "eq" => c == Some(Equal),
                "ne" => c != Some(Equal),
                "gt" => c == Some(Greater),
                "ge" => matches!(c, Some(Greater | Equal)),
                "lt" => c == Some(Less),
                "le" => matches!(c, Some(Less | Equal)),
                _ => false,
            }
        }
        Expr::Lambda {
            kind,
            path,
            var,
            body,
        } => {
            let coll = resolve(env, path);
            let items = coll.as_array().cloned().unwrap_or_default();
            let test = |item: &Value| match body {
                None => true,
                Some(b) => eval(
                    &Env {
                        root: env.root,
                        var: Some((var.as_str(), item)),
                    },
                    b,
                ),
            };
            if kind == "any" {
                items.iter().any(test)
            } else {
                items.iter().all(test)
            }
        }
    }
}

/// Whether `obj` satisfies `expr`.
pub fn matches(expr: &Expr, obj: &Value) -> bool {
    eval(
        &Env {
            root: obj,
            var: None,
        },
        expr,
    )
}

/// Property names referenced by an expression (top level of each path), to reject unknown ones.
pub fn referenced_properties(expr: &Expr) -> Vec<String> {
    fn op(o: &Operand, out: &mut Vec<String>, var: &[String]) {
        match o {
            Operand::Path(p) => {
                if let Some(f) = p.first() {
                    if !var.contains(f) {
                        out.push(f.clone());
                    }
                }
            }
            Operand::Call(_, a) => a.iter().for_each(|x| op(x, out, var)),
            Operand::Lit(_) => {}
        }
    }
    fn walk(e: &Expr, out: &mut Vec<String>, var: &mut Vec<String>) {
        match e {
            Expr::Or(a, b) | Expr::And(a, b) => {
                walk(a, out, var);
                walk(b, out, var);
            }
            Expr::Not(a) => walk(a, out, var),
            Expr::Cmp(_, a, b) => {
                op(a, out, var);
                op(b, out, var);
            }
            Expr::In(a, items) => {
                op(a, out, var);
                items.iter().for_each(|i| op(i, out, var));
            }
            Expr::Call(_, a) => a.iter().for_each(|x| op(x, out, var)),
            Expr::Bool(o) => op(o, out, var),
            Expr::Lambda {
                path, var: v, body, ..
            } => {
                if let Some(f) = path.first() {
                    out.push(f.clone());
                }
                if let Some(b) = body {
                    var.push(v.clone());
                    walk(b, out, var);
                    var.pop();
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut out, &mut Vec::new());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(f: &str, v: &Value) -> bool {
        matches(&parse(f).unwrap(), v)
    }

    #[test]
    fn graph_forms() {
        let u = json!({"displayName":"Adele Vance","mail":"AdeleV@contoso.com","accountEnabled":true,
            "department":"IT","assignedLicenses":[{"skuId":"c7df2760-2c81-4ef7-b578-5b5392b571df","disabledPlans":[]}]});
        assert!(m("startswith(displayName,'adele')", &u));
        assert!(!m("startswith(displayName,'Bob')", &u));
        assert!(m("accountEnabled eq true and department eq 'IT'", &u));
        assert!(m("department eq 'HR' or endswith(mail,'contoso.com')", &u));
        assert!(m(
            "assignedLicenses/any(x:x/skuId eq c7df2760-2c81-4ef7-b578-5b5392b571df)",
            &u
        ));
        assert!(!m(
            "assignedLicenses/any(x:x/skuId eq 00000000-2c81-4ef7-b578-5b5392b571df)",
            &u
        ));
        assert!(m("assignedLicenses/$count ne 0", &u));
        assert!(m("not (accountEnabled eq false)", &u));
        assert!(m("department in ('HR', 'IT')", &u));
        assert!(parse("displayName eq").is_err());
        assert!(parse("(a eq 'x'").is_err());
    }

    #[test]
    fn dataverse_forms() {
        let r = json!({"statecode":0,"_emailserverprofile_value":"0b6a3a8e-8f0e-4c9a-9a43-3c6f0e4b2a11",
            "createdon":"2026-01-02T00:00:00Z","fullname":"O'Brien"});
        assert!(m("statecode eq 0", &r));
        assert!(m(
            "_emailserverprofile_value eq 0b6a3a8e-8f0e-4c9a-9a43-3c6f0e4b2a11",
            &r
        ));
        assert!(m("createdon gt 2026-01-01T00:00:00Z", &r));
        assert!(m("contains(fullname,'''brien')", &r));
    }
}
