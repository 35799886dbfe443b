//! The transcript: a structured record of every step, and a renderer that prints it like an
//! annotated packet capture.

use std::fmt::Write as _;

use crate::wire::{hex, printable};

/// The tutorial's step an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// 1. The client sends the cipher suites it supports (ClientHello).
    OfferCiphers,
    /// 2. The server picks a suite and sends its certificate (ServerHello, Certificate,
    ///    ServerKeyExchange, ServerHelloDone).
    ChooseCipher,
    /// 3a. The client checks the certificate.
    CheckCertificate,
    /// 3b. The client makes the premaster and sends it encrypted with the server's public
    ///     key (RSA) or agrees on it (ECDHE) (ClientKeyExchange).
    Premaster,
    /// 3c. Both derive the keys; the client hashes the handshake and sends it encrypted
    ///     (ChangeCipherSpec, Finished).
    ClientFinished,
    /// 4. The server recovers the premaster, checks the client's hash and sends its own.
    ServerFinished,
    /// 5. The client checks the server's hash: the handshake is over.
    ClientVerifies,
    /// After the handshake: protected application data.
    ApplicationData,
    /// Alerts and close_notify.
    Close,
}

impl Step {
    /// The tutorial's numbering: "1", "2", "3a", ... or "-" after the handshake.
    pub fn number(self) -> &'static str {
        match self {
            Step::OfferCiphers => "1",
            Step::ChooseCipher => "2",
            Step::CheckCertificate => "3a",
            Step::Premaster => "3b",
            Step::ClientFinished => "3c",
            Step::ServerFinished => "4",
            Step::ClientVerifies => "5",
            Step::ApplicationData | Step::Close => "-",
        }
    }

    /// One line saying what the step is for.
    pub fn summary(self) -> &'static str {
        match self {
            Step::OfferCiphers => "the client offers the cipher suites it supports",
            Step::ChooseCipher => "the server picks a suite and presents its certificate",
            Step::CheckCertificate => "the client checks the certificate",
            Step::Premaster => "the client sends the premaster secret, protected",
            Step::ClientFinished => {
                "keys derived; the client sends the hash of the handshake, encrypted"
            }
            Step::ServerFinished => "the server checks the client's hash and sends its own",
            Step::ClientVerifies => "the client checks the server's hash; the handshake is over",
            Step::ApplicationData => "application data, encrypted with the agreed AEAD",
            Step::Close => "alert",
        }
    }
}

/// Who did what: sent, received, or computed locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// This side sent the bytes.
    Sent,
    /// This side received the bytes.
    Received,
    /// This side computed something (a key, a check).
    Local,
}

/// A named field of a message or a derived value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Field {
    /// The field's name as the RFC calls it.
    pub name: String,
    /// Its value, readable.
    pub value: String,
    /// Whether the value is a secret (printed only when asked for).
    pub secret: bool,
}

/// One step of the handshake or record layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The tutorial step.
    pub step: Step,
    /// Sent, received or local.
    pub direction: Direction,
    /// What happened, for example `ClientHello` or `certificate accepted`.
    pub title: String,
    /// The fields, named.
    pub fields: Vec<Field>,
    /// The bytes on the wire (empty for local events).
    pub bytes: Vec<u8>,
}

/// Every event of one connection, in order.
///
/// ```
/// use tether_teaching_tls::{Transcript, RenderOptions};
/// let t = Transcript::default();
/// assert!(t.events().is_empty());
/// assert_eq!(t.render(&RenderOptions::default()), "");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    events: Vec<Event>,
    app_records: usize,
    alerts: usize,
    bytes: usize,
    dropped: usize,
}

/// How many application data records per connection the transcript keeps: enough to show
/// the record layer without growing with the session.
pub const TRANSCRIPT_APPLICATION_RECORDS: usize = 8;

/// How many received alerts the transcript keeps. A peer may send any number of warning
/// alerts; past this many they are counted in [`Transcript::dropped`], not stored.
pub const TRANSCRIPT_ALERTS: usize = 8;

/// Most events one transcript holds. A full handshake takes about 15 per side, plus
/// [`TRANSCRIPT_APPLICATION_RECORDS`] and [`TRANSCRIPT_ALERTS`]; later events are counted in
/// [`Transcript::dropped`].
pub const TRANSCRIPT_MAX_EVENTS: usize = 64;

/// Most bytes one transcript holds: wire bytes plus field values, over all events. Enough
/// for the largest handshake this crate accepts; values past it are cut.
pub const TRANSCRIPT_MAX_BYTES: usize = 256 * 1024;

/// How to render a transcript.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    show_secrets: bool,
    max_bytes: usize,
    label: String,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            show_secrets: false,
            max_bytes: 64,
            label: String::new(),
        }
    }
}

impl RenderOptions {
    /// Print secret values (premaster, master secret, keys). Default: `false`, they print
    /// as `<secret>`. Only the demo turns this on.
    pub fn show_secrets(&mut self, show: bool) -> &mut Self {
        self.show_secrets = show;
        self
    }

    /// At most this many wire bytes per event in the hex dump. Default: 64; 0 hides them.
    pub fn max_bytes(&mut self, n: usize) -> &mut Self {
        self.max_bytes = n;
        self
    }

    /// A prefix naming the side, for example `client`. Default: empty.
    pub fn label(&mut self, label: &str) -> &mut Self {
        self.label = label.to_owned();
        self
    }
}

impl Transcript {
    /// The events, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// How many events were not recorded because a limit was reached
    /// ([`TRANSCRIPT_MAX_EVENTS`], [`TRANSCRIPT_ALERTS`]).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Bytes held: wire bytes plus field values, at most [`TRANSCRIPT_MAX_BYTES`].
    pub fn byte_len(&self) -> usize {
        self.bytes
    }

    /// Renders the transcript as annotated text, one block per event.
    pub fn render(&self, options: &RenderOptions) -> String {
        let mut out = String::new();
        let mut last_step = None;
        for e in &self.events {
            if last_step != Some(e.step) {
                let _ = writeln!(out, "── step {} · {}", e.step.number(), e.step.summary());
                last_step = Some(e.step);
            }
            let arrow = match e.direction {
                Direction::Sent => "──►",
                Direction::Received => "◄──",
                Direction::Local => " ● ",
            };
            let label = if options.label.is_empty() {
                String::new()
            } else {
                format!("{} ", options.label)
            };
            // Titles and values may carry peer strings (a server name, a certificate's
            // names): a control character would reach the terminal, so escape them here too.
            let _ = writeln!(out, "  {label}{arrow} {}", printable(&e.title));
            let width = e.fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
            for f in &e.fields {
                let value = if f.secret && !options.show_secrets {
                    "<secret>".to_owned()
                } else {
                    printable(&f.value)
                };
                let _ = writeln!(out, "        {:width$} : {value}", f.name);
            }
            if options.max_bytes > 0 && !e.bytes.is_empty() {
                let shown = &e.bytes[..e.bytes.len().min(options.max_bytes)];
                for (i, chunk) in shown.chunks(16).enumerate() {
                    let _ = writeln!(out, "        {:04x}  {}", i * 16, spaced_hex(chunk));
                }
                if e.bytes.len() > shown.len() {
                    let _ = writeln!(out, "        ... {} bytes in all", e.bytes.len());
                }
            }
        }
        if self.dropped > 0 {
            let _ = writeln!(
                out,
                "  ... {} more events not recorded (transcript limits)",
                self.dropped
            );
        }
        out
    }

    pub(crate) fn push(
        &mut self,
        step: Step,
        direction: Direction,
        title: impl Into<String>,
    ) -> EventBuilder<'_> {
        if self.events.len() >= TRANSCRIPT_MAX_EVENTS {
            self.dropped += 1;
            return EventBuilder {
                event: None,
                budget: &mut self.bytes,
            };
        }
        let mut title: String = title.into();
        cut_to_budget(&mut title, &mut self.bytes);
        self.events.push(Event {
            step,
            direction,
            title,
            fields: Vec::new(),
            bytes: Vec::new(),
        });
        EventBuilder {
            event: self.events.last_mut(),
            budget: &mut self.bytes,
        }
    }

    /// Counts a received alert; false once enough were recorded (the rest are dropped).
    pub(crate) fn want_alert(&mut self) -> bool {
        self.alerts += 1;
        let want = self.alerts <= TRANSCRIPT_ALERTS;
        if !want {
            self.dropped += 1;
        }
        want
    }

    /// Counts an application record; false once enough were recorded.
    pub(crate) fn want_application_record(&mut self) -> bool {
        self.app_records += 1;
        self.app_records <= TRANSCRIPT_APPLICATION_RECORDS
    }
}

/// Fills in the event just pushed; does nothing when the event was dropped. Every value
/// is charged to the transcript's byte budget and cut where the budget ends.
pub(crate) struct EventBuilder<'a> {
    event: Option<&'a mut Event>,
    budget: &'a mut usize,
}

impl EventBuilder<'_> {
    pub(crate) fn field(self, name: &str, value: impl Into<String>) -> Self {
        self.push_field(name, value.into(), false)
    }

    pub(crate) fn secret(self, name: &str, value: &[u8]) -> Self {
        self.push_field(name, hex(value), true)
    }

    pub(crate) fn bytes(mut self, bytes: &[u8]) -> Self {
        if let Some(event) = self.event.as_deref_mut() {
            let n = bytes.len().min(TRANSCRIPT_MAX_BYTES - *self.budget);
            *self.budget += n;
            event.bytes = bytes[..n].to_vec();
        }
        self
    }

    fn push_field(mut self, name: &str, mut value: String, secret: bool) -> Self {
        if let Some(event) = self.event.as_deref_mut() {
            cut_to_budget(&mut value, self.budget);
            event.fields.push(Field {
                name: name.to_owned(),
                value,
                secret,
            });
        }
        self
    }
}

/// Cuts `text` to what is left of the byte budget (at a character boundary) and charges it.
fn cut_to_budget(text: &mut String, used: &mut usize) {
    let mut n = text.len().min(TRANSCRIPT_MAX_BYTES - *used);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    text.truncate(n);
    *used += n;
}

fn spaced_hex(bytes: &[u8]) -> String {
    let h = hex(bytes);
    let mut s = String::with_capacity(h.len() * 3 / 2);
    for (i, pair) in h.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(char::from(pair[0]));
        s.push(char::from(pair[1]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_unless_asked_for() {
        let mut t = Transcript::default();
        t.push(Step::ClientFinished, Direction::Local, "keys derived")
            .field("suite", "x")
            .secret("master_secret", &[0xaa; 4]);
        let hidden = t.render(&RenderOptions::default());
        assert!(hidden.contains("<secret>"));
        assert!(!hidden.contains("aaaaaaaa"));
        let shown = t.render(RenderOptions::default().show_secrets(true));
        assert!(shown.contains("aaaaaaaa"));
        assert!(shown.contains("step 3c"));
    }

    #[test]
    fn hex_dump_is_cut_at_max_bytes() {
        let mut t = Transcript::default();
        t.push(Step::OfferCiphers, Direction::Sent, "ClientHello")
            .bytes(&[1; 100]);
        let text = t.render(RenderOptions::default().max_bytes(16));
        assert!(text.contains("0000  01 01"));
        assert!(!text.contains("0010"));
        assert!(text.contains("100 bytes in all"));
    }

    #[test]
    fn application_records_are_counted_to_the_limit() {
        let mut t = Transcript::default();
        for _ in 0..TRANSCRIPT_APPLICATION_RECORDS {
            assert!(t.want_application_record());
        }
        assert!(!t.want_application_record());
    }

    #[test]
    fn events_past_the_limit_are_counted_not_stored() {
        let mut t = Transcript::default();
        for _ in 0..TRANSCRIPT_MAX_EVENTS {
            t.push(Step::Close, Direction::Received, "alert")
                .field("level", "warning");
        }
        assert_eq!(t.events().len(), TRANSCRIPT_MAX_EVENTS);
        assert_eq!(t.dropped(), 0);
        t.push(Step::Close, Direction::Received, "one more")
            .field("level", "warning")
            .bytes(&[1, 2, 3]);
        assert_eq!(t.events().len(), TRANSCRIPT_MAX_EVENTS);
        assert_eq!(t.dropped(), 1);
        assert!(t
            .render(&RenderOptions::default())
            .contains("1 more events not recorded"));
    }

    #[test]
    fn bytes_are_cut_at_the_byte_limit() {
        let mut t = Transcript::default();
        t.push(Step::OfferCiphers, Direction::Sent, "big")
            .bytes(&vec![7; TRANSCRIPT_MAX_BYTES - 10]);
        assert_eq!(t.byte_len(), TRANSCRIPT_MAX_BYTES - 7);
        t.push(Step::OfferCiphers, Direction::Sent, "x")
            .field("name", "ééééééé")
            .bytes(&[1; 100]);
        assert!(t.byte_len() <= TRANSCRIPT_MAX_BYTES);
        let last = t.events().last().unwrap();
        assert!(last.bytes.is_empty());
        // Cut at a character boundary: 6 bytes left, three two-byte characters.
        assert_eq!(last.fields[0].value, "ééé");
    }

    #[test]
    fn received_alerts_are_counted_to_the_limit() {
        let mut t = Transcript::default();
        for _ in 0..TRANSCRIPT_ALERTS {
            assert!(t.want_alert());
        }
        assert!(!t.want_alert());
        assert_eq!(t.dropped(), 1);
    }
}
