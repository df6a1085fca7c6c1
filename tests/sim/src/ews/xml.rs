//! A tiny namespace-aware DOM for SOAP envelopes: parsing matches elements by namespace URI
//! (any prefix), serialisation uses fixed prefixes (`s:`, `m:`, `t:`).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// SOAP 1.1 envelope namespace.
pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// EWS messages namespace.
pub const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// EWS types namespace.
pub const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

/// An element.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Elem {
    /// Namespace URI ("" when none).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Attributes by local name.
    pub attrs: Vec<(String, String)>,
    /// Child elements.
    pub children: Vec<Elem>,
    /// Concatenated text content.
    pub text: String,
}

impl Elem {
    /// A types-namespace element with text.
    pub fn t(name: &str, text: &str) -> Elem {
        Elem {
            ns: T.into(),
            name: name.into(),
            text: text.into(),
            ..Elem::default()
        }
    }
    /// A types-namespace element with children.
    pub fn t_with(name: &str, children: Vec<Elem>) -> Elem {
        Elem {
            ns: T.into(),
            name: name.into(),
            children,
            ..Elem::default()
        }
    }
    /// Adds an attribute.
    pub fn with_attr(mut self, k: &str, v: &str) -> Elem {
        self.attrs.push((k.into(), v.into()));
        self
    }
    /// First child with this local name (any namespace).
    pub fn child(&self, name: &str) -> Option<&Elem> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Elem> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// Descends through a path of local names.
    pub fn path(&self, names: &[&str]) -> Option<&Elem> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }
    /// Attribute value by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Trimmed text.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// Serialises with prefixes `t:`/`m:`/`s:`; foreign namespaces are declared inline.
    pub fn write(&self, out: &mut String) {
        let prefix = match self.ns.as_str() {
            T => "t:",
            M => "m:",
            SOAP => "s:",
            _ => "",
        };
        out.push('<');
        out.push_str(prefix);
        out.push_str(&self.name);
        if prefix.is_empty() && !self.ns.is_empty() {
            out.push_str(&format!(" xmlns=\"{}\"", escape(&self.ns)));
        }
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str(" />");
            return;
        }
        out.push('>');
        out.push_str(&escape(&self.text));
        for c in &self.children {
            c.write(out);
        }
        out.push_str("</");
        out.push_str(prefix);
        out.push_str(&self.name);
        out.push('>');
    }
    /// Serialised form.
    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
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

fn ns_of(r: ResolveResult) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        _ => String::new(),
    }
}

/// Parses a document into its root element.
pub fn parse(xml: &str) -> Result<Elem, String> {
    let mut r = NsReader::from_str(xml);
    r.config_mut().trim_text(true);
    let mut stack: Vec<Elem> = vec![];
    let mut root: Option<Elem> = None;
    let make = |r: &NsReader<&[u8]>, e: &quick_xml::events::BytesStart| -> Result<Elem, String> {
        let (ns, local) = r.resolve_element(e.name());
        let mut el = Elem {
            ns: ns_of(ns),
            name: String::from_utf8_lossy(local.as_ref()).into_owned(),
            ..Elem::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key = a.key;
            if key.as_ref().starts_with(b"xmlns") {
                continue;
            }
            let k = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
            let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
            el.attrs.push((k, v));
        }
        Ok(el)
    };
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                let el = make(&r, &e)?;
                stack.push(el);
            }
            Ok(Event::Empty(e)) => {
                let el = make(&r, &e)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => root = Some(el),
                }
            }
            Ok(Event::End(_)) => {
                let el = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => root = Some(el),
                }
            }
            Ok(Event::Text(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.unescape().map_err(|e| e.to_string())?);
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("XML error at {}: {e}", r.error_position())),
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("unexpected end of document".into());
    }
    root.ok_or_else(|| "empty document".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_not_prefixes() {
        let a = parse(r#"<x:Envelope xmlns:x="http://schemas.xmlsoap.org/soap/envelope/"><x:Body><q:GetItem xmlns:q="http://schemas.microsoft.com/exchange/services/2006/messages"><z:ItemId xmlns:z="http://schemas.microsoft.com/exchange/services/2006/types" Id="a&amp;b"/></q:GetItem></x:Body></x:Envelope>"#).unwrap();
        let b = parse(r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><GetItem xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><ItemId xmlns="http://schemas.microsoft.com/exchange/services/2006/types" Id="a&amp;b"/></GetItem></Body></Envelope>"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.ns, SOAP);
        let id = a.path(&["Body", "GetItem", "ItemId"]).unwrap();
        assert_eq!(id.ns, T);
        assert_eq!(id.attr("Id"), Some("a&b"));
        assert!(id.to_xml().starts_with("<t:ItemId Id=\"a&amp;b\""));
        assert!(parse("<a><b></a>").is_err());
    }
}
