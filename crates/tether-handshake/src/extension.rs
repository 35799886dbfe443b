//! The `Sec-WebSocket-Extensions` header: extensions with parameters (RFC 6455 §9.1), parsed
//! with quoted strings, in linear time and bounded in count.
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list  = 1#extension
//! extension       = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```

use std::fmt;

use http::header::{HeaderMap, SEC_WEBSOCKET_EXTENSIONS};

use crate::field::{is_tchar, is_token};

/// Most extensions one header (all its lines together) may list; more fail with
/// [`BadExtension::TooManyExtensions`]. A client offers a handful (browsers offer one).
pub const MAX_EXTENSIONS: usize = 32;
/// Most parameters one extension may carry; more fail with [`BadExtension::TooManyParams`].
/// permessage-deflate, the busiest, defines four.
pub const MAX_EXTENSION_PARAMS: usize = 16;

/// One extension of a `Sec-WebSocket-Extensions` list: its name and parameters, in order.
///
/// Its `Display` is the canonical form, `name; param; param=value`, which
/// [`parse_extensions`] reads back to the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    name: String,
    params: Vec<ExtensionParam>,
}

/// A parameter of an [`Extension`]: a name and, if given, its value, unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionParam {
    name: String,
    value: Option<String>,
}

/// Why a `Sec-WebSocket-Extensions` value does not follow RFC 6455 §9.1. Positions are byte
/// offsets into the parsed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadExtension {
    /// An extension or parameter name (or an unquoted value) is missing or not a token.
    #[error("expected a token at byte {at}")]
    ExpectedToken {
        /// Where the token should start.
        at: usize,
    },
    /// Something other than `;`, `,` or the end follows an extension or a parameter.
    #[error("unexpected character at byte {at}")]
    Unexpected {
        /// Where the character is.
        at: usize,
    },
    /// A quoted string has no closing quote, or holds a control character.
    #[error("bad quoted string at byte {at}")]
    BadQuotedString {
        /// Where the quoted string starts.
        at: usize,
    },
    /// A quoted value is not a token once unescaped (RFC 6455 §9.1).
    #[error("quoted value at byte {at} is not a token")]
    ValueNotToken {
        /// Where the quoted string starts.
        at: usize,
    },
    /// More than [`MAX_EXTENSIONS`] extensions.
    #[error("more than {limit} extensions")]
    TooManyExtensions {
        /// The limit.
        limit: usize,
    },
    /// An extension with more than [`MAX_EXTENSION_PARAMS`] parameters.
    #[error("more than {limit} parameters in one extension")]
    TooManyParams {
        /// The limit.
        limit: usize,
    },
}

impl Extension {
    /// An extension without parameters. `name` should be a token; [`parse_extensions`] only
    /// ever makes extensions whose names and values are tokens.
    pub fn new(name: impl Into<String>) -> Self {
        Extension {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter, with a value or without.
    pub fn with_param(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.params.push(ExtensionParam {
            name: name.into(),
            value: value.map(str::to_owned),
        });
        self
    }

    /// The extension's name, e.g. `permessage-deflate`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parameters, in the order sent.
    pub fn params(&self) -> &[ExtensionParam] {
        &self.params
    }
}

impl ExtensionParam {
    /// The parameter's name, e.g. `client_max_window_bits`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value, unquoted and unescaped, or `None` for a parameter without `=`.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for param in &self.params {
            write!(f, "; {}", param.name)?;
            if let Some(value) = &param.value {
                write!(f, "={value}")?;
            }
        }
        Ok(())
    }
}

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1) into its extensions, in order.
///
/// Values may be tokens or quoted strings (RFC 7230 §3.2.6, with `\` escapes); a quoted value
/// must be a token once unescaped (§9.1). Whitespace around `,`, `;` and `=` is allowed and
/// empty list elements are skipped (RFC 7230 §7). An empty value gives no extensions. The
/// parse is one pass over the input, and fails past [`MAX_EXTENSIONS`] extensions or
/// [`MAX_EXTENSION_PARAMS`] parameters in one.
///
/// ```
/// use tether_handshake::parse_extensions;
///
/// let offers = parse_extensions(
///     "permessage-deflate; client_max_window_bits=\"10\", x-custom ,permessage-deflate",
/// )?;
/// assert_eq!(offers.len(), 3);
/// assert_eq!(offers[0].name(), "permessage-deflate");
/// assert_eq!(offers[0].params()[0].name(), "client_max_window_bits");
/// assert_eq!(offers[0].params()[0].value(), Some("10"));
/// assert_eq!(offers[0].to_string(), "permessage-deflate; client_max_window_bits=10");
/// assert!(parse_extensions("permessage-deflate; bits=\"1 0\"").is_err());
/// # Ok::<(), tether_handshake::BadExtension>(())
/// ```
///
/// # Errors
///
/// A [`BadExtension`] saying what is wrong and where.
pub fn parse_extensions(value: &str) -> Result<Vec<Extension>, BadExtension> {
    let mut cursor = Cursor { s: value, at: 0 };
    let mut extensions = Vec::new();
    loop {
        cursor.skip_ows();
        if cursor.is_at_end() {
            return Ok(extensions);
        }
        if cursor.eat(b',') {
            continue;
        }
        if extensions.len() == MAX_EXTENSIONS {
            return Err(BadExtension::TooManyExtensions {
                limit: MAX_EXTENSIONS,
            });
        }
        extensions.push(cursor.extension()?);
        cursor.skip_ows();
        if !cursor.is_at_end() && !cursor.eat(b',') {
            return Err(BadExtension::Unexpected { at: cursor.at });
        }
    }
}

/// Every `Sec-WebSocket-Extensions` line of `headers`, parsed as one list (RFC 7230 §3.2.2:
/// repeated lines mean the same as one line joined with commas). A line that is not visible
/// ASCII fails as an expected token at its start.
pub(crate) fn parse_extension_header(headers: &HeaderMap) -> Result<Vec<Extension>, BadExtension> {
    let mut joined = String::new();
    for line in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
        let line = line
            .to_str()
            .map_err(|_| BadExtension::ExpectedToken { at: joined.len() })?;
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(line);
    }
    parse_extensions(&joined)
}

/// A position in the value being parsed.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl Cursor<'_> {
    /// `extension-token *( ";" extension-param )`
    fn extension(&mut self) -> Result<Extension, BadExtension> {
        let mut extension = Extension::new(self.token()?);
        loop {
            self.skip_ows();
            if !self.eat(b';') {
                return Ok(extension);
            }
            if extension.params.len() == MAX_EXTENSION_PARAMS {
                return Err(BadExtension::TooManyParams {
                    limit: MAX_EXTENSION_PARAMS,
                });
            }
            self.skip_ows();
            let name = self.token()?.to_owned();
            self.skip_ows();
            let value = if self.eat(b'=') {
                self.skip_ows();
                Some(self.value()?)
            } else {
                None
            };
            extension.params.push(ExtensionParam { name, value });
        }
    }

    /// `token | quoted-string`, the quoted form unescaped and required to be a token.
    fn value(&mut self) -> Result<String, BadExtension> {
        if self.peek() != Some(b'"') {
            return Ok(self.token()?.to_owned());
        }
        let start = self.at;
        let unquoted = self.quoted_string()?;
        // RFC 6455 §9.1: "When using the quoted-string syntax variant, the value after
        // quoted-string unescaping MUST conform to the 'token' ABNF."
        if is_token(&unquoted) {
            Ok(unquoted)
        } else {
            Err(BadExtension::ValueNotToken { at: start })
        }
    }

    /// RFC 7230 §3.2.6: `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`, where
    /// qdtext is HTAB, SP and visible characters but `"` and `\`, and `quoted-pair = "\"
    /// ( HTAB / SP / VCHAR / obs-text )`. Returns the content, unescaped.
    fn quoted_string(&mut self) -> Result<String, BadExtension> {
        let bad = BadExtension::BadQuotedString { at: self.at };
        let mut out = String::new();
        let mut chars = self.s[self.at + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            let c = match c {
                '"' => {
                    self.at += 1 + i + 1;
                    return Ok(out);
                }
                '\\' => chars.next().map(|(_, c)| c).ok_or(bad)?,
                c => c,
            };
            if c.is_ascii_control() && c != '\t' {
                return Err(bad);
            }
            out.push(c);
        }
        Err(bad)
    }

    /// One or more token characters.
    fn token(&mut self) -> Result<&str, BadExtension> {
        let start = self.at;
        let len = self.s[start..].bytes().take_while(|&b| is_tchar(b)).count();
        if len == 0 {
            return Err(BadExtension::ExpectedToken { at: start });
        }
        self.at += len;
        Ok(&self.s[start..self.at])
    }

    /// RFC 7230 §3.2.3: `OWS = *( SP / HTAB )`.
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn is_at_end(&self) -> bool {
        self.at >= self.s.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(value: &str) -> Vec<String> {
        parse_extensions(value)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn rfc7692_offers_parse_with_their_parameters() {
        // RFC 7692 §5.1's example offer: two alternatives of one extension.
        let offers = parse_extensions(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
             permessage-deflate; client_max_window_bits",
        )
        .unwrap();
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].params().len(), 2);
        assert_eq!(offers[0].params()[0].value(), None);
        assert_eq!(offers[0].params()[1].value(), Some("10"));
        assert_eq!(
            offers[1],
            Extension::new("permessage-deflate").with_param("client_max_window_bits", None)
        );
    }

    #[test]
    fn rfc6455_9_1_quoted_values_are_unescaped_and_must_be_tokens() {
        let quoted = parse_extensions(r#"x; a="10"; b = "p\e" ; c="""#);
        assert_eq!(
            quoted,
            Err(BadExtension::ValueNotToken { at: 25 }),
            "an empty quoted value is not a token"
        );
        let quoted = parse_extensions(r#"x; a="10"; b = "p\e""#).unwrap();
        assert_eq!(quoted[0].params()[0].value(), Some("10"));
        assert_eq!(quoted[0].params()[1].value(), Some("pe"));
        // A comma inside quotes does not split the list: it is an error in the value.
        assert_eq!(
            parse_extensions(r#"x; a="b,c", y"#),
            Err(BadExtension::ValueNotToken { at: 5 })
        );
        assert_eq!(
            parse_extensions(r#"x; a="unterminated"#),
            Err(BadExtension::BadQuotedString { at: 5 })
        );
        assert_eq!(
            parse_extensions("x; a=\"\u{1}\""),
            Err(BadExtension::BadQuotedString { at: 5 })
        );
    }

    #[test]
    fn rfc7230_7_empty_elements_and_whitespace_are_skipped() {
        assert_eq!(names(" , ,a ,\t,b;p , "), ["a", "b; p"]);
        assert!(parse_extensions("").unwrap().is_empty());
        assert!(parse_extensions(" ,, ").unwrap().is_empty());
    }

    #[test]
    fn malformed_lists_are_refused_where_they_break() {
        assert_eq!(
            parse_extensions("a b"),
            Err(BadExtension::Unexpected { at: 2 })
        );
        assert_eq!(
            parse_extensions("a;;b"),
            Err(BadExtension::ExpectedToken { at: 2 })
        );
        assert_eq!(
            parse_extensions("a; p="),
            Err(BadExtension::ExpectedToken { at: 5 })
        );
        assert_eq!(
            parse_extensions(";p"),
            Err(BadExtension::ExpectedToken { at: 0 })
        );
        assert_eq!(
            parse_extensions("é"),
            Err(BadExtension::ExpectedToken { at: 0 })
        );
    }

    #[test]
    fn counts_are_bounded_at_the_limit_and_past_it() {
        let at_limit = vec!["e"; MAX_EXTENSIONS].join(",");
        assert_eq!(parse_extensions(&at_limit).unwrap().len(), MAX_EXTENSIONS);
        assert_eq!(
            parse_extensions(&format!("{at_limit},e")),
            Err(BadExtension::TooManyExtensions {
                limit: MAX_EXTENSIONS
            })
        );
        let params = format!("e{}", ";p".repeat(MAX_EXTENSION_PARAMS));
        assert_eq!(
            parse_extensions(&params).unwrap()[0].params().len(),
            MAX_EXTENSION_PARAMS
        );
        assert_eq!(
            parse_extensions(&format!("{params};p")),
            Err(BadExtension::TooManyParams {
                limit: MAX_EXTENSION_PARAMS
            })
        );
    }

    fn token() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    fn extension() -> impl Strategy<Value = Extension> {
        let param = (token(), proptest::option::of(token()));
        (token(), proptest::collection::vec(param, 0..4)).prop_map(|(name, params)| {
            params.into_iter().fold(Extension::new(name), |e, (p, v)| {
                e.with_param(p, v.as_deref())
            })
        })
    }

    /// The value as a quoted string, every other character escaped.
    fn quoted(value: &str) -> String {
        let mut out = String::from("\"");
        for (i, c) in value.chars().enumerate() {
            if i % 2 == 0 {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_list(list in proptest::collection::vec(extension(), 0..6)) {
            let text = list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(parse_extensions(&text).unwrap(), list);
        }

        #[test]
        fn quoting_a_value_does_not_change_it(list in proptest::collection::vec(extension(), 1..6)) {
            let text = list
                .iter()
                .map(|e| {
                    let mut s = e.name().to_owned();
                    for p in e.params() {
                        s.push_str(" ;\t");
                        s.push_str(p.name());
                        if let Some(v) = p.value() {
                            s.push_str(" = ");
                            s.push_str(&quoted(v));
                        }
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(" ,, ");
            prop_assert_eq!(parse_extensions(&text).unwrap(), list);
        }

        #[test]
        fn any_input_parses_or_fails_without_panic_within_the_bounds(input in "\\PC{0,200}|[a;=,\" \\\\]{0,200}") {
            if let Ok(list) = parse_extensions(&input) {
                prop_assert!(list.len() <= MAX_EXTENSIONS);
                prop_assert!(list.iter().all(|e| e.params().len() <= MAX_EXTENSION_PARAMS));
            }
        }
    }
}
