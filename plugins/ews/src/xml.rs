//! A small namespace-aware DOM over `quick-xml`: responses are matched by namespace URI and
//! local name (any prefix), requests are written with the fixed prefixes `s:`, `m:` and `t:`.

use crate::names::intern;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::borrow::Cow;

/// SOAP 1.1 envelope namespace.
pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// EWS messages namespace.
pub const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// EWS types namespace.
pub const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// EWS errors namespace (SOAP fault details).
pub const E: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// An element of a parsed document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Elem {
    /// Namespace URI ("" when none).
    pub ns: Cow<'static, str>,
    /// Local name.
    pub name: Cow<'static, str>,
    /// Attributes by local name.
    pub attrs: Vec<(Cow<'static, str>, String)>,
    /// Child elements.
    pub children: Vec<Elem>,
    /// Text content (trimmed).
    pub text: String,
}

impl Elem {
    /// First child with this local name (any namespace).
    pub fn child(&self, name: &str) -> Option<&Elem> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Children with this local name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Elem> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Descends through a path of local names.
    pub fn path(&self, names: &[&str]) -> Option<&Elem> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }

    /// The text of a child, `None` when absent or empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// Attribute value by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first descendant (depth first, self included) with this local name.
    pub fn find(&self, name: &str) -> Option<&Elem> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

/// XML-escapes text and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// `<t:name>text</t:name>` with the text escaped.
pub fn t(name: &str, text: &str) -> String {
    format!("<t:{name}>{}</t:{name}>", escape(text))
}

/// The namespace URI, static for the four this connector reads.
fn ns_of(r: ResolveResult) -> Cow<'static, str> {
    match r {
        ResolveResult::Bound(ns) => match ns.as_ref() {
            b if b == T.as_bytes() => Cow::Borrowed(T),
            b if b == M.as_bytes() => Cow::Borrowed(M),
            b if b == SOAP.as_bytes() => Cow::Borrowed(SOAP),
            b if b == E.as_bytes() => Cow::Borrowed(E),
            b => Cow::Owned(String::from_utf8_lossy(b).into_owned()),
        },
        _ => Cow::Borrowed(""),
    }
}

fn element(r: &NsReader<&[u8]>, e: &BytesStart) -> Result<Elem, String> {
    let (ns, local) = r.resolve_element(e.name());
    let mut el = Elem {
        ns: ns_of(ns),
        name: intern(local.as_ref()),
        ..Elem::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        if a.key.as_ref().starts_with(b"xmlns") {
            continue;
        }
        let k = intern(a.key.local_name().as_ref());
        let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
        el.attrs.push((k, v));
    }
    Ok(el)
}

/// Trims surrounding whitespace without reallocating.
fn trim(text: &mut String) {
    text.truncate(text.trim_end().len());
    let lead = text.len() - text.trim_start().len();
    if lead > 0 {
        text.drain(..lead);
    }
}

/// An element whose end tag is still ahead, and where its children start among the closed
/// elements.
struct Open {
    el: Elem,
    first_child: usize,
}

/// Parses a document into its root element.
pub fn parse(xml: &str) -> Result<Elem, String> {
    let mut r = NsReader::from_str(xml);
    let mut open: Vec<Open> = vec![];
    // Closed elements not yet moved into their parent: one allocation per parent's children.
    let mut closed: Vec<Elem> = vec![];
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => open.push(Open {
                el: element(&r, &e)?,
                first_child: closed.len(),
            }),
            Ok(Event::Empty(e)) => closed.push(element(&r, &e)?),
            Ok(Event::End(_)) => {
                let Open {
                    mut el,
                    first_child,
                } = open.pop().ok_or("unbalanced end tag")?;
                el.children = closed.drain(first_child..).collect();
                trim(&mut el.text);
                closed.push(el);
            }
            Ok(Event::Text(t)) => {
                if let Some(top) = open.last_mut() {
                    top.el
                        .text
                        .push_str(&t.unescape().map_err(|e| e.to_string())?);
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(top) = open.last_mut() {
                    top.el.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("XML error at byte {}: {e}", r.error_position())),
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err("the document ends inside an element".into());
    }
    closed.pop().ok_or_else(|| "empty document".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_matched_by_namespace_not_prefix() {
        let a = parse(r#"<x:Envelope xmlns:x="http://schemas.xmlsoap.org/soap/envelope/"><x:Body><q:ItemId xmlns:q="http://schemas.microsoft.com/exchange/services/2006/types" Id="a&amp;b"> v </q:ItemId></x:Body></x:Envelope>"#).unwrap();
        let b = parse(r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><ItemId xmlns="http://schemas.microsoft.com/exchange/services/2006/types" Id="a&amp;b">v</ItemId></Body></Envelope>"#).unwrap();
        assert_eq!(a, b);
        let id = a.path(&["Body", "ItemId"]).unwrap();
        assert_eq!(
            (&*id.ns, id.attr("Id"), id.text.as_str()),
            (T, Some("a&b"), "v")
        );
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a><b>").is_err());
        assert_eq!(t("Subject", "a<b"), "<t:Subject>a&lt;b</t:Subject>");
    }
}
