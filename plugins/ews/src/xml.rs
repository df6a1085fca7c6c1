//! A small namespace-aware DOM over `quick-xml`: responses are matched by namespace URI and
//! local name (any prefix), requests are written with the fixed prefixes `s:`, `m:` and `t:`.
//!
//! Parsing is quick and allocates little: plain markup (what Exchange sends) is read by a
//! scanner of its own and anything else by quick-xml, to the same tree ([`parse`]); names of
//! SOAP and EWS are interned ([`crate::names`]); the four namespaces are static and resolved
//! once per declaration, not per element; an element's attributes share one string; texts are
//! copied once (already unescaped and trimmed at the start); an element's children are moved
//! into it with one exactly-sized allocation.

use crate::names::{intern, same};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;
use std::fmt;

/// SOAP 1.1 envelope namespace.
pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// EWS messages namespace.
pub const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// EWS types namespace.
pub const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// EWS errors namespace (SOAP fault details).
pub const E: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
/// The namespace the prefix `xml` is bound to.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace the prefix `xmlns` is bound to.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// An element of a parsed document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Elem {
    /// Namespace URI ("" when none).
    pub ns: Cow<'static, str>,
    /// Local name.
    pub name: Cow<'static, str>,
    /// Attributes by local name.
    pub attrs: Attrs,
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

    /// First child with this local name (any namespace), to take its texts.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Elem> {
        self.children.iter_mut().find(|c| c.name == name)
    }

    /// Children with this local name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Elem> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Children with this local name, to take their texts.
    pub fn all_mut<'a>(&'a mut self, name: &'a str) -> impl Iterator<Item = &'a mut Elem> + 'a {
        self.children.iter_mut().filter(move |c| c.name == name)
    }

    /// Descends through a path of local names.
    pub fn path(&self, names: &[&str]) -> Option<&Elem> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }

    /// Descends through a path of local names, to take texts.
    pub fn path_mut(&mut self, names: &[&str]) -> Option<&mut Elem> {
        names.iter().try_fold(self, |e, n| e.child_mut(n))
    }

    /// The text of a child, `None` when absent or empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The text of a child moved out of it (left empty), `None` when absent or empty: what
    /// `text_of(name).map(str::to_owned)` answers, without a copy.
    pub fn take_text_of(&mut self, name: &str) -> Option<String> {
        self.child_mut(name)
            .map(|c| std::mem::take(&mut c.text))
            .filter(|t| !t.is_empty())
    }

    /// Attribute value by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name)
    }

    /// The first descendant (depth first, self included) with this local name.
    pub fn find(&self, name: &str) -> Option<&Elem> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

/// An element's attributes (local name and unescaped value, in document order) in one string:
/// one allocation per element however many it has, none without. Each is kept as
/// `NAME_LEN:VALUE_LEN:` (decimal byte lengths) followed by the name and the value.
#[derive(Clone, PartialEq, Default)]
pub struct Attrs(String);

impl Attrs {
    /// The value of the first attribute with this local name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// (local name, value) in document order.
    pub fn iter(&self) -> AttrIter<'_> {
        AttrIter(&self.0)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds an attribute (after those already there).
    pub fn push(&mut self, name: &str, value: &str) {
        pack(&mut self.0, name, value);
    }
}

/// Appends an attribute to the packed form of [`Attrs`].
fn pack(buf: &mut String, name: &str, value: &str) {
    fn push_len(s: &mut String, n: usize) {
        if n >= 10 {
            push_len(s, n / 10);
        }
        s.push(char::from(b'0' + (n % 10) as u8));
    }
    push_len(buf, name.len());
    buf.push(':');
    push_len(buf, value.len());
    buf.push(':');
    buf.push_str(name);
    buf.push_str(value);
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The attributes of an [`Attrs`].
pub struct AttrIter<'a>(&'a str);

impl<'a> Iterator for AttrIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        /// A decimal length up to its `:`, and what follows.
        fn len(s: &str) -> Option<(usize, &str)> {
            let mut n = 0usize;
            for (i, d) in s.bytes().enumerate() {
                match d {
                    b':' => return Some((n, &s[i + 1..])),
                    b'0'..=b'9' => n = n.checked_mul(10)?.checked_add(usize::from(d - b'0'))?,
                    _ => return None,
                }
            }
            None
        }
        let (name_len, rest) = len(self.0)?;
        let (value_len, rest) = len(rest)?;
        let (name, rest) = (rest.get(..name_len)?, &rest[name_len..]);
        let (value, rest) = (rest.get(..value_len)?, &rest[value_len..]);
        self.0 = rest;
        Some((name, value))
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

/// The namespace URI of a declaration's (raw) value, static for the four this connector reads.
fn ns_of(uri: &[u8]) -> Cow<'static, str> {
    match uri {
        b if b == T.as_bytes() => Cow::Borrowed(T),
        b if b == M.as_bytes() => Cow::Borrowed(M),
        b if b == SOAP.as_bytes() => Cow::Borrowed(SOAP),
        b if b == E.as_bytes() => Cow::Borrowed(E),
        b => Cow::Owned(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A namespace declaration in scope, as `quick_xml::NsReader` keeps them: `prefix` empty for the
/// default namespace, `ns` empty when the declaration unbinds it (`xmlns=""`).
struct Binding {
    prefix: Box<[u8]>,
    ns: Cow<'static, str>,
    /// Depth of the declaring element (the root is 1).
    depth: usize,
}

/// The namespace declarations in scope: the namespace of an element is resolved here against
/// URIs resolved once per declaration. Follows `quick_xml::NsReader` (0.37) exactly, errors
/// included: `xml` and `xmlns` are bound from the start, `xmlns:xml` must name the `xml`
/// namespace, `xmlns:xmlns` and other prefixes bound to either reserved namespace are errors, an
/// empty prefix after `xmlns:` declares the default namespace.
struct Scopes(Vec<Binding>);

impl Scopes {
    fn new() -> Self {
        Scopes(vec![
            Binding {
                prefix: b"xml".as_slice().into(),
                ns: Cow::Borrowed(XML_NS),
                depth: 0,
            },
            Binding {
                prefix: b"xmlns".as_slice().into(),
                ns: Cow::Borrowed(XMLNS_NS),
                depth: 0,
            },
        ])
    }

    /// Records a declaration of the element at `depth` (`key` an attribute's raw name);
    /// answers whether `key` declares one (`xmlns`, `xmlns:…`).
    fn declare(&mut self, key: &[u8], value: &[u8], depth: usize) -> Result<bool, String> {
        let prefix = match key.strip_prefix(b"xmlns") {
            Some([]) => &[][..],
            Some([b':', prefix @ ..]) => {
                match prefix {
                    b"xml" if value == XML_NS.as_bytes() => return Ok(true),
                    b"xml" => return Err("the prefix xml bound to another namespace".into()),
                    b"xmlns" => return Err("the prefix xmlns declared".into()),
                    _ if value == XML_NS.as_bytes() || value == XMLNS_NS.as_bytes() => {
                        return Err("a prefix bound to a reserved namespace".into())
                    }
                    _ => {}
                }
                prefix
            }
            _ => return Ok(false),
        };
        self.0.push(Binding {
            prefix: prefix.into(),
            ns: if value.is_empty() {
                Cow::Borrowed("")
            } else {
                ns_of(value)
            },
            depth,
        });
        Ok(true)
    }

    /// The namespace of an element name's prefix ("" when unbound or unknown).
    fn resolve(&self, prefix: Option<&[u8]>) -> Cow<'static, str> {
        let prefix = match prefix {
            // `:name` has the empty prefix, which no declaration binds (they are the default's).
            Some([]) => return Cow::Borrowed(""),
            p => p.unwrap_or_default(),
        };
        self.0
            .iter()
            .rev()
            .find(|b| same(&b.prefix, prefix))
            .map(|b| b.ns.clone())
            .unwrap_or(Cow::Borrowed(""))
    }

    /// Ends the scope of the element at `depth`.
    fn close(&mut self, depth: usize) {
        while self.0.last().is_some_and(|b| b.depth >= depth) {
            self.0.pop();
        }
    }
}

/// `bytes` as the part of `doc` it borrows (no UTF-8 check again), else checked.
fn doc_str<'a>(doc: &'a str, bytes: &'a [u8]) -> Result<&'a str, String> {
    let offset = (bytes.as_ptr() as usize).wrapping_sub(doc.as_ptr() as usize);
    match offset
        .checked_add(bytes.len())
        .and_then(|end| doc.get(offset..end))
    {
        Some(s) => Ok(s),
        None => std::str::from_utf8(bytes).map_err(|e| e.to_string()),
    }
}

/// Unescapes the text of an element's content or attribute value.
fn unescape<'a>(doc: &'a str, raw: &'a [u8]) -> Result<Cow<'a, str>, String> {
    unescape_str(doc_str(doc, raw)?).map_err(|e| e.to_string())
}

/// `quick_xml::escape::unescape`, answering a text without `&` (most) without looking further.
fn unescape_str(s: &str) -> Result<Cow<'_, str>, quick_xml::escape::EscapeError> {
    if find_byte(s.as_bytes(), b'&').is_some() {
        quick_xml::escape::unescape(s)
    } else {
        Ok(Cow::Borrowed(s))
    }
}

/// Attribute keys already seen on one element (duplicates are errors), without allocating for
/// the first few.
struct Seen<'a> {
    first: [&'a [u8]; 8],
    len: usize,
    more: Vec<&'a [u8]>,
}

impl<'a> Seen<'a> {
    fn new() -> Self {
        Seen {
            first: [&[]; 8],
            len: 0,
            more: Vec::new(),
        }
    }

    /// Adds a key; `false` when it was already there.
    fn insert(&mut self, key: &'a [u8]) -> bool {
        if self.first[..self.len]
            .iter()
            .chain(&self.more)
            .any(|k| same(k, key))
        {
            return false;
        }
        if self.len < self.first.len() {
            self.first[self.len] = key;
            self.len += 1;
        } else {
            self.more.push(key);
        }
        true
    }
}

/// Builds an element from its start tag at `depth` (its raw name and its attributes: raw key,
/// raw value) at the end of `nodes`. Namespace declarations go to `scopes` (the caller closes
/// them), the other attributes into the element (packed in `scratch` first, then copied with
/// one exactly-sized allocation).
fn element<'a>(
    doc: &str,
    scopes: &mut Scopes,
    scratch: &mut String,
    name: &[u8],
    attrs: impl Iterator<Item = Result<(&'a [u8], Cow<'a, [u8]>), String>>,
    depth: usize,
    nodes: &mut Vec<Elem>,
) -> Result<(), String> {
    scratch.clear();
    let mut seen = Seen::new();
    for a in attrs {
        let (key, value) = a?;
        // Duplicates are checked over every raw key, as quick-xml's own check does.
        if !seen.insert(key) {
            return Err(format!(
                "duplicated attribute {}",
                String::from_utf8_lossy(key)
            ));
        }
        if scopes.declare(key, &value, depth)? || key.starts_with(b"xmlns") {
            continue;
        }
        let k = intern(split_name(key).0);
        let v = match &value {
            Cow::Borrowed(raw) => unescape(doc, raw)?,
            Cow::Owned(raw) => Cow::Owned(unescape(doc, raw)?.into_owned()),
        };
        pack(scratch, &k, &v);
    }
    let (local, prefix) = split_name(name);
    nodes.push(Elem {
        ns: scopes.resolve(prefix),
        name: intern(local),
        attrs: Attrs(scratch.as_str().into()),
        children: Vec::new(),
        text: String::new(),
    });
    Ok(())
}

/// (local name, prefix) of a raw name, split at its first `:` (as `QName::decompose`).
fn split_name(name: &[u8]) -> (&[u8], Option<&[u8]>) {
    match name.iter().position(|c| *c == b':') {
        Some(i) => (&name[i + 1..], Some(&name[..i])),
        None => (name, None),
    }
}

/// [`element`] of a start tag quick-xml read.
fn start_tag(
    doc: &str,
    scopes: &mut Scopes,
    scratch: &mut String,
    e: &BytesStart,
    depth: usize,
    nodes: &mut Vec<Elem>,
) -> Result<(), String> {
    let mut attrs = e.attributes();
    attrs.with_checks(false);
    let attrs = attrs.map(|a| {
        a.map(|a| (a.key.into_inner(), a.value))
            .map_err(|e| e.to_string())
    });
    let name = e.name().into_inner();
    element(doc, scopes, scratch, name, attrs, depth, nodes)
}

/// Adds a piece of an element's text; leading whitespace is not kept (the text is trimmed when
/// the element ends).
fn push_text(text: &mut String, piece: Cow<str>) {
    if !text.is_empty() {
        text.push_str(&piece);
        return;
    }
    match piece {
        Cow::Owned(s) if s.len() == s.trim_start().len() => *text = s,
        piece if piece.as_bytes().first().is_some_and(|b| !may_be_space(*b)) => {
            text.push_str(&piece)
        }
        piece => text.push_str(piece.trim_start()),
    }
}

/// Whether a string starting or ending with this byte may start or end with whitespace (as
/// `char::is_whitespace` has it): an ASCII one, or any byte of a non-ASCII character.
fn may_be_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ' | 0x80..)
}

/// Trims surrounding whitespace without reallocating.
fn trim(text: &mut String) {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if !may_be_space(*first) && !may_be_space(*last) => return,
        (None, _) => return,
        _ => {}
    }
    text.truncate(text.trim_end().len());
    let lead = text.len() - text.trim_start().len();
    if lead > 0 {
        text.drain(..lead);
    }
}

/// Parses a document into its root element.
///
/// Documents of plain markup (what Exchange sends: elements, attributes, text, an XML
/// declaration) are read by [`parse_plain`]; anything else, and every error, by quick-xml
/// ([`parse_any`]), which decides. Both answer the same tree.
pub fn parse(xml: &str) -> Result<Elem, String> {
    match parse_plain(xml) {
        Some(root) => Ok(root),
        None => parse_any(xml),
    }
}

/// The first `needle` in `hay`, looked for 8 bytes at a time (as `memchr` does without SIMD,
/// without its set-up cost for the short texts and values of a response; in wasm too).
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = hay.chunks_exact(8);
    for (i, c) in chunks.by_ref().enumerate() {
        let x = u64::from_le_bytes(c.try_into().expect("8 bytes")) ^ (LO * u64::from(needle));
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let rest = chunks.remainder();
    rest.iter()
        .position(|c| *c == needle)
        .map(|i| hay.len() - rest.len() + i)
}

/// XML whitespace (as quick-xml has it).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The end of a name starting at `at`: ASCII letters, digits, `_`, `-`, `.` and `:`, starting
/// with a letter or `_`; `None` for anything else (left to quick-xml).
fn name_end(b: &[u8], at: usize) -> Option<usize> {
    /// Bytes of a name: 1 may start one, 2 only follow.
    const NAME: [u8; 256] = {
        let mut t = [0; 256];
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            t[c] = if b.is_ascii_alphabetic() || b == b'_' {
                1
            } else if b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':') {
                2
            } else {
                0
            };
            c += 1;
        }
        t
    };
    if NAME[usize::from(*b.get(at)?)] != 1 {
        return None;
    }
    let len = b[at + 1..]
        .iter()
        .position(|c| NAME[usize::from(*c)] == 0)
        .unwrap_or(b.len() - at - 1);
    Some(at + 1 + len)
}

/// The fast path of [`parse`], for plain markup only: an optional `<?xml …?>` first, then start
/// tags (`<name attr="value" …>` or `…/>`, attributes after whitespace, `=` without spaces,
/// values without `<` or `>`), end tags (`</name>` naming the open element, whitespace before
/// `>` allowed) and text. Names are limited to [`name_end`]'s. Answers `None` at the first thing
/// outside this (comments, CDATA, DOCTYPE, processing instructions, other names, an entity
/// quick-xml does not know, …) and at every error: quick-xml then reads the document again and
/// answers its tree or its error. What it reads it reads as quick-xml does (the tests pin it).
fn parse_plain(xml: &str) -> Option<Elem> {
    let b = xml.as_bytes();
    let mut pos = 0;
    if b.starts_with(b"<?xml") {
        // quick-xml ends a declaration at the first `?>`; here at the first `>`, after a `?`.
        if !is_ws(*b.get(5)?) {
            return None;
        }
        let gt = 5 + b[5..].iter().position(|c| *c == b'>')?;
        if b[gt - 1] != b'?' {
            return None;
        }
        pos = gt + 1;
    }
    let mut scopes = Scopes::new();
    let mut scratch = String::new();
    // As in `parse_any`: open elements, each followed by its closed children.
    let mut nodes: Vec<Elem> = vec![];
    // The open elements: where in `nodes`, and where their raw name is in `xml`.
    let mut open: Vec<(usize, usize, usize)> = vec![];
    // Attributes of the tag being read: raw key and raw value, as ranges of `xml`.
    let mut attrs: Vec<(usize, usize, usize, usize)> = vec![];
    loop {
        // Texts are short: a loop finds their end sooner than `memchr` does.
        let lt = find_byte(&b[pos..], b'<').map_or(xml.len(), |i| pos + i);
        if lt > pos {
            // Text outside the root is not read (nor checked), as in `parse_any`.
            if let Some(&(at, ..)) = open.last() {
                let piece = unescape_str(&xml[pos..lt]).ok()?;
                push_text(&mut nodes[at].text, piece);
            }
        }
        if lt == xml.len() {
            break;
        }
        pos = lt + 1;
        if b.get(pos) == Some(&b'/') {
            let start = pos + 1;
            let end = name_end(b, start)?;
            pos = end + b[end..].iter().position(|c| !is_ws(*c))?;
            if b[pos] != b'>' {
                return None;
            }
            pos += 1;
            let (at, name_at, name_len) = open.pop()?;
            if !same(&b[start..end], &b[name_at..name_at + name_len]) {
                return None;
            }
            let children = nodes.split_off(at + 1);
            let el = &mut nodes[at];
            el.children = children;
            trim(&mut el.text);
            scopes.close(open.len() + 1);
            continue;
        }
        let name_at = pos;
        pos = name_end(b, pos)?;
        let name_len = pos - name_at;
        attrs.clear();
        let empty = loop {
            let ws = pos;
            while b.get(pos).is_some_and(|c| is_ws(*c)) {
                pos += 1;
            }
            match *b.get(pos)? {
                b'>' => {
                    pos += 1;
                    break false;
                }
                b'/' if b.get(pos + 1) == Some(&b'>') => {
                    pos += 2;
                    break true;
                }
                _ if pos == ws => return None,
                _ => {
                    let key = pos;
                    pos = name_end(b, pos)?;
                    let key_end = pos;
                    if b.get(pos) != Some(&b'=') {
                        return None;
                    }
                    let quote = *b.get(pos + 1)?;
                    if quote != b'"' && quote != b'\'' {
                        return None;
                    }
                    let value = pos + 2;
                    let len = find_byte(&b[value..], quote)?;
                    if b[value..value + len]
                        .iter()
                        .any(|c| matches!(c, b'<' | b'>'))
                    {
                        return None;
                    }
                    attrs.push((key, key_end, value, value + len));
                    pos = value + len + 1;
                }
            }
        };
        let depth = open.len() + 1;
        if !empty {
            open.push((nodes.len(), name_at, name_len));
        }
        element(
            xml,
            &mut scopes,
            &mut scratch,
            &b[name_at..name_at + name_len],
            attrs
                .iter()
                .map(|&(k, ke, v, ve)| Ok((&b[k..ke], Cow::Borrowed(&b[v..ve])))),
            depth,
            &mut nodes,
        )
        .ok()?;
        if empty {
            scopes.close(depth);
        }
    }
    if !open.is_empty() {
        return None;
    }
    nodes.pop()
}

/// Parses any document with quick-xml.
fn parse_any(xml: &str) -> Result<Elem, String> {
    let mut r = Reader::from_str(xml);
    let mut scopes = Scopes::new();
    let mut scratch = String::new();
    // The open elements and, after each, its closed children: at its end tag they move into it
    // with one exactly-sized allocation (and one copy), and it stays where it is.
    let mut nodes: Vec<Elem> = vec![];
    // Where the open elements are in `nodes`.
    let mut open: Vec<usize> = vec![];
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                let depth = open.len() + 1;
                open.push(nodes.len());
                start_tag(xml, &mut scopes, &mut scratch, &e, depth, &mut nodes)?;
            }
            Ok(Event::Empty(e)) => {
                let depth = open.len() + 1;
                start_tag(xml, &mut scopes, &mut scratch, &e, depth, &mut nodes)?;
                scopes.close(depth);
            }
            Ok(Event::End(_)) => {
                let depth = open.len();
                let at = open.pop().ok_or("unbalanced end tag")?;
                let children = nodes.split_off(at + 1);
                let el = &mut nodes[at];
                el.children = children;
                trim(&mut el.text);
                scopes.close(depth);
            }
            Ok(Event::Text(t)) => {
                if let Some(&at) = open.last() {
                    let piece = match t.into_inner() {
                        Cow::Borrowed(raw) => unescape(xml, raw)?,
                        Cow::Owned(raw) => Cow::Owned(unescape(xml, &raw)?.into_owned()),
                    };
                    push_text(&mut nodes[at].text, piece);
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(&at) = open.last() {
                    push_text(&mut nodes[at].text, String::from_utf8_lossy(&c));
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
    nodes.pop().ok_or_else(|| "empty document".into())
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

    /// The parser before namespaces were resolved per declaration and attributes packed (over
    /// `quick_xml::NsReader`), kept to pin `parse` to its answers.
    fn reference(xml: &str) -> Result<Elem, String> {
        use quick_xml::name::ResolveResult;
        use quick_xml::NsReader;
        fn ns_of(r: ResolveResult) -> Cow<'static, str> {
            match r {
                ResolveResult::Bound(ns) => super::ns_of(ns.as_ref()),
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
                let v = a.unescape_value().map_err(|e| e.to_string())?;
                el.attrs.push(&k, &v);
            }
            Ok(el)
        }
        struct Open {
            el: Elem,
            first_child: usize,
        }
        let mut r = NsReader::from_str(xml);
        let mut open: Vec<Open> = vec![];
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
                Err(e) => return Err(e.to_string()),
                _ => {}
            }
        }
        if !open.is_empty() {
            return Err("the document ends inside an element".into());
        }
        closed.pop().ok_or_else(|| "empty document".into())
    }

    /// `parse` and `reference` agree: the same tree, or both an error.
    fn agree(xml: &str) {
        match (parse(xml), reference(xml)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{xml}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{xml}\nparse: {a:?}\nreference: {b:?}"),
        }
    }

    #[test]
    fn parse_answers_what_the_namespace_reader_answered() {
        for xml in [
            r#"<a xmlns="urn:x"><b xmlns=""><c/></b><t:d xmlns:t="urn:t"/><t:e/></a>"#,
            r#"<a xmlns:t="urn:t"><t:b xmlns:t=""><t:c/></t:b><t:d/></a>"#,
            r#"<a xmlns:="urn:d"><b/><:c/><x:d/></a>"#,
            r#"<xml:a><xmlns:b/></xml:a>"#,
            r#"<a xmlns:xml="http://www.w3.org/XML/1998/namespace"/>"#,
            r#"<a xmlns:xml="urn:x"/>"#,
            r#"<a xmlns:xmlns="urn:x"/>"#,
            r#"<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>"#,
            r#"<a xmlns:p="http://www.w3.org/2000/xmlns/"/>"#,
            r#"<a xmlns="http://www.w3.org/2000/xmlns/"><b/></a>"#,
            r#"<a xmlnsx="urn:q" xmlns:p="a&amp;b"><p:b/></a>"#,
            r#"<a xmlns:p="&bad;"><p:b q="&lt;&#x41;&#66;"/></a>"#,
            r#"<a b="1" b="2"/>"#,
            r#"<a p:b="1" q:b="2" xmlns:p="urn:p" xmlns:q="urn:q"/>"#,
            r#"<a xmlns="urn:1" xmlns="urn:2"/>"#,
            r#"<a b="1" c="2" d="3" e="4" f="5" g="6" h="7" i="8" j="9" k="10" b="11"/>"#,
            r#"<a =="1"/>"#,
            r#"<a b=1/>"#,
            r#"<a b="&unknown;"/>"#,
            r#"<a b="&#0;"/>"#,
            "<a> \n x <b/> y \t</a>",
            "<a>\u{a0}x\u{a0}</a>",
            "<a>&#32; x &#32;</a>",
            "<a> <![CDATA[ <x> ]]> &amp; </a>",
            "<a>&#32;<![CDATA[ ]]>&#32;</a>",
            "<a>x &bad; y</a>",
            "<?xml version=\"1.0\"?><!-- c --><a><!-- d --><?pi x?>é</a>",
            "x<a/>y",
            r#"<a b="1"c="2"/>"#,
            r#"<a b = "1"/>"#,
            r#"<a b='x"y' c="x'y"/>"#,
            r#"<a b="x>y"/>"#,
            r#"<a b="x<y"/>"#,
            "<a></a >",
            "<a></a\n>",
            "<a/ >",
            "<a></a b>",
            "<1a/>",
            "<é/>",
            "<a:b:c xmlns:a=\"urn:a\"/>",
            "<a\tb=\"1\"\n/>",
            r#"<?xml version="1.0"?><a/>"#,
            "<?xml?><a/>",
            "<?xml-stylesheet?><a/>",
            r#"<?xml a="?>"?><a/>"#,
            r#"<?xml a=">"?><a/>"#,
            "\u{feff}<?xml version=\"1.0\"?><a/>",
            "<a>x<!-- c -->y</a>",
            "<a><b></b></a><c>",
            "<a></b>",
            "</a>",
            "",
        ] {
            agree(xml);
        }
    }

    #[test]
    fn parse_agrees_with_the_namespace_reader_on_documented_and_broken_responses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/oracles/ews");
        let mut docs = vec![];
        for sub in ["samples", "samples-negative"] {
            let Ok(entries) = std::fs::read_dir(format!("{dir}/{sub}")) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "xml") {
                    docs.push(std::fs::read_to_string(path).unwrap());
                }
            }
        }
        assert!(docs.len() > 40, "the documented samples are missing");
        // The fast path reads the documented responses (Microsoft's samples have no comments).
        let plain = docs.iter().filter(|d| parse_plain(d).is_some()).count();
        assert!(plain * 10 >= docs.len() * 9, "{plain} of {}", docs.len());
        // Each document as it is, and with a piece inserted (or cut) at places through it.
        const PIECES: &[&str] = &[
            "<",
            ">",
            "/",
            "&",
            "&amp;",
            "&#x41;",
            "\"",
            ":",
            " ",
            "=",
            "<x/>",
            "</x>",
            " xmlns=\"\"",
            " xmlns:t=\"\"",
            " xmlns:t=\"urn:x\"",
            " xmlns:xml=\"urn:x\"",
            " Id=\"1\" Id=\"2\"",
            "<![CDATA[ x ]]>",
            "<!-- -->",
        ];
        for (d, doc) in docs.iter().enumerate() {
            agree(doc);
            let step = (doc.len() / 40).max(1);
            for (n, at) in (d % 7..doc.len()).step_by(step).enumerate() {
                if !doc.is_char_boundary(at) {
                    continue;
                }
                let piece = PIECES[(n + d) % PIECES.len()];
                agree(&format!("{}{piece}{}", &doc[..at], &doc[at..]));
                let cut = (at + 1 + n % 5..doc.len()).find(|i| doc.is_char_boundary(*i));
                if let Some(cut) = cut {
                    agree(&format!("{}{}", &doc[..at], &doc[cut..]));
                }
            }
        }
    }

    #[test]
    fn find_byte_finds_the_first() {
        let hay: Vec<u8> = (0..40u8)
            .map(|i| b"ab<&\x80\xff"[usize::from(i % 6)])
            .collect();
        for from in 0..hay.len() {
            for to in from..=hay.len() {
                for needle in [b'a', b'<', b'&', 0x80, 0xff, b'z', 0x7f] {
                    let h = &hay[from..to];
                    assert_eq!(find_byte(h, needle), h.iter().position(|c| *c == needle));
                }
            }
        }
    }

    #[test]
    fn bytes_that_may_be_whitespace() {
        for b in 0..=0x7f_u8 {
            assert_eq!(may_be_space(b), char::from(b).is_whitespace(), "{b:#x}");
        }
        assert!((0x80..=0xff).all(may_be_space));
        for text in [
            " a",
            "a ",
            "\u{a0}a",
            "a\u{2003}",
            "\u{b}a\u{c}",
            "a",
            "é",
            "",
        ] {
            let mut t = text.to_owned();
            trim(&mut t);
            assert_eq!(t, text.trim());
        }
    }

    #[test]
    fn attributes_keep_their_order_and_any_content() {
        let mut a = Attrs::default();
        assert!(a.is_empty() && a.get("Id").is_none());
        for (k, v) in [("Id", "1:2"), ("=", ""), ("Key", "é:9:x"), ("Id", "second")] {
            a.push(k, v);
        }
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [("Id", "1:2"), ("=", ""), ("Key", "é:9:x"), ("Id", "second")]
        );
        assert_eq!((a.get("Id"), a.get("Key")), (Some("1:2"), Some("é:9:x")));
        assert_eq!(
            format!("{a:?}"),
            r#"[("Id", "1:2"), ("=", ""), ("Key", "é:9:x"), ("Id", "second")]"#
        );
    }
}
