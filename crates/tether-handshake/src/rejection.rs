//! A non-101 answer from the server: an HTTP error response with a short body.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::field::encode_headers;

/// An HTTP response that turns a request down instead of upgrading it: the application's own
/// (a 401 with `WWW-Authenticate`, a 403 for a foreign `Origin`, a redirect) or the one an
/// [`Error`](crate::Error) deserves ([`Error::rejection`](crate::Error::rejection)).
///
/// It is always sent with `Content-Length` and `Connection: close`: the server closes the
/// connection after it.
///
/// ```
/// use bytes::BytesMut;
/// use http::{header, HeaderValue, StatusCode};
/// use tether_handshake::Rejection;
///
/// let rejection = Rejection::new(StatusCode::UNAUTHORIZED)
///     .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
///     .with_body("log in first\n");
/// let mut wire = BytesMut::new();
/// rejection.encode(&mut wire);
/// assert!(wire.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
/// assert!(wire.ends_with(b"\r\n\r\nlog in first\n"));
/// ```
#[derive(Debug, Clone)]
pub struct Rejection {
    // Boxed so that `Result<Accept, Rejection>`, the decision callback's answer, stays small.
    inner: Box<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Rejection {
    /// A response with `status` whose body is the status's canonical reason and a newline.
    pub fn new(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("error");
        Rejection {
            inner: Box::new(Inner {
                status,
                headers: HeaderMap::new(),
                body: Bytes::from(format!("{reason}\n")),
            }),
        }
    }

    /// Replaces the body. It is sent as `text/plain; charset=utf-8` unless a `Content-Type`
    /// header field is added.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.inner.body = body.into();
        self
    }

    /// Appends a header field. `Content-Length` and `Connection` are set by
    /// [`encode`](Rejection::encode) and ignored here.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if name != CONTENT_LENGTH && name != CONNECTION {
            self.inner.headers.append(name, value);
        }
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The header fields added with [`with_header`](Rejection::with_header).
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The response as an [`http::Response`], for an HTTP server that writes it itself
    /// (hyper, axum): the status, the added fields, `Content-Type` as
    /// [`encode`](Rejection::encode) sets it, and the body. `Content-Length` and whether the
    /// connection stays open are that server's business.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tether_handshake::Rejection;
    ///
    /// let response = Rejection::new(StatusCode::FORBIDDEN).to_response();
    /// assert_eq!(response.status(), StatusCode::FORBIDDEN);
    /// assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    /// assert_eq!(&response.body()[..], b"Forbidden\n");
    /// ```
    pub fn to_response(&self) -> Response<Bytes> {
        let mut response = Response::new(self.inner.body.clone());
        *response.status_mut() = self.inner.status;
        *response.headers_mut() = self.inner.headers.clone();
        if !self.inner.headers.contains_key(CONTENT_TYPE) {
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        response
    }

    /// Appends the response, head and body, to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(b"HTTP/1.1 ");
        dst.put_slice(self.inner.status.as_str().as_bytes());
        dst.put_u8(b' ');
        dst.put_slice(
            self.inner
                .status
                .canonical_reason()
                .unwrap_or("")
                .as_bytes(),
        );
        dst.put_slice(b"\r\n");
        encode_headers(&self.inner.headers, dst);
        if !self.inner.headers.contains_key(CONTENT_TYPE) {
            dst.put_slice(b"content-type: text/plain; charset=utf-8\r\n");
        }
        dst.put_slice(b"content-length: ");
        dst.put_slice(self.inner.body.len().to_string().as_bytes());
        dst.put_slice(b"\r\nconnection: close\r\n\r\n");
        dst.put_slice(&self.inner.body);
    }
}
