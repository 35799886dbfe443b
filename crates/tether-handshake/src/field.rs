//! Header field helpers: comma-separated token lists, single-valued fields, and encoding.
//!
//! RFC 7230 §3.2.2 lets a list-valued field be sent as several lines or as one line with
//! commas; both forms mean the same, so list readers walk every line and split on commas.

use bytes::{BufMut, BytesMut};
use http::header::{AsHeaderName, HeaderMap};
use http::{HeaderName, HeaderValue};

use crate::error::Error;

/// Every non-empty, trimmed element of a comma-separated list field, across repeated lines.
/// Lines that are not visible ASCII contribute nothing.
pub(crate) fn elements<'a>(
    headers: &'a HeaderMap,
    name: impl AsHeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|element| !element.is_empty())
}

/// Whether a list field contains `token`, compared ASCII case-insensitively.
pub(crate) fn has_token(headers: &HeaderMap, name: impl AsHeaderName, token: &str) -> bool {
    elements(headers, name).any(|element| element.eq_ignore_ascii_case(token))
}

/// The value of a field that must appear at most once: `Err(())` when it is repeated.
pub(crate) fn single(
    headers: &HeaderMap,
    name: impl AsHeaderName,
) -> Result<Option<&HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) | (None, Some(_)) => Err(()),
    }
}

/// Whether `s` is an RFC 7230 §3.2.6 token: one or more visible ASCII characters that are not
/// separators. RFC 6455 §4.1 requires subprotocol names to be tokens.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `b` may appear in a token (RFC 7230 §3.2.6 `tchar`).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'='
                | b'{'
                | b'}'
        )
}

/// Writes each header field as `name: value\r\n`, repeated fields on their own lines.
pub(crate) fn encode_headers(headers: &HeaderMap, dst: &mut BytesMut) {
    for (name, value) in headers {
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
}

/// Copies httparse's borrowed header fields into an owned map.
pub(crate) fn header_map(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| Error::Malformed {
            reason: "invalid header name",
        })?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| Error::Malformed {
            reason: "invalid header value",
        })?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONNECTION;

    fn map(lines: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(CONNECTION, HeaderValue::from_static(line));
        }
        headers
    }

    #[test]
    fn rfc7230_3_2_2_list_across_lines_and_commas() {
        let headers = map(&["keep-alive , ", "  Upgrade,close"]);
        let all: Vec<_> = elements(&headers, CONNECTION).collect();
        assert_eq!(all, ["keep-alive", "Upgrade", "close"]);
        assert!(has_token(&headers, CONNECTION, "upgrade"));
        assert!(!has_token(&map(&["upgrades"]), CONNECTION, "upgrade"));
    }

    #[test]
    fn single_rejects_repeats() {
        assert_eq!(single(&map(&[]), CONNECTION), Ok(None));
        assert_eq!(
            single(&map(&["a"]), CONNECTION).map(|v| v.is_some()),
            Ok(true)
        );
        assert_eq!(single(&map(&["a", "b"]), CONNECTION), Err(()));
    }

    #[test]
    fn rfc7230_3_2_6_tokens() {
        assert!(is_token("chat.v2"));
        assert!(is_token("x-Proto_1"));
        for bad in ["", "a b", "a,b", "a/b", "é", "a\"", "a=b"] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }
}
